import { UnsupportedError, type CameraSource } from '@cctv/core';
import { createRpicamSource } from './rpicam/index.js';
import { createRtpSource } from './rtp/index.js';
import { createRtspSource } from './rtsp/index.js';
import { createTestSource } from './test/index.js';
import type { Source } from './types.js';

/** Makes the source for a camera's validated `source` config. */
export function createSource(cfg: CameraSource, runtimeDir: string): Source {
  switch (cfg.kind) {
    case 'test':
      return createTestSource(cfg);
    case 'rtsp':
      return createRtspSource(cfg, runtimeDir);
    case 'rpicam':
      return createRpicamSource(cfg);
    case 'rtp':
      return createRtpSource(cfg);
    case 'whip':
      // A WHIP publisher sends to the SFU itself; the master never gives such a camera to a camera-node.
      throw new UnsupportedError('a whip camera has no source on a camera-node: its publisher sends to the SFU');
  }
}
