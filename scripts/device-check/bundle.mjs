// Bundles the CLI, the benches, the tiny-checkpoint generator and the check runner into single-file ES modules
// (esbuild, already in node_modules through tsx/vite) for machines that have neither our node_modules nor a
// network: `node scripts/device-check/bundle.mjs OUTDIR COMMIT`. Shaders are inlined (`?raw` -> text); the
// `webgpu` package (a native addon) stays external and travels beside the bundles in OUTDIR/node_modules, as do
// the files bundled code opens by package path at run time (RUNTIME_FILES).
import { build } from 'esbuild';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const [outdir, commit = 'unknown'] = process.argv.slice(2);
if (!outdir) throw new Error('usage: bundle.mjs OUTDIR [COMMIT]');

/** Vite's `?raw` imports: the file's text as the default export. */
const rawText = {
  name: 'raw-text',
  setup(b) {
    b.onResolve({ filter: /\?raw$/ }, (args) => ({ path: resolve(args.resolveDir, args.path.replace(/\?raw$/, '')), namespace: 'raw' }));
    b.onLoad({ filter: /.*/, namespace: 'raw' }, async (args) => ({ contents: await readFile(args.path, 'utf8'), loader: 'text' }));
  },
};

await build({
  absWorkingDir: root,
  entryPoints: {
    cli: 'src/cli/main.ts',
    'bench-e2e': 'bench/e2e.ts',
    'bench-kernels': 'bench/kernels.ts',
    'bench-decode': 'bench/decode.ts',
    'bench-attention': 'bench/attention.ts',
    'make-tiny-checkpoint': 'scripts/make-tiny-checkpoint.ts',
    'run-checks': 'scripts/device-check/run-checks.ts',
  },
  outdir,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['webgpu'],
  plugins: [rawText],
  define: { 'process.env.LLAVA_BUNDLE_COMMIT': JSON.stringify(commit) },
  // Bundled CommonJS dependencies call require(): give the ES module one.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  logLevel: 'warning',
  legalComments: 'none',
});

/** Package files the bundled code reads at run time through require.resolve (libwebp's wasm: src/node/image-file.ts). */
const RUNTIME_FILES = ['@jsquash/webp/package.json', '@jsquash/webp/codec/dec/webp_dec.wasm'];
for (const file of RUNTIME_FILES) {
  const to = join(outdir, 'node_modules', file);
  await mkdir(dirname(to), { recursive: true });
  await copyFile(join(root, 'node_modules', file), to);
}
