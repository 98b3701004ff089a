// The sidebar's saved conversations: a search over their titles and messages, then the list grouped by age
// (conversation-groups.ts), each row opened, renamed or deleted (ConversationRow.tsx).
import { Search, X } from 'lucide-react';
import { useEffect, useState } from 'react';
import { conversationsMentioning } from './chat-db.ts';
import { useChatStore } from './chat-store.ts';
import { groupByAge } from './conversation-groups.ts';
import { ConversationRow } from './ConversationRow.tsx';

/** Waits this long after the last keystroke before searching (every conversation's messages are read). */
const SEARCH_DELAY_MS = 150;

export function ConversationList({ onOpened }: { onOpened(): void }) {
  const { conversations, conversationId, busy, open, rename, remove } = useChatStore();
  const [query, setQuery] = useState('');
  /** The ids matching `query` (null until the search has run). */
  const [matches, setMatches] = useState<{ query: string; ids: Set<string> } | null>(null);
  const searching = query.trim() !== '';
  /** A cleared search forgets its results, so that the next one never shows them. */
  const changeQuery = (q: string) => {
    setQuery(q);
    if (!q.trim()) setMatches(null);
  };
  useEffect(() => {
    if (!searching) return;
    let current = true;
    const timer = setTimeout(() => {
      void conversationsMentioning(query).then((ids) => {
        if (current) setMatches({ query, ids });
      });
    }, SEARCH_DELAY_MS);
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [query, searching, conversations]);

  if (conversations.length === 0) return <p className="muted small">None yet: your chats are kept in this browser.</p>;
  // While a changed search runs, its previous results stay (no flicker); before the first, the whole list.
  const shown = searching && matches ? conversations.filter((c) => matches.ids.has(c.id)) : conversations;
  return (
    <>
      <div className="conv-search">
        <Search aria-hidden size={14} />
        <input
          type="search"
          className="conv-search-input"
          aria-label="Search conversations"
          placeholder="Search"
          value={query}
          onChange={(e) => changeQuery(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === 'Escape' && query) changeQuery('');
          }}
        />
        {query && (
          <button type="button" className="icon-button conv-search-clear" aria-label="Clear the search" onClick={() => changeQuery('')}>
            <X aria-hidden size={14} />
          </button>
        )}
      </div>
      {searching && matches && shown.length === 0 ? (
        <p className="muted small conv-none" role="status">
          No conversation mentions “{matches.query.trim()}”.
        </p>
      ) : (
        <div data-testid="conversations">
          {groupByAge(shown, new Date()).map((group) => (
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
                      onOpened();
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
    </>
  );
}
