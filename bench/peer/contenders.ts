// The three sides of one peer-bench case, on identical bytes:
//   ours  — the engine's kernel for the shape (linearPath): MatvecKernel (decode, few rows) or LinearQ4Kernel (int4 prefill),
//           LinearKernel (dense; f16 weights where the device has shader-f16);
//   ORT   — onnxruntime-web's WebGPU EP on a one-node graph: com.microsoft MatMulNBits (int4) or ONNX MatMul
//           (dense, W^T as a [K, N] initializer since MatMul multiplies x[M, K] by B[K, N]);
//   naive — one invocation per output: shaders/matmul-naive.wgsl through LinearKernel's `shader` option (as
//           bench/linear.ts), shaders/matmul-q4-naive.wgsl dispatched directly (its bindings and Dims differ
//           from matmul-q4.wgsl's, so LinearQ4Kernel cannot host it; as bench/kernels.ts). Both read f32 (scales,
//           weights): for q4f16 / f16 cases they get the same values widened to f32.
// Weight bytes: ORT's MatMulNBits B is our qWeight words' bytes as they are ([N, K/32, 16] u8: element k of row
// n is nibble k%8 of word n*K/8 + k/8, little-endian = byte n*K/2 + k/2, low nibble first); its scales are our
// scale buffer's bytes (f16 or f32); zero_points all 7 (ORT's default is 8, MLC's is 7). In f16 mode ORT's
// graph is f16 end to end (ONNX MatMul and MatMulNBits take x, scales and y in one type T), so x is rounded to
// f16 first and every side reads those same values (ours and naive as f32).
import naiveWgsl from '../../shaders/matmul-naive.wgsl?raw';
import naiveQ4Wgsl from '../../shaders/matmul-q4-naive.wgsl?raw';
import { f16BytesToF32 } from '../../src/checkpoint/dtype.ts';
import { createStorageBuffer, readBuffer, readF32, storageBufferFrom, uniformBufferFrom } from '../../src/gpu/buffers.ts';
import { LinearKernel, roundToF16, toF16Weights } from '../../src/gpu/kernels/linear.ts';
import { LinearQ4Kernel, q4ScaleData } from '../../src/gpu/kernels/linear-q4.ts';
import { MatvecKernel } from '../../src/gpu/kernels/matvec.ts';
import { isCpuDevice } from '../../src/gpu/device.ts';
import { linearPath } from '../../src/gpu/gpu-linear.ts';
import { computeProgram, type ComputeProgram } from '../../src/gpu/pipeline.ts';
import { firstRows } from '../../src/gpu/tensor.ts';
import { quantizeQ4 } from '../../src/quant/q4.ts';
import { mulberry32, randomF32 } from '../../src/util/seeded-random.ts';
import type { CaseKind } from './cases.ts';
import { matMulModel, matMulNBitsModel, OnnxType } from './onnx-model.ts';
import { OrtGraph, type Ort } from './ort-webgpu.ts';
import { naiveDispatch } from '../naive-dispatch.ts';

export interface Contender {
  label: 'ours' | 'ORT' | 'naive';
  /** What runs (kernel and storage). */
  detail: string;
  /** Builds what is not built yet (pipelines, sessions); timed as part of first use. */
  init(): Promise<void>;
  /** Records and submits one run (the caller waits on the queue). */
  run(): void | Promise<void>;
  /** y [M, N] as f32. */
  read(): Promise<Float32Array>;
  destroy(): Promise<void>;
}

export interface CaseShape {
  kind: CaseKind;
  M: number;
  K: number;
  N: number;
}

/** Our kernels and the naive programs, built once per process and kind (first use builds them). */
export class KernelCache {
  private readonly kernels = new Map<string, Promise<unknown>>();
  constructor(private readonly device: GPUDevice) {}

  get<T>(key: string, make: () => Promise<T>): Promise<T> {
    let k = this.kernels.get(key) as Promise<T> | undefined;
    if (!k) {
      k = make();
      this.kernels.set(key, k);
    }
    return k;
  }

  naiveQ4(): Promise<ComputeProgram> {
    return this.get('naive:q4', () =>
      computeProgram(this.device, { name: 'matmul-q4-naive.wgsl', code: naiveQ4Wgsl, bindings: ['uniform', 'read', 'read', 'read', 'storage'] }),
    );
  }

  naiveDense(): Promise<LinearKernel> {
    return this.get('naive:dense', () =>
      LinearKernel.create(this.device, {
        shader: { name: 'matmul-naive.wgsl', code: naiveWgsl, workgroupsFor: (m, n) => [Math.ceil(n / 16), Math.ceil(m / 16)] },
      }),
    );
  }
}

/** Builds the three contenders of one case. `f16`: q4f16 scales / f16 weights and an f16 ORT graph. */
export function makeContenders(device: GPUDevice, ort: Ort, cache: KernelCache, c: CaseShape, f16: boolean, seed = 7): Contender[] {
  const { M, K, N } = c;
  const rng = mulberry32(seed);
  let xF32 = randomF32(M * K, rng);
  if (f16) xF32 = roundToF16(xF32);
  const wF32 = randomF32(N * K, rng, 0.05);
  const own: GPUBuffer[] = [];
  const keep = (b: GPUBuffer) => (own.push(b), b);
  const x = keep(storageBufferFrom(device, xF32, 'peer x f32'));
  const xOrt = f16 ? keep(storageBufferFrom(device, toF16Weights(xF32), 'peer x f16')) : x;
  const yOurs = keep(createStorageBuffer(device, M * N * 4, 'peer y ours'));
  const yNaive = keep(createStorageBuffer(device, M * N * 4, 'peer y naive'));
  const yOrt = keep(createStorageBuffer(device, M * N * (f16 ? 2 : 4), 'peer y ORT'));
  const ortType = f16 ? OnnxType.FLOAT16 : OnnxType.FLOAT;
  const readOrt = async () => (f16 ? f16BytesToF32(new Uint8Array(await readBuffer(device, yOrt, M * N * 2))) : readF32(device, yOrt, M * N));
  let ortGraph: OrtGraph | null = null;
  const ortSide = (model: Uint8Array, detail: string): Contender => ({
    label: 'ORT',
    detail,
    init: async () => {
      ortGraph = await OrtGraph.create(ort, { model, x: xOrt, y: yOrt, M, K, N, dtype: f16 ? 'float16' : 'float32' });
    },
    run: () => ortGraph!.run(),
    read: readOrt,
    destroy: async () => {
      await ortGraph?.release();
    },
  });
  const done = async () => {
    for (const b of own) b.destroy();
  };

  if (c.kind === 'q4') {
    const scales = f16 ? 'f16' : 'f32';
    const q = quantizeQ4(wF32, N, K, { scaleDType: scales });
    const scaleData = q4ScaleData(q.qScale, scales);
    const qw = keep(storageBufferFrom(device, q.qWeight, 'peer qWeight'));
    const qs = keep(storageBufferFrom(device, scaleData, 'peer qScale'));
    const qsF32 = f16 ? keep(storageBufferFrom(device, q.qScale, 'peer qScale f32 (naive)')) : qs;
    const model = matMulNBitsModel(M, K, N, ortType, new Uint8Array(q.qWeight.buffer, q.qWeight.byteOffset, q.qWeight.byteLength), scaleData);
    const weights = f16 ? 'q4f16' : 'q4f32';
    const op = { x: firstRows(x, M, K), w: { name: 'w', buffer: qw, scales: qs, rows: N, cols: K }, bias: null, y: yOurs };
    let runOurs: () => void = () => {
      throw new Error('not initialised');
    };
    const decode = linearPath(weights, M, K, isCpuDevice(device)) === 'matvec';
    let naiveRun: () => void = runOurs;
    return [
      {
        label: 'ours',
        detail: decode ? `MatvecKernel ${weights}` : `LinearQ4Kernel ${weights}`,
        init: async () => {
          if (decode) {
            const k = await cache.get(`matvec:${weights}`, () => MatvecKernel.create(device, { weights }));
            runOurs = () => k.run(device, op);
          } else {
            const k = await cache.get(`linear-q4:${scales}`, () => LinearQ4Kernel.create(device, { scales }));
            runOurs = () => k.run(device, op);
          }
        },
        run: () => runOurs(),
        read: () => readF32(device, yOurs, M * N),
        destroy: done,
      },
      ortSide(model, `MatMulNBits bits=4 block=32, ${f16 ? 'f16' : 'f32'} x/scales/y, zero_points 7`),
      {
        label: 'naive',
        detail: 'matmul-q4-naive.wgsl (f32 scales)',
        init: async () => {
          const program = await cache.naiveQ4();
          const dims = keep(uniformBufferFrom(device, new Uint32Array([M, K, N, 0]), 'peer naive dims'));
          naiveRun = naiveDispatch(device, program, [dims, x, qw, qsF32, yNaive], M, N);
        },
        run: () => naiveRun(),
        read: () => readF32(device, yNaive, M * N),
        destroy: async () => {},
      },
    ];
  }

  // Dense: f16 weights where the device has shader-f16, else f32.
  const w = f16 ? toF16Weights(wF32) : wF32;
  const wValues = f16 ? roundToF16(wF32) : wF32;
  const wBuf = keep(storageBufferFrom(device, w, 'peer w'));
  const wNaive = f16 ? keep(storageBufferFrom(device, wValues, 'peer w f32 (naive)')) : wBuf;
  const wT = f16 ? new Uint16Array(K * N) : new Float32Array(K * N);
  for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) wT[k * N + n] = w[n * K + k]!;
  const model = matMulModel(M, K, N, ortType, wT);
  const weights = f16 ? 'f16' : 'f32';
  let ours: LinearKernel | null = null;
  let naive: LinearKernel | null = null;
  return [
    {
      label: 'ours',
      detail: `LinearKernel ${weights} weights`,
      init: async () => {
        ours = await cache.get(`linear:${weights}`, () => LinearKernel.create(device, { weights }));
      },
      run: () => ours!.run(device, { x: firstRows(x, M, K), w: { name: 'w', buffer: wBuf, rows: N, cols: K }, bias: null, y: yOurs }),
      read: () => readF32(device, yOurs, M * N),
      destroy: done,
    },
    ortSide(model, `MatMul ${f16 ? 'f16' : 'f32'} (x, W^T [K, N], y)`),
    {
      label: 'naive',
      detail: 'matmul-naive.wgsl (f32 weights)',
      init: async () => {
        naive = await cache.naiveDense();
      },
      run: () => naive!.run(device, { x: firstRows(x, M, K), w: { name: 'w', buffer: wNaive, rows: N, cols: K }, bias: null, y: yNaive }),
      read: () => readF32(device, yNaive, M * N),
      destroy: async () => {},
    },
  ];
}
