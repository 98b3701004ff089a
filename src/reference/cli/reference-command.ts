// `reference`: image(s) + question -> greedy tokens on the CPU reference model (the oracle for the GPU engine).
// The oracle's own driver: cli/main.ts loads it only when this command runs (its usage text lives there).
import { parseArgs } from 'node:util';
import { decodeImageFile } from '../../node/image-file.ts';
import { generateReference } from '../pipeline.ts';
import { preprocessImage } from '../preprocess.ts';
import { encodeImagePrompt } from '../../text/prompt.ts';
import { StreamingDetokenizer } from '../../text/stop.ts';
import { loadModelDir } from '../../cli/load-model.ts';

export async function runReference(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      image: { type: 'string', multiple: true },
      prompt: { type: 'string' },
      system: { type: 'string' },
      'max-new-tokens': { type: 'string', default: '512' },
      json: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (!values.model) throw new Error('--model <checkpoint dir> is required');
  if (!values.image?.length) throw new Error('--image <file> is required');
  if (values.prompt === undefined) throw new Error('--prompt <text> is required');
  const maxNewTokens = Number(values['max-new-tokens']);
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) throw new Error('--max-new-tokens must be a positive integer');

  const started = performance.now();
  const { checkpoint, text } = await loadModelDir(values.model);
  const { tokenizer, stopIds } = text;
  const { config } = checkpoint;
  const images = await Promise.all(values.image.map((path) => decodeImageFile(path)));
  const pixelValues = images.map((img) =>
    preprocessImage(img, { size: config.vision.imageSize, aspectRatio: config.imageAspectRatio }),
  );
  const prompt = encodeImagePrompt({
    tokenizer,
    tokenizerConfig: checkpoint.tokenizerConfigJson,
    question: values.prompt,
    systemPrompt: values.system,
    imageCount: images.length,
  });
  const result = await generateReference({
    weights: checkpoint,
    pixelValues,
    promptIds: prompt.ids,
    maxNewTokens,
    stopIds,
  });
  const detok = new StreamingDetokenizer(tokenizer, { stopIds });
  detok.push(result.tokens);
  detok.finish();
  const seconds = (performance.now() - started) / 1000;

  if (values.json) {
    console.log(JSON.stringify({ tokens: result.tokens, text: detok.text, stopped: result.stopped, promptIds: prompt.ids, seconds }));
  } else {
    console.log(detok.text);
    console.error(`${result.tokens.length} tokens (${result.stopped}) in ${seconds.toFixed(1)} s: ${result.tokens.join(' ')}`);
  }
}
