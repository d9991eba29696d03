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
export { siteIdOf, startRecorderRole, loadCameras, followPlacements } from './role.js';
export type { RecorderRole, RecorderRoleOptions } from './role.js';
export { Detector } from './motion/detector.js';
export type { DetectorOptions, DetectorStatus, DetectorSinks } from './motion/detector.js';
export { startDetectorRole } from './motion/role.js';
export type { DetectorRole, DetectorRoleOptions } from './motion/role.js';
export { EventStore, eventThumbnail, PROTECT_MARGIN_MS } from './motion/events.js';
export type { EventQuery } from './motion/events.js';
export { MotionModel, DEFAULT_MODEL_PATH } from './motion/model.js';
export { MotionTracker } from './motion/tracker.js';
export { FrameTap, decodeFile } from './motion/decoder.js';
export type { DecodedFrame } from './motion/decoder.js';
export { compileZones } from './motion/zones.js';
export type { MotionEvent, EventNotice } from './motion/types.js';
export { detectFrames } from './motion/offline.js';
export type { OfflineEvent } from './motion/offline.js';
export { AlertService } from './alerts/service.js';
export type { AlertServiceOptions, AlertEventData, AlertMessage, WebhookTestResult } from './alerts/service.js';
export { AlertChannel, AlertType, DeliveryState } from './alerts/deliveries.js';
export type { Delivery, DeliveryAttempt, Webhook } from './alerts/deliveries.js';
export { MqttPublisher, mqttTopics, homeAssistantDiscovery } from './alerts/mqtt.js';
export { sign as signWebhook, verify as verifyWebhook, newSecret as newWebhookSecret, WebhookVerificationError } from './alerts/standardWebhooks.js';
