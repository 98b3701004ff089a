// `npm run cli -- <command> …`: a thin Node shell over the engine core. Every failure ends with one clear
// line on stderr and a non-zero exit.
import { GENERATE_USAGE, runGenerate } from './generate-command.ts';
import { GPU_USAGE, runGpu } from './gpu-command.ts';

// The `reference` command is the oracle's own driver (src/reference/cli/): loaded only when it runs, so the GPU
// commands never load the reference; its usage is here for --help.
const REFERENCE_USAGE = `  reference --model <checkpoint dir> --image <png|jpg|webp|gif|bmp> [--image …] --prompt <text>
            [--max-new-tokens N (512)] [--system <text>] [--json]
      Runs the CPU reference model (f32, slow, exact) with greedy decoding.`;
const runReference = async (argv: string[]) => (await import('../reference/cli/reference-command.ts')).runReference(argv);

const COMMANDS: Record<string, { run: (argv: string[]) => Promise<void>; usage: string }> = {
  generate: { run: runGenerate, usage: GENERATE_USAGE },
  reference: { run: runReference, usage: REFERENCE_USAGE },
  gpu: { run: runGpu, usage: GPU_USAGE },
};

const USAGE = `Usage: npm run cli -- <command> [options]\n\nCommands:\n${Object.values(COMMANDS)
  .map((c) => c.usage)
  .join('\n\n')}`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    console.log(USAGE);
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`error: unknown command "${name}"\n\n${USAGE}`);
    return 2;
  }
  try {
    await command.run(rest);
    return 0;
  } catch (err) {
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
