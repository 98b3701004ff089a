// Vitest for the benches' own helpers (bench/**/*.test.ts), apart from the app's suite (vite.config.ts covers
// src/ and scripts/): `npm run test:bench`.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: fileURLToPath(new URL('..', import.meta.url)),
  test: {
    include: ['bench/**/*.test.ts'],
    environment: 'node',
    pool: 'forks',
  },
});
