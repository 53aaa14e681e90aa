import { defineConfig } from "vite";

/** Where `vite dev` forwards API calls: a `contrail serve` started by hand. */
const api = process.env.CONTRAIL_API ?? "http://127.0.0.1:8899";

export default defineConfig({
  // Preact's JSX runtime straight from esbuild: no plugin needed.
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  base: "/",
  build: {
    outDir: "dist",
    assetsDir: "assets",
    emptyOutDir: true,
    // The build is embedded in the contrail binary: no maps, to keep it small.
    sourcemap: false,
  },
  // Only for `vite dev`; the embedded build is served by contrail itself.
  server: {
    proxy: {
      "/v1": { target: api, changeOrigin: true },
      "/openapi.json": { target: api, changeOrigin: true },
    },
  },
});
