// Serves the built Worker (edge/build/) in workerd through Miniflare's API:
// the runtime `wrangler dev` uses, without wrangler's proxy worker and
// inspector in front of it, so that bench/worker.sh measures the Worker and
// its Durable Objects rather than the dev tooling.
//
//   node bench/worker_miniflare.mjs PORT SECRET STATE_DIR
import { createRequire } from "node:module";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const require = createRequire(join(root, "tests/worker/package.json"));
const { Miniflare } = require("miniflare");

const [port, secret, state] = process.argv.slice(2);
const build = join(root, "edge/build");
const mf = new Miniflare({
  host: "127.0.0.1",
  port: Number(port),
  modulesRoot: build,
  modules: [
    { type: "ESModule", path: join(build, "worker/shim.mjs") },
    { type: "ESModule", path: join(build, "index.js") },
    { type: "CompiledWasm", path: join(build, "index_bg.wasm") },
  ],
  compatibilityDate: "2026-04-01",
  durableObjects: { BUFFERS: { className: "EventBuffer", useSQLite: true } },
  r2Buckets: { RAW: "contrail" },
  bindings: { CONTRAIL_KEYS_SECRETS: secret },
  defaultPersistRoot: state,
});
await mf.ready;
console.log("ready");
