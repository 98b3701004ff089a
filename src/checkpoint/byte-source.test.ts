import { afterEach, describe, expect, it } from 'vitest';
import { BlobByteSource, BlobCheckpointFiles, blobFilesFromFileList, UrlByteSource, UrlCheckpointFiles } from './byte-source.ts';
import { startTestServer, type TestServer } from '../../scripts/tiny-checkpoint/test-http-server.ts';

const data = new Uint8Array(1000).map((_, i) => (i * 7) & 0xff);

let server: TestServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
});

describe('UrlByteSource', () => {
  it('reads ranges from a server that honours Range', async () => {
    server = await startTestServer(new Map([['dir/w.bin', data]]));
    const src = new UrlByteSource(`${server.url}/dir/w.bin`);
    expect(await src.size()).toBe(1000);
    expect([...(await src.read(10, 5))]).toEqual([...data.subarray(10, 15)]);
    expect((await src.read(0, 0)).byteLength).toBe(0);
    expect([...(await src.read(995, 5))]).toEqual([...data.subarray(995)]);
    expect(server.requests.filter((r) => r.range).map((r) => r.range)).toEqual(['bytes=0-0', 'bytes=10-14', 'bytes=995-999']);
    await expect(src.read(998, 5)).rejects.toThrow(/past the end of the file \(1000 bytes/);
  });

  it('gives a clear error when the server ignores Range', async () => {
    server = await startTestServer(new Map([['w.bin', data]]), 'ignore');
    const src = new UrlByteSource(`${server.url}/w.bin`);
    await expect(src.size()).rejects.toThrow(/w\.bin: the server ignores HTTP Range requests/);
    await expect(src.read(10, 5)).rejects.toThrow(/the server ignores HTTP Range requests \(answered 200 instead of 206 for bytes=10-14\)/);
  });

  it('gives a clear error on a short response', async () => {
    server = await startTestServer(new Map([['w.bin', data]]), 'short');
    const src = new UrlByteSource(`${server.url}/w.bin`);
    await expect(src.read(100, 50)).rejects.toThrow(/short response: asked for 50 bytes at offset 100, got 49/);
  });

  it('reports HTTP errors', async () => {
    server = await startTestServer(new Map());
    await expect(new UrlByteSource(`${server.url}/nope.bin`).size()).rejects.toThrow(/nope\.bin: HTTP 404/);
  });
});

describe('UrlCheckpointFiles', () => {
  it('checks existence, reads text and opens range sources', async () => {
    server = await startTestServer(
      new Map([
        ['m/config.json', new TextEncoder().encode('{"x": 1}')],
        ['m/w.bin', data],
      ]),
    );
    const files = new UrlCheckpointFiles(`${server.url}/m/`);
    expect(await files.exists('config.json')).toBe(true);
    expect(await files.exists('missing.json')).toBe(false);
    expect(JSON.parse(await files.readText('config.json'))).toEqual({ x: 1 });
    await expect(files.readText('missing.json')).rejects.toThrow(/missing\.json: HTTP 404/);
    expect([...(await files.open('w.bin').read(1, 2))]).toEqual([7, 14]);
  });

  it('with the folder listing from an index, answers exists() without a request', async () => {
    const asked: string[] = [];
    const fetchSpy: typeof fetch = (input, init) => {
      asked.push(`${init?.method ?? 'GET'} ${String(input)}`);
      return Promise.resolve(new Response('{"x": 1}'));
    };
    const files = new UrlCheckpointFiles('https://example.test/m/', { fetch: fetchSpy, files: ['config.json', 'w.bin'] });
    expect(await files.exists('config.json')).toBe(true);
    expect(await files.exists('model.safetensors.index.json')).toBe(false);
    expect(asked).toEqual([]);
    expect(JSON.parse(await files.readText('config.json'))).toEqual({ x: 1 });
    expect(asked).toEqual(['GET https://example.test/m/config.json']);
  });
});

describe('Blob sources', () => {
  it('reads slices of a Blob', async () => {
    const src = new BlobByteSource(new Blob([data]), 'w.bin');
    expect(await src.size()).toBe(1000);
    expect([...(await src.read(3, 3))]).toEqual([21, 28, 35]);
    await expect(src.read(999, 2)).rejects.toThrow(/w\.bin: read of bytes 999\.\.1001 is past the end of the file \(1000 bytes/);
  });

  it('maps a dropped folder, stripping the common top folder', async () => {
    const f = (path: string, text: string) => {
      const file = new File([text], path.split('/').pop()!);
      Object.defineProperty(file, 'webkitRelativePath', { value: path });
      return file;
    };
    const files = blobFilesFromFileList([f('tiny/config.json', '{}'), f('tiny/sub/a.txt', 'hi')]);
    expect(files.name).toBe('tiny');
    expect(await files.list()).toEqual(['config.json', 'sub/a.txt']);
    expect(await files.readText('sub/a.txt')).toBe('hi');
    const plain = new BlobCheckpointFiles(new Map([['config.json', new Blob(['{}'])]]));
    expect(await plain.exists('config.json')).toBe(true);
    expect(await plain.exists('x')).toBe(false);
    expect(() => plain.open('x')).toThrow(/missing file "x"/);
  });
});
