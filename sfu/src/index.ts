/**
 * @cctv/sfu: the media router. This file is the package's only door.
 */
import { Sfu, type SfuOptions } from './sfu.js';

export type { Sfu, SfuOptions, SfuEvents } from './sfu.js';
export type { Room, RoomEvents, ViewerAnswer, PublisherAnswer } from './room.js';
export type { Publisher, PublisherStats, PublisherEvents } from './publisher.js';
export { PublisherState } from './publisher.js';
export type { Viewer, ViewerStats, ViewerEvents } from './viewer.js';
export { ViewerState } from './viewer.js';
export { hostIPv4Addresses } from './sfu.js';
export { MAX_SDP_BYTES } from './sdp.js';

/** Creates and initializes an SFU. */
export async function createSfu(opts: SfuOptions): Promise<Sfu> {
  const sfu = new Sfu(opts);
  await sfu.initialize();
  return sfu;
}
export { startSfuRole } from './role.js';
export type { SfuRole, SfuRoleOptions } from './role.js';
