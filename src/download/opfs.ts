// The browser's Origin Private File System as the converter's OutputSink; walk() hands a stored model's files back.
// Chromium writes through a swap file and publishes it on close(), so a file is either absent or whole: a download
// cut off by a reload never leaves half a shard behind. Full storage becomes one clear sentence.
import type { OutputSink, OutputStream } from '../convert/sink.ts';

export class StorageFullError extends Error {
  constructor(what: string) {
    super(`The browser's storage for this site is full while writing ${what}: free space (delete cached models, or disk space) and try again.`);
    this.name = 'StorageFullError';
  }
}

const isQuota = (e: unknown) => e instanceof DOMException && e.name === 'QuotaExceededError';
const isMissing = (e: unknown) => e instanceof DOMException && (e.name === 'NotFoundError' || e.name === 'TypeMismatchError');

/** Chromium reports a write that the quota stops as QuotaExceededError or, from a writable stream, only as a
 * generic pipe error: then the storage estimate tells whether the storage is full. */
async function storageNearlyFull(): Promise<boolean> {
  const { usage = 0, quota = Infinity } = await navigator.storage.estimate().catch(() => ({}) as StorageEstimate);
  return quota - usage < 16 * 1024 * 1024;
}

async function quotaChecked<T>(what: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (e) {
    throw isQuota(e) || (await storageNearlyFull()) ? new StorageFullError(what) : e;
  }
}

function split(path: string): { dirs: string[]; name: string } {
  const parts = path.split('/').filter(Boolean);
  const name = parts.pop();
  if (!name) throw new Error(`empty path "${path}"`);
  return { dirs: parts, name };
}

export class OpfsFolder implements OutputSink {
  constructor(
    private readonly dir: FileSystemDirectoryHandle,
    readonly name: string,
  ) {}

  /** A folder under the origin's OPFS root ("models/abc"), created when missing. */
  static async open(path: string): Promise<OpfsFolder> {
    let dir = await navigator.storage.getDirectory();
    for (const part of path.split('/').filter(Boolean)) dir = await dir.getDirectoryHandle(part, { create: true });
    return new OpfsFolder(dir, path);
  }

  private async folder(dirs: string[], create: boolean): Promise<FileSystemDirectoryHandle | null> {
    let dir = this.dir;
    for (const d of dirs) {
      try {
        dir = await dir.getDirectoryHandle(d, { create });
      } catch (e) {
        if (isMissing(e)) return null;
        throw e;
      }
    }
    return dir;
  }

  private async fileHandle(path: string, create: boolean): Promise<FileSystemFileHandle | null> {
    const { dirs, name } = split(path);
    const dir = await this.folder(dirs, create);
    if (!dir) return null;
    try {
      return await dir.getFileHandle(name, { create });
    } catch (e) {
      if (isMissing(e)) return null;
      throw e;
    }
  }

  async file(path: string): Promise<File | null> {
    return (await (await this.fileHandle(path, false))?.getFile()) ?? null;
  }

  async writeFile(path: string, data: Uint8Array | string): Promise<void> {
    const out = await this.create(path);
    await out.write(typeof data === 'string' ? new TextEncoder().encode(data) : data);
    await out.close();
  }

  async create(path: string): Promise<OutputStream> {
    const what = `${this.name}/${path}`;
    const handle = (await this.fileHandle(path, true))!;
    const writable = await quotaChecked(what, () => handle.createWritable({ keepExistingData: false }));
    return {
      write: (bytes) => quotaChecked(what, () => writable.write(bytes as Uint8Array<ArrayBuffer>)),
      close: () => quotaChecked(what, () => writable.close()),
    };
  }

  async size(path: string): Promise<number | null> {
    return (await this.file(path))?.size ?? null;
  }

  async read(path: string, offset: number, length: number): Promise<Uint8Array> {
    const f = await this.file(path);
    if (!f) throw new Error(`${this.name}/${path} does not exist`);
    return new Uint8Array(await f.slice(offset, offset + length).arrayBuffer());
  }

  async readText(path: string): Promise<string | null> {
    return (await (await this.file(path))?.text()) ?? null;
  }

  async remove(path: string): Promise<void> {
    const { dirs, name } = split(path);
    const dir = await this.folder(dirs, false);
    await dir?.removeEntry(name).catch((e: unknown) => {
      if (!isMissing(e)) throw e;
    });
  }

  async list(path: string): Promise<string[]> {
    const dir = await this.folder(path.split('/').filter(Boolean), false);
    if (!dir) return [];
    const out: string[] = [];
    for await (const [name, handle] of dir.entries()) if (handle.kind === 'file') out.push(name);
    return out.sort();
  }

  /** Names of the folders directly inside `path`. */
  async folders(path = ''): Promise<string[]> {
    const dir = await this.folder(path.split('/').filter(Boolean), false);
    if (!dir) return [];
    const out: string[] = [];
    for await (const [name, handle] of dir.entries()) if (handle.kind === 'directory') out.push(name);
    return out.sort();
  }

  /** Every file below `path` (relative paths) with its size. */
  async walk(path = ''): Promise<[string, File][]> {
    const out: [string, File][] = [];
    const prefix = path ? `${path.replace(/\/$/, '')}/` : '';
    for (const f of await this.list(path)) out.push([prefix + f, (await this.file(prefix + f))!]);
    for (const d of await this.folders(path)) out.push(...(await this.walk(prefix + d)));
    return out;
  }

  async removeFolder(path: string): Promise<void> {
    const { dirs, name } = split(path);
    const dir = await this.folder(dirs, false);
    await dir?.removeEntry(name, { recursive: true }).catch((e: unknown) => {
      if (!isMissing(e)) throw e;
    });
  }
}
