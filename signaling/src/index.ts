/**
 * @cctv/signaling: the master and API gateway. This file is the package's only door.
 */
export { startSystem, lanUrls, VERSION, WEB_DIR } from './system.js';
export type { System, StartOptions } from './system.js';
export { buildApp, routes, cameraView } from './app.js';
export type { AppDeps, Route, Method } from './app.js';
export { ERRORS, ApiError, toApiError } from './errors.js';
export type { ErrorCode } from './errors.js';
export { CameraStore, publicSource } from './cameras.js';
export { ClusterRuntime } from './cluster/runtime.js';
export type { WhepTarget, CameraRuntime } from './cluster/runtime.js';
export { createCluster } from './cluster/cluster.js';
export type { Cluster } from './cluster/cluster.js';
export { place, smooth } from './cluster/placement.js';
export type { Candidate, Placement, Move } from './cluster/placement.js';
export { startNode } from './node.js';
export type { RunningNode } from './node.js';
export type { ServerMessage } from './ws.js';
