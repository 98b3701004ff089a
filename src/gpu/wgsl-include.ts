// Our own include step for WGSL. A shader line `//#include NAME` becomes fragment NAME of the shared fragment
// files (a fragment runs from its `//#fragment NAME` line to the next one or the end of the file). Kernels apply
// it to the text they load, so the `?raw` imports (Vite) and scripts/raw-loader.mjs (Node) stay plain file reads
// and the browser and Node still compile the same text. Lines are spliced verbatim: the expanded kernel is the
// text it was before its shared parts moved out.
import matmulTileWgsl from '../../shaders/matmul-tile.wgsl?raw';
import q4DequantWgsl from '../../shaders/q4-dequant.wgsl?raw';

const FRAGMENT = /^\/\/#fragment (\S+)\s*$/;
const INCLUDE = /^\s*\/\/#include (\S+)\s*$/;

/** The fragments of some fragment files, by name; a name defined twice is an error. */
export function parseFragments(files: readonly string[]): Map<string, string> {
  const fragments = new Map<string, string>();
  for (const file of files) {
    let name: string | null = null;
    let body: string[] = [];
    const close = () => {
      if (name === null) return;
      if (fragments.has(name)) throw new Error(`WGSL fragment "${name}" is defined twice`);
      while (body.length > 0 && body[body.length - 1]!.trim() === '') body.pop();
      fragments.set(name, body.join('\n'));
    };
    for (const line of file.split('\n')) {
      const m = FRAGMENT.exec(line);
      if (m) {
        close();
        name = m[1]!;
        body = [];
      } else if (name !== null) {
        body.push(line);
      }
    }
    close();
  }
  return fragments;
}

/** The fragments every kernel may include: the matmul tile (matmul-tile.wgsl) and int4 dequantization (q4-dequant.wgsl). */
export const SHARED_FRAGMENTS: ReadonlyMap<string, string> = parseFragments([matmulTileWgsl, q4DequantWgsl]);

/**
 * `code` with every `//#include NAME` line replaced by fragment NAME of SHARED_FRAGMENTS or of `extra` (a kernel's
 * own variants); throws on an unknown name.
 */
export function expandWgsl(code: string, extra: ReadonlyMap<string, string> = new Map()): string {
  const fragments = new Map([...SHARED_FRAGMENTS, ...extra]);
  return code
    .split('\n')
    .map((line) => {
      const m = INCLUDE.exec(line);
      if (!m) return line;
      const fragment = fragments.get(m[1]!);
      if (fragment === undefined) throw new Error(`WGSL "//#include ${m[1]}": no such fragment (known: ${[...fragments.keys()].join(', ')})`);
      return fragment;
    })
    .join('\n');
}
