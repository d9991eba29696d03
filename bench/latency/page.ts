import { readFileSync } from 'node:fs';

/**
 * The measurement running in the browser: a WHEP viewer whose every rendered frame
 * (requestVideoFrameCallback) is drawn to a canvas and its timecode row read back.
 * The function itself is plain JS in page.js (sent to the page as text); these are its types.
 */
export interface PageSample {
  /** Source timestamp (ms since the epoch) read from the frame. */
  src: number;
  /** When Chrome expects the frame to be on screen (metadata.expectedDisplayTime), ms since the epoch. */
  display: number;
  /** When the callback ran (the frame has been composited), ms since the epoch. */
  callback: number;
  /** When the frame's last packet arrived (metadata.receiveTime), ms since the epoch, or 0. */
  receive: number;
}

export interface PageResult {
  samples: PageSample[];
  /** From the POST to the first rendered frame, in ms. */
  firstFrameMs: number | null;
  /** From the POST to the answer, in ms. */
  answerMs: number | null;
  badReads: number;
  /** Connection state changes, [state, ms after the POST]. */
  events: Array<[string, number]>;
  stats: { jitterBufferMs: number; framesDropped: number; packetsLost: number; nacks: number; plis: number } | null;
  error: string | null;
}

/** Source text of `measureInPage(args)`, to evaluate in the page. */
export const MEASURE_SOURCE = readFileSync(new URL('./page.js', import.meta.url), 'utf8');
