// CLI: npm run make-tiny-checkpoint -- --out DIR [flags]   (see --help)
import { pathToFileURL } from 'node:url';
import { makeTinyCheckpoint, TINY_DEFAULTS, type TinyCheckpointOptions } from './tiny-checkpoint/generate.ts';

type Opts = Partial<Omit<TinyCheckpointOptions, 'out'>> & { out?: string };

const NUMERIC: Record<string, keyof TinyCheckpointOptions> = {
  '--image-size': 'imageSize',
  '--patch-size': 'patchSize',
  '--clip-hidden': 'clipHidden',
  '--clip-intermediate': 'clipIntermediate',
  '--clip-layers': 'clipLayers',
  '--clip-heads': 'clipHeads',
  '--hidden': 'hidden',
  '--intermediate': 'intermediate',
  '--layers': 'layers',
  '--heads': 'heads',
  '--kv-heads': 'kvHeads',
  '--head-dim': 'headDim',
  '--vocab': 'vocab',
  '--compressor-size': 'compressorSize',
  '--prefusion-layers': 'prefusionLayers',
  '--seed': 'seed',
  '--rope-factor': 'ropeScalingFactor',
  '--shards': 'shards',
  '--vision-select-layer': 'visionSelectLayer',
};

export const USAGE = `Usage: npm run make-tiny-checkpoint -- --out DIR [flags]

Writes a tiny LLaVA-Mini checkpoint in the real Hugging Face layout (config.json, safetensors with the real
tensor names, tokenizer.json / tokenizer_config.json of Llama-3, generation_config.json) with seeded random
weights. Same flags and seed -> byte-identical files.

  --out DIR                 output folder (created; old model*.safetensors* files in it are replaced)
  --image-size N            CLIP image size                    (default ${TINY_DEFAULTS.imageSize})
  --patch-size N            CLIP patch size                    (default ${TINY_DEFAULTS.patchSize}; 336/14 -> 576 tokens)
  --clip-hidden N           CLIP width = mm_hidden_size        (default ${TINY_DEFAULTS.clipHidden}; multiple of 128)
  --clip-intermediate N     CLIP MLP width                     (default ${TINY_DEFAULTS.clipIntermediate})
  --clip-layers N           CLIP encoder layers                (default ${TINY_DEFAULTS.clipLayers})
  --clip-heads N            CLIP attention heads               (default ${TINY_DEFAULTS.clipHeads})
  --hidden N                LLM hidden size                    (default ${TINY_DEFAULTS.hidden})
  --intermediate N          LLM MLP width                      (default ${TINY_DEFAULTS.intermediate})
  --layers N                LLM layers                         (default ${TINY_DEFAULTS.layers})
  --heads N                 LLM attention heads                (default ${TINY_DEFAULTS.heads})
  --kv-heads N              LLM key/value heads                (default ${TINY_DEFAULTS.kvHeads})
  --head-dim N              LLM head width                     (default hidden / heads)
  --vocab N                 vocabulary size                    (default ${TINY_DEFAULTS.vocab}, the real tokenizer)
  --compressor-size N       C: the compressor emits C*C tokens (default ${TINY_DEFAULTS.compressorSize})
  --prefusion-layers N      modality pre-fusion layers         (default ${TINY_DEFAULTS.prefusionLayers})
  --vision-select-layer N   mm_vision_select_layer             (default ${TINY_DEFAULTS.visionSelectLayer})
  --projector TYPE          mlp2x_gelu | linear                (default ${TINY_DEFAULTS.projector})
  --image-aspect-ratio S    square | pad                       (default ${TINY_DEFAULTS.imageAspectRatio})
  --dtype T                 f32 | f16 | bf16: LLM, projector, compressor, pre-fusion (default ${TINY_DEFAULTS.dtype})
  --vision-dtype T          f32 | f16 | bf16: CLIP tower       (default ${TINY_DEFAULTS.visionDtype})
  --shards N                N > 1: model-0000K-of-0000N.safetensors + model.safetensors.index.json (default 1)
  --seed N                  random seed                        (default ${TINY_DEFAULTS.seed})
  --tie-word-embeddings     no lm_head.weight (tie_word_embeddings true)
  --rope-factor N           llama3 rope scaling factor          (default 8; Llama-3.2: 32)
  --token-embedding-std X   std of embed_tokens (and a tied head) (default ${TINY_DEFAULTS.tokenEmbeddingStd}; 0.02 for large tied LLMs)
  --no-vision-tower         leave the CLIP tower out of the weights (it must then come from a CLIP folder)
  --help                    this text
`;

/** Parse argv (without node and script) into generator options; throws on unknown or malformed flags. */
export function parseArgs(argv: readonly string[]): Opts & { help?: boolean } {
  const opts: Opts & { help?: boolean } = {};
  const rec = opts as Record<string, unknown>;
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]!;
    let value: string | undefined;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const next = (): string => {
      if (value !== undefined) return value;
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--help' || arg === '-h') opts.help = true;
    else if (arg === '--out') opts.out = next();
    else if (arg === '--tie-word-embeddings') opts.tieWordEmbeddings = true;
    else if (arg === '--no-vision-tower') opts.visionTower = false;
    else if (arg === '--dtype' || arg === '--vision-dtype') {
      const v = next();
      if (v !== 'f32' && v !== 'f16' && v !== 'bf16') throw new Error(`${arg} must be f32, f16 or bf16, got "${v}"`);
      opts[arg === '--dtype' ? 'dtype' : 'visionDtype'] = v;
    } else if (arg === '--projector') {
      const v = next();
      if (v !== 'mlp2x_gelu' && v !== 'linear') throw new Error(`--projector must be mlp2x_gelu or linear, got "${v}"`);
      opts.projector = v;
    } else if (arg === '--image-aspect-ratio') opts.imageAspectRatio = next();
    else if (arg === '--token-embedding-std') {
      const v = next();
      if (!/^\d*\.?\d+(e-?\d+)?$/i.test(v) || !(Number(v) > 0)) throw new Error(`--token-embedding-std must be a positive number, got "${v}"`);
      opts.tokenEmbeddingStd = Number(v);
    }
    else if (Object.hasOwn(NUMERIC, arg)) {
      const v = next();
      if (!/^-?\d+$/.test(v)) throw new Error(`${arg} must be an integer, got "${v}"`);
      rec[NUMERIC[arg]!] = Number(v);
    } else throw new Error(`unknown argument "${argv[i]}" (see --help)`);
  }
  return opts;
}

export async function main(argv: readonly string[]): Promise<number> {
  let opts: ReturnType<typeof parseArgs>;
  try {
    opts = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`make-tiny-checkpoint: ${(e as Error).message}\n`);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!opts.out) {
    process.stderr.write(`make-tiny-checkpoint: --out DIR is required\n\n${USAGE}`);
    return 2;
  }
  const { help: _help, ...rest } = opts;
  try {
    const t0 = performance.now();
    const s = await makeTinyCheckpoint({ ...rest, out: opts.out });
    const mb = (s.totalBytes / 1e6).toFixed(1);
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    process.stdout.write(`wrote ${s.dir}: ${s.totalBytes} bytes (${mb} MB), ${s.tensorCount} tensors, ${s.files.length} files in ${secs} s\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`make-tiny-checkpoint: ${(e as Error).message}\n`);
    return 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
