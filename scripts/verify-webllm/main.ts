// `npm run verify:webllm -- --lib <Llama-3.2-1B-Instruct-q0f32-ctx4k_cs1k-webgpu.wasm> [--dir DIR] [--tokens N]`:
// WebLLM 0.2.79 on a real compiled Llama library vs our native runtime (run.ts). Every line also goes to
// <dir>/verify-<time>.log. Exit code 0 when both engines' greedy tokens agree on every turn.
import { appendFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifyWebLlm } from './run.ts';

const USAGE = `Usage: npm run verify:webllm -- --lib PATH [--dir DIR] [--tokens N]

  --lib PATH    Llama-3.2-1B-Instruct-q0f32-ctx4k_cs1k-webgpu.wasm from github.com/mlc-ai/binary-mlc-llm-libs,
                web-llm-models/v0_2_48/ (the ABI of the pinned @mlc-ai/web-llm 0.2.79)
  --dir DIR     work folder: model (about 8 GB), browser profile, logs (default ${join(tmpdir(), 'llava-mini-verify-webllm')})
  --tokens N    tokens per answer (default 8)
  --port N      port of the local server of the model and the library (default 4191)
  --app-port N  port of the app (default 4192); keep both to reuse an install (storage belongs to the origin)
  --tiny        a tiny LLM instead (a minute): WebLLM must refuse it (the library does not fit), native answers
Tens of minutes on SwiftShader and about 11 GB of RAM.`;

function parse(argv: string[]): { lib: string; dir: string; tokens: number; tiny: boolean; port: number; appPort: number } | null {
  const out = { lib: '', dir: join(tmpdir(), 'llava-mini-verify-webllm'), tokens: 8, tiny: false, port: 4191, appPort: 4192 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${a} needs a value`);
      return x;
    };
    if (a === '--help' || a === '-h') return null;
    else if (a === '--lib') out.lib = v();
    else if (a === '--dir') out.dir = v();
    else if (a === '--tokens') out.tokens = Number(v());
    else if (a === '--tiny') out.tiny = true;
    else if (a === '--port') out.port = Number(v());
    else if (a === '--app-port') out.appPort = Number(v());
    else throw new Error(`unknown argument "${a}"`);
  }
  if (!out.lib) throw new Error('--lib PATH is required');
  if (!Number.isInteger(out.tokens) || out.tokens < 2) throw new Error('--tokens must be an integer >= 2');
  return out;
}

try {
  const args = parse(process.argv.slice(2));
  if (!args) {
    console.log(USAGE);
    process.exit(0);
  }
  mkdirSync(args.dir, { recursive: true });
  const logFile = join(args.dir, `verify-${new Date().toISOString().replace(/[:.]/g, '-')}.log`);
  const t0 = Date.now();
  const log = (line: string) => {
    const text = `[${((Date.now() - t0) / 1000).toFixed(0).padStart(5)} s] ${line}`;
    console.log(text);
    appendFileSync(logFile, text + '\n');
  };
  log(`log: ${logFile}`);
  const result = await verifyWebLlm({ lib: args.lib, dir: args.dir, maxNewTokens: args.tokens, dataPort: args.port, appPort: args.appPort, log, model: args.tiny ? 'tiny' : 'llama-3.2-1b' });
  if (args.tiny) process.exit(result.webllmError?.includes('compiled for other shapes') ? 0 : 1);
  const bad = result.agreement.filter((a) => a.same < a.compared && !a.explained);
  const ties = result.agreement.filter((a) => a.explained);
  if (ties.length) log(`turn(s) ${ties.map((a) => a.turn).join(', ')}: the first tokens differ on a logits0 tie (both engines' logits0 agree; see above)`);
  log(bad.length ? `DIVERGED on turn(s) ${bad.map((a) => a.turn).join(', ')}` : 'greedy tokens agree on every turn (or differ only on an explained tie)');
  process.exit(bad.length ? 1 : 0);
} catch (e) {
  console.error(`verify:webllm: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exit(2);
}
