import type { CameraSource } from '@cctv/core';
import type { Source } from '../types.js';

type RtpSource = Extract<CameraSource, { kind: 'rtp' }>;

/**
 * Already-encoded H.264 or H.265 RTP arriving on a UDP port (an encoder, a test). No process: the
 * camera's relay listens on the configured port, drops what is not RTP of the configured payload type,
 * and forwards the rest. The stream is considered failed when packets stop (stall timeout).
 */
export function createRtpSource(cfg: RtpSource): Source {
  return {
    codec: cfg.codec,
    payloadType: cfg.payloadType,
    listen: { host: cfg.host, port: cfg.port },
    canRequestKeyframe: false,
    secrets: [],
    supervisor: null,
    start() {},
    detectCodec: () => cfg.codec,
    requestKeyframe() {},
    restart() {},
    async close() {},
  };
}
