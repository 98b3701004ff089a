import { describe, expect, it } from 'vitest';
import matmulWgsl from '../../shaders/matmul.wgsl?raw';
import matmulQ4Wgsl from '../../shaders/matmul-q4.wgsl?raw';
import { expandWgsl, parseFragments } from './wgsl-include.ts';
import { linearShaderSource } from './kernels/linear.ts';

describe('WGSL include step', () => {
  it('splices a fragment verbatim in place of its include line', () => {
    const fragments = parseFragments(['// header\n//#fragment a\n  let x = 1u;\n  let y = 2u;\n\n//#fragment b\nconst C = 3u;\n']);
    expect(fragments.get('a')).toBe('  let x = 1u;\n  let y = 2u;');
    expect(fragments.get('b')).toBe('const C = 3u;');
    expect(expandWgsl('//#include b\nfn main() {\n//#include a\n}', fragments)).toBe('const C = 3u;\nfn main() {\n  let x = 1u;\n  let y = 2u;\n}');
  });

  it('rejects an unknown or twice-defined fragment', () => {
    expect(() => expandWgsl('//#include nope', new Map())).toThrow(/no such fragment/);
    expect(() => parseFragments(['//#fragment a\nx\n', '//#fragment a\ny\n'])).toThrow(/defined twice/);
  });

  it('the tiled matmul kernels share one tile loop and epilogue', () => {
    for (const kernel of [matmulWgsl, matmulQ4Wgsl]) {
      expect(kernel).not.toMatch(/for \(var kk/);
      const expanded = expandWgsl(kernel);
      expect(expanded).not.toMatch(/^\s*\/\/#include /m);
      expect(expanded.match(/for \(var kk = 0u; kk < BK; kk\+\+\)/g)).toHaveLength(1);
      expect(expanded.match(/v \+= y\[base \+ j\];/g)).toHaveLength(1); // the epilogue (its residual add)
    }
  });

  it('the direct matmul kernels share the tile start and epilogue, with either row-load fragment', () => {
    for (const loads of ['vec4', 'scalar'] as const) {
      const expanded = linearShaderSource('f32', 'direct', loads);
      expect(expanded).not.toMatch(/^\s*\/\/#include /m);
      expect(expanded).not.toMatch(/var<workgroup>|workgroupBarrier/);
      expect(expanded.match(/v \+= y\[base \+ j\];/g)).toHaveLength(1); // the epilogue (its residual add)
      expect(expanded.match(/fn load_w\(/g)).toHaveLength(1);
    }
  });
});
