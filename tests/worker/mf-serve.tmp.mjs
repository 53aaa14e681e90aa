import { Miniflare } from "miniflare";
const [port, secret, persist] = process.argv.slice(2);
const mf = new Miniflare({
  port: Number(port), host: "127.0.0.1",
  modules: [
    { type: "ESModule", path: "/work/main/edge/build/worker/shim.mjs" },
    { type: "ESModule", path: "/work/main/edge/build/index.js" },
    { type: "CompiledWasm", path: "/work/main/edge/build/index_bg.wasm" },
  ],
  modulesRoot: "/work/main/edge/build",
  compatibilityDate: "2026-04-01",
  durableObjects: { BUFFERS: { className: "EventBuffer", useSQLite: true } },
  r2Buckets: { RAW: "contrail" },
  bindings: { CONTRAIL_KEYS_SECRETS: secret },
  defaultPersistRoot: persist,
});
await mf.ready;
console.log("ready");
