// Webcam: preview with camera choice, "ask about this frame" (the frame goes into the chat as an image and the
// composer's question, else the last one, is asked about it), and live mode (live-store.ts). Permission denied or
// no camera gives a clear message; all of it works offline.
import { useEffect, useRef, useState } from 'react';
import { formatBytes } from '../util/format-bytes.ts';
import { useChatStore } from './chat-store.ts';
import { useEngineStore } from './engine-store.ts';
import { useLiveStore } from './live-store.ts';

const DEFAULT_FRAME_QUESTION = 'What is in this picture?';

function cameraError(e: unknown): string {
  const name = (e as { name?: string }).name;
  if (name === 'NotAllowedError' || name === 'SecurityError') return 'Camera permission was denied. Allow the camera for this site (the lock icon in the address bar) and try again.';
  if (name === 'NotFoundError' || name === 'OverconstrainedError') return 'No camera was found. Connect one, or attach an image instead.';
  if (name === 'NotReadableError') return 'The camera is in use by another program.';
  return `The camera could not be started: ${e instanceof Error ? e.message : String(e)}`;
}

export function Webcam() {
  const video = useRef<HTMLVideoElement>(null);
  const [stream, setStream] = useState<MediaStream | null>(null);
  const [devices, setDevices] = useState<MediaDeviceInfo[]>([]);
  const [deviceId, setDeviceId] = useState('');
  const [error, setError] = useState<string | null>(null);
  const attach = useChatStore((s) => s.attach);
  const [asking, setAsking] = useState(false);
  const ready = useEngineStore((s) => s.status.kind === 'ready');
  const live = useLiveStore();

  useEffect(() => () => stream?.getTracks().forEach((t) => t.stop()), [stream]);
  useEffect(() => {
    if (video.current) video.current.srcObject = stream;
  }, [stream]);

  const start = async (id = deviceId) => {
    setError(null);
    try {
      if (!navigator.mediaDevices?.getUserMedia) throw Object.assign(new Error('this browser offers no camera access'), { name: 'NotFoundError' });
      stream?.getTracks().forEach((t) => t.stop());
      const s = await navigator.mediaDevices.getUserMedia({ video: id ? { deviceId: { exact: id } } : true, audio: false });
      setStream(s);
      setDevices((await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === 'videoinput'));
    } catch (e) {
      setError(cameraError(e));
    }
  };
  const stopCamera = () => {
    live.stop();
    stream?.getTracks().forEach((t) => t.stop());
    setStream(null);
  };
  const capture = async (): Promise<ImageBitmap> => {
    const v = video.current;
    if (!v || v.videoWidth === 0) throw new Error('the camera has no frame yet');
    return createImageBitmap(v);
  };
  const askAboutFrame = async () => {
    const bitmap = await capture();
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    canvas.getContext('2d')!.drawImage(bitmap, 0, 0);
    bitmap.close();
    const blob = await canvas.convertToBlob({ type: 'image/png' });
    await attach([new File([blob], `camera-${new Date().toISOString().slice(11, 19)}.png`, { type: 'image/png' })]);
    const chat = useChatStore.getState();
    await chat.attachments.at(-1)?.encoded;
    if (chat.draft.trim()) return chat.sendDraft();
    const lastQuestion = chat.messages.findLast((m) => m.role === 'user' && m.text.trim())?.text;
    await chat.send(lastQuestion ?? DEFAULT_FRAME_QUESTION);
  };

  const last = live.rounds.at(-1);
  return (
    <section className="panel webcam" aria-labelledby="webcam-heading" data-testid="webcam">
      <h2 id="webcam-heading">Webcam</h2>
      {error && (
        <p className="notice notice-error" role="alert" data-testid="camera-error">
          {error}
        </p>
      )}
      <div className="row">
        {stream ? (
          <button type="button" className="button" onClick={stopCamera}>
            Stop camera
          </button>
        ) : (
          <button type="button" className="button" onClick={() => void start()} data-testid="start-camera">
            Start camera
          </button>
        )}
        {devices.length > 1 && (
          <select
            className="select"
            aria-label="Camera"
            value={deviceId}
            onChange={(e) => {
              setDeviceId(e.target.value);
              void start(e.target.value);
            }}
          >
            {devices.map((d, i) => (
              <option key={d.deviceId} value={d.deviceId}>
                {d.label || `Camera ${i + 1}`}
              </option>
            ))}
          </select>
        )}
      </div>
      {/* Side by side where there is room (the preview and its button, live mode), so the panel stays short and the
          message box stays in view under it; stacked on a phone. */}
      <div className="webcam-body">
        <div className="webcam-view">
          <video ref={video} autoPlay muted playsInline className="camera" hidden={!stream} aria-label="Camera preview" />
          {stream && (
            <div className="row">
              <button
                type="button"
                className="button button-primary"
                disabled={!ready || asking}
                onClick={() => {
                  setAsking(true);
                  void askAboutFrame()
                    .catch((e: Error) => setError(e.message))
                    .finally(() => setAsking(false));
                }}
                data-testid="capture-frame"
                title="Attaches this frame and asks the question in the message box (or the last one)"
              >
                Ask about this frame
              </button>
            </div>
          )}
        </div>
        {stream && (
          <fieldset className="live">
            <legend>Live mode</legend>
            <label>
              Standing question <input className="input" value={live.question} onChange={(e) => live.setQuestion(e.target.value)} disabled={live.running} />
            </label>
            <label>
              Every{' '}
              <input className="input input-number" type="number" min={0.5} step={0.5} value={live.intervalS} onChange={(e) => live.setInterval(Number(e.target.value))} disabled={live.running} /> s
            </label>
            {live.running ? (
              <button type="button" className="button" onClick={live.stop} data-testid="live-stop">
                Stop live
              </button>
            ) : (
              <button type="button" className="button" disabled={!ready} onClick={() => void live.start(capture)} data-testid="live-start">
                Start live
              </button>
            )}
            {live.running && (
              <p className="live-now" role="status" data-testid="live-now">
                {live.current
                  ? `Thinking about frame ${live.current.frame}: ${live.current.phase === 'encoding' ? 'looking at it…' : 'answering…'}`
                  : 'Waiting for the next frame…'}
              </p>
            )}
            {live.current?.text && <p className="muted">{live.current.text}</p>}
            <p className="small muted" data-testid="live-status" data-rounds={live.count} data-memory={last?.memoryTotal}>
              {live.count} answers, {live.fps.toFixed(2)} answers/s; {live.dropped} frames skipped while an answer was running (stale frames dropped, never queued)
              {last && `; last latency ${(last.latencyMs / 1000).toFixed(1)} s, GPU memory ${formatBytes(last.memoryTotal)}`}
            </p>
            {last && (
              <p data-testid="live-answer">
                <span className="muted small">Frame {last.frame}: </span>
                {last.text || '…'}
              </p>
            )}
            {live.error && (
              <p className="notice notice-error" role="alert">
                {live.error}
              </p>
            )}
          </fieldset>
        )}
      </div>
    </section>
  );
}
