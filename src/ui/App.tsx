// The app shell, laid out as chat apps are: a conversation sidebar (a drawer on phones), a top bar with the model
// picker, its state and the GPU status, and the view. The chat fills the page with its composer fixed at the
// bottom; model details, downloads and diagnostics are views of their own. The chat stays mounted (hidden) on the
// other views: a running answer or live mode goes on.
import { useEffect, useState } from 'react';
import { Chat } from './Chat.tsx';
import { Diagnostics } from './Diagnostics.tsx';
import { DropOverlay } from './DropOverlay.tsx';
import { GpuPanel, GpuProblem } from './GpuPanel.tsx';
import { ModelDownloads } from './ModelDownloads.tsx';
import { ModelPanel } from './ModelPanel.tsx';
import { NoticeBar } from './NoticeBar.tsx';
import { useRoute } from './route.ts';
import { Sidebar } from './Sidebar.tsx';
import { TopBar } from './TopBar.tsx';
import { useAppStore } from './store.ts';
import { useMediaQuery } from './use-media-query.ts';

export function App() {
  const initGpu = useAppStore((s) => s.initGpu);
  const route = useRoute();
  const wide = useMediaQuery('(min-width: 900px)');
  const [sidebarOpen, setSidebarOpen] = useState(wide);
  // The sidebar is open on wide windows and closed on phones; a window crossing the width (a tablet turned to
  // portrait) takes that state instead of popping the phone drawer open over the page.
  useEffect(() => setSidebarOpen(wide), [wide]);
  useEffect(() => {
    void initGpu();
  }, [initGpu]);

  return (
    <div className="shell" data-sidebar={sidebarOpen ? 'open' : 'closed'}>
      <Sidebar open={sidebarOpen} onOpenChange={setSidebarOpen} />
      <div className="main-col">
        <TopBar onMenu={() => setSidebarOpen((o) => !o)} sidebarOpen={sidebarOpen} />
        <GpuProblem />
        <main className="view" data-route={route}>
          <Chat visible={route === 'chat'} />
          {route === 'model' && (
            <div className="page" data-testid="model-page">
              <ModelPanel />
            </div>
          )}
          {route === 'downloads' && (
            <div className="page" data-testid="downloads-page">
              <ModelDownloads />
            </div>
          )}
          {route === 'diagnostics' && (
            <div className="page" data-testid="diagnostics-page">
              <GpuPanel />
              <Diagnostics />
            </div>
          )}
          {route !== 'chat' && <NoticeBar floating />}
        </main>
      </div>
      <DropOverlay />
    </div>
  );
}
