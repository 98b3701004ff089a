import { useEffect } from 'react';
import { Chat } from './Chat.tsx';
import { Diagnostics } from './Diagnostics.tsx';
import { GpuPanel, GpuStatus } from './GpuPanel.tsx';
import { ModelDownloads } from './ModelDownloads.tsx';
import { ModelPanel } from './ModelPanel.tsx';
import { ROUTE_HASH, useRoute, type Route } from './route.ts';
import { Webcam } from './Webcam.tsx';
import { useAppStore } from './store.ts';

const PAGES: [Route, string][] = [
  ['chat', 'Chat'],
  ['diagnostics', 'GPU diagnostics'],
];

export function App() {
  const initGpu = useAppStore((s) => s.initGpu);
  const route = useRoute();
  useEffect(() => {
    void initGpu();
  }, [initGpu]);

  return (
    <div className="app">
      <header className="app-header">
        <h1>
          LLaVA-Mini <span className="dash">—</span> <span className="tagline">runs on your GPU, in your browser</span>
        </h1>
        <p className="lede">
          A vision-language model that sees an image as a single token. Everything runs locally through WebGPU: nothing you show
          it leaves your machine.
        </p>
        <nav className="tabs" aria-label="Pages">
          {PAGES.map(([r, label]) => (
            <a key={r} href={ROUTE_HASH[r]} className="tab" aria-current={route === r ? 'page' : undefined}>
              {label}
            </a>
          ))}
        </nav>
      </header>
      {/* The chat stays mounted (hidden) on the diagnostics page: a running answer or live mode goes on. */}
      <main className="app-main" hidden={route !== 'chat'}>
        <GpuStatus />
        <ModelPanel />
        <Chat />
        <Webcam />
        <ModelDownloads />
      </main>
      {route === 'diagnostics' && (
        <main className="app-main" data-testid="diagnostics-page">
          <GpuPanel />
          <Diagnostics />
        </main>
      )}
      <footer className="app-footer">
        <a href="https://arxiv.org/abs/2501.03895" target="_blank" rel="noreferrer">
          LLaVA-Mini paper (arXiv 2501.03895)
        </a>
      </footer>
    </div>
  );
}
