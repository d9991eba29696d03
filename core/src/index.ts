/**
 * @cctv/core: what every part of the system shares. This file is the package's only door.
 */
export { InvalidStateError, NotFoundError, UnsupportedError, UnavailableError, TimeoutError, ValidationError, assertArg } from './errors.js';
export { TypedEmitter } from './events.js';
export { canonicalJson } from './json.js';
export { createLogger, configureLogging, redactUrl, scrubSecrets, LOG_LEVELS, LOG_FORMATS } from './log.js';
export type { Logger, LogLevel, LogFormat } from './log.js';
export { registry, counter, gauge, histogram, metricsText, collectDefaultMetrics } from './metrics.js';

export {
  ConfigSchema, CameraSchema, CameraSourceSchema, TestSourceSchema, RtspSourceSchema, RpicamSourceSchema, RtpSourceSchema,
  CAMERA_ID_PATTERN, CAMERA_SOURCE_KINDS, VIDEO_CODECS, ROLES, ZoneSchema, AlertRuleSchema, MotionSchema, polygonSelfIntersection,
} from './config/schema.js';
export type { Config, ConfigInput, StorageConfig, CameraConfig, CameraInput, CameraSource, CameraSourceKind, VideoCodec, Zone, AlertRule, MotionConfig } from './config/schema.js';
export { loadConfig, parseWith, readConfigFile } from './config/load.js';
export type { LoadConfigOptions } from './config/load.js';

export { parseRtpHeader, newRtpHeader, isRtcp, seqDiff, tsDiff, RTP_HEADER_MIN } from './rtp/rtp.js';
export type { RtpHeader } from './rtp/rtp.js';
export { isKeyframeStart, h264IsKeyframeStart, h265IsKeyframeStart, rtpInputSdp, VIDEO_CLOCK_RATE } from './rtp/codecs.js';
export { Depacketizer } from './rtp/depacketize.js';
export { buildPli, buildFir, readRtcpRequests, RtcpType } from './rtp/rtcp.js';
export type { RtcpRequests } from './rtp/rtcp.js';
export { INGEST_PAYLOAD_TYPE, codecOfIngestPayloadType } from './rtp/payloadTypes.js';

export { Supervisor, SupervisorState, spawnGuarded, terminate, liveChildCount } from './ffmpeg/supervisor.js';
export type { SupervisorOptions, ProcessSpec, ExitInfo } from './ffmpeg/supervisor.js';
export { findExecutable, requireExecutable } from './ffmpeg/executables.js';

export { openDatabase, isDatabaseUnavailable } from './db/database.js';
export type { Database, Queryable, OpenDatabaseOptions } from './db/database.js';
export { migrate, MIGRATIONS_DIR } from './db/migrate.js';
export type { MigrationResult } from './db/migrate.js';

export { openBus } from './bus/bus.js';
export type { Bus, OpenBusOptions } from './bus/bus.js';

export { generateKeys, seal, open, isEnvelope } from './cluster/keys.js';
export type { KeyPair, Envelope } from './cluster/keys.js';
export { Channel, Key } from './cluster/messages.js';
export type { Heartbeat, RoomReport, CameraAssignment, Command, WireCommand, RpcRequest, RpcResults, RpcError, CameraEvent, MotionNotice, Role } from './cluster/messages.js';
export { RpcClient, serveRpc, toRpcError, fromRpcError } from './cluster/rpc.js';
export type { RpcClientOptions } from './cluster/rpc.js';
export { NodeAgent } from './cluster/agent.js';
export { sealBox, openBox, generateBoxKeys } from './cluster/box.js';
export type { Box } from './cluster/box.js';
export { loadOrEnroll, readIdentity, writeIdentity, newNodeKeys } from './cluster/identity.js';
export type { NodeIdentity, EnrollRequest, EnrollOptions } from './cluster/identity.js';
export { joinCluster } from './cluster/join.js';
export type { ClusterMembership } from './cluster/join.js';
export type { AgentOptions, AgentEvents, ReportPart } from './cluster/agent.js';

export { CameraState } from './wire.js';
export type { CameraStatus, CameraInputStats, IngestAddress } from './wire.js';
