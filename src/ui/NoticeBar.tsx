// The current notice (notice-store.ts), where the eyes are: just above the composer in the chat, floating at the
// bottom of the window elsewhere.
import { Info, TriangleAlert, X } from 'lucide-react';
import { useNoticeStore } from './notice-store.ts';

export function NoticeBar({ floating = false }: { floating?: boolean }) {
  const { notice, dismiss } = useNoticeStore();
  if (!notice) return null;
  const Icon = notice.tone === 'error' ? TriangleAlert : Info;
  return (
    <div className={`notice-bar notice-${notice.tone}${floating ? ' floating' : ''}`} role={notice.tone === 'error' ? 'alert' : 'status'} data-testid="chat-notice" data-tone={notice.tone}>
      <Icon aria-hidden size={18} className="notice-icon" />
      <span className="notice-text">{notice.text}</span>
      <button type="button" className="icon-button" aria-label="Dismiss" onClick={dismiss}>
        <X aria-hidden size={16} />
      </button>
    </div>
  );
}
