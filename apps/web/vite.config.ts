import { defineConfig } from 'vite';

// The page is served by the API with a strict Content-Security-Policy (apps/api/src/web.ts):
// no inline script, so no module-preload polyfill injected into index.html.
export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    modulePreload: { polyfill: false },
    target: 'es2022',
    assetsInlineLimit: 0,
  },
  server: { proxy: { '/v1': 'http://127.0.0.1:8080' } },
});
