// The conversation sidebar: new chat, the saved conversations (open, rename, delete), and the app's views. Collapsible on
// wide windows; on phones a drawer over the page (Radix Dialog: focus kept inside, Esc and a tap outside close it).
import * as Dialog from '@radix-ui/react-dialog';
import { Cpu, Download, MessageSquare, SquarePen, Stethoscope, X } from 'lucide-react';
import type { ReactNode } from 'react';
import { ConversationRow } from './ConversationRow.tsx';
import { groupByAge } from './conversation-groups.ts';
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
  const { conversations, conversationId, busy, open, rename, remove, newChat } = useChatStore();
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
        {conversations.length === 0 ? (
          <p className="muted small">None yet: your chats are kept in this browser.</p>
        ) : (
          <div data-testid="conversations">
            {groupByAge(conversations, new Date()).map((group) => (
              <section key={group.label} className="conv-group" aria-label={group.label}>
                <h3 className="conv-group-label">{group.label}</h3>
                <ul className="conversations">
                  {group.conversations.map((c) => (
                    <ConversationRow
                      key={c.id}
                      conversation={c}
                      current={c.id === conversationId}
                      busy={busy}
                      onOpen={() => {
                        void open(c.id);
                        window.location.hash = ROUTE_HASH.chat;
                        onNavigate();
                      }}
                      onRename={(name) => void rename(c.id, name)}
                      onDelete={() => void remove(c.id)}
                    />
                  ))}
                </ul>
              </section>
            ))}
          </div>
        )}
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
            // Escape in a conversation's name field drops the edit, not the drawer.
            onEscapeKeyDown={(e) => {
              if (e.target instanceof HTMLInputElement && e.target.classList.contains('conv-name-input')) e.preventDefault();
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
