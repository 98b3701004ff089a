import { describe, expect, it } from 'vitest';
import { BlobByteSource, MemoryByteSource } from './byte-source.ts';
import { readSafetensorsHeader, readTensorF32, readTensorRowBytes } from './safetensors.ts';
import { buildSafetensorsHeader, serializeSafetensors } from './safetensors-write.ts';

function headerFile(json: string, dataBytes = 0, lengthOverride?: bigint): Uint8Array {
  const j = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + j.byteLength + dataBytes);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(j.byteLength), true);
  out.set(j, 8);
  return out;
}

const sample = () =>
  serializeSafetensors(
    [
      { name: 'a', dtype: 'F32', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
      { name: 'b.half', dtype: 'F16', shape: [3], data: new Float32Array([0.5, -2, 65504]) },
      { name: 'c.bf', dtype: 'BF16', shape: [2], data: new Float32Array([1.5, -0.25]) },
      { name: 'ids', dtype: 'I32', shape: [2], data: new Int32Array([-7, 9]) },
    ],
    { format: 'pt' },
  );

describe('safetensors write + read', () => {
  it('round-trips F32/F16/BF16/I32 and pads the header to 8 bytes', async () => {
    const bytes = sample();
    const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(headerLen % 8).toBe(0);
    const f = await readSafetensorsHeader(new MemoryByteSource(bytes, 'x.safetensors'));
    expect(f.metadata).toEqual({ format: 'pt' });
    expect([...f.tensors.keys()]).toEqual(['a', 'b.half', 'c.bf', 'ids']);
    expect(f.tensors.get('b.half')).toMatchObject({ dtype: 'F16', shape: [3] });
    expect([...(await readTensorF32(f, 'a'))]).toEqual([1, 2, 3, 4, 5, 6]);
    expect([...(await readTensorF32(f, 'b.half'))]).toEqual([0.5, -2, 65504]);
    expect([...(await readTensorF32(f, 'c.bf'))]).toEqual([1.5, -0.25]);
    expect([...(await readTensorF32(f, 'ids'))]).toEqual([-7, 9]);
    const row1 = await readTensorRowBytes(f, 'a', 1, 1);
    expect([...new Float32Array(row1.buffer)]).toEqual([4, 5, 6]);
  });

  it('reads only the tensor byte range', async () => {
    const bytes = sample();
    const reads: Array<[number, number]> = [];
    const src = new MemoryByteSource(bytes, 'x.safetensors');
    const spy = { name: src.name, size: () => src.size(), read: (o: number, l: number) => (reads.push([o, l]), src.read(o, l)) };
    const f = await readSafetensorsHeader(spy);
    reads.length = 0;
    await readTensorF32(f, 'c.bf');
    const t = f.tensors.get('c.bf')!;
    expect(reads).toEqual([[t.begin, 4]]);
  });

  it('works through a Blob source', async () => {
    const blob = new Blob([sample()]);
    const f = await readSafetensorsHeader(new BlobByteSource(blob, 'blob.safetensors'));
    expect([...(await readTensorF32(f, 'a'))]).toEqual([1, 2, 3, 4, 5, 6]);
    await expect(new BlobByteSource(blob, 'blob.safetensors').read(blob.size - 2, 4)).rejects.toThrow(/past the end/);
  });

  it('layout offsets match the serialized bytes', () => {
    const layout = buildSafetensorsHeader([{ name: 'w', dtype: 'BF16', shape: [3, 5] }]);
    expect(layout.ranges[0]!.end - layout.ranges[0]!.begin).toBe(30);
    expect(layout.size).toBe(layout.header.byteLength + 30);
  });
});

describe('safetensors header validation', () => {
  const open = (bytes: Uint8Array) => readSafetensorsHeader(new MemoryByteSource(bytes, 'model-00002-of-00002.safetensors'));

  it('rejects a garbage header length', async () => {
    const bytes = new TextEncoder().encode('<!DOCTYPE html><html>not a safetensors file</html>');
    await expect(open(bytes)).rejects.toThrow(/^model-00002-of-00002\.safetensors: header length \d+ is implausible/);
  });

  it('rejects a header length past the end of the file', async () => {
    await expect(open(headerFile('{}', 0, 5000n))).rejects.toThrow(/model-00002-of-00002\.safetensors: header length 5000 runs past the end/);
  });

  it('rejects tiny files', async () => {
    await expect(open(new Uint8Array(3))).rejects.toThrow(/model-00002-of-00002\.safetensors: 3 bytes is too small/);
  });

  it('rejects invalid JSON and invalid UTF-8', async () => {
    await expect(open(headerFile('{"a": {"dtype": "F32",'))).rejects.toThrow(
      /model-00002-of-00002\.safetensors: the safetensors header is not valid JSON/,
    );
    const bad = headerFile('{"a":1}');
    bad[10] = 0xff;
    await expect(open(bad)).rejects.toThrow(/not valid UTF-8/);
    await expect(open(headerFile('[1, 2]'))).rejects.toThrow(/not a JSON object/);
  });

  it('rejects entries with bad dtype, shape or offsets', async () => {
    await expect(open(headerFile('{"w": {"dtype": "F17", "shape": [1], "data_offsets": [0, 4]}}', 4))).rejects.toThrow(
      /tensor "w": unknown dtype "F17"/,
    );
    await expect(open(headerFile('{"w": {"dtype": "F32", "data_offsets": [0, 4]}}', 4))).rejects.toThrow(
      /tensor "w": missing or invalid "shape"/,
    );
    await expect(open(headerFile('{"w": {"dtype": "F32", "shape": [2]}}', 8))).rejects.toThrow(
      /tensor "w": missing or invalid "data_offsets"/,
    );
    await expect(open(headerFile('{"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}}', 16))).rejects.toThrow(
      /tensor "w": data_offsets \[0, 12\] span 12 bytes but F32 \[2, 2\] needs 16/,
    );
    await expect(
      open(
        headerFile(
          '{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}',
          12,
        ),
      ),
    ).rejects.toThrow(/tensors "a" and "b" overlap/);
  });

  it('names the tensor that runs past the end of a truncated file', async () => {
    const full = sample();
    const f = await readSafetensorsHeader(new MemoryByteSource(full));
    const cut = full.subarray(0, f.tensors.get('c.bf')!.begin + 2);
    await expect(open(cut)).rejects.toThrow(
      new RegExp(
        `^model-00002-of-00002\\.safetensors: tensor "c\\.bf" ends at byte ${f.tensors.get('c.bf')!.end} but the file has ${cut.byteLength} bytes \\(truncated download\\?\\)`,
      ),
    );
  });

  it('allows __metadata__ and an empty tensor', async () => {
    const f = await open(headerFile('{"__metadata__": {"format": "pt"}, "e": {"dtype": "BF16", "shape": [0, 4], "data_offsets": [0, 0]}}'));
    expect(f.metadata).toEqual({ format: 'pt' });
    expect((await readTensorF32(f, 'e')).length).toBe(0);
  });
});
