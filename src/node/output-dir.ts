// The converter's output sink on disk: a folder; whole files are replaced atomically (write + rename).
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { OutputSink, OutputStream } from '../convert/sink.ts';
import { pathInside } from './file-source.ts';

export class NodeOutputDir implements OutputSink {
  readonly dir: string;
  /** For messages: the folder path. */
  readonly name: string;
  constructor(dir: string) {
    this.dir = resolve(dir);
    this.name = this.dir;
  }

  private path(name: string): string {
    return pathInside(this.dir, name, 'the output folder');
  }

  async writeFile(name: string, data: Uint8Array | string): Promise<void> {
    const p = this.path(name);
    await mkdir(dirname(p), { recursive: true });
    const tmp = `${p}.partial`;
    await writeFile(tmp, data);
    await rename(tmp, p);
  }

  async create(name: string): Promise<OutputStream> {
    const p = this.path(name);
    await mkdir(dirname(p), { recursive: true });
    const fh: FileHandle = await open(p, 'w');
    return {
      async write(bytes: Uint8Array): Promise<void> {
        let done = 0;
        while (done < bytes.byteLength) {
          const { bytesWritten } = await fh.write(bytes, done, bytes.byteLength - done);
          done += bytesWritten;
        }
      },
      async close(): Promise<void> {
        await fh.close();
      },
    };
  }

  async size(name: string): Promise<number | null> {
    try {
      const s = await stat(this.path(name));
      return s.isFile() ? s.size : null;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }

  async read(name: string, offset: number, length: number): Promise<Uint8Array> {
    const fh = await open(this.path(name), 'r');
    try {
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(out, done, length - done, offset + done);
        if (bytesRead === 0) throw new Error(`${name}: file ended at byte ${offset + done} while reading ${length} bytes at ${offset}`);
        done += bytesRead;
      }
      return out;
    } finally {
      await fh.close();
    }
  }

  async readText(name: string): Promise<string | null> {
    try {
      return await readFile(this.path(name), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }

  async list(name: string): Promise<string[]> {
    try {
      return (await readdir(this.path(name), { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name).sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
  }

  async remove(name: string): Promise<void> {
    await rm(this.path(name), { force: true });
  }
}
