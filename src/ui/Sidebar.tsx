// The conversation sidebar: new chat, the saved conversations (ConversationList.tsx), and the app's views.
// Collapsible on wide windows; on phones a drawer over the page (Radix Dialog: focus kept inside, Esc and a tap
// outside close it).
import * as Dialog from '@radix-ui/react-dialog';
import { Cpu, Download, MessageSquare, SquarePen, Stethoscope, X } from 'lucide-react';
import type { ReactNode } from 'react';
import { ConversationList } from './ConversationList.tsx';
import { useChatStore } from './chat-store.ts';
import { ROUTE_HASH, useRoute, type Route } from './route.ts';
import { useMediaQuery } from './use-media-query.ts';

const VIEWS: [Route, string, ReactNode][] = [
  ['chat', 'Chat', <MessageSquare key="c" aria-hidden size={16} />],
  ['model', 'Model', <Cpu key="m" aria-hidden size={16} />],
  ['downloads', 'Downloads', <Download key="d" aria-hidden size={16} />],
  ['diagnostics', 'GPU diagnostics', <Stethoscope key="g" aria-hidden size={16} />],
];

function SidebarContent({ onNavigate }: { onNavigate(): void }) {
  const { busy, newChat } = useChatStore();
  const route = useRoute();
  return (
    <>
      <button
        type="button"
        className="button button-primary new-chat"
        disabled={busy}
        onClick={() => {
          newChat();
          window.location.hash = ROUTE_HASH.chat;
          onNavigate();
        }}
      >
        <SquarePen aria-hidden size={16} /> New chat
      </button>
      <nav aria-label="Conversations" className="conv-nav">
        <h2 className="sidebar-heading">Conversations</h2>
        <ConversationList
          onOpened={() => {
            window.location.hash = ROUTE_HASH.chat;
            onNavigate();
          }}
        />
      </nav>
      <nav aria-label="Views" className="views-nav">
        {VIEWS.map(([r, label, icon]) => (
          <a key={r} href={ROUTE_HASH[r]} className="view-link" aria-current={route === r ? 'page' : undefined} onClick={onNavigate}>
            {icon} {label}
          </a>
        ))}
        <a className="view-link muted small" href="https://arxiv.org/abs/2501.03895" target="_blank" rel="noreferrer">
          LLaVA-Mini paper (arXiv 2501.03895)
        </a>
      </nav>
    </>
  );
}

export function Sidebar({ open, onOpenChange }: { open: boolean; onOpenChange(open: boolean): void }) {
  const phone = useMediaQuery('(max-width: 899px)');
  if (phone) {
    return (
      <Dialog.Root open={open} onOpenChange={onOpenChange}>
        <Dialog.Portal>
          <Dialog.Overlay className="drawer-overlay" />
          <Dialog.Content
            className="sidebar drawer"
            aria-describedby={undefined}
            // Escape in a conversation's name field drops the edit, in the search field clears it: not the drawer.
            onEscapeKeyDown={(e) => {
              const field = e.target instanceof HTMLInputElement ? e.target : null;
              if (field?.classList.contains('conv-name-input') || (field?.classList.contains('conv-search-input') && field.value)) e.preventDefault();
            }}
          >
            <div className="drawer-head">
              <Dialog.Title className="sidebar-title">LLaVA-Mini</Dialog.Title>
              <Dialog.Close className="icon-button" aria-label="Close menu">
                <X aria-hidden size={18} />
              </Dialog.Close>
            </div>
            <SidebarContent onNavigate={() => onOpenChange(false)} />
          </Dialog.Content>
        </Dialog.Portal>
      </Dialog.Root>
    );
  }
  return (
    <aside className="sidebar" hidden={!open} aria-label="Sidebar">
      <SidebarContent onNavigate={() => undefined} />
    </aside>
  );
}
