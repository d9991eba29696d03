/**
 * @cctv/camera-node: owns cameras and sends their RTP to the SFU. This file is the package's only door.
 */
import type { Config } from '@cctv/core';
import { CameraNode } from './cameraNode.js';

export type { CameraNode, CameraNodeOptions, CameraNodeEvents } from './cameraNode.js';
export type { Camera, CameraSettings, CameraEvents } from './camera.js';
export { TimecodeFrames, encodeTimecode, decodeTimecode, TIMECODE_BITS, TIMECODE_BLOCK } from './sources/test/timecode.js';
export { withCredentials } from './sources/rtsp/index.js';
export { RPICAM_COMMANDS } from './sources/rpicam/index.js';

/** Creates and initializes the camera node of this process. */
export async function createCameraNode(opts: { settings: Config['cameraNode']; dataDir: string }): Promise<CameraNode> {
  const node = new CameraNode(opts);
  await node.initialize();
  return node;
}
export { startCameraNodeRole } from './role.js';
export type { CameraNodeRole, CameraNodeRoleOptions } from './role.js';
