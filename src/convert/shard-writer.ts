// Writes planned shard files front to back as the jobs produce their outputs, hashes them on the way, and keeps
// a journal of the completed ones so that a run cut off half way resumes where it stopped.
//
// Jobs run in parameter order and every shard's records are a subsequence of that order, so each shard file is
// written strictly append-only (at most two are open at once: the one being filled and an out-of-band one).
import { md5 } from '@noble/hashes/legacy.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import type { OutputSink, OutputStream } from './sink.ts';
import type { ShardPlan, ShardRecord } from '../format/tensor-cache.ts';

type Hash = ReturnType<typeof md5.create>;

export const JOURNAL_FILE = 'convert-journal.json';
const JOURNAL_FORMAT = 'llava-mini-convert-journal';

export interface JournalShard {
  nbytes: number;
  md5: string;
  /** Present for shards whose section wants sha256 (the pack). */
  sha256?: string;
  records?: Record<string, string>;
}

export interface Journal {
  format: typeof JOURNAL_FORMAT;
  version: 1;
  /** What was being converted, with which options: a journal of another input is ignored. */
  fingerprint: string;
  /** Completed shard files by output path. */
  shards: Record<string, JournalShard>;
}

export function newJournal(fingerprint: string): Journal {
  return { format: JOURNAL_FORMAT, version: 1, fingerprint, shards: {} };
}

/** Streaming md5 / sha256 of a file in the sink. */
export async function hashFile(sink: OutputSink, path: string, size: number): Promise<{ md5: string; sha256: string }> {
  const m = md5.create();
  const s = sha256.create();
  const chunk = 8 << 20;
  for (let off = 0; off < size; off += chunk) {
    const b = await sink.read(path, off, Math.min(chunk, size - off));
    m.update(b);
    s.update(b);
  }
  return { md5: bytesToHex(m.digest()), sha256: bytesToHex(s.digest()) };
}

/**
 * The journal of a previous run of the same conversion, keeping only the shards whose files still have the
 * recorded size and md5 (a shard that fails the check is written again).
 */
export async function loadJournal(sink: OutputSink, fingerprint: string, onCheck?: (path: string) => void): Promise<Journal> {
  const text = await sink.readText(JOURNAL_FILE);
  const fresh = newJournal(fingerprint);
  if (text === null) return fresh;
  let old: Journal;
  try {
    old = JSON.parse(text) as Journal;
  } catch {
    return fresh;
  }
  if (old?.format !== JOURNAL_FORMAT || old.version !== 1 || old.fingerprint !== fingerprint || typeof old.shards !== 'object') return fresh;
  for (const [path, rec] of Object.entries(old.shards)) {
    onCheck?.(path);
    const size = await sink.size(path);
    if (size === rec.nbytes && (await hashFile(sink, path, size)).md5 === rec.md5) fresh.shards[path] = rec;
  }
  return fresh;
}

interface OpenShard {
  stream: OutputStream;
  written: number;
  md5: Hash;
  sha256: Hash | null;
  records: Record<string, string>;
}

/** The shards of one output folder. */
export class ShardSetWriter {
  private readonly where = new Map<string, { shard: number; rec: ShardRecord }>();
  private readonly open = new Map<number, OpenShard>();
  private readonly recWritten = new Map<string, { n: number; sha256: Hash | null }>();
  /** Bytes written to shards not complete yet (for progress). */
  inFlightBytes = 0;

  constructor(
    private readonly sink: OutputSink,
    /** Folder inside the sink ("llm-q4f16_1"). */
    readonly dir: string,
    readonly shards: readonly ShardPlan[],
    private readonly journal: Journal,
    /** Also sha256 per file and per record (the pack's manifest wants them). */
    private readonly withSha256: boolean,
    private readonly onShardDone: () => Promise<void>,
  ) {
    shards.forEach((s, shard) => s.records.forEach((rec) => this.where.set(rec.name, { shard, rec })));
  }

  path(shard: ShardPlan): string {
    return `${this.dir}/${shard.dataPath}`;
  }

  isDone(shard: number): boolean {
    return Object.hasOwn(this.journal.shards, this.path(this.shards[shard]!));
  }

  /** Whether any of these records still has to be written. */
  needs(names: readonly string[]): boolean {
    return names.some((n) => !this.isDone(this.locate(n).shard));
  }

  doneBytes(): number {
    return this.shards.reduce((a, s, i) => a + (this.isDone(i) ? s.nbytes : 0), 0);
  }

  allDone(): boolean {
    return this.shards.every((_, i) => this.isDone(i));
  }

  /** The journal's record of a completed shard. */
  result(shard: ShardPlan): JournalShard {
    const r = this.journal.shards[this.path(shard)];
    if (!r) throw new Error(`${this.path(shard)} is not complete`);
    return r;
  }

  private locate(name: string): { shard: number; rec: ShardRecord } {
    const w = this.where.get(name);
    if (!w) throw new Error(`internal: output "${name}" is not in the shard plan of ${this.dir}`);
    return w;
  }

  /** The next bytes of record `name` (records are written front to back). */
  async write(name: string, bytes: Uint8Array): Promise<void> {
    const { shard, rec } = this.locate(name);
    if (this.isDone(shard)) return; // written by an earlier run
    const plan = this.shards[shard]!;
    let st = this.open.get(shard);
    if (!st) {
      if (rec.byteOffset !== 0 || (this.recWritten.get(name)?.n ?? 0) !== 0) {
        throw new Error(`internal: ${this.path(plan)} would start at "${name}" byte ${rec.byteOffset}`);
      }
      st = { stream: await this.sink.create(this.path(plan)), written: 0, md5: md5.create(), sha256: this.withSha256 ? sha256.create() : null, records: {} };
      this.open.set(shard, st);
    }
    let rw = this.recWritten.get(name);
    if (!rw) {
      rw = { n: 0, sha256: this.withSha256 ? sha256.create() : null };
      this.recWritten.set(name, rw);
    }
    if (st.written !== rec.byteOffset + rw.n) {
      throw new Error(`internal: ${this.path(plan)}: "${name}" written out of order (at ${st.written}, expected ${rec.byteOffset + rw.n})`);
    }
    if (rw.n + bytes.byteLength > rec.nbytes) throw new Error(`internal: "${name}" gets more than its ${rec.nbytes} bytes`);
    await st.stream.write(bytes);
    st.md5.update(bytes);
    st.sha256?.update(bytes);
    rw.sha256?.update(bytes);
    st.written += bytes.byteLength;
    rw.n += bytes.byteLength;
    this.inFlightBytes += bytes.byteLength;
    if (rw.n === rec.nbytes && rw.sha256) st.records[name] = bytesToHex(rw.sha256.digest());
    if (st.written === plan.nbytes) {
      await st.stream.close();
      this.open.delete(shard);
      this.inFlightBytes -= st.written;
      const done: JournalShard = { nbytes: plan.nbytes, md5: bytesToHex(st.md5.digest()) };
      if (st.sha256) {
        done.sha256 = bytesToHex(st.sha256.digest());
        done.records = st.records;
      }
      this.journal.shards[this.path(plan)] = done;
      await this.onShardDone();
    }
  }

  /** Closes files left half written (an abort or error); they are rewritten on the next run. */
  async closeOpen(): Promise<void> {
    for (const st of this.open.values()) await st.stream.close().catch(() => undefined);
    this.open.clear();
  }
}
