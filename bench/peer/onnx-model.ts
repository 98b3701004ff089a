// A minimal ONNX ModelProto writer for the peer bench: single-node graphs (ONNX `MatMul`, `com.microsoft`
// `MatMulNBits`) with their weights as initializers, encoded by hand in protobuf's wire format (no
// dependency). Field numbers are onnx.proto's (onnx/onnx.proto3, IR version 9); only the fields we write:
//   ModelProto      1 ir_version, 2 producer_name, 7 graph, 8 opset_import
//   OperatorSetId   1 domain, 2 version
//   GraphProto      1 node, 2 name, 5 initializer, 11 input, 12 output
//   NodeProto       1 input, 2 output, 3 name, 4 op_type, 5 attribute, 7 domain
//   AttributeProto  1 name, 3 i, 20 type (INT = 2)
//   TensorProto     1 dims, 2 data_type, 8 name, 9 raw_data (little-endian, what raw_data always is)
//   ValueInfoProto  1 name, 2 type;  TypeProto 1 tensor_type;  TypeProto.Tensor 1 elem_type, 2 shape
//   TensorShapeProto 1 dim;  Dimension 1 dim_value
// The decoder (`decodeMessage`) reads any message back as field lists, for the writer's own test.

/** ONNX TensorProto.DataType values we use. */
export const OnnxType = { FLOAT: 1, UINT8: 2, FLOAT16: 10 } as const;
export type OnnxElemType = (typeof OnnxType)[keyof typeof OnnxType];

/** Protobuf wire types. */
const VARINT = 0;
const LEN = 2;

class Writer {
  private readonly parts: Uint8Array[] = [];
  private size = 0;

  private push(bytes: Uint8Array): void {
    this.parts.push(bytes);
    this.size += bytes.length;
  }

  private varint(v: number | bigint): void {
    let n = BigInt.asUintN(64, BigInt(v));
    const out: number[] = [];
    do {
      let b = Number(n & 0x7fn);
      n >>= 7n;
      if (n) b |= 0x80;
      out.push(b);
    } while (n);
    this.push(Uint8Array.from(out));
  }

  private tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  int(field: number, v: number | bigint): this {
    this.tag(field, VARINT);
    this.varint(v);
    return this;
  }

  bytes(field: number, b: Uint8Array): this {
    this.tag(field, LEN);
    this.varint(b.length);
    this.push(b);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, m: Writer): this {
    return this.bytes(field, m.finish());
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

export interface OnnxTensor {
  name: string;
  type: OnnxElemType;
  dims: readonly number[];
  /** The raw little-endian bytes (for an initializer). */
  data: ArrayBufferView;
}

export interface OnnxValue {
  name: string;
  type: OnnxElemType;
  dims: readonly number[];
}

export interface OnnxNode {
  opType: string;
  domain?: string;
  inputs: readonly string[];
  outputs: readonly string[];
  /** Integer attributes. */
  attributes?: Record<string, number>;
}

export interface OnnxGraph {
  node: OnnxNode;
  inputs: readonly OnnxValue[];
  outputs: readonly OnnxValue[];
  initializers: readonly OnnxTensor[];
}

const IR_VERSION = 9;
const ONNX_OPSET = 21;
const MS_OPSET = 1;

function valueInfo(v: OnnxValue): Writer {
  const shape = new Writer();
  for (const d of v.dims) shape.message(1, new Writer().int(1, d));
  const tensorType = new Writer().int(1, v.type).message(2, shape);
  return new Writer().string(1, v.name).message(2, new Writer().message(1, tensorType));
}

function tensor(t: OnnxTensor): Writer {
  const w = new Writer();
  for (const d of t.dims) w.int(1, d);
  return w.int(2, t.type).string(8, t.name).bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
}

function node(n: OnnxNode): Writer {
  const w = new Writer();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, `${n.opType}_0`).string(4, n.opType);
  for (const [name, v] of Object.entries(n.attributes ?? {})) w.message(5, new Writer().string(1, name).int(3, v).int(20, 2));
  if (n.domain) w.string(7, n.domain);
  return w;
}

/** The serialized ModelProto of a one-node graph (opsets: ai.onnx 21, com.microsoft 1). */
export function encodeModel(g: OnnxGraph): Uint8Array {
  const graph = new Writer().message(1, node(g.node)).string(2, 'peer');
  for (const t of g.initializers) graph.message(5, tensor(t));
  for (const v of g.inputs) graph.message(11, valueInfo(v));
  for (const v of g.outputs) graph.message(12, valueInfo(v));
  const model = new Writer().int(1, IR_VERSION).string(2, 'llava-mini-web bench/peer').message(7, graph);
  model.message(8, new Writer().string(1, '').int(2, ONNX_OPSET));
  if (g.node.domain) model.message(8, new Writer().string(1, g.node.domain).int(2, MS_OPSET));
  return model.finish();
}

/** Elements of an ONNX elem type -> its bytes. */
const ELEM_BYTES: Record<OnnxElemType, number> = { [OnnxType.FLOAT]: 4, [OnnxType.UINT8]: 1, [OnnxType.FLOAT16]: 2 };

function checkBytes(t: OnnxTensor): void {
  const n = t.dims.reduce((a, b) => a * b, 1);
  if (n * ELEM_BYTES[t.type] !== t.data.byteLength) {
    throw new Error(`onnx-model: initializer ${t.name} [${t.dims.join(', ')}] needs ${n * ELEM_BYTES[t.type]} bytes, got ${t.data.byteLength}`);
  }
}

/**
 * y[M, N] = x[M, K] · W[K, N] with ONNX `MatMul`: W is W_hf^T (the caller transposes our [N, K] rows) as an
 * initializer. `type` FLOAT or FLOAT16 for all three tensors (ONNX MatMul takes one type: an f16 model runs x and
 * y in f16 too).
 */
export function matMulModel(M: number, K: number, N: number, type: OnnxElemType, wKN: ArrayBufferView): Uint8Array {
  const w: OnnxTensor = { name: 'W', type, dims: [K, N], data: wKN };
  checkBytes(w);
  return encodeModel({
    node: { opType: 'MatMul', inputs: ['x', 'W'], outputs: ['y'] },
    inputs: [{ name: 'x', type, dims: [M, K] }],
    outputs: [{ name: 'y', type, dims: [M, N] }],
    initializers: [w],
  });
}

/** MatMulNBits' block size and bits here: MLC's int4 groups of 32. */
export const NBITS_BLOCK = 32;

/**
 * y[M, N] = x[M, K] · deq(B)^T with `com.microsoft` `MatMulNBits` (bits 4, block_size 32): B uint8
 * [N, K/32, 16] (two 4-bit values a byte, the lower index in the low nibble), scales [N * K/32] of `type`
 * (FLOAT or FLOAT16, which is also x's and y's type), zero_points uint8 [N * ceil(K/32 / 2)] (two a byte, low
 * nibble first). deq = (q - zp) * scale; ORT's default zero point is 8, MLC's is 7, so `zeroPoint` defaults to 7
 * and is always written.
 */
export function matMulNBitsModel(
  M: number,
  K: number,
  N: number,
  type: OnnxElemType,
  b: Uint8Array,
  scales: ArrayBufferView,
  zeroPoint = 7,
): Uint8Array {
  if (K % NBITS_BLOCK !== 0) throw new Error(`matMulNBitsModel: K = ${K} is not a multiple of ${NBITS_BLOCK}`);
  const blocks = K / NBITS_BLOCK;
  const zpBytesPerRow = Math.ceil(blocks / 2);
  const zp = new Uint8Array(N * zpBytesPerRow);
  for (let n = 0; n < N; n++) {
    for (let j = 0; j < blocks; j++) zp[n * zpBytesPerRow + (j >> 1)]! |= zeroPoint << (4 * (j & 1));
  }
  const inits: OnnxTensor[] = [
    { name: 'B', type: OnnxType.UINT8, dims: [N, blocks, NBITS_BLOCK / 2], data: b },
    { name: 'scales', type, dims: [N * blocks], data: scales },
    { name: 'zero_points', type: OnnxType.UINT8, dims: [N * zpBytesPerRow], data: zp },
  ];
  for (const t of inits) checkBytes(t);
  return encodeModel({
    node: {
      opType: 'MatMulNBits',
      domain: 'com.microsoft',
      inputs: ['x', 'B', 'scales', 'zero_points'],
      outputs: ['y'],
      attributes: { K, N, bits: 4, block_size: NBITS_BLOCK },
    },
    inputs: [{ name: 'x', type, dims: [M, K] }],
    outputs: [{ name: 'y', type, dims: [M, N] }],
    initializers: inits,
  });
}

/** One decoded protobuf field: a varint (as bigint) or the bytes of a length-delimited field. */
export type DecodedField = { field: number; varint: bigint } | { field: number; bytes: Uint8Array };

/** Decodes one message level into its fields in order (varint and length-delimited wire types only). */
export function decodeMessage(buf: Uint8Array): DecodedField[] {
  const out: DecodedField[] = [];
  let o = 0;
  const varint = (): bigint => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      if (o >= buf.length) throw new Error('decodeMessage: truncated varint');
      const b = buf[o++]!;
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
      shift += 7n;
    }
  };
  while (o < buf.length) {
    const key = Number(varint());
    const field = key >>> 3;
    const wire = key & 7;
    if (wire === VARINT) out.push({ field, varint: varint() });
    else if (wire === LEN) {
      const len = Number(varint());
      if (o + len > buf.length) throw new Error(`decodeMessage: field ${field} runs past the end`);
      out.push({ field, bytes: buf.subarray(o, o + len) });
      o += len;
    } else throw new Error(`decodeMessage: wire type ${wire} (field ${field}) not written by this writer`);
  }
  return out;
}
