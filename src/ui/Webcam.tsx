// Webcam: preview with camera choice, "ask about this frame" (the frame goes into the chat as an image), and live
// mode (live-store.ts). Permission denied or no camera gives a clear message; all of it works offline.
import { useEffect, useRef, useState } from 'react';
import { formatBytes } from '../gpu/device.ts';
import { useChatStore } from './chat-store.ts';
import { useEngineStore } from './engine-store.ts';
import { useLiveStore } from './live-store.ts';

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
  };

  const last = live.rounds.at(-1);
  return (
    <section className="panel" aria-labelledby="webcam-heading" data-testid="webcam">
      <h2 id="webcam-heading">Webcam</h2>
      {error && (
        <p className="notice notice-error" role="alert" data-testid="camera-error">
          {error}
        </p>
      )}
      <div className="row">
        {stream ? (
          <button type="button" onClick={stopCamera}>
            Stop camera
          </button>
        ) : (
          <button type="button" onClick={() => void start()} data-testid="start-camera">
            Start camera
          </button>
        )}
        {devices.length > 1 && (
          <select
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
      <video ref={video} autoPlay muted playsInline className="camera" hidden={!stream} aria-label="Camera preview" />
      {stream && (
        <>
          <div className="row">
            <button type="button" disabled={!ready} onClick={() => void askAboutFrame().catch((e: Error) => setError(e.message))} data-testid="capture-frame">
              Ask about this frame
            </button>
          </div>
          <fieldset className="live">
            <legend>Live mode</legend>
            <label>
              Standing question <input value={live.question} onChange={(e) => live.setQuestion(e.target.value)} disabled={live.running} />
            </label>
            <label>
              Every{' '}
              <input type="number" min={0.5} step={0.5} value={live.intervalS} onChange={(e) => live.setInterval(Number(e.target.value))} disabled={live.running} /> s
            </label>
            {live.running ? (
              <button type="button" onClick={live.stop} data-testid="live-stop">
                Stop live
              </button>
            ) : (
              <button type="button" disabled={!ready} onClick={() => live.start(capture)} data-testid="live-start">
                Start live
              </button>
            )}
            <p role="status" data-testid="live-status" data-rounds={live.count} data-memory={last?.memoryTotal}>
              {live.count} rounds, {live.fps.toFixed(2)} answers/s, {live.dropped} stale frames dropped
              {last && `, latency ${(last.latencyMs / 1000).toFixed(1)} s, GPU memory ${formatBytes(last.memoryTotal)}`}
            </p>
            {last && <p data-testid="live-answer">{last.text || '…'}</p>}
            {live.error && (
              <p className="notice notice-error" role="alert">
                {live.error}
              </p>
            )}
          </fieldset>
        </>
      )}
    </section>
  );
}
