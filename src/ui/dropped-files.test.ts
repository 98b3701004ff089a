import { describe, expect, it } from 'vitest';
import { classifyDrop, type DropEntry } from './dropped-files.ts';

const file = (name: string, text = name): DropEntry => ({
  name,
  isFile: true,
  isDirectory: false,
  file: (ok) => ok(new File([text], name)),
});

/** A directory whose reader hands out entries `batch` at a time, as Chromium does (100). */
const dir = (name: string, children: DropEntry[], batch = 2): DropEntry => ({
  name,
  isFile: false,
  isDirectory: true,
  createReader: () => {
    let at = 0;
    return {
      readEntries: (ok) => {
        const out = children.slice(at, at + batch);
        at += out.length;
        setTimeout(() => ok(out), 0);
      },
    };
  },
});

describe('dropped files', () => {
  it('walks a dropped folder through every readEntries batch and into subfolders', async () => {
    const folder = dir('llava-mini', [file('config.json', '{}'), file('model-00001.safetensors'), file('model-00002.safetensors'), dir('extra', [file('a.txt'), file('b.txt'), file('c.txt')]), file('tokenizer.json')]);
    const drop = await classifyDrop([folder], []);
    expect(drop.kind).toBe('folder');
    if (drop.kind !== 'folder') return;
    expect(drop.folder.name).toBe('llava-mini');
    expect(drop.folder.files.map(([p]) => p)).toEqual(['config.json', 'model-00001.safetensors', 'model-00002.safetensors', 'extra/a.txt', 'extra/b.txt', 'extra/c.txt', 'tokenizer.json']);
    expect(await drop.folder.files[0]![1].text()).toBe('{}');
  });

  it('takes loose checkpoint files (config.json + safetensors) as a folder, anything else as attachments', async () => {
    const ckpt = [new File(['{}'], 'config.json'), new File(['x'], 'model.safetensors'), new File(['{}'], 'tokenizer.json')];
    const asFolder = await classifyDrop([file('config.json'), null, null], ckpt);
    expect(asFolder.kind === 'folder' && asFolder.folder.files.map(([p]) => p)).toEqual(['config.json', 'model.safetensors', 'tokenizer.json']);
    const images = [new File(['p'], 'photo.png'), new File(['j'], 'config.json')];
    expect(await classifyDrop([file('photo.png'), file('config.json')], images)).toEqual({ kind: 'files', files: images });
  });
});
