// Browser tests in Debian's Chromium (/usr/bin/chromium) with WebGPU on SwiftShader (no GPU needed).
// The app is built and served by ./scripts/start.sh (`vite preview`) on http://localhost:4173 (a secure context: navigator.gpu
// exists only there, not on file: or data: pages).
import { defineConfig } from '@playwright/test';
import { resolve } from 'node:path';
import { CAMERA_CLIP } from './e2e/camera-clip.ts';

const PORT = 4173;
const FAKE_HUB_PORT = 4174;

export default defineConfig({
  testDir: 'e2e',
  testMatch: '**/*.spec.ts',
  outputDir: 'test-results',
  globalSetup: './e2e/global-setup.ts',
  fullyParallel: false,
  workers: 1,
  retries: 0,
  // SwiftShader runs WebGPU on the CPU: give GPU work room.
  timeout: 120_000,
  expect: { timeout: 60_000 },
  reporter: 'list',
  use: {
    baseURL: `http://localhost:${PORT}`,
    headless: true,
    viewport: { width: 1100, height: 900 },
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    // Still spinners (app.css honours the preference): the trace kept for failures records every repainted frame,
    // and an endless animation roughly doubled each model load on SwiftShader (45 s -> 77 s measured).
    reducedMotion: 'reduce',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--enable-unsafe-webgpu',
        '--enable-unsafe-swiftshader',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--use-fake-ui-for-media-stream',
        '--use-fake-device-for-media-stream',
        // The fake camera plays our clip (written by the global setup) instead of Chromium's built-in pattern.
        `--use-file-for-fake-video-capture=${resolve(CAMERA_CLIP)}`,
      ],
    },
  },
  projects: [{ name: 'chromium', use: { browserName: 'chromium' } }],
  webServer: [
    {
      // What users start (README): the demo model, the production build, `vite preview` (service worker included).
      command: `PORT=${PORT} ./scripts/start.sh`,
      url: `http://localhost:${PORT}`,
      reuseExistingServer: !process.env.CI,
      timeout: 180_000,
      stdout: 'ignore',
      stderr: 'pipe',
    },
    {
      // Hugging Face's URLs on this machine (e2e/fake-hub.ts); it waits for the demo model the first command writes.
      command: `node --import ./scripts/node-register.mjs e2e/fake-hub.ts`,
      url: `http://127.0.0.1:${FAKE_HUB_PORT}/stats`,
      reuseExistingServer: !process.env.CI,
      timeout: 180_000,
      stdout: 'ignore',
      stderr: 'pipe',
    },
  ],
});
