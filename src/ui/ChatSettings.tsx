// Generation settings (persisted with the model choice): system prompt, temperature (0 = greedy), top-p, max tokens.
import { DEFAULT_SYSTEM_PROMPT } from '../text/chat-template.ts';
import { useEngineStore } from './engine-store.ts';

export function ChatSettingsPanel() {
  const settings = useEngineStore((s) => s.settings);
  const setSettings = useEngineStore((s) => s.setSettings);
  const num = (v: string, min: number, max: number, fallback: number) => {
    const n = Number(v);
    return Number.isFinite(n) ? Math.min(max, Math.max(min, n)) : fallback;
  };
  return (
    <section className="settings" data-testid="chat-settings" aria-label="Generation settings">
      <label>
        System prompt
        <textarea className="input" rows={3} placeholder={DEFAULT_SYSTEM_PROMPT} value={settings.systemPrompt} onChange={(e) => setSettings({ systemPrompt: e.target.value })} />
      </label>
      <div className="row">
        <label>
          Temperature (0 = greedy){' '}
          <input className="input input-number" type="number" min={0} max={2} step={0.1} value={settings.temperature} onChange={(e) => setSettings({ temperature: num(e.target.value, 0, 2, 0) })} />
        </label>
        <label>
          Top-p{' '}
          <input className="input input-number" type="number" min={0.05} max={1} step={0.05} value={settings.topP} onChange={(e) => setSettings({ topP: num(e.target.value, 0.05, 1, 1) })} />
        </label>
        <label>
          Max new tokens{' '}
          <input className="input input-number" type="number" min={1} max={4096} step={1} value={settings.maxNewTokens} onChange={(e) => setSettings({ maxNewTokens: Math.round(num(e.target.value, 1, 4096, 512)) })} />
        </label>
        <label>
          Video frames at most{' '}
          <input className="input input-number" type="number" min={1} max={256} step={1} value={settings.maxVideoFrames} onChange={(e) => setSettings({ maxVideoFrames: Math.round(num(e.target.value, 1, 256, 16)) })} />
        </label>
      </div>
    </section>
  );
}
