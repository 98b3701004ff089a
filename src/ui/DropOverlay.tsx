// While files are dragged over the window, the whole page says what dropping them does (the drop itself is
// handled by the chat: `Chat.tsx`). Shown from the first dragenter that carries files; gone on the drop, when the
// drag leaves the window, or on Escape.
import { ImagePlus } from 'lucide-react';
import { useState } from 'react';
import { useWindowEvents } from './use-window-events.ts';

const carriesFiles = (e: DragEvent) => Boolean(e.dataTransfer?.types.includes('Files'));

export function DropOverlay() {
  const [shown, setShown] = useState(false);
  const hide = () => setShown(false);
  useWindowEvents(
    {
      dragenter: (e) => {
        if (carriesFiles(e)) setShown(true);
      },
      // Leaving one element for another inside the page has a relatedTarget; leaving the window has none.
      dragleave: (e) => {
        if (e.relatedTarget === null) hide();
      },
      drop: hide,
      keydown: (e) => {
        if (e.key === 'Escape') hide();
      },
    },
    [],
  );
  if (!shown) return null;
  return (
    <div className="drop-overlay" data-testid="drop-overlay" aria-hidden>
      <div className="drop-overlay-card">
        <ImagePlus size={34} />
        <p className="drop-overlay-title">Drop to add to your question</p>
        <p className="muted small">Images and videos are attached to your next question and stay on this machine; a checkpoint folder is opened as a model.</p>
      </div>
    </div>
  );
}
