// RecordedPass (src/gpu/dispatch.ts): the command sequence a replay issues. Real replays on a device are checked in
// the attention, RoPE and LLM runtime tests; here only the sequencing, per-step values and refusals, against a
// pass that logs what it is given.
import { describe, expect, it } from 'vitest';
import { RecordedPass, type ComputePass } from './dispatch.ts';
import type { ComputeProgram } from './pipeline.ts';

function loggingPass(): { pass: ComputePass; log: string[] } {
  const log: string[] = [];
  const pass = {
    setPipeline: (p: GPUComputePipeline) => void log.push(`pipeline ${p.label}`),
    setBindGroup: (i: number, g: GPUBindGroup | null, offsets?: Iterable<number>) => void log.push(`group ${i} ${g?.label} [${[...(offsets ?? [])].join(',')}]`),
    dispatchWorkgroups: (x: number, y?: number) => void log.push(`dispatch ${x}x${y ?? 1}`),
  } as ComputePass;
  return { pass, log };
}

const pipeline = (label: string) => ({ label }) as GPUComputePipeline;
const group = (label: string) => ({ label }) as GPUBindGroup;
const program = (label: string) => ({ pipeline: pipeline(label), layout: {} }) as ComputeProgram;

describe('RecordedPass', () => {
  it('replays fixed commands as recorded and stepped ones at the replay step, skipping [0, 0] grids', () => {
    const rec = new RecordedPass(10);
    rec.setPipeline(pipeline('norm'));
    rec.setBindGroup(0, group('g0'), []);
    rec.dispatchWorkgroups(3, 2);
    rec.stepped(group('steps'), (s) => [s * 256], [
      { program: program('main'), grid: (s) => [s + 1, 1] },
      { program: program('merge'), grid: (s) => (s > 4 ? [2, 1] : [0, 0]) },
    ]);
    expect(rec.length).toBe(8);
    for (const [step, tail] of [
      [2, ['group 0 steps [512]', 'pipeline main', 'dispatch 3x1', 'pipeline merge']],
      [7, ['group 0 steps [1792]', 'pipeline main', 'dispatch 8x1', 'pipeline merge', 'dispatch 2x1']],
    ] as const) {
      const { pass, log } = loggingPass();
      rec.replay(pass, step);
      expect(log).toEqual(['pipeline norm', 'group 0 g0 []', 'dispatch 3x2', ...tail]);
    }
  });

  it('refuses steps outside its range, no steps, and what it cannot replay (other groups, offset slices)', () => {
    const rec = new RecordedPass(4);
    expect(() => rec.replay(loggingPass().pass, 4)).toThrow(/step 4 outside 0\.\.3/);
    expect(() => rec.replay(loggingPass().pass, -1)).toThrow(/step -1 outside/);
    expect(() => new RecordedPass(0)).toThrow(/steps must be a positive integer/);
    expect(() => rec.setBindGroup(1, group('g1'))).toThrow(/only bind group 0/);
    expect(() => rec.setBindGroup(0, group('g'), new Uint32Array(2), 0, 1)).toThrow(/only bind group 0 with plain dynamic offsets/);
  });
});
