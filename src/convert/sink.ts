// Where the converter writes: an injected output folder (Node: src/node/output-dir.ts; a browser worker could
// back it with OPFS). Paths are relative, "/"-separated ("llm-q4f16_1/params_shard_0.bin").

/** A file being written front to back. */
export interface OutputStream {
  write(bytes: Uint8Array): Promise<void>;
  /** Flushes and closes; the file then holds exactly the bytes written. */
  close(): Promise<void>;
}

export interface OutputSink {
  /** A label for messages (the folder path). */
  readonly name: string;
  /** Replaces the file with these bytes as one step (a reader sees the old or the new file, never half). */
  writeFile(path: string, data: Uint8Array | string): Promise<void>;
  /** A new, empty file (any old one is replaced) to append to. */
  create(path: string): Promise<OutputStream>;
  /** The file's size, or null when it does not exist. */
  size(path: string): Promise<number | null>;
  /** `length` bytes from `offset` of an existing file. */
  read(path: string, offset: number, length: number): Promise<Uint8Array>;
  /** The file as UTF-8 text, or null when it does not exist. */
  readText(path: string): Promise<string | null>;
  /** Deletes the file if it exists. */
  remove(path: string): Promise<void>;
  /** Names of the files directly inside a folder ([] when it does not exist). */
  list(dir: string): Promise<string[]>;
}
