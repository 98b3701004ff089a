// A stand-in for the Hugging Face hub in the browser tests (the real hub cannot be reached here), on
// http://127.0.0.1:4174 with the hub's URL layout and range requests, cross-origin like the real one:
//   /ICTNLP/llava-mini-demo/resolve/main/FILE   the demo checkpoint (public/models/demo); the first large range read
//                                               of model.safetensors loses its connection half way (once)
//   /converted/FILE                             the demo checkpoint converted by `npm run convert`
//   /converted-corrupt/FILE                     the same with one byte of an image-side shard flipped
//   /converted-huge/FILE                        the same, its ndarray-cache.json claiming 10000x larger shards
//   /stats                                      {"drops": n}
// Started by playwright.config.ts next to the app server.
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestServer } from '../scripts/tiny-checkpoint/test-http-server.ts';
import { convertCheckpoint } from '../src/convert/index.ts';
import { MLC_INDEX_FILE } from '../src/format/mlc.ts';
import { nodeCheckpointFiles } from '../src/node/file-source.ts';
import { NodeOutputDir } from '../src/node/output-dir.ts';

export const FAKE_HUB_PORT = 4174;
export const FAKE_HUB_REPO = 'ICTNLP/llava-mini-demo';
const DEMO = 'public/models/demo';
const CONVERTED = 'e2e/generated/converted-demo';
const CORRUPT_FILE = 'mm-q4/pack_shard_0.bin';

// The app server's command writes the demo model (its marker file last): wait for it rather than race it.
for (let waited = 0; !existsSync(join(DEMO, 'demo-model.json')); waited += 500) {
  if (waited > 120_000) throw new Error(`${DEMO} did not appear: run node --import tsx scripts/prepare-demo-model.ts`);
  await new Promise((r) => setTimeout(r, 500));
}
// Converted once per demo model: the marker is the demo's own marker file, copied when the conversion finished;
// a folder from an older converter (its weight index under another name) is converted again.
const demoMarker = await readFile(join(DEMO, 'demo-model.json'), 'utf8');
const current = existsSync(join(CONVERTED, 'llm-q4f32_1', MLC_INDEX_FILE)) && (await readFile(join(CONVERTED, 'demo-model.json'), 'utf8').catch(() => null)) === demoMarker;
if (!current) {
  await rm(CONVERTED, { recursive: true, force: true });
  await convertCheckpoint(nodeCheckpointFiles(DEMO), new NodeOutputDir(CONVERTED));
  await writeFile(join(CONVERTED, 'demo-model.json'), demoMarker);
}

let drops = 0;
const read = (path: string) => readFile(path).catch(() => null);
const server = await startTestServer(
  async (path) => {
    if (path === 'stats') return new TextEncoder().encode(JSON.stringify({ drops }));
    const hub = `${FAKE_HUB_REPO}/resolve/main/`;
    if (path.startsWith(hub)) return read(join(DEMO, path.slice(hub.length)));
    if (path.startsWith('converted/')) return read(join(CONVERTED, path.slice('converted/'.length)));
    if (path.startsWith('converted-huge/')) {
      const rel = path.slice('converted-huge/'.length);
      const bytes = await read(join(CONVERTED, rel));
      if (!bytes || !rel.endsWith('ndarray-cache.json')) return bytes;
      const cache = JSON.parse(bytes.toString()) as { records: { nbytes: number }[] };
      for (const r of cache.records) r.nbytes *= 10_000;
      return new TextEncoder().encode(JSON.stringify(cache));
    }
    if (path.startsWith('converted-corrupt/')) {
      const rel = path.slice('converted-corrupt/'.length);
      const bytes = await read(join(CONVERTED, rel));
      if (bytes && rel === CORRUPT_FILE) bytes[bytes.length >> 1] ^= 0xff;
      return bytes;
    }
    return null;
  },
  'honour',
  ({ path, range }) => {
    const m = range ? /^bytes=(\d+)-(\d+)$/.exec(range) : null;
    if (drops === 0 && path.endsWith('model.safetensors') && m && Number(m[2]) - Number(m[1]) > 1 << 20) {
      drops++;
      return 'drop';
    }
    return null;
  },
  FAKE_HUB_PORT,
);
console.log(`fake hub on ${server.url}`);
