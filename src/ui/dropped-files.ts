// What the user dropped on the page: loose files (images, videos), or a checkpoint folder. Folders come through
// the File and Directory Entries API (DataTransferItem.webkitGetAsEntry); a set of loose files that holds a
// config.json and .safetensors files counts as a checkpoint folder too (several files selected in a file manager).

/** The part of FileSystemEntry this module uses (a structural type, so tests can pass plain objects). */
export interface DropEntry {
  readonly name: string;
  readonly isFile: boolean;
  readonly isDirectory: boolean;
  file?(onFile: (f: File) => void, onError: (e: unknown) => void): void;
  createReader?(): { readEntries(onEntries: (entries: DropEntry[]) => void, onError: (e: unknown) => void): void };
}

export interface DroppedFolder {
  name: string;
  /** Path relative to the folder ("config.json", "sub/x.bin") -> file. */
  files: [string, File][];
}

export type Drop = { kind: 'folder'; folder: DroppedFolder } | { kind: 'files'; files: File[] };

function fileOf(entry: DropEntry): Promise<File> {
  return new Promise((resolve, reject) => entry.file!(resolve, reject));
}

/** Every entry of a directory: readEntries hands them out in batches (100 in Chromium) until an empty one. */
async function childrenOf(dir: DropEntry): Promise<DropEntry[]> {
  const reader = dir.createReader!();
  const all: DropEntry[] = [];
  for (;;) {
    const batch = await new Promise<DropEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) return all;
    all.push(...batch);
  }
}

/** Every file under a directory entry, with paths relative to it. */
export async function filesUnder(dir: DropEntry, prefix = ''): Promise<[string, File][]> {
  const out: [string, File][] = [];
  for (const child of await childrenOf(dir)) {
    const path = prefix + child.name;
    if (child.isDirectory) out.push(...(await filesUnder(child, `${path}/`)));
    else if (child.isFile) out.push([path, await fileOf(child)]);
  }
  return out;
}

function looksLikeCheckpoint(names: readonly string[]): boolean {
  return names.includes('config.json') && names.some((n) => n.endsWith('.safetensors'));
}

/**
 * Reads a drop. The DataTransfer must be read during the drop event (its items are gone afterwards), so this takes
 * the entries synchronously and resolves later.
 */
export function readDrop(dt: DataTransfer): Promise<Drop> {
  const entries = [...dt.items].filter((i) => i.kind === 'file').map((i) => i.webkitGetAsEntry() as DropEntry | null);
  const files = [...dt.files];
  return classifyDrop(entries, files);
}

export async function classifyDrop(entries: readonly (DropEntry | null)[], files: readonly File[]): Promise<Drop> {
  const dir = entries.find((e) => e?.isDirectory);
  if (dir) return { kind: 'folder', folder: { name: dir.name, files: await filesUnder(dir) } };
  if (looksLikeCheckpoint(files.map((f) => f.name))) return { kind: 'folder', folder: { name: 'dropped checkpoint', files: files.map((f) => [f.name, f]) } };
  return { kind: 'files', files: [...files] };
}
