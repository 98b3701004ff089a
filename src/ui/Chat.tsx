// The chat: thread with streamed, sanitized markdown answers and per-answer stats; a composer that takes images
// by drag-and-drop (anywhere on the window), paste or a file picker. Enter sends, Shift+Enter is a newline,
// Esc stops.
import { useEffect, useRef, useState, type KeyboardEvent } from 'react';
import type { AnswerStats } from '../worker/engine-api.ts';
import { AnswerMarkdown } from './AnswerMarkdown.tsx';
import { ChatSettingsPanel } from './ChatSettings.tsx';
import { useChatStore, type ChatMessage } from './chat-store.ts';
import { readDrop, type Drop } from './dropped-files.ts';
import { useEngineStore } from './engine-store.ts';

/** Files go to the composer; a checkpoint folder loads as the model (when none is loaded: unload first). */
function onDropped(drop: Drop): void {
  if (drop.kind === 'files') return void useChatStore.getState().attach(drop.files);
  const engine = useEngineStore.getState();
  if (engine.status.kind === 'loading' || engine.status.kind === 'ready') {
    useChatStore.setState({ notice: `${drop.folder.name} looks like a checkpoint folder: unload the current model first, then drop it again.` });
  } else void engine.load({ name: drop.folder.name, files: drop.folder.files });
}

const ms = (v: number) => `${v.toFixed(0)} ms`;

function Stats({ stats }: { stats: AnswerStats }) {
  const t = stats.timings;
  const rows: [string, string][] = [
    ['images (encoded on attach)', stats.newImages ? `${stats.newImages}: ${ms(stats.imageWorkMs)} (preprocess, vision, compression, vision pre-fusion)` : 'none this turn: cached rows reused'],
    ['pre-fusion (text rows)', ms(t.prefusionMs)],
    ['prefill', `${ms(t.prefillMs)} for ${stats.llmRows - stats.reusedRows} new rows (${stats.reusedRows} reused)`],
    ['time to first token', ms(t.prefusionMs + t.firstTokenMs)],
    ['decode', `${ms(t.decodeMs)}, ${t.tokensPerSecond.toFixed(1)} tokens/s`],
    ['LLM rows', `${stats.llmRows}: ${stats.imageRows} for images, ${stats.llmRows - stats.imageRows} for text`],
    ['new tokens', `${stats.tokens.length} (${stats.stopped})`],
  ];
  return (
    <details className="stats" data-testid="answer-stats">
      <summary>Stats</summary>
      <dl className="kv">
        {rows.map(([k, v]) => (
          <div className="kv-row" key={k}>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
      </dl>
    </details>
  );
}

function Message({ m, last }: { m: ChatMessage; last: boolean }) {
  const { busy, resendLast } = useChatStore();
  const [editing, setEditing] = useState<string | null>(null);
  return (
    <li
      className={`msg msg-${m.role}`}
      data-testid={`msg-${m.role}`}
      data-status={m.status}
      data-token-ids={m.stats?.tokens.join(' ')}
      data-reused-rows={m.stats?.reusedRows}
      data-llm-rows={m.stats?.llmRows}
      data-new-images={m.stats?.newImages}
    >
      {m.images.length > 0 && (
        <div className="thumbs">
          {m.images.map((im) => (
            <img key={im.thumbUrl} src={im.thumbUrl} alt={im.name} className="thumb" />
          ))}
        </div>
      )}
      {m.role === 'assistant' ? (
        <div className="markdown" data-testid="answer-text">
          <AnswerMarkdown text={m.text} />
        </div>
      ) : editing !== null ? (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            setEditing(null);
            void resendLast(editing);
          }}
        >
          <textarea aria-label="Edit question" value={editing} onChange={(e) => setEditing(e.target.value)} rows={2} />
          <button type="submit">Send edited</button>{' '}
          <button type="button" onClick={() => setEditing(null)}>
            Cancel
          </button>
        </form>
      ) : (
        <p className="user-text">
          {m.text}{' '}
          {last && !busy && (
            <button type="button" className="link" onClick={() => setEditing(m.text)}>
              Edit
            </button>
          )}
        </p>
      )}
      {m.status === 'streaming' && <span className="muted" role="status">…</span>}
      {m.status === 'stopped' && <span className="badge">stopped</span>}
      {m.error && (
        <p className="notice notice-error" role="alert">
          {m.error}
        </p>
      )}
      {m.role === 'assistant' && m.status !== 'streaming' && (
        <div className="row">
          {m.text && (
            <button type="button" className="link" onClick={() => void navigator.clipboard?.writeText(m.text)}>
              Copy
            </button>
          )}
          {last && !busy && (
            <button type="button" className="link" onClick={() => void resendLast()} data-testid="regenerate">
              Regenerate
            </button>
          )}
        </div>
      )}
      {m.stats && <Stats stats={m.stats} />}
    </li>
  );
}

export function Chat() {
  const { messages, attachments, busy, notice, attach, attachVideo, removeAttachment, send, stop, newChat, dismissNotice, conversations, conversationId, open, remove, restore } = useChatStore();
  const videoInput = useRef<HTMLInputElement>(null);
  useEffect(() => {
    void restore();
  }, [restore]);
  const ready = useEngineStore((s) => s.status.kind === 'ready');
  const [text, setText] = useState('');
  const fileInput = useRef<HTMLInputElement>(null);

  // Drop anywhere on the window (images, videos, or a checkpoint folder), paste anywhere on the page.
  useEffect(() => {
    const onDragOver = (e: DragEvent) => e.preventDefault();
    const onDrop = (e: DragEvent) => {
      e.preventDefault();
      if (e.dataTransfer?.files.length) void readDrop(e.dataTransfer).then(onDropped);
    };
    const onPaste = (e: ClipboardEvent) => {
      const files = [...(e.clipboardData?.files ?? [])];
      if (files.length) {
        e.preventDefault();
        void attach(files);
      }
    };
    window.addEventListener('dragover', onDragOver);
    window.addEventListener('drop', onDrop);
    window.addEventListener('paste', onPaste);
    return () => {
      window.removeEventListener('dragover', onDragOver);
      window.removeEventListener('drop', onDrop);
      window.removeEventListener('paste', onPaste);
    };
  }, [attach]);

  const submit = () => {
    if (busy || !ready) return;
    void send(text);
    setText('');
  };
  const onKey = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      submit();
    } else if (e.key === 'Escape' && busy) stop();
  };

  return (
    <section className="panel chat" aria-labelledby="chat-heading" data-testid="chat">
      <div className="row">
        <h2 id="chat-heading">Chat</h2>
        <button type="button" onClick={newChat} disabled={busy}>
          New chat
        </button>
      </div>
      {conversations.length > 0 && (
        <nav aria-label="Conversations">
          <ul className="conversations" data-testid="conversations">
            {conversations.map((c) => (
              <li key={c.id} aria-current={c.id === conversationId ? 'true' : undefined}>
                <button type="button" className="link" disabled={busy} onClick={() => void open(c.id)}>
                  {c.title}
                </button>{' '}
                <button type="button" className="link" aria-label={`Delete ${c.title}`} disabled={busy && c.id === conversationId} onClick={() => void remove(c.id)}>
                  ×
                </button>
              </li>
            ))}
          </ul>
        </nav>
      )}
      <ChatSettingsPanel />
      {notice && (
        <div className="notice notice-error" role="alert" data-testid="chat-notice">
          <span>{notice}</span>{' '}
          <button type="button" className="link" onClick={dismissNotice}>
            Dismiss
          </button>
        </div>
      )}
      <ol className="thread" aria-live="polite">
        {messages.map((m, i) => (
          <Message key={m.id} m={m} last={i >= messages.length - 2} />
        ))}
      </ol>
      {messages.length === 0 && <p className="muted">Drop, paste or pick an image, then ask about it.</p>}
      <div className="composer">
        {attachments.length > 0 && (
          <ul className="thumbs" data-testid="attachments">
            {attachments.map((a) => (
              <li key={a.key} className="attachment" data-status={a.status} data-frames={a.frames?.length}>
                {a.frameUrls ? (
                  <div className="frame-strip" aria-label={`${a.name}: ${a.frameUrls.length} sampled frames`}>
                    {a.frameUrls.map((u, i) => (
                      <img key={u} src={u} alt={`frame ${i + 1}`} className="frame" />
                    ))}
                    {a.sampling && (
                      <span className="muted small" data-testid="video-sampling" data-total-frames={a.sampling.totalFrames} data-fps={a.sampling.fps}>
                        {a.frameUrls.length} of {a.sampling.totalFrames} frames ({a.sampling.fps.toFixed(1)} fps, {(a.sampling.totalFrames / a.sampling.fps).toFixed(1)} s)
                      </span>
                    )}
                  </div>
                ) : a.thumbUrl ? (
                  <img src={a.thumbUrl} alt={a.name} className="thumb" />
                ) : (
                  <span className="muted">{a.name}: sampling frames…</span>
                )}
                {a.progress && a.status === 'encoding' && <progress max={a.progress.total || 1} value={a.progress.done} aria-label={`${a.name} frames encoded`} />}
                <span className={`badge ${a.status === 'ready' ? 'badge-pass' : ''}`}>{a.status === 'ready' ? 'ready' : 'encoding…'}</span>
                <button type="button" className="link" aria-label={`Remove ${a.name}`} onClick={() => removeAttachment(a.key)}>
                  ×
                </button>
              </li>
            ))}
          </ul>
        )}
        <textarea
          aria-label="Message"
          placeholder={ready ? 'Ask about the image… (Enter sends, Shift+Enter newline, Esc stops)' : 'Load a model to start'}
          value={text}
          onChange={(e) => setText(e.target.value)}
          onKeyDown={onKey}
          rows={2}
        />
        <div className="row">
          <input ref={fileInput} type="file" accept="image/*" multiple hidden data-testid="file-input" onChange={(e) => void attach([...(e.target.files ?? [])])} />
          <button type="button" onClick={() => fileInput.current?.click()}>
            Add image
          </button>
          <input
            ref={videoInput}
            type="file"
            accept="video/*,image/gif"
            hidden
            data-testid="video-input"
            onChange={(e) => {
              const f = e.target.files?.[0];
              if (f) void attachVideo(f);
              e.target.value = '';
            }}
          />
          <button type="button" onClick={() => videoInput.current?.click()}>
            Add video
          </button>
          {busy ? (
            <button type="button" onClick={stop} data-testid="stop">
              Stop
            </button>
          ) : (
            <button type="button" onClick={submit} disabled={!ready} data-testid="send">
              Send
            </button>
          )}
        </div>
      </div>
    </section>
  );
}
