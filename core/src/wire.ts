import type { VideoCodec } from './config/schema.js';

/**
 * Types that cross process boundaries (HTTP, WebSocket, the bus). Plain data only.
 */

/** Where a camera stands, as camera-node sees it. */
export const CameraState = {
  /** The source is being started and has not delivered a packet yet. */
  Starting: 'starting',
  /** Packets are flowing. */
  Live: 'live',
  /** The source failed or stalled; it is retried with backoff. */
  Reconnecting: 'reconnecting',
  /** Disabled, or removed. */
  Stopped: 'stopped',
} as const;
export type CameraState = (typeof CameraState)[keyof typeof CameraState];

/** Counters and rates of one camera's input, from camera-node. */
export interface CameraInputStats {
  /** Codec of the stream, once known. */
  codec: VideoCodec | null;
  /** Frames per second over the last few seconds. */
  fps: number;
  /** Input bitrate in kbit/s over the last few seconds. */
  bitrateKbps: number;
  /** RTP packets forwarded since the camera started. */
  packets: number;
  /** Bytes forwarded. */
  bytes: number;
  /** Keyframes seen. */
  keyframes: number;
  /** Packets dropped because they were not well-formed RTP of the expected payload type. */
  junk: number;
  /** Times the source was restarted after a failure or stall. */
  reconnects: number;
  /** Wall-clock ms of the last packet, or null. */
  lastPacketAt: number | null;
}

/** A camera's state with its input stats, as sent to the dashboard. */
export interface CameraStatus {
  id: string;
  state: CameraState;
  /** Wall-clock ms when the state last changed. */
  since: number;
  /** Why the source last failed (scrubbed of secrets), or null. */
  lastError: string | null;
  input: CameraInputStats;
  /** Viewers watching now (from the SFU). */
  viewers: number;
}

/** Where an SFU takes a camera's RTP. */
export interface IngestAddress {
  host: string;
  port: number;
}
