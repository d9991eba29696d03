import type { VideoCodec } from '../config/schema.js';

/**
 * The payload types of the camera-node → SFU → recorder RTP contract: the payload type says the codec,
 * so a receiver knows what it gets from the first packet, without a side channel.
 */
export const INGEST_PAYLOAD_TYPE = { H264: 96, H265: 97 } as const satisfies Record<VideoCodec, number>;

/** The codec of an ingest payload type, or undefined for any other. */
export function codecOfIngestPayloadType(pt: number): VideoCodec | undefined {
  return pt === INGEST_PAYLOAD_TYPE.H264 ? 'H264' : pt === INGEST_PAYLOAD_TYPE.H265 ? 'H265' : undefined;
}
