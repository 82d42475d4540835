import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// The SPA served by the Worker's static assets (wrangler.toml [assets], directory web/dist). Built by
// scripts/web-build.mjs, which also copies Swagger UI's files next to it for /api/v2/docs.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  plugins: [react()],
  // The SDK from its source, as the type-check and the tests use it (no sdk/dist needed).
  resolve: { alias: { '@chatd-edge/sdk': fileURLToPath(new URL('../sdk/src/index.ts', import.meta.url)) } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
  },
});
