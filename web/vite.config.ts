import { defineConfig } from "vite";

// Built by server/build.rs into the binary; `npm run dev` proxies the API to a local
// `aispend serve`.
export default defineConfig({
  build: { target: "es2022", sourcemap: false, chunkSizeWarningLimit: 1024 },
  server: {
    proxy: {
      "/graphql": { target: "http://127.0.0.1:8080", ws: true },
      "/export": "http://127.0.0.1:8080",
    },
  },
});
