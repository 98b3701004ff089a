// A user's video file -> the frames the model sees (spec section 7: about 1 fps, sampleFrameIndices, capped).
// Animated GIFs go through WebCodecs' ImageDecoder (exact frames and delays, like the Node CLI's GIF path);
// mp4 / webm / … through a <video> element: the frame rate is measured from requestVideoFrameCallback while the
// video plays muted for a moment (browsers do not expose it), then each sampled frame is sought and captured.
import { nominalFrameRate, sampleFrameIndices } from '../image/video-frames.ts';

export interface SampledVideo {
  frames: ImageBitmap[];
  indices: number[];
  totalFrames: number;
  fps: number;
}

const BITMAP_OPTIONS: ImageBitmapOptions = { colorSpaceConversion: 'none', premultiplyAlpha: 'none' };

async function isGif(file: Blob): Promise<boolean> {
  const head = new Uint8Array(await file.slice(0, 6).arrayBuffer());
  return String.fromCharCode(...head) === 'GIF87a' || String.fromCharCode(...head) === 'GIF89a';
}

async function gifFrames(file: Blob, maxFrames: number, onFrame: (done: number, total: number) => void): Promise<SampledVideo> {
  if (typeof ImageDecoder === 'undefined') throw new Error('this browser cannot decode animated GIFs frame by frame (no WebCodecs ImageDecoder)');
  const decoder = new ImageDecoder({ data: await file.arrayBuffer(), type: 'image/gif' });
  try {
    await decoder.tracks.ready;
    await decoder.completed;
    const totalFrames = decoder.tracks.selectedTrack?.frameCount ?? 0;
    if (totalFrames < 1) throw new Error('the GIF has no frames');
    // Frame durations as browsers play them: a delay of 0 or 10 ms (or none) counts as 100 ms, as in the Node CLI.
    let seconds = 0;
    for (let i = 0; i < totalFrames; i++) {
      const { image } = await decoder.decode({ frameIndex: i });
      const us = image.duration ?? 0;
      seconds += (us <= 10_000 ? 100_000 : us) / 1e6;
      image.close();
    }
    const fps = totalFrames / Math.max(seconds, 1e-3);
    const indices = sampleFrameIndices(totalFrames, fps, maxFrames);
    const frames: ImageBitmap[] = [];
    for (const frameIndex of indices) {
      const { image } = await decoder.decode({ frameIndex });
      frames.push(await createImageBitmap(image, BITMAP_OPTIONS));
      image.close();
      onFrame(frames.length, indices.length);
    }
    return { frames, indices, totalFrames, fps };
  } finally {
    decoder.close();
  }
}

function once(target: EventTarget, event: string, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    target.addEventListener(event, () => resolve(), { once: true });
    target.addEventListener('error', () => reject(new Error(what)), { once: true });
  });
}

/** Frames per second from the media times of frames presented during a short muted playback. */
async function measureFps(video: HTMLVideoElement): Promise<number> {
  if (!('requestVideoFrameCallback' in video)) return 30;
  const times: number[] = [];
  await new Promise<void>((resolve) => {
    const onFrame = (_: number, meta: VideoFrameCallbackMetadata) => {
      times.push(meta.mediaTime);
      if (times.length >= 12) resolve();
      else video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
    setTimeout(resolve, 3000);
    void video.play().catch(() => resolve());
  });
  video.pause();
  const deltas = times.slice(1).map((t, i) => t - times[i]!).filter((d) => d > 0).sort((a, b) => a - b);
  return deltas.length ? nominalFrameRate(1 / deltas[Math.floor(deltas.length / 2)]!) : 30;
}

async function mediaFrames(file: Blob, maxFrames: number, onFrame: (done: number, total: number) => void): Promise<SampledVideo> {
  const url = URL.createObjectURL(file);
  const video = document.createElement('video');
  video.muted = true;
  video.playsInline = true;
  video.preload = 'auto';
  try {
    const loaded = once(video, 'loadeddata', 'this browser cannot play the video (unsupported or corrupt)');
    video.src = url;
    await loaded;
    const fps = await measureFps(video);
    if (!Number.isFinite(video.duration) || video.duration <= 0) throw new Error('the video has no known duration');
    const totalFrames = Math.max(1, Math.round(video.duration * fps));
    const indices = sampleFrameIndices(totalFrames, fps, maxFrames);
    const frames: ImageBitmap[] = [];
    for (const index of indices) {
      const seeked = once(video, 'seeked', 'seeking in the video failed');
      video.currentTime = Math.min(video.duration, (index + 0.5) / fps);
      await seeked;
      frames.push(await createImageBitmap(video, BITMAP_OPTIONS));
      onFrame(frames.length, indices.length);
    }
    return { frames, indices, totalFrames, fps };
  } finally {
    video.removeAttribute('src');
    URL.revokeObjectURL(url);
  }
}

/** The sampled frames of a video file, or an Error with one clear sentence naming the file. */
export async function decodeVideoForEngine(file: File, maxFrames: number, onFrame: (done: number, total: number) => void = () => undefined): Promise<SampledVideo> {
  try {
    return (await isGif(file)) ? await gifFrames(file, maxFrames, onFrame) : await mediaFrames(file, maxFrames, onFrame);
  } catch (e) {
    throw new Error(`${file.name}: ${(e as Error).message}`);
  }
}
