/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig({
  plugins: [react()],
  // No SPA fallback: a missing model file must be a 404, not index.html.
  appType: 'mpa',
  server: { host: 'localhost', port: 5173, strictPort: true },
  preview: { host: 'localhost', port: 4173, strictPort: true },
  worker: { format: 'es' },
  test: {
    include: ['src/**/*.test.ts', 'scripts/**/*.test.ts'],
    environment: 'node',
    // Dawn (the `webgpu` package) is a native addon: one process per test file, not worker threads.
    pool: 'forks',
    setupFiles: ['src/node/node-env.ts'],
    testTimeout: 600_000,
    hookTimeout: 600_000,
  },
});
