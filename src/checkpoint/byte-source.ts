// Random-access byte sources for checkpoint files, and folders of them.
// Browser-safe: Blob/File and HTTP range requests here; the Node file source is src/node/file-source.ts.

/** A file that can be read at any offset without loading it whole. */
export interface ByteSource {
  /** Used in error messages (a file name or URL). */
  name: string;
  size(): Promise<number>;
  /** Exactly `length` bytes from `offset`, or a clear error. The result is a fresh array (byteOffset 0). */
  read(offset: number, length: number): Promise<Uint8Array<ArrayBuffer>>;
}

/** A checkpoint folder: files addressed by their relative path ("config.json", "model-00001-of-00002.safetensors"). */
export interface CheckpointFiles {
  /** A label for error messages (folder path, URL, dropped folder name). */
  name?: string;
  list?(): Promise<string[]>;
  exists(name: string): Promise<boolean>;
  open(name: string): ByteSource;
  readText(name: string): Promise<string>;
}

function checkRange(src: string, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new Error(`${src}: invalid read of ${length} bytes at offset ${offset}`);
  }
}

/** Throws a clear error when a read asked for more bytes than the file has. */
export function checkReadInBounds(name: string, offset: number, length: number, size: number): void {
  if (offset + length > size) {
    throw new Error(
      `${name}: read of bytes ${offset}..${offset + length} is past the end of the file (${size} bytes; truncated download?)`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Blob / File

export class BlobByteSource implements ByteSource {
  constructor(
    readonly blob: Blob,
    readonly name: string = blob instanceof File ? blob.name : 'blob',
  ) {}

  async size(): Promise<number> {
    return this.blob.size;
  }

  async read(offset: number, length: number): Promise<Uint8Array<ArrayBuffer>> {
    checkRange(this.name, offset, length);
    checkReadInBounds(this.name, offset, length, this.blob.size);
    const buf = await this.blob.slice(offset, offset + length).arrayBuffer();
    if (buf.byteLength !== length) {
      throw new Error(`${this.name}: read ${buf.byteLength} bytes at offset ${offset}, expected ${length}`);
    }
    return new Uint8Array(buf);
  }
}

/** A folder given as relative path -> File/Blob (for example from a dropped directory or an <input webkitdirectory>). */
export class BlobCheckpointFiles implements CheckpointFiles {
  readonly files: Map<string, Blob>;
  constructor(
    files: Map<string, Blob> | Iterable<[string, Blob]>,
    readonly name: string = 'selected folder',
  ) {
    this.files = new Map(files);
  }

  async list(): Promise<string[]> {
    return [...this.files.keys()].sort();
  }

  async exists(name: string): Promise<boolean> {
    return this.files.has(name);
  }

  open(name: string): ByteSource {
    const blob = this.files.get(name);
    if (!blob) throw new Error(`${this.name}: missing file "${name}"`);
    return new BlobByteSource(blob, name);
  }

  async readText(name: string): Promise<string> {
    const blob = this.files.get(name);
    if (!blob) throw new Error(`${this.name}: missing file "${name}"`);
    return blob.text();
  }
}

/**
 * Files from a directory picker or drop (File.webkitRelativePath "folder/sub/x.json") -> relative path -> File,
 * with the common top folder stripped so that "config.json" is at the root. Plain Files (no relative path) keep their name.
 */
export function blobFilesFromFileList(files: Iterable<File>, name?: string): BlobCheckpointFiles {
  const list = [...files];
  const paths = list.map((f) => (f.webkitRelativePath || f.name).replace(/\\/g, '/'));
  const firsts = new Set(paths.map((p) => (p.includes('/') ? p.slice(0, p.indexOf('/')) : '')));
  const strip = firsts.size === 1 && !firsts.has('') ? [...firsts][0]! + '/' : '';
  const map = new Map<string, Blob>();
  list.forEach((f, i) => map.set(paths[i]!.slice(strip.length), f));
  return new BlobCheckpointFiles(map, name ?? (strip ? strip.slice(0, -1) : 'selected files'));
}

// ---------------------------------------------------------------------------------------------
// HTTP range requests

export interface UrlSourceOptions {
  /** Defaults to globalThis.fetch. */
  fetch?: typeof fetch;
  /** Extra request headers (for example Authorization). */
  headers?: Record<string, string>;
  /**
   * The folder's file names when an index of the folder was read (the demo model's demo-model.json): exists()
   * answers from it, so optional files are never probed with requests that 404 (and log errors in a browser).
   */
  files?: readonly string[];
}

/** "bytes 0-0/1234" -> {start, end, total}; total is NaN for "*". */
function parseContentRange(v: string | null): { start: number; end: number; total: number } | null {
  if (!v) return null;
  const m = /^\s*bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)\s*$/i.exec(v);
  if (!m) return null;
  return {
    start: m[1] !== undefined ? Number(m[1]) : NaN,
    end: m[2] !== undefined ? Number(m[2]) : NaN,
    total: m[3] === '*' ? NaN : Number(m[3]),
  };
}

async function discardBody(res: Response): Promise<void> {
  try {
    await res.body?.cancel();
  } catch {
    // ignore
  }
}

/** A file on an HTTP server that honours `Range: bytes=a-b` (any static server, S3, Hugging Face resolve URLs). */
export class UrlByteSource implements ByteSource {
  private sizePromise: Promise<number> | null = null;
  private readonly fetchFn: typeof fetch;

  constructor(
    readonly url: string,
    private readonly options: UrlSourceOptions = {},
    readonly name: string = url,
  ) {
    this.fetchFn = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  private request(range: string | null, method = 'GET'): Promise<Response> {
    const headers: Record<string, string> = { ...this.options.headers };
    if (range) headers['Range'] = range;
    return this.fetchFn(this.url, { method, headers }).catch((e: unknown) => {
      throw new Error(`${this.name}: request failed: ${e instanceof Error ? e.message : String(e)}`);
    });
  }

  size(): Promise<number> {
    this.sizePromise ??= this.fetchSize();
    this.sizePromise.catch(() => (this.sizePromise = null));
    return this.sizePromise;
  }

  private async fetchSize(): Promise<number> {
    // A one-byte range request both gives the total size and proves that ranges work.
    const res = await this.request('bytes=0-0');
    const cr = parseContentRange(res.headers.get('Content-Range'));
    if (res.status === 206) {
      await discardBody(res);
      if (!cr || !Number.isFinite(cr.total)) {
        throw new Error(`${this.name}: the server answered a range request without a usable Content-Range header`);
      }
      return cr.total;
    }
    if (res.status === 416) {
      await discardBody(res);
      if (cr && Number.isFinite(cr.total)) return cr.total; // "bytes */0": an empty file
      throw new Error(`${this.name}: HTTP 416 (range not satisfiable) for bytes=0-0`);
    }
    await discardBody(res);
    if (res.status === 200) {
      throw new Error(
        `${this.name}: the server ignores HTTP Range requests (answered 200 instead of 206); ` +
          'checkpoints are read piecewise and need a server that supports ranges',
      );
    }
    throw new Error(`${this.name}: HTTP ${res.status} ${res.statusText}`.trimEnd());
  }

  async read(offset: number, length: number): Promise<Uint8Array<ArrayBuffer>> {
    checkRange(this.name, offset, length);
    if (length === 0) return new Uint8Array(0);
    const last = offset + length - 1;
    const res = await this.request(`bytes=${offset}-${last}`);
    if (res.status === 200) {
      await discardBody(res);
      throw new Error(
        `${this.name}: the server ignores HTTP Range requests (answered 200 instead of 206 for bytes=${offset}-${last})`,
      );
    }
    if (res.status === 416) {
      await discardBody(res);
      const total = parseContentRange(res.headers.get('Content-Range'))?.total;
      throw new Error(
        `${this.name}: bytes ${offset}..${offset + length} are past the end of the file` +
          (total !== undefined && Number.isFinite(total) ? ` (${total} bytes; truncated upload?)` : ''),
      );
    }
    if (res.status !== 206) {
      await discardBody(res);
      throw new Error(`${this.name}: HTTP ${res.status} ${res.statusText} for bytes=${offset}-${last}`.trimEnd());
    }
    const cr = parseContentRange(res.headers.get('Content-Range'));
    if (cr && (cr.start !== offset || cr.end > last)) {
      await discardBody(res);
      throw new Error(
        `${this.name}: asked for bytes ${offset}-${last}, the server sent ${res.headers.get('Content-Range')}`,
      );
    }
    if (cr && Number.isFinite(cr.total) && offset + length > cr.total) {
      await discardBody(res);
      checkReadInBounds(this.name, offset, length, cr.total);
    }
    const buf = new Uint8Array(await res.arrayBuffer());
    if (buf.byteLength !== length) {
      const total = cr?.total;
      throw new Error(
        `${this.name}: short response: asked for ${length} bytes at offset ${offset}, got ${buf.byteLength}` +
          (total !== undefined && Number.isFinite(total) ? ` (the file has ${total} bytes)` : ''),
      );
    }
    return buf;
  }
}

/** A checkpoint folder on an HTTP server: `${baseUrl}/${name}`. */
export class UrlCheckpointFiles implements CheckpointFiles {
  readonly baseUrl: string;
  private readonly fetchFn: typeof fetch;

  constructor(
    baseUrl: string,
    private readonly options: UrlSourceOptions = {},
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.fetchFn = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  get name(): string {
    return this.baseUrl;
  }

  url(name: string): string {
    return `${this.baseUrl}/${name.split('/').map(encodeURIComponent).join('/')}`;
  }

  async exists(name: string): Promise<boolean> {
    if (this.options.files) return this.options.files.includes(name);
    const url = this.url(name);
    let res: Response;
    try {
      res = await this.fetchFn(url, { method: 'HEAD', headers: { ...this.options.headers } });
    } catch (e) {
      throw new Error(`${url}: request failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    await discardBody(res);
    if (res.ok) return true;
    if (res.status === 404 || res.status === 410) return false;
    if (res.status === 405 || res.status === 501) {
      // HEAD not allowed: try a one-byte range instead
      const r = await this.fetchFn(url, { headers: { ...this.options.headers, Range: 'bytes=0-0' } });
      await discardBody(r);
      if (r.ok || r.status === 416) return true;
      if (r.status === 404 || r.status === 410) return false;
      throw new Error(`${url}: HTTP ${r.status} ${r.statusText}`.trimEnd());
    }
    throw new Error(`${url}: HTTP ${res.status} ${res.statusText}`.trimEnd());
  }

  open(name: string): ByteSource {
    return new UrlByteSource(this.url(name), this.options, this.url(name));
  }

  async readText(name: string): Promise<string> {
    const url = this.url(name);
    let res: Response;
    try {
      res = await this.fetchFn(url, { headers: { ...this.options.headers } });
    } catch (e) {
      throw new Error(`${url}: request failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (!res.ok) {
      await discardBody(res);
      throw new Error(`${url}: HTTP ${res.status} ${res.statusText}`.trimEnd());
    }
    return res.text();
  }
}

// ---------------------------------------------------------------------------------------------
// In-memory (tests, --dump round trips)

export class MemoryByteSource implements ByteSource {
  constructor(
    readonly bytes: Uint8Array,
    readonly name: string = 'memory',
  ) {}
  async size(): Promise<number> {
    return this.bytes.byteLength;
  }
  async read(offset: number, length: number): Promise<Uint8Array<ArrayBuffer>> {
    checkRange(this.name, offset, length);
    checkReadInBounds(this.name, offset, length, this.bytes.byteLength);
    return this.bytes.slice(offset, offset + length);
  }
}
