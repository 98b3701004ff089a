// The peer bench's shapes: the real model's (Llama-3.1-8B decode and prefill at int4, CLIP ViT-L's linears),
// each with the N it runs at on a software adapter (SwiftShader, lavapipe), where the full shape would take
// minutes per repetition. M (the rows) is never scaled: small-M behaviour is what the bench is for.

export type CaseKind = 'q4' | 'dense';

export interface PeerCase {
  name: string;
  what: string;
  kind: CaseKind;
  M: number;
  K: number;
  N: number;
  /** N on a software adapter (undefined: the real N). */
  softwareN?: number;
}

export const PEER_CASES: readonly PeerCase[] = [
  { name: 'decode.gate_up', what: 'decode int4 gate_up', kind: 'q4', M: 1, K: 4096, N: 28672 },
  { name: 'decode.down', what: 'decode int4 down', kind: 'q4', M: 1, K: 14336, N: 4096 },
  { name: 'decode.lm_head', what: 'decode int4 lm_head', kind: 'q4', M: 1, K: 4096, N: 128256, softwareN: 32768 },
  { name: 'prefill.m16', what: 'prefill int4', kind: 'q4', M: 16, K: 4096, N: 4096, softwareN: 2048 },
  { name: 'prefill.m64', what: 'prefill int4', kind: 'q4', M: 64, K: 4096, N: 4096, softwareN: 512 },
  { name: 'prefill.m640', what: 'prefill int4', kind: 'q4', M: 640, K: 4096, N: 4096, softwareN: 64 },
  { name: 'clip.attn', what: 'CLIP linear', kind: 'dense', M: 577, K: 1024, N: 1024, softwareN: 128 },
  { name: 'clip.fc1', what: 'CLIP fc1', kind: 'dense', M: 577, K: 1024, N: 4096, softwareN: 256 },
];

/** Picks cases by `--shapes a,b` (exact names or prefixes such as `decode`); all when absent. */
export function selectCases(spec: string | undefined): PeerCase[] {
  if (!spec || spec === 'all') return [...PEER_CASES];
  const wanted = spec.split(',').map((s) => s.trim()).filter(Boolean);
  const picked = PEER_CASES.filter((c) => wanted.some((w) => c.name === w || c.name.startsWith(`${w}.`) || c.name.startsWith(w)));
  if (picked.length === 0) throw new Error(`--shapes ${spec}: none of ${PEER_CASES.map((c) => c.name).join(', ')}`);
  return picked;
}

/** "NAME=N" overrides of the run's N (`--n decode.lm_head=65536,clip.fc1=4096`). */
export function parseNOverrides(spec: string | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (const part of (spec ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const [name, v] = part.split('=');
    const n = Number(v);
    if (!name || !Number.isInteger(n) || n < 1) throw new Error(`--n ${part}: expected NAME=N`);
    out.set(name, n);
  }
  return out;
}
