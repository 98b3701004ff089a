// Which frames of a video the model sees (spec section 7), as LLaVA-Mini's load_video + get_seq_frames
// (llavamini/eval/run_llava_mini.py): num_frm = int(total // fps) capped at the frame count, then the middle
// of each of num_frm equal segments. The arithmetic follows Python's exactly: `//` on floats is CPython's
// floor division (1499 // 14.99 is 99, not 100) and np.round rounds halves to even (np.round(4.5) is 4).

/**
 * Indices (0-based, ascending, possibly repeated when fps < 2) of the frames to sample from a video of
 * `totalFrames` frames at `fps` frames per second: about one per second of video. `maxFrames` caps the count
 * the way LLaVA-Mini's demo server does (num_frm = min(num_frm, cap), segments widen to cover the whole video).
 */
export function sampleFrameIndices(totalFrames: number, fps: number, maxFrames = Infinity): number[] {
  if (!Number.isSafeInteger(totalFrames) || totalFrames < 1) {
    throw new Error(`sampleFrameIndices: the frame count must be a positive integer, got ${totalFrames}`);
  }
  if (!Number.isFinite(fps) || fps <= 0) {
    throw new Error(`sampleFrameIndices: fps must be a finite number > 0, got ${fps}`);
  }
  // The reference divides by zero when the video is shorter than 1 s (num_frm = 0). We take one frame
  // instead: the formula with num_frm = 1 gives the middle frame, (N - 1) // 2.
  if (!(maxFrames >= 1)) throw new Error(`sampleFrameIndices: maxFrames must be at least 1, got ${maxFrames}`);
  const count = Math.max(1, Math.min(totalFrames, pyFloorDiv(totalFrames, fps), Math.floor(maxFrames)));
  const seg = (totalFrames - 1) / count;
  const out = new Array<number>(count);
  for (let i = 0; i < count; i++) {
    out[i] = Math.floor((roundHalfEven(seg * i) + roundHalfEven(seg * (i + 1))) / 2);
  }
  return out;
}

/** CPython's float `a // b` for a >= 0, b > 0: floor of (a - fmod(a, b)) / b, not of the rounded a / b. */
function pyFloorDiv(a: number, b: number): number {
  const div = (a - (a % b)) / b;
  if (div === 0) return 0;
  const f = Math.floor(div);
  return div - f > 0.5 ? f + 1 : f;
}

/** np.round for x >= 0: nearest integer, halves to even. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f; // exact for doubles
  if (d !== 0.5) return d < 0.5 ? f : f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * A frame rate measured from presentation timestamps (1 / the median frame duration, as the browser path does),
 * snapped to the nominal rate a container states and decord reports: the nearer of an integer rate and an NTSC one
 * (n·1000/1001), when within 0.5 %. Without it 1 / 0.09999999999999998 = 10.000000000000002 and 30 // fps gives 2 frames, not 3.
 */
export function nominalFrameRate(measured: number): number {
  if (!Number.isFinite(measured) || measured <= 0) throw new Error(`nominalFrameRate: expected a rate > 0, got ${measured}`);
  const integer = Math.round(measured);
  const ntsc = (Math.round((measured * 1001) / 1000) * 1000) / 1001;
  const nearest = Math.abs(measured - integer) <= Math.abs(measured - ntsc) ? integer : ntsc;
  return nearest > 0 && Math.abs(measured - nearest) <= measured * 0.005 ? nearest : measured;
}
