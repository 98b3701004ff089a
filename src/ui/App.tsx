import { useEffect } from 'react';
import { Chat } from './Chat.tsx';
import { Diagnostics } from './Diagnostics.tsx';
import { GpuPanel } from './GpuPanel.tsx';
import { ModelPanel } from './ModelPanel.tsx';
import { Webcam } from './Webcam.tsx';
import { useAppStore } from './store.ts';

export function App() {
  const initGpu = useAppStore((s) => s.initGpu);
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
      </header>
      <main className="app-main">
        <GpuPanel />
        <ModelPanel />
        <Chat />
        <Webcam />
        <Diagnostics />
      </main>
      <footer className="app-footer">
        <a href="https://arxiv.org/abs/2501.03895" target="_blank" rel="noreferrer">
          LLaVA-Mini paper (arXiv 2501.03895)
        </a>
      </footer>
    </div>
  );
}
