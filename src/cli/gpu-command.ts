// `gpu`: which adapter and device the engine gets on this machine (Dawn: the real GPU, SwiftShader or lavapipe),
// with the device's features, so a user (and the test script's per-adapter summary) can see what will run.
import { parseArgs } from 'node:util';
import { formatAdapterSummary } from '../gpu/device.ts';
import { createNodeGpu } from '../node/gpu.ts';

export const GPU_USAGE = `  gpu [--json] [--require <feature> …]
      Prints the adapter (identity, shader-f16, subgroups, limits) and the features the engine's device got.
      --require fails (exit 1) when the device lacks a feature, e.g. --require shader-f16.`;

export async function runGpu(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { json: { type: 'boolean', default: false }, require: { type: 'string', multiple: true } },
    strict: true,
  });
  const ctx = await createNodeGpu();
  try {
    const deviceFeatures = [...ctx.features].sort();
    if (values.json) console.log(JSON.stringify({ ...ctx.summary, deviceFeatures }));
    else console.log(`${formatAdapterSummary(ctx.summary)}\ndevice features: ${deviceFeatures.join(', ') || '-'}`);
    const missing = (values.require ?? []).filter((f) => !ctx.features.has(f));
    if (missing.length) throw new Error(`the GPU device lacks ${missing.join(', ')} (adapter: ${ctx.summary.vendor} / ${ctx.summary.architecture})`);
  } finally {
    ctx.device.destroy();
  }
}
