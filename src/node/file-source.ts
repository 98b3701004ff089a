// Node-only byte sources: a checkpoint file read at an offset (never whole), and a checkpoint folder on disk.
import { open, readFile, readdir, stat } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { checkReadInBounds, type ByteSource, type CheckpointFiles } from '../checkpoint/byte-source.ts';

export class FileByteSource implements ByteSource {
  constructor(
    readonly path: string,
    readonly name: string = path,
  ) {}

  async size(): Promise<number> {
    return (await stat(this.path)).size;
  }

  async read(offset: number, length: number): Promise<Uint8Array<ArrayBuffer>> {
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
      throw new Error(`${this.name}: invalid read of ${length} bytes at offset ${offset}`);
    }
    const out = new Uint8Array(length);
    if (length === 0) return out;
    // Open per read: no file handle outlives a call (no leaks, no GC-closed handles).
    const fh = await open(this.path, 'r');
    try {
      let done = 0;
      while (done < length) {
        // fs reads are capped near 2 GiB per call
        const chunk = Math.min(length - done, 1 << 30);
        const { bytesRead } = await fh.read(out, done, chunk, offset + done);
        if (bytesRead === 0) {
          const size = (await fh.stat()).size;
          checkReadInBounds(this.name, offset, length, size);
          throw new Error(`${this.name}: file ended at byte ${offset + done} while reading ${length} bytes at ${offset}`);
        }
        done += bytesRead;
      }
    } finally {
      await fh.close();
    }
    return out;
  }
}

/** `name` (a relative path) resolved inside `dir`; a name escaping it ("../x") is refused. */
export function pathInside(dir: string, name: string, what: string): string {
  const p = resolve(dir, name);
  const rel = relative(dir, p);
  if (rel === '' || rel.startsWith('..') || resolve(dir, rel) !== p) {
    throw new Error(`${dir}: file name "${name}" points outside ${what}`);
  }
  return p;
}

/** A checkpoint folder on disk. Names are relative paths inside `dir`; escaping it ("../x") is refused. */
export class NodeCheckpointFiles implements CheckpointFiles {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = resolve(dir);
  }

  get name(): string {
    return this.dir;
  }

  path(name: string): string {
    return pathInside(this.dir, name, 'the checkpoint folder');
  }

  async list(): Promise<string[]> {
    const out: string[] = [];
    const walk = async (d: string): Promise<void> => {
      for (const e of await readdir(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.isFile()) out.push(relative(this.dir, p).split(sep).join('/'));
      }
    };
    await walk(this.dir);
    return out.sort();
  }

  async exists(name: string): Promise<boolean> {
    try {
      return (await stat(this.path(name))).isFile();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return false;
      throw e;
    }
  }

  open(name: string): ByteSource {
    return new FileByteSource(this.path(name), name);
  }

  async readText(name: string): Promise<string> {
    try {
      return await readFile(this.path(name), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${this.dir}: missing file "${name}"`);
      throw e;
    }
  }
}

export function nodeCheckpointFiles(dir: string): NodeCheckpointFiles {
  return new NodeCheckpointFiles(dir);
}
