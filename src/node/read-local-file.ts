// Reads a user-named file for the CLI, with the reason in words when it cannot (missing, a folder, no permission).
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';

/** The file's bytes and its base name; throws an Error "cannot read <name>: <why>". */
export async function readLocalFile(path: string): Promise<{ name: string; bytes: Uint8Array }> {
  const name = basename(path);
  try {
    return { name, bytes: await readFile(path) };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
    throw new Error(`cannot read ${name}: ${why}`);
  }
}
