// Node module-loader hook: `import text from './file.wgsl?raw'` yields the file's text as the default export,
// like Vite's `?raw`, so the engine's shader imports work in plain Node (CLI, benchmarks) too.
// Registered by scripts/node-register.mjs (`node --import ./scripts/node-register.mjs app.ts`).
import { readFile } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';

const RAW = /\?raw$/;

function isPathLike(specifier) {
  return specifier.startsWith('./') || specifier.startsWith('../') || specifier.startsWith('/') || specifier.startsWith('file:');
}

export async function resolve(specifier, context, nextResolve) {
  if (!RAW.test(specifier)) return nextResolve(specifier, context);
  const bare = specifier.replace(RAW, '');
  let url;
  if (isPathLike(bare)) {
    url = bare.startsWith('/') ? pathToFileURL(bare) : new URL(bare, context.parentURL);
  } else {
    // package specifier: let the next resolver find the file, then mark it raw
    url = new URL((await nextResolve(bare, context)).url);
  }
  url.search = '?raw';
  return { url: url.href, format: 'module', shortCircuit: true };
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('?raw')) return nextLoad(url, context);
  const u = new URL(url);
  u.search = '';
  const text = await readFile(fileURLToPath(u), 'utf8');
  return { format: 'module', source: `export default ${JSON.stringify(text)};\n`, shortCircuit: true };
}
