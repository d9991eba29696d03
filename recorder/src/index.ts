/**
 * The recorder: records cameras from the SFU into a local spool as HLS fMP4 segments, enters each in
 * the database in its camera's SHA-256 chain, copies it to the storage (a NAS) and verifies the copy;
 * retention, verification, signed hourly manifests, VOD playlists and the timeline.
 */
export { Recorder } from './recorder.js';
export type { RecorderOptions, RecorderStatus, RecorderEvents } from './recorder.js';
export { Segmenter, parsePlaylist } from './segmenter.js';
export type { StreamSource, SpooledSegment, SegmenterOptions } from './segmenter.js';
export { Archive, linkOf, rowLink, storagePath, initStoragePath, RANGE_JOIN_MS } from './archive.js';
export type { SegmentRow, NewSegment } from './archive.js';
export { Storage, StorageProblem } from './storage.js';
export type { StorageStatus } from './storage.js';
export { IDENTITY_FILE } from './storageProtocol.js';
export type { StorageIdentity } from './storageProtocol.js';
export { applyRetention } from './retention.js';
export type { RetentionResult } from './retention.js';
export { verifyArchive } from './verify.js';
export type { VerifyReport, Finding, FindingKind, VerifyOptions } from './verify.js';
export { signPendingManifests, signManifest, verifyManifest, HOUR_MS } from './manifest.js';
export type { Manifest } from './manifest.js';
export { vodPlaylist, timeline } from './playlist.js';
export type { Timeline } from './playlist.js';
export { exportClip, verifyExport } from './export.js';
export type { ExportProof, ExportCheck, ExportOptions } from './export.js';
export { minuteThumbnail, THUMBNAIL_WIDTH } from './thumbnail.js';
export { siteIdOf, startRecorderRole } from './role.js';
export type { RecorderRole, RecorderRoleOptions } from './role.js';
