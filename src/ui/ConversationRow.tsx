// One saved conversation in the sidebar: open it, rename it in place (Enter or leaving the field keeps the name,
// Escape drops the edit, an empty name gives back the automatic title), delete it (asks first).
import { Pencil, Trash2 } from 'lucide-react';
import { useRef, useState } from 'react';
import { NAME_MAX, type ConversationEntry } from './chat-db.ts';
import { ConfirmDelete } from './ConfirmDelete.tsx';

interface Props {
  conversation: ConversationEntry;
  current: boolean;
  /** An answer is streaming: conversations cannot be switched, and the current one cannot be deleted. */
  busy: boolean;
  onOpen(): void;
  onRename(name: string): void;
  onDelete(): void;
}

export function ConversationRow({ conversation: c, current, busy, onOpen, onRename, onDelete }: Props) {
  const [editing, setEditing] = useState(false);
  const openButton = useRef<HTMLButtonElement>(null);
  /** Set when the edit ended (Enter, Escape): the blur that follows must not save again. */
  const ended = useRef(false);
  const finish = (name: string | null) => {
    if (ended.current) return;
    ended.current = true;
    if (name !== null && name.trim() !== c.title) onRename(name);
    setEditing(false);
    requestAnimationFrame(() => openButton.current?.focus());
  };
  return (
    <li className="conv" aria-current={current ? 'true' : undefined}>
      {editing ? (
        <input
          className="conv-name-input"
          aria-label="Conversation name"
          defaultValue={c.title}
          maxLength={NAME_MAX}
          autoFocus
          onFocus={(e) => e.currentTarget.select()}
          onKeyDown={(e) => {
            if (e.key === 'Enter') finish(e.currentTarget.value);
            else if (e.key === 'Escape') finish(null);
          }}
          onBlur={(e) => finish(e.currentTarget.value)}
        />
      ) : (
        <button ref={openButton} type="button" className="conv-open" title={c.title} disabled={busy} onClick={onOpen}>
          {c.title}
        </button>
      )}
      {!editing && (
        <button
          type="button"
          className="icon-button conv-rename"
          aria-label={`Rename ${c.title}`}
          onClick={() => {
            ended.current = false;
            setEditing(true);
          }}
        >
          <Pencil aria-hidden size={14} />
        </button>
      )}
      <ConfirmDelete
        title={`Delete “${c.title}”?`}
        detail="Its messages and images are removed from this browser, in every tab. This cannot be undone."
        onConfirm={onDelete}
        trigger={
          <button type="button" className="icon-button" aria-label={`Delete ${c.title}`} disabled={busy && current}>
            <Trash2 aria-hidden size={15} />
          </button>
        }
      />
    </li>
  );
}
