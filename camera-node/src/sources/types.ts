import type { CameraSource, ExitInfo, Logger, Supervisor, VideoCodec } from '@cctv/core';

/** What a source needs from its camera. */
export interface SourceContext {
  cameraId: string;
  /** Where the source sends its RTP (the camera's relay on this machine). */
  rtpTarget: { host: string; port: number };
  /** Delay before the first restart and the cap of the backoff, in ms. */
  reconnect: { initialDelayMs: number; maxDelayMs: number };
  logger: Logger;
  /** Called when the source's processes have started (again). */
  onSpawn: () => void;
  /** Called when the source process ended (it will be restarted by its supervisor). */
  onExit: (info: ExitInfo) => void;
}

/**
 * One kind of camera input. Sources are made by `createSource` from the camera's config; the camera
 * owns the relay and the state, a source only produces RTP towards `rtpTarget`.
 */
export interface Source {
  /** The codec when known before the first packet (test, rpicam, rtp); null for RTSP until it connects. */
  readonly codec: VideoCodec | null;
  /** Payload type the stream arrives with, or null when a local ffmpeg sends (any is accepted). */
  readonly payloadType: number | null;
  /** Fixed address the relay must listen on (rtp sources), or null for a free local port. */
  readonly listen: { host: string; port: number } | null;
  /** Whether requestKeyframe() makes the source send a keyframe soon. */
  readonly canRequestKeyframe: boolean;
  /** Secrets to scrub from anything logged about this source. */
  readonly secrets: string[];
  /** Starts producing RTP. */
  start(ctx: SourceContext): void;
  /** Learns the codec once the source is running (RTSP); null while unknown. */
  detectCodec(): VideoCodec | null;
  /** Asks for a keyframe (only when canRequestKeyframe). */
  requestKeyframe(): void;
  /** Restarts the source process, e.g. after a stall. */
  restart(reason: string): void;
  /** The supervisor of its process, if it has one (for pids and restart counts). */
  readonly supervisor: Supervisor | null;
  /** Stops it; resolves when its processes have exited. */
  close(): Promise<void>;
}

/** A source factory for one `kind`. */
export type SourceFactory<S extends CameraSource = CameraSource> = (cfg: S, runtimeDir: string) => Source;

/** Options every ffmpeg that sends RTP to the relay shares (RFC 3550 over UDP, RTCP on the same port). */
export function rtpOutputArgs(target: { host: string; port: number }, payloadType: number, ssrc: number): string[] {
  return [
    '-f', 'rtp',
    '-payload_type', String(payloadType),
    '-ssrc', String(ssrc >>> 0),
    // 1200 bytes leaves room for SRTP and IP headers under a 1280-byte IPv6 minimum MTU.
    '-pkt_size', '1200',
    `rtp://${target.host}:${target.port}?rtcpport=${target.port}`,
  ];
}

/** Options every ffmpeg in this system starts with: quiet, no stdin commands, low delay. */
export const FFMPEG_COMMON = ['-hide_banner', '-nostats', '-loglevel', 'warning', '-nostdin'] as const;
