// `npm run convert -- <checkpoint dir> <out dir> [options]`: the model converter's Node shell. Every failure ends
// with one clear line on stderr and exit code 1; Ctrl-C stops cleanly and the same command resumes.
import { stat } from 'node:fs/promises';
import { convertCheckpoint, CONVERT_OUTPUTS, type ConvertOutput, type ConvertProgress } from '../convert/index.ts';
import { nodeCheckpointFiles } from '../node/file-source.ts';
import { NodeOutputDir } from '../node/output-dir.ts';

export const CONVERT_USAGE = `Usage: npm run convert -- <checkpoint dir> <out dir> [options]

Converts a Hugging Face LLaVA-Mini checkpoint into
  <out>/llm-q4f16_1/, <out>/llm-q4f32_1/   the LLM in MLC format (WebLLM, Llama-3.1-8B ctx4k_cs1k library)
  <out>/mm-f16/, <out>/mm-q4/              the CLIP layers that run, projector, compressor, pre-fusion (manifest.json)
  (<out>/llm-q0f16/, <out>/llm-q0f32/      the LLM unquantized: only with --only)
A run that was cut off resumes when started again with the same arguments.

  --clip DIR        openai/clip-vit-large-patch14-336 folder, when the checkpoint has no vision tower
  --only LIST       comma-separated subset of: ${CONVERT_OUTPUTS.join(', ')}
  --shard-mb N      shard size cap in MiB (default 32, as MLC)
  --quiet           no progress output
  --help            this text`;

interface Args {
  checkpoint: string;
  out: string;
  clip?: string;
  only?: ConvertOutput[];
  shardMb?: number;
  quiet: boolean;
}

function parseArgs(argv: readonly string[]): Args | 'help' {
  const positional: string[] = [];
  const a: Partial<Args> & { quiet: boolean } = { quiet: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--help' || arg === '-h') return 'help';
    else if (arg === '--clip') a.clip = value();
    else if (arg === '--quiet') a.quiet = true;
    else if (arg === '--only') {
      const list = value().split(',').map((s) => s.trim()).filter(Boolean);
      for (const o of list) if (!(CONVERT_OUTPUTS as readonly string[]).includes(o)) throw new Error(`--only: unknown output "${o}" (${CONVERT_OUTPUTS.join(', ')})`);
      a.only = list as ConvertOutput[];
    } else if (arg === '--shard-mb') {
      const v = Number(value());
      if (!(v > 0)) throw new Error(`--shard-mb must be a positive number`);
      a.shardMb = v;
    } else if (arg.startsWith('-')) throw new Error(`unknown option "${arg}" (see --help)`);
    else positional.push(arg);
  }
  if (positional.length !== 2) throw new Error(`expected <checkpoint dir> <out dir>, got ${positional.length} argument(s) (see --help)`);
  return { ...a, checkpoint: positional[0]!, out: positional[1]! };
}

async function requireDir(path: string, what: string): Promise<void> {
  const s = await stat(path).catch(() => null);
  if (!s) throw new Error(`${what} "${path}" does not exist`);
  if (!s.isDirectory()) throw new Error(`${what} "${path}" is not a folder`);
}

function progressPrinter(): (p: ConvertProgress) => void {
  const tty = process.stderr.isTTY;
  let lastLine = '';
  let lastPct = -1;
  return (p) => {
    const pct = p.bytesTotal > 0 ? Math.floor((100 * p.bytesDone) / p.bytesTotal) : 0;
    const line = `[${p.stage}] ${pct}% ${(p.bytesDone / 1e6).toFixed(1)}/${(p.bytesTotal / 1e6).toFixed(1)} MB, tensor ${p.tensorsDone}/${p.tensorsTotal}${p.tensor ? ` ${p.tensor}` : ''}`;
    if (tty) {
      if (line !== lastLine) process.stderr.write(`\r\x1b[2K${line}${p.stage === 'done' ? '\n' : ''}`);
    } else if (pct !== lastPct || p.stage === 'done' || p.stage === 'open') {
      process.stderr.write(line + '\n');
    }
    lastLine = line;
    lastPct = pct;
  };
}

export async function runConvert(argv: readonly string[]): Promise<number> {
  const controller = new AbortController();
  const onSigint = (): void => controller.abort(new Error('interrupted: run the same command again to resume'));
  process.once('SIGINT', onSigint);
  try {
    const args = parseArgs(argv);
    if (args === 'help') {
      console.log(CONVERT_USAGE);
      return 0;
    }
    await requireDir(args.checkpoint, 'checkpoint folder');
    if (args.clip) await requireDir(args.clip, '--clip folder');
    const summary = await convertCheckpoint(nodeCheckpointFiles(args.checkpoint), new NodeOutputDir(args.out), {
      ...(args.clip ? { clipFiles: nodeCheckpointFiles(args.clip) } : {}),
      clipOptionName: '--clip DIR',
      ...(args.only ? { outputs: args.only } : {}),
      ...(args.shardMb ? { shardCapBytes: Math.round(args.shardMb * (1 << 20)) } : {}),
      ...(args.quiet ? {} : { onProgress: progressPrinter() }),
      signal: controller.signal,
    });
    for (const o of summary.outputs) {
      console.log(`${args.out}/${o.dir}: ${o.tensors} tensors, ${o.shards} shards, ${(o.bytes / 1e6).toFixed(1)} MB`);
    }
    if (summary.resumedBytes > 0) console.log(`resumed: ${(summary.resumedBytes / 1e6).toFixed(1)} MB were already done`);
    return 0;
  } catch (err) {
    const e = controller.signal.aborted ? controller.signal.reason : err;
    const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    if (process.stderr.isTTY) process.stderr.write('\n'); // end a progress line
    console.error(`error: ${msg}`);
    return 1;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

process.exitCode = await runConvert(process.argv.slice(2));
