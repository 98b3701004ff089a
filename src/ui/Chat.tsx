// The chat view: the thread fills the page (streamed, sanitized markdown answers; images open larger on click;
// per-answer stats as one line that expands into a table), the composer stays at the bottom with the notice just
// above it. Images come by drag-and-drop (anywhere on the window), paste or a picker. Enter sends (or queues, while
// an answer streams), Shift+Enter is a newline, Esc stops.
import * as Dialog from '@radix-ui/react-dialog';
import { Camera, Film, ImagePlus, RotateCcw, Send, Settings2, Square, StepForward, X, Copy, Pencil, Clock } from 'lucide-react';
import { useEffect, useRef, useState, type KeyboardEvent } from 'react';
import type { AnswerStats } from '../worker/engine-api.ts';
import { AnswerMarkdown } from './AnswerMarkdown.tsx';
import { ChatSettingsPanel } from './ChatSettings.tsx';
import { useChatStore, type Attachment, type ChatMessage } from './chat-store.ts';
import { readDrop, type Drop } from './dropped-files.ts';
import { useEngineStore } from './engine-store.ts';
import { NoticeBar } from './NoticeBar.tsx';
import { showNotice } from './notice-store.ts';
import { Webcam } from './Webcam.tsx';
import { currentRoute, ROUTE_HASH } from './route.ts';
import { useWindowEvents } from './use-window-events.ts';

/** Files go to the composer; a checkpoint folder loads as the model (when none is loaded: unload first). */
function onDropped(drop: Drop): void {
  if (drop.kind === 'files') {
    // Attachments live in the chat's composer: show it, whatever view the files were dropped on.
    if (currentRoute() !== 'chat') window.location.hash = ROUTE_HASH.chat;
    return void useChatStore.getState().attach(drop.files);
  }
  const engine = useEngineStore.getState();
  if (engine.status.kind === 'loading' || engine.status.kind === 'ready') {
    showNotice(`${drop.folder.name} looks like a checkpoint folder: unload the current model first, then drop it again.`);
  } else void engine.load({ name: drop.folder.name, files: drop.folder.files });
}

const ms = (v: number) => (v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${v.toFixed(0)} ms`);
/** Two significant digits below 10 tokens/s: a software adapter's 0.05 tokens/s must not read as 0.0. */
const rate = (tps: number) => (tps >= 10 || tps === 0 ? tps.toFixed(1) : tps.toPrecision(2));

function Stats({ stats }: { stats: AnswerStats }) {
  const t = stats.timings;
  const ttft = t.prefusionMs + t.firstTokenMs;
  const textRows = stats.llmRows - stats.imageRows;
  const rows: [string, string][] = [
    ['Time to first token', `${ms(ttft)} (text pre-fusion ${ms(t.prefusionMs)}, then prefill and first token ${ms(t.firstTokenMs)})`],
    ['Decode', `${stats.tokens.length} tokens in ${ms(t.decodeMs)}: ${rate(t.tokensPerSecond)} tokens/s${t.tokensPerSecond > 0 && t.tokensPerSecond < 1 ? `, ${(1 / t.tokensPerSecond).toFixed(1)} s per token` : ''} (stopped by ${stats.stopped})`],
    ['Context', `${stats.llmRows} tokens: ${stats.imageRows} for images, ${textRows} for text`],
    ['Prefill', `${ms(t.prefillMs)} for ${stats.llmRows - stats.reusedRows} new tokens (${stats.reusedRows} reused from the previous turn)`],
    [
      'Images',
      stats.newImages
        ? `${stats.newImages} new: ${ms(stats.imageWorkMs)} when attached (preprocess, vision, compression, vision pre-fusion)`
        : 'none this turn: cached rows reused',
    ],
  ];
  return (
    <details className="stats" data-testid="answer-stats">
      <summary className="stats-line">
        <span>TTFT {ms(ttft)}</span>
        <span>{rate(t.tokensPerSecond)} tok/s</span>
        <span>images {stats.imageRows} tok</span>
        <span>text {textRows} tok</span>
      </summary>
      <table className="stats-table">
        <tbody>
          {rows.map(([k, v]) => (
            <tr key={k}>
              <th scope="row">{k}</th>
              <td>{v}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </details>
  );
}

/** A thumbnail that opens the image large (Radix Dialog: Esc or a click outside closes it). */
function ImageThumb({ src, name, className = 'thumb' }: { src: string; name: string; className?: string }) {
  return (
    <Dialog.Root>
      <Dialog.Trigger asChild>
        <button type="button" className="thumb-button" aria-label={`Open ${name} larger`}>
          <img src={src} alt={name} className={className} />
        </button>
      </Dialog.Trigger>
      <Dialog.Portal>
        <Dialog.Overlay className="lightbox-overlay" />
        <Dialog.Content className="lightbox" aria-describedby={undefined} data-testid="lightbox">
          <Dialog.Title className="sr-only">{name}</Dialog.Title>
          <img src={src} alt={name} />
          <Dialog.Close className="icon-button lightbox-close" aria-label="Close">
            <X aria-hidden size={20} />
          </Dialog.Close>
        </Dialog.Content>
      </Dialog.Portal>
    </Dialog.Root>
  );
}

function Message({ m, last }: { m: ChatMessage; last: boolean }) {
  const { busy, resendLast, continueLast } = useChatStore();
  const [editing, setEditing] = useState<string | null>(null);
  return (
    <li
      className={`msg msg-${m.role}`}
      data-testid={`msg-${m.role}`}
      data-status={m.status}
      data-token-ids={(m.stats?.tokens ?? m.streamedTokenIds)?.join(' ')}
      data-top-logits0={m.stats?.topLogits0 ? JSON.stringify(m.stats.topLogits0) : undefined}
      data-reused-rows={m.stats?.reusedRows}
      data-llm-rows={m.stats?.llmRows}
      data-new-images={m.stats?.newImages}
    >
      {m.images.length > 0 && (
        <div className="thumbs">
          {m.images.map((im) => (
            <ImageThumb key={im.thumbUrl} src={im.thumbUrl} name={im.name} />
          ))}
        </div>
      )}
      {m.role === 'assistant' ? (
        <div className="bubble markdown" data-testid="answer-text">
          {m.text ? <AnswerMarkdown text={m.text} /> : m.status === 'streaming' ? null : <p className="muted">(no text)</p>}
          {m.status === 'streaming' && (
            <span className="typing" role="status" aria-label="Answering">
              <span />
              <span />
              <span />
            </span>
          )}
        </div>
      ) : editing !== null ? (
        <form
          className="edit-form"
          onSubmit={(e) => {
            e.preventDefault();
            setEditing(null);
            void resendLast(editing);
          }}
        >
          <textarea className="input" aria-label="Edit question" value={editing} onChange={(e) => setEditing(e.target.value)} rows={2} />
          <div className="row">
            <button type="submit" className="button button-primary">
              Send edited
            </button>
            <button type="button" className="button" onClick={() => setEditing(null)}>
              Cancel
            </button>
          </div>
        </form>
      ) : (
        m.text && <p className="bubble user-text">{m.text}</p>
      )}
      {m.error && (
        <p className="msg-error" role="alert">
          {m.error}
        </p>
      )}
      {m.status !== 'streaming' && (
        <div className="msg-actions">
          {m.status === 'stopped' && <span className="badge badge-warn">stopped</span>}
          {m.role === 'user' && last && !busy && editing === null && (
            <button type="button" className="action" onClick={() => setEditing(m.text)}>
              <Pencil aria-hidden size={14} /> Edit
            </button>
          )}
          {m.role === 'assistant' && m.text && (
            <button type="button" className="action" onClick={() => void navigator.clipboard?.writeText(m.text)}>
              <Copy aria-hidden size={14} /> Copy
            </button>
          )}
          {m.role === 'assistant' && last && !busy && m.status === 'stopped' && (
            <button type="button" className="action" onClick={() => void continueLast()} data-testid="continue">
              <StepForward aria-hidden size={14} /> Continue
            </button>
          )}
          {m.role === 'assistant' && last && !busy && (
            <button type="button" className="action" onClick={() => void resendLast()} data-testid="regenerate">
              <RotateCcw aria-hidden size={14} /> Regenerate
            </button>
          )}
        </div>
      )}
      {m.stats && <Stats stats={m.stats} />}
    </li>
  );
}

const STAGE_TEXT: Record<NonNullable<Attachment['stage']>, string> = {
  decoding: 'decoding',
  'sampling frames': 'sampling frames',
  'image side': 'step 1 of 2: vision + compression',
  'vision pre-fusion': 'step 2 of 2: pre-fusion',
};

function AttachmentChip({ a }: { a: Attachment }) {
  const removeAttachment = useChatStore((s) => s.removeAttachment);
  const video = a.frameUrls !== undefined || a.stage === 'sampling frames';
  const status =
    a.status === 'ready'
      ? 'ready'
      : a.status === 'waiting'
        ? 'waits for a model: load one (top bar)'
        : video && a.progress && a.progress.total > 0
          ? `frame ${Math.min(a.progress.done + 1, a.progress.total)} of ${a.progress.total}: ${STAGE_TEXT[a.stage ?? 'image side']}`
          : `${STAGE_TEXT[a.stage ?? 'decoding']}…`;
  return (
    <li className="attachment" data-status={a.status} data-stage={a.stage} data-frames={a.frames?.length}>
      <div className="attachment-media">
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
          <span className="muted small">{a.name}</span>
        )}
        <button type="button" className="icon-button attachment-remove" aria-label={`Remove ${a.name}`} onClick={() => removeAttachment(a.key)}>
          <X aria-hidden size={14} />
        </button>
      </div>
      {a.progress && a.status === 'encoding' && a.progress.total > 0 && <progress max={a.progress.total} value={a.progress.done} aria-label={`${a.name} frames encoded`} />}
      <span className={`badge ${a.status === 'ready' ? 'badge-pass' : ''}`} role="status">
        {status}
      </span>
    </li>
  );
}

/** How much of the context the conversation would use with the draft (measured by the worker's tokenizer). */
function ContextMeter() {
  const { draft, attachments, messages, contextUsage } = useChatStore();
  const ready = useEngineStore((s) => s.status.kind === 'ready');
  const [usage, setUsage] = useState<{ rows: number; limit: number; refusal?: string } | null>(null);
  useEffect(() => {
    if (!ready) return setUsage(null);
    const t = setTimeout(() => void contextUsage(draft).then(setUsage), 250);
    return () => clearTimeout(t);
  }, [draft, attachments, messages, ready, contextUsage]);
  if (!usage) return null;
  const over = usage.rows > usage.limit;
  return (
    <span className={`context-meter${over ? ' over' : ''}`} data-testid="context-usage" data-rows={usage.rows} data-limit={usage.limit} title={usage.refusal}>
      {/* low / high / optimum: the bar turns amber past three quarters and red at the limit, as the text does. */}
      <meter min={0} max={usage.limit} low={usage.limit * 0.75} high={usage.limit * 0.95} optimum={0} value={Math.min(usage.rows, usage.limit)} aria-label="Context used" />
      {usage.rows} / {usage.limit} tokens{over ? ': too long' : ''}
    </span>
  );
}

/** `visible`: the chat is the current view; elsewhere the app shell shows the notice (one notice bar at a time). */
function Composer({ visible }: { visible: boolean }) {
  const { attachments, busy, queued, draft, setDraft, sendDraft, stop, attach, attachVideo, cancelQueued } = useChatStore();
  const ready = useEngineStore((s) => s.status.kind === 'ready');
  const fileInput = useRef<HTMLInputElement>(null);
  const videoInput = useRef<HTMLInputElement>(null);
  const [panel, setPanel] = useState<'none' | 'settings' | 'camera'>('none');
  const toggle = (p: 'settings' | 'camera') => setPanel((cur) => (cur === p ? 'none' : p));

  const onKey = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      void sendDraft();
    } else if (e.key === 'Escape' && busy) stop();
  };
  return (
    <div className="composer-dock">
      {visible && <NoticeBar />}
      {busy && (
        <div className="stop-row">
          <button type="button" className="button" onClick={stop} data-testid="stop">
            <Square aria-hidden size={14} /> Stop answering
          </button>
        </div>
      )}
      {queued !== null && (
        <div className="queued" role="status" data-testid="queued">
          <Clock aria-hidden size={14} /> <span className="queued-text">Queued, sent when this answer ends: “{queued}”</span>
          <button type="button" className="icon-button" aria-label="Cancel the queued message" onClick={cancelQueued}>
            <X aria-hidden size={14} />
          </button>
        </div>
      )}
      {panel === 'settings' && <ChatSettingsPanel />}
      <div hidden={panel !== 'camera'}>
        <Webcam />
      </div>
      <div className="composer">
        {attachments.length > 0 && (
          <ul className="attachments" data-testid="attachments">
            {attachments.map((a) => (
              <AttachmentChip key={a.key} a={a} />
            ))}
          </ul>
        )}
        <textarea
          className="composer-input"
          aria-label="Message"
          placeholder={ready ? 'Ask about the image… (Enter sends, Shift+Enter newline, Esc stops)' : 'Load a model (top bar) to start'}
          value={draft}
          onChange={(e) => setDraft(e.target.value)}
          onKeyDown={onKey}
          rows={2}
        />
        <div className="composer-bar">
          <input ref={fileInput} type="file" accept="image/*" multiple hidden data-testid="file-input" onChange={(e) => void attach([...(e.target.files ?? [])])} />
          <button type="button" className="icon-button" onClick={() => fileInput.current?.click()} aria-label="Add image" title="Add image">
            <ImagePlus aria-hidden size={18} />
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
          <button type="button" className="icon-button" onClick={() => videoInput.current?.click()} aria-label="Add video" title="Add video">
            <Film aria-hidden size={18} />
          </button>
          <button type="button" className="icon-button" onClick={() => toggle('camera')} aria-expanded={panel === 'camera'} aria-label="Webcam" title="Webcam" data-testid="camera-toggle">
            <Camera aria-hidden size={18} />
          </button>
          <button type="button" className="icon-button" onClick={() => toggle('settings')} aria-expanded={panel === 'settings'} title="Settings">
            <Settings2 aria-hidden size={18} /> <span className="sr-only">Settings</span>
          </button>
          <ContextMeter />
          <button type="button" className="button button-primary send" onClick={() => void sendDraft()} disabled={!ready} data-testid="send" title={busy ? 'Queue this message for when the answer ends' : 'Send'}>
            <Send aria-hidden size={16} /> {busy ? 'Queue' : 'Send'}
          </button>
        </div>
      </div>
    </div>
  );
}

function EmptyThread() {
  const ready = useEngineStore((s) => s.status.kind === 'ready');
  return (
    <div className="empty" data-testid="empty-thread">
      <h2>Ask about an image</h2>
      <p className="muted">A vision-language model that sees an image as a single token, running on your GPU: nothing you show it leaves this machine.</p>
      <ol className="steps">
        <li className={ready ? 'done' : ''}>{ready ? 'The model is loaded.' : 'Load a model: the demo model (top bar) needs no download.'}</li>
        <li>Drop, paste or pick an image (or a video, or the webcam).</li>
        <li>Ask a question and press Enter.</li>
      </ol>
    </div>
  );
}

export function Chat({ visible }: { visible: boolean }) {
  const { messages, attach, restore, conversationId } = useChatStore();
  const thread = useRef<HTMLDivElement>(null);
  const list = useRef<HTMLOListElement>(null);
  useEffect(() => {
    void restore();
  }, [restore]);

  // Drop anywhere on the window (images, videos, or a checkpoint folder), paste anywhere on the page.
  useWindowEvents(
    {
      dragover: (e) => e.preventDefault(),
      drop: (e) => {
        e.preventDefault();
        if (e.dataTransfer?.files.length) void readDrop(e.dataTransfer).then(onDropped);
      },
      paste: (e) => {
        const files = [...(e.clipboardData?.files ?? [])];
        if (files.length) {
          e.preventDefault();
          void attach(files);
        }
      },
    },
    [attach],
  );

  // A conversation opened (picked, or restored after a reload) shows its latest messages.
  const hasMessages = messages.length > 0;
  useEffect(() => {
    const el = thread.current;
    if (el && hasMessages) el.scrollTop = el.scrollHeight;
  }, [conversationId, hasMessages]);
  // The newest message stays in view, unless the user scrolled up to read, whatever changes the geometry: an answer
  // streaming in, its actions and stats appearing when it ends, or the thread's box shrinking because the camera or
  // settings panel opened above the composer (new text alone would miss the last two).
  useEffect(() => {
    const el = thread.current;
    if (!el) return;
    let pinned = true;
    const onScroll = () => {
      pinned = el.scrollHeight - el.scrollTop - el.clientHeight < 160;
    };
    const follow = new ResizeObserver(() => {
      if (pinned) el.scrollTop = el.scrollHeight;
    });
    follow.observe(el);
    if (list.current) follow.observe(list.current);
    el.addEventListener('scroll', onScroll, { passive: true });
    return () => {
      follow.disconnect();
      el.removeEventListener('scroll', onScroll);
    };
  }, [hasMessages]);

  return (
    <section className="chat" aria-label="Chat" data-testid="chat" hidden={!visible}>
      <div className="thread-scroll" ref={thread}>
        {messages.length === 0 ? (
          <EmptyThread />
        ) : (
          <ol className="thread" aria-live="polite" ref={list}>
            {messages.map((m, i) => (
              <Message key={m.id} m={m} last={i >= messages.length - 2} />
            ))}
          </ol>
        )}
      </div>
      <Composer visible={visible} />
    </section>
  );
}
