/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { VitePWA } from 'vite-plugin-pwa';

export default defineConfig({
  plugins: [
    react(),
    // The app shell as a PWA: a service worker precaches the built page, scripts and workers so the page opens
    // offline; models live in OPFS (src/download), never in this cache.
    VitePWA({
      registerType: 'autoUpdate',
      injectRegister: 'script-defer',
      manifest: {
        name: 'LLaVA-Mini — runs on your GPU, in your browser',
        short_name: 'LLaVA-Mini',
        description: 'A vision-language model that runs entirely on your GPU through WebGPU.',
        theme_color: '#4f46e5',
        background_color: '#0e1016',
        display: 'standalone',
        icons: [{ src: 'favicon.svg', sizes: 'any', type: 'image/svg+xml', purpose: 'any' }],
      },
      workbox: {
        globPatterns: ['**/*.{js,css,html,svg,wasm,webmanifest}'],
        globIgnores: ['models/**'],
        navigateFallbackDenylist: [/^\/models\//],
        maximumFileSizeToCacheInBytes: 16 * 1024 * 1024,
      },
    }),
  ],
  // No SPA fallback: a missing model file must be a 404, not index.html.
  appType: 'mpa',
  server: { host: 'localhost', port: 5173, strictPort: true },
  preview: { host: 'localhost', port: 4173, strictPort: true },
  worker: { format: 'es' },
  test: {
    include: ['src/**/*.test.ts', 'scripts/**/*.test.ts', 'bench/**/*.test.ts'],
    environment: 'node',
    // Dawn (the `webgpu` package) is a native addon: one process per test file, not worker threads.
    pool: 'forks',
    setupFiles: ['src/node/node-env.ts'],
    testTimeout: 600_000,
    hookTimeout: 600_000,
  },
});
