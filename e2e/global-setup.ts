// Runs once before the browser starts: files that Chromium's command line names must exist by then.
import { writeCameraClip } from './camera-clip.ts';

export default function globalSetup(): void {
  writeCameraClip();
}
