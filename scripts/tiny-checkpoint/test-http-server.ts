// Test helper (Node only, used by src/checkpoint/*.test.ts): a tiny static HTTP server on 127.0.0.1 with Range support,
// plus misbehaving modes. Not part of the browser bundle.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type RangeMode = 'honour' | 'ignore' | 'short';

export interface TestServer {
  url: string;
  requests: Array<{ method: string; path: string; range: string | undefined }>;
  close(): Promise<void>;
}

/** A request the server answers badly on purpose: 'drop' sends half the body, then cuts the connection. */
export type Fault = 'drop' | null;

/** Serve `files` (path -> bytes) at http://127.0.0.1:PORT/PATH. */
export async function startTestServer(
  files: Map<string, Uint8Array> | ((path: string) => Promise<Uint8Array | null>),
  mode: RangeMode = 'honour',
  fault: (req: { method: string; path: string; range: string | undefined }) => Fault = () => null,
  listenPort = 0,
): Promise<TestServer> {
  const lookup = typeof files === 'function' ? files : async (p: string) => files.get(p) ?? null;
  const requests: TestServer['requests'] = [];
  const server: Server = createServer((req, res) => {
    void (async () => {
      const path = decodeURIComponent((req.url ?? '/').split('?')[0]!.replace(/^\/+/, ''));
      const range = req.headers.range;
      requests.push({ method: req.method ?? 'GET', path, range });
      // Cross-origin range reads, as a page on another origin makes them (the Hugging Face hub allows them too).
      res.setHeader('Access-Control-Allow-Origin', '*');
      res.setHeader('Access-Control-Expose-Headers', 'Content-Range, Content-Length, Accept-Ranges');
      if (req.method === 'OPTIONS') {
        res.writeHead(204, { 'Access-Control-Allow-Headers': 'Range', 'Access-Control-Allow-Methods': 'GET, HEAD' });
        res.end();
        return;
      }
      const body = await lookup(path);
      if (!body) {
        res.writeHead(404, { 'Content-Type': 'text/plain' });
        res.end('not found');
        return;
      }
      const size = body.byteLength;
      const m = range ? /^bytes=(\d+)-(\d*)$/.exec(range) : null;
      if (!m || mode === 'ignore') {
        res.writeHead(200, { 'Content-Length': String(size), 'Accept-Ranges': mode === 'ignore' ? 'none' : 'bytes' });
        res.end(req.method === 'HEAD' ? undefined : body);
        return;
      }
      const start = Number(m[1]);
      const end = Math.min(m[2] ? Number(m[2]) : size - 1, size - 1);
      if (start >= size) {
        res.writeHead(416, { 'Content-Range': `bytes */${size}` });
        res.end();
        return;
      }
      let part = body.subarray(start, end + 1);
      if (mode === 'short' && part.byteLength > 1) part = part.subarray(0, part.byteLength - 1);
      res.writeHead(206, {
        'Content-Range': `bytes ${start}-${end}/${size}`,
        'Content-Length': String(part.byteLength),
      });
      if (req.method !== 'HEAD' && fault({ method: req.method ?? 'GET', path, range }) === 'drop') {
        res.write(part.subarray(0, part.byteLength >> 1), () => res.destroy());
        return;
      }
      res.end(req.method === 'HEAD' ? undefined : part);
    })().catch((e: unknown) => {
      res.writeHead(500);
      res.end(String(e));
    });
  });
  await new Promise<void>((resolve) => server.listen(listenPort, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((e) => (e ? reject(e) : resolve()));
      }),
  };
}
