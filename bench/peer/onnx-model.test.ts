// The peer bench's ONNX writer (bench/peer/onnx-model.ts), checked by decoding its bytes back field by field
// against onnx.proto's numbering, and the MatMulNBits layout checked on the CPU: B, scales and zero_points read
// the way ORT's MatMulNBits spec defines them ([N, K/32, 16] bytes, low nibble first; deq = (q - zp) * scale)
// give exactly our dequantized MLC weights. (ORT itself on the GPU is not run here: its first WebGPU run on
// SwiftShader takes over 30 s; `npm run bench:peer` runs it and compares outputs.)
// Part of the Vitest suite (vite.config.ts includes bench/**/*.test.ts).
import { describe, expect, it } from 'vitest';
import { dequantizeQ4, quantizeQ4 } from '../../src/quant/q4.ts';
import { mulberry32, randomF32 } from '../../src/util/seeded-random.ts';
import { decodeMessage, matMulModel, matMulNBitsModel, OnnxType, type DecodedField } from './onnx-model.ts';

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const bytesOf = (f: DecodedField | undefined): Uint8Array => {
  if (!f || !('bytes' in f)) throw new Error('expected a length-delimited field');
  return f.bytes;
};
const intOf = (f: DecodedField | undefined): number => {
  if (!f || !('varint' in f)) throw new Error('expected a varint field');
  return Number(f.varint);
};
const all = (fields: DecodedField[], n: number) => fields.filter((f) => f.field === n);
const one = (fields: DecodedField[], n: number) => {
  const got = all(fields, n);
  if (got.length !== 1) throw new Error(`field ${n}: ${got.length} occurrences`);
  return got[0];
};

interface Tensor {
  name: string;
  type: number;
  dims: number[];
  raw: Uint8Array;
}

function decodeTensor(b: Uint8Array): Tensor {
  const f = decodeMessage(b);
  return { name: text(bytesOf(one(f, 8))), type: intOf(one(f, 2)), dims: all(f, 1).map(intOf), raw: bytesOf(one(f, 9)) };
}

function decodeValueInfo(b: Uint8Array): { name: string; type: number; dims: number[] } {
  const f = decodeMessage(b);
  const tensorType = decodeMessage(bytesOf(one(decodeMessage(bytesOf(one(f, 2))), 1)));
  const shape = decodeMessage(bytesOf(one(tensorType, 2)));
  const dims = all(shape, 1).map((d) => intOf(one(decodeMessage(bytesOf(d)), 1)));
  return { name: text(bytesOf(one(f, 1))), type: intOf(one(tensorType, 1)), dims };
}

function decodeModel(model: Uint8Array) {
  const m = decodeMessage(model);
  const opsets = all(m, 8).map((o) => {
    const f = decodeMessage(bytesOf(o));
    return { domain: text(bytesOf(one(f, 1))), version: intOf(one(f, 2)) };
  });
  const g = decodeMessage(bytesOf(one(m, 7)));
  const n = decodeMessage(bytesOf(one(g, 1)));
  const attributes = Object.fromEntries(
    all(n, 5).map((a) => {
      const f = decodeMessage(bytesOf(a));
      expect(intOf(one(f, 20))).toBe(2); // AttributeProto.INT
      return [text(bytesOf(one(f, 1))), intOf(one(f, 3))];
    }),
  );
  const domain = all(n, 7);
  return {
    irVersion: intOf(one(m, 1)),
    opsets,
    node: {
      opType: text(bytesOf(one(n, 4))),
      domain: domain.length ? text(bytesOf(domain[0])) : '',
      inputs: all(n, 1).map((f) => text(bytesOf(f))),
      outputs: all(n, 2).map((f) => text(bytesOf(f))),
      attributes,
    },
    initializers: all(g, 5).map((t) => decodeTensor(bytesOf(t))),
    inputs: all(g, 11).map((v) => decodeValueInfo(bytesOf(v))),
    outputs: all(g, 12).map((v) => decodeValueInfo(bytesOf(v))),
  };
}

describe('ONNX writer', () => {
  it('writes a MatMulNBits model whose initializers are our MLC bytes, and which ORT\'s spec dequantizes to our weights', () => {
    const M = 2;
    const K = 96; // 3 blocks: an odd count, so each row's zero points end in a half-used byte
    const N = 5;
    const rng = mulberry32(3);
    const q = quantizeQ4(randomF32(N * K, rng, 0.1), N, K);
    const qBytes = new Uint8Array(q.qWeight.buffer);
    const model = decodeModel(matMulNBitsModel(M, K, N, OnnxType.FLOAT, qBytes, q.qScale));

    expect(model.irVersion).toBe(9);
    expect(model.opsets).toEqual([{ domain: '', version: 21 }, { domain: 'com.microsoft', version: 1 }]);
    expect(model.node).toEqual({
      opType: 'MatMulNBits',
      domain: 'com.microsoft',
      inputs: ['x', 'B', 'scales', 'zero_points'],
      outputs: ['y'],
      attributes: { K, N, bits: 4, block_size: 32 },
    });
    expect(model.inputs).toEqual([{ name: 'x', type: OnnxType.FLOAT, dims: [M, K] }]);
    expect(model.outputs).toEqual([{ name: 'y', type: OnnxType.FLOAT, dims: [M, N] }]);
    const [B, scales, zp] = model.initializers;
    expect([B!.name, B!.type, B!.dims]).toEqual(['B', OnnxType.UINT8, [N, K / 32, 16]]);
    expect(B!.raw).toEqual(qBytes);
    expect([scales!.name, scales!.type, scales!.dims]).toEqual(['scales', OnnxType.FLOAT, [N * (K / 32)]]);
    expect(new Float32Array(scales!.raw.slice().buffer)).toEqual(q.qScale);
    expect([zp!.name, zp!.type, zp!.dims]).toEqual(['zero_points', OnnxType.UINT8, [N * 2]]);
    expect(Array.from(zp!.raw)).toEqual(Array.from({ length: N }, () => [0x77, 0x07]).flat());

    // MatMulNBits' dequantization, as its spec reads the three tensors.
    const blocks = K / 32;
    const sc = new Float32Array(scales!.raw.slice().buffer);
    const ortW = new Float32Array(N * K);
    for (let n = 0; n < N; n++) {
      for (let b = 0; b < blocks; b++) {
        const zpByte = zp!.raw[n * Math.ceil(blocks / 2) + (b >> 1)]!;
        const z = (zpByte >> (4 * (b & 1))) & 0xf;
        for (let i = 0; i < 32; i++) {
          const byte = B!.raw[(n * blocks + b) * 16 + (i >> 1)]!;
          const v = (byte >> (4 * (i & 1))) & 0xf;
          ortW[n * K + b * 32 + i] = (v - z) * sc[n * blocks + b]!;
        }
      }
    }
    expect(ortW).toEqual(dequantizeQ4(q.qWeight, q.qScale, N, K));
  });

  it('writes an f16 MatMul model with W^T as a [K, N] initializer', () => {
    const wT = Uint16Array.from({ length: 4 * 3 }, (_, i) => 0x3c00 + i);
    const model = decodeModel(matMulModel(2, 4, 3, OnnxType.FLOAT16, wT));
    expect(model.opsets).toEqual([{ domain: '', version: 21 }]);
    expect(model.node).toEqual({ opType: 'MatMul', domain: '', inputs: ['x', 'W'], outputs: ['y'], attributes: {} });
    expect(model.inputs).toEqual([{ name: 'x', type: OnnxType.FLOAT16, dims: [2, 4] }]);
    expect(model.outputs).toEqual([{ name: 'y', type: OnnxType.FLOAT16, dims: [2, 3] }]);
    expect(model.initializers).toHaveLength(1);
    expect(model.initializers[0]).toMatchObject({ name: 'W', type: OnnxType.FLOAT16, dims: [4, 3] });
    expect(model.initializers[0]!.raw).toEqual(new Uint8Array(wT.buffer));
  });

  it('refuses initializers whose byte count does not match their shape', () => {
    expect(() => matMulModel(1, 4, 3, OnnxType.FLOAT, new Float32Array(11))).toThrow(/W \[4, 3\] needs 48 bytes, got 44/);
    expect(() => matMulNBitsModel(1, 48, 1, OnnxType.FLOAT, new Uint8Array(24), new Float32Array(2))).toThrow(/multiple of 32/);
  });

  it('encodes varints past 2^31 (a 64-bit dim) and decodes them back', () => {
    const big = 2 ** 33 + 5;
    const model = decodeMessage(matMulModel(1, 1, 1, OnnxType.FLOAT, new Float32Array(1)));
    expect(intOf(one(model, 1))).toBe(9);
    const w = new Float32Array(0);
    expect(() => matMulModel(big, 1, 0, OnnxType.FLOAT, w)).not.toThrow();
    const g = decodeMessage(bytesOf(one(decodeMessage(matMulModel(big, 1, 0, OnnxType.FLOAT, w)), 7)));
    expect(decodeValueInfo(bytesOf(one(g, 11))).dims).toEqual([big, 1]);
  });
});
