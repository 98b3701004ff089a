// The engine worker's contract on a tiny checkpoint (text-only turns: Node has no createImageBitmap): an answer
// ends in a typed outcome, and the host re-opens a conversation it does not hold from the page's saved history.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTinyCheckpoint } from '../../scripts/tiny-checkpoint/generate.ts';
import { nodeGpu } from '../node/gpu.ts';
import type { AnswerOutcome, AskRequest } from './engine-api.ts';
import { EngineHost } from './engine-host.ts';

let dir: string;
let host: EngineHost;
const ask = (req: Partial<AskRequest>, onText: (delta: string) => void = () => undefined): Promise<AnswerOutcome> =>
  host.ask({ conversationId: 'a', question: 'Hello?', images: [], maxNewTokens: 4, sampling: { greedy: true }, ...req }, onText);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'llava-host-'));
  await makeTinyCheckpoint({ out: dir, seed: 3, imageSize: 56, clipHidden: 128, clipIntermediate: 256, clipHeads: 2, compressorSize: 2 });
  const files: [string, Blob][] = [];
  for (const name of await readdir(dir)) files.push([name, new Blob([await readFile(join(dir, name))])]);
  host = new EngineHost(nodeGpu());
  await host.load({ name: 'tiny', files }, 'f32', () => undefined);
});
afterAll(async () => {
  await host?.unload();
  await rm(dir, { recursive: true, force: true });
});

describe('EngineHost answers', () => {
  it('end as done, with the stats', async () => {
    const outcome = await ask({});
    expect(outcome.kind).toBe('done');
    expect(outcome.kind === 'done' && outcome.stats.tokens.length).toBeGreaterThan(0);
  });

  it('stream each token id as it is sampled (whitespace ones too): the same ids the stats end with', async () => {
    const ids: number[] = [];
    const outcome = await host.ask({ conversationId: 'ids', question: 'Hello?', images: [], maxNewTokens: 4, sampling: { greedy: true } }, () => undefined, (id) => ids.push(id));
    expect(outcome.kind).toBe('done');
    expect(ids).toEqual(outcome.kind === 'done' ? outcome.stats.tokens : []);
  });

  it('report the first token\'s highest logits when asked (topLogits): highest first, the greedy token on top', async () => {
    const outcome = await ask({ conversationId: 'logits', topLogits: 5 });
    expect(outcome.kind).toBe('done');
    const stats = outcome.kind === 'done' ? outcome.stats : null;
    const top = stats?.topLogits0 ?? [];
    expect(top).toHaveLength(5);
    expect(top[0]!.id).toBe(stats!.tokens[0]);
    for (let i = 1; i < top.length; i++) expect(top[i]!.logit).toBeLessThanOrEqual(top[i - 1]!.logit);
    const plain = await ask({ conversationId: 'no-logits' });
    expect(plain.kind === 'done' ? plain.stats.topLogits0 : 'not done').toBeUndefined();
  });

  it('end as stopped when stopped mid-answer, with why', async () => {
    const outcome = await ask({ conversationId: 'stop', maxNewTokens: 64 }, () => host.stop());
    expect(outcome).toMatchObject({ kind: 'stopped', reason: 'stopped by the user' });
  });

  it('end as failed with the reason instead of throwing', async () => {
    const outcome = await ask({ conversationId: 'bad', images: ['img999'] });
    expect(outcome).toEqual({ kind: 'failed', reason: expect.stringMatching(/image img999 is not encoded/) });
  });

  it('re-open a conversation the worker does not hold from the saved history', async () => {
    const fresh = await ask({ conversationId: 'fresh', question: 'And now?' });
    const history = [{ question: 'Hello?', answer: 'Hi there.', images: [] }];
    const resumed = await ask({ conversationId: 'resumed', question: 'And now?', history });
    const held = await ask({ conversationId: 'resumed', question: 'Again?', history: [] });
    if (fresh.kind !== 'done' || resumed.kind !== 'done' || held.kind !== 'done') throw new Error('not answered');
    expect(resumed.stats.promptIds.length).toBeGreaterThan(fresh.stats.promptIds.length);
    expect(held.stats.reusedRows).toBeGreaterThan(0); // held: the given history is not used again
  });

  it('undoLastTurn says whether the worker held the conversation', async () => {
    expect(await host.undoLastTurn('a')).toBe(true);
    expect(await host.undoLastTurn('never-seen')).toBe(false);
  });
});
