// Copies every object of the Worker's local R2 bucket (as `wrangler dev
// --persist-to DIR` stores it) into OUT/<key>, the layout of a file:// object
// store, so that the compactor and the tests read what the Worker wrote.
// Reads through Miniflare's own R2 implementation instead of its files.
//
//   node r2-export.mjs PERSIST_DIR OUT_DIR [BUCKET]
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { Miniflare } from "miniflare";

const [persistDir, outDir, bucketName = "contrail"] = process.argv.slice(2);
if (!persistDir || !outDir) {
  console.error("usage: node r2-export.mjs PERSIST_DIR OUT_DIR [BUCKET]");
  process.exit(2);
}
const mf = new Miniflare({
  modules: true,
  script: "export default { fetch() { return new Response(null, { status: 404 }); } }",
  r2Buckets: { RAW: bucketName },
  r2Persist: join(persistDir, "v3", "r2"),
});
try {
  const bucket = await mf.getR2Bucket("RAW");
  let cursor;
  let count = 0;
  do {
    const page = await bucket.list({ cursor, limit: 1000 });
    for (const object of page.objects) {
      const body = await bucket.get(object.key);
      const path = join(outDir, object.key);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, Buffer.from(await body.arrayBuffer()));
      count += 1;
    }
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  console.log(JSON.stringify({ exported: count }));
} finally {
  await mf.dispose();
}
