import { hostname } from 'node:os';
import { z } from 'zod';

/** Camera ids appear in URLs, metrics labels and file names, so they are kept to a safe alphabet. */
export const CAMERA_ID_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$/;

/** Video codecs the live path carries. FFmpeg/SDP names. */
export const VIDEO_CODECS = ['H264', 'H265'] as const;
export type VideoCodec = (typeof VIDEO_CODECS)[number];

const port = z.number().int().min(1).max(65535);
const portOrZero = z.number().int().min(0).max(65535);

const videoShape = {
  /** Frame width in pixels; default 640. */
  width: z.number().int().min(16).max(7680).multipleOf(2).default(640),
  /** Frame height in pixels; default 360. */
  height: z.number().int().min(16).max(4320).multipleOf(2).default(360),
  /** Frames per second; default 30. */
  fps: z.number().int().min(1).max(120).default(30),
  /** Frames between keyframes; default one second's worth (fps). */
  gop: z.number().int().min(1).max(600).optional(),
  /** Target bitrate in kbit/s; default 1500. */
  bitrateKbps: z.number().int().min(50).max(100_000).default(1500),
};

export const TestSourceSchema = z.strictObject({
  kind: z.literal('test'),
  ...videoShape,
  /**
   * `testsrc2`: FFmpeg's test pattern with the wall clock drawn in. `timecode`: frames whose top row of
   * 16×16 blocks encodes the wall-clock millisecond at which the frame entered the encoder (for latency measurement).
   * `motion`: a still, noisy scene that a box crosses at known wall-clock times (for motion detection).
   */
  pattern: z.enum(['testsrc2', 'timecode', 'motion']).default('testsrc2'),
  /** Pattern `motion`: a box crosses the picture for `motionS` seconds at the start of every `periodS` (wall clock); default 20 and 4. */
  periodS: z.number().int().min(2).max(3600).default(20),
  motionS: z.number().min(0.5).max(3600).default(4),
});

export const RtspSourceSchema = z.strictObject({
  kind: z.literal('rtsp'),
  /** `rtsp://` or `rtsps://` URL; credentials may be in it or in username/password. */
  url: z.string().regex(/^rtsps?:\/\/[^\s]+$/, 'must be an rtsp:// or rtsps:// URL'),
  /** RTSP lower transport; default tcp (interleaved), which survives NAT and loss better. */
  transport: z.enum(['tcp', 'udp']).default('tcp'),
  username: z.string().optional(),
  password: z.string().optional(),
});

export const RpicamSourceSchema = z.strictObject({
  kind: z.literal('rpicam'),
  ...videoShape,
  /** Which camera of the Pi (rpicam-vid --camera); default 0. */
  camera: z.number().int().min(0).max(7).default(0),
  /** The executable; default: the first of rpicam-vid, libcamera-vid found on PATH. */
  command: z.string().min(1).optional(),
  /** Extra arguments passed to the executable as they are (e.g. ["--hflip"]). */
  extraArgs: z.array(z.string()).default([]),
});

export const RtpSourceSchema = z.strictObject({
  kind: z.literal('rtp'),
  /** UDP port the RTP arrives on. */
  port,
  /** Address to listen on; default 0.0.0.0. */
  host: z.string().min(1).default('0.0.0.0'),
  codec: z.enum(VIDEO_CODECS),
  /** RTP payload type of the incoming stream (RFC 3551 dynamic range is 96–127). */
  payloadType: z.number().int().min(0).max(127),
});

/**
 * A WebRTC publisher (OBS, GStreamer's whipclientsink, a browser tab) sends the video to
 * `POST /api/cameras/<id>/whip` (RFC 9725). No camera-node runs it: the SFU that holds its room receives it.
 */
export const WhipSourceSchema = z.strictObject({
  kind: z.literal('whip'),
});

export const CameraSourceSchema = z.discriminatedUnion('kind', [TestSourceSchema, RtspSourceSchema, RpicamSourceSchema, RtpSourceSchema, WhipSourceSchema]);
export type CameraSource = z.infer<typeof CameraSourceSchema>;
export type CameraSourceKind = CameraSource['kind'];
export const CAMERA_SOURCE_KINDS = ['test', 'rtsp', 'rpicam', 'rtp', 'whip'] as const satisfies readonly CameraSourceKind[];

/** A point of a zone, as shares of the picture's width and height (0,0 top left; 1,1 bottom right). */
const zonePoint = z.tuple([z.number().min(0).max(1), z.number().min(0).max(1)]);

/** Twice the signed area of a polygon (shoelace). */
function polygonArea2(points: ReadonlyArray<readonly [number, number]>): number {
  let a = 0;
  for (let i = 0; i < points.length; i++) {
    const [x1, y1] = points[i]!;
    const [x2, y2] = points[(i + 1) % points.length]!;
    a += x1 * y2 - x2 * y1;
  }
  return a;
}

function segmentsCross(a: readonly [number, number], b: readonly [number, number], c: readonly [number, number], d: readonly [number, number]): boolean {
  const o = (p: readonly [number, number], q: readonly [number, number], r: readonly [number, number]) => Math.sign((q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]));
  return o(a, b, c) * o(a, b, d) < 0 && o(c, d, a) * o(c, d, b) < 0;
}

/** The first pair of edges of a polygon that cross each other, or null. */
export function polygonSelfIntersection(points: ReadonlyArray<readonly [number, number]>): [number, number] | null {
  const n = points.length;
  for (let i = 0; i < n; i++) {
    for (let j = i + 2; j < n; j++) {
      if (i === 0 && j === n - 1) continue; // neighbours through the closing edge
      if (segmentsCross(points[i]!, points[(i + 1) % n]!, points[j]!, points[(j + 1) % n]!)) return [i, j];
    }
  }
  return null;
}

export const ZoneSchema = z
  .strictObject({
    /** The zone's name, in events, alerts and MQTT topics. */
    name: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_-]{0,31}$/, 'must be 1–32 letters, digits, _ or -, starting with a letter or digit'),
    /** `include`: motion here raises events; `mask`: motion here is ignored (trees, a road, a clock). Default include. */
    kind: z.enum(['include', 'mask']).default('include'),
    /** The polygon, 3–64 points as [x, y] shares of the picture. */
    points: z.array(zonePoint).min(3, 'a zone needs at least 3 points').max(64, 'a zone has at most 64 points'),
    /** How much a cell of the picture must change, as a share of the full grey scale, to count as moving; default 0.06. */
    threshold: z.number().min(0.005, 'threshold must be at least 0.005').max(1, 'threshold must be at most 1').default(0.06),
    /** The share of the zone's area that must be moving to raise an event; default 0.005 (0.5 %). */
    minArea: z.number().min(0.0001, 'minArea must be at least 0.0001').max(1, 'minArea must be at most 1').default(0.005),
  })
  .superRefine((zone, ctx) => {
    if (Math.abs(polygonArea2(zone.points)) / 2 < 1e-4) ctx.addIssue({ code: 'custom', path: ['points'], message: 'the polygon has (almost) no area: its points are on one line or repeated' });
    const cross = polygonSelfIntersection(zone.points);
    if (cross) ctx.addIssue({ code: 'custom', path: ['points'], message: `the polygon crosses itself: edge ${cross[0]} crosses edge ${cross[1]}` });
  });
export type Zone = z.infer<typeof ZoneSchema>;

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a time HH:MM (00:00–23:59)');

export const AlertRuleSchema = z.strictObject({
  /** Name of the rule, in alert payloads; default `motion`. */
  name: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_-]{0,31}$/).default('motion'),
  /** Alert only for motion in these zones; default any include zone. */
  zones: z.array(z.string().min(1)).default([]),
  /** Alert only for events whose peak score reaches this (0–1); default 0. */
  minScore: z.number().min(0).max(1).default(0),
  /**
   * When the rule is armed, in the site's time zone (`alerts.timeZone`); default always. `days` are 0–6 from
   * Sunday; a window whose `to` is before its `from` runs past midnight.
   */
  schedule: z
    .array(z.strictObject({ days: z.array(z.number().int().min(0).max(6)).min(1).default([0, 1, 2, 3, 4, 5, 6]), from: hhmm, to: hhmm }))
    .default([]),
  /** After an alert, the rule stays quiet for this camera this long, s; default 60. */
  cooldownS: z.number().int().min(0).max(86_400).default(60),
  /** Send to the webhook endpoints whose filter takes this camera; default true. */
  webhooks: z.boolean().default(true),
  /** Publish to the MQTT broker (`alerts.mqtt`); default true. */
  mqtt: z.boolean().default(true),
});
export type AlertRule = z.infer<typeof AlertRuleSchema>;

export const MotionSchema = z
  .strictObject({
    /** Watch this camera for motion (a decoder and the motion model on a detector node); default false. */
    enabled: z.boolean().default(false),
    /** Frames per second the detector looks at; default 5. */
    fps: z.number().int().min(1).max(30).default(5),
    /** Width of the grey frames it looks at (height follows the picture's shape); default 320. */
    width: z.number().int().min(64).max(1280).multipleOf(16).default(320),
    /** Include zones and masks; none: the whole picture is one include zone named `all`. */
    zones: z.array(ZoneSchema).max(16, 'at most 16 zones').default([]),
    /** Threshold of the whole picture when there are no include zones (see zones). */
    threshold: z.number().min(0.005, 'threshold must be at least 0.005').max(1, 'threshold must be at most 1').default(0.06),
    /** Minimum moving area of the whole picture when there are no include zones (see zones). */
    minArea: z.number().min(0.0001, 'minArea must be at least 0.0001').max(1, 'minArea must be at most 1').default(0.005),
    /** Motion must last this long to raise an event (its start is still its first frame), ms; default 200. */
    minDurationMs: z.number().int().min(0).max(30_000).default(200),
    /** An event ends after this long without motion (its end is its last moving frame), ms; default 1500. */
    endAfterMs: z.number().int().min(200).max(300_000).default(1500),
    /** How fast the background follows slow changes (light through the day): its time constant, s; default 4. */
    adaptS: z.number().min(0.2).max(3600).default(4),
    /** Something that stops moving (a parked car, a door left open) becomes background after this long, s; default 3. */
    settleS: z.number().min(0.5).max(86_400).default(3),
    /**
     * When this share of the picture changes at once (a light switched on, a camera's day/night switch,
     * an auto-exposure jump) it is taken as a change of light, not motion: the background starts again; default 0.6.
     */
    lightChange: z.number().min(0.05).max(1).default(0.6),
    /** Events older than this many days are deleted (not those protected; 0: kept for ever); default 365. */
    retainDays: z.number().min(0).max(3650).default(365),
    /** Alert rules; none: events are stored and searchable but raise no alert. */
    alerts: z.array(AlertRuleSchema).max(16).default([]),
  })
  .superRefine((m, ctx) => {
    const names = new Set<string>();
    m.zones.forEach((zone, i) => {
      if (names.has(zone.name)) ctx.addIssue({ code: 'custom', path: ['zones', i, 'name'], message: `zone name '${zone.name}' is used twice` });
      names.add(zone.name);
    });
    const include = new Set(m.zones.filter((zone) => zone.kind === 'include').map((zone) => zone.name));
    if (include.size === 0) include.add('all');
    m.alerts.forEach((rule, i) =>
      rule.zones.forEach((zone, j) => {
        if (!include.has(zone)) ctx.addIssue({ code: 'custom', path: ['alerts', i, 'zones', j], message: `no include zone named '${zone}'` });
      }),
    );
  });
export type MotionConfig = z.infer<typeof MotionSchema>;

export const CameraSchema = z.strictObject({
  id: z.string().regex(CAMERA_ID_PATTERN, 'must be 1–64 letters, digits, _ or -, starting with a letter or digit'),
  /** Display name; default the id. */
  name: z.string().min(1).max(200).optional(),
  /** A disabled camera is kept but not run; default true. */
  enabled: z.boolean().default(true),
  source: CameraSourceSchema,
  /** Where the camera may run in a cluster; default anywhere. */
  placement: z
    .strictObject({
      /** Run on this camera-node only (a Pi camera is attached to one machine; an RTP source sends to one). */
      node: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/).optional(),
      /** Labels the camera-node must have (e.g. site: shop). */
      require: z.record(z.string(), z.string()).default({}),
      /** Labels preferred when several camera-nodes fit. */
      prefer: z.record(z.string(), z.string()).default({}),
    })
    .prefault({}),
  /** Recording to the archive. */
  recording: z
    .strictObject({
      /** Record this camera; default true. */
      enabled: z.boolean().default(true),
      /** Delete recordings older than this many days (0: no limit by age); default 30. */
      retainDays: z.number().min(0).max(3650).default(30),
      /** Keep at most this many bytes of this camera (0: no limit by size); default 0. */
      retainBytes: z.number().int().min(0).default(0),
      /**
       * `copy` keeps the camera's own stream (no re-encoding, the default); `H265` re-encodes an H.264
       * camera to H.265 for storage (smaller archives, at the cost of a CPU encoder per camera).
       */
      storageCodec: z.enum(['copy', 'H265']).default('copy'),
    })
    .prefault({}),
  /** Motion detection: zones, sensitivity and alert rules. */
  motion: MotionSchema.prefault({}),
});
export type CameraConfig = z.infer<typeof CameraSchema>;
/** What a client sends; defaults not yet applied. */
export type CameraInput = z.input<typeof CameraSchema>;

export const ROLES = ['signaling', 'sfu', 'camera-node', 'recorder', 'detector'] as const;

const StorageSchema = z.strictObject({
  /** Name of the storage (in the database and in metrics); default `nas`. */
  id: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_-]{0,31}$/, 'must be 1–32 letters, digits, _ or -').default('nas'),
  /** The directory recordings end up in: a NAS mount, a disk. */
  path: z.string().min(1),
  /**
   * The path must be a mount point (its device differs from its parent's); default false. Set it for a
   * NAS share, so an unmounted share (an empty directory on the local disk) is never written to.
   */
  requireMount: z.boolean().default(false),
  /** A command run (through sh) when the storage is found unavailable, e.g. `mount /mnt/nas`; default none. */
  remountCommand: z.string().min(1).optional(),
  /** Keep at least this many bytes free on it: retention deletes the oldest recordings first; default 1 GiB. */
  minFreeBytes: z.number().int().min(0).default(1024 ** 3),
});
export type StorageConfig = z.infer<typeof StorageSchema>;

const limit = z.strictObject({ max: z.number().int().min(1), windowS: z.number().int().min(1).max(86_400) });

function validTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const ipLiteral = z.string().refine((s) => /^[0-9.]+$/.test(s) || s.includes(':'), 'must be an IP address');

export const ConfigSchema = z.strictObject({
  node: z
    .strictObject({
      /** This node's id in the registry; default the host name. */
      id: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/).default(() => hostname().replace(/[^a-zA-Z0-9_.-]/g, '-').slice(0, 64) || 'node'),
      /** Roles this process runs; default all of them (the one-machine mode). */
      roles: z.array(z.enum(ROLES)).min(1).default([...ROLES]),
      /** Free-form labels used by placement (e.g. site: shop). */
      labels: z.record(z.string(), z.string()).default({}),
    })
    .prefault({}),
  http: z
    .strictObject({
      /** Address the HTTP server listens on; default 0.0.0.0. */
      host: z.string().min(1).default('0.0.0.0'),
      /** HTTP port; default 8080. 0 picks a free one. */
      port: portOrZero.default(8080),
      /** Largest accepted request body in bytes; default 1 MiB. */
      bodyLimitBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
      tls: z
        .strictObject({
          /**
           * `self-signed`: HTTPS with a certificate made on first start (in dataDir/tls); `files`: HTTPS
           * with certFile/keyFile; `off`: plain HTTP (behind a proxy that does TLS). Default self-signed.
           */
          mode: z.enum(['self-signed', 'files', 'off']).default('self-signed'),
          /** PEM certificate (chain) for mode `files`. */
          certFile: z.string().min(1).optional(),
          /** PEM private key for mode `files`. */
          keyFile: z.string().min(1).optional(),
        })
        .prefault({})
        .refine((t) => t.mode !== 'files' || (t.certFile && t.keyFile), { message: "mode 'files' needs certFile and keyFile" }),
      /** Origins (scheme://host:port) whose pages may call the API with a Bearer token; default none. */
      corsOrigins: z.array(z.string().regex(/^https?:\/\/[^/\s]+$/, 'must be an origin like https://host:port')).default([]),
      /** Take the client address from X-Forwarded-For (only behind a proxy you run); default false. */
      trustProxy: z.boolean().default(false),
    })
    .prefault({}),
  /** Folder for the embedded database, last-known config and local state; default ./data. */
  dataDir: z.string().min(1).default('./data'),
  log: z
    .strictObject({
      level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
      /** `pretty` for people, `json` for log collectors; default pretty on a terminal, json otherwise. */
      format: z.enum(['json', 'pretty']).optional(),
    })
    .prefault({}),
  database: z
    .strictObject({
      /** A postgres:// URL; unset runs embedded Postgres (PGlite) in dataDir/db. */
      url: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL').optional(),
    })
    .prefault({}),
  redis: z
    .strictObject({
      /** A redis:// URL; unset keeps the bus (rate limits, and later the node registry) in this process. */
      url: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL').optional(),
      /** Prefix of every key and channel, so deployments can share a Redis; default cctv. */
      prefix: z.string().regex(/^[a-zA-Z0-9_-]{1,32}$/).default('cctv'),
    })
    .prefault({}),
  cameraNode: z
    .strictObject({
      reconnect: z
        .strictObject({
          /** First retry delay after a source fails, in ms; default 250. */
          initialDelayMs: z.number().int().min(10).max(60_000).default(250),
          /** Largest retry delay in ms; default 1000, so video returns within about 2 s of the camera. */
          maxDelayMs: z.number().int().min(100).max(300_000).default(1000),
        })
        .prefault({}),
      /** A source that sends no packet for this long is restarted, in ms; default 5000. */
      stallTimeoutMs: z.number().int().min(500).max(120_000).default(5000),
    })
    .prefault({}),
  sfu: z
    .strictObject({
      ice: z
        .strictObject({
          /** Local addresses offered as ICE host candidates; default: every non-internal IPv4 address. */
          hostAddresses: z.array(ipLiteral).default([]),
          /** Addresses announced in place of the host addresses (NAT, containers); default none. */
          announcedAddresses: z.array(ipLiteral).default([]),
          /** Also offer 127.0.0.1 (for a browser on the same machine); default false. */
          loopback: z.boolean().default(false),
          /** Lowest UDP port for viewers' ICE; 0 lets the system pick. */
          portMin: portOrZero.default(0),
          /** Highest UDP port for viewers' ICE; 0 lets the system pick. */
          portMax: portOrZero.default(0),
        })
        .prefault({}),
      ingest: z
        .strictObject({
          /** Address the RTP ingest sockets bind to; default 127.0.0.1 (0.0.0.0 in a cluster). */
          bindHost: z.string().min(1).default('127.0.0.1'),
          /** Address camera-nodes send RTP to; default bindHost (or the first host address when bound to 0.0.0.0). */
          advertisedHost: z.string().min(1).optional(),
        })
        .prefault({}),
      /**
       * Playout delay asked of viewers through the playout-delay RTP header extension, in ms.
       * 0/0 tells the browser to render each frame as soon as it is decoded (lowest latency);
       * raise maxMs to let it smooth network jitter instead. Default 0/0.
       */
      playoutDelay: z
        .strictObject({ minMs: z.number().int().min(0).max(40_950).default(0), maxMs: z.number().int().min(0).max(40_950).default(0) })
        .prefault({})
        .refine((p) => p.minMs <= p.maxMs, { message: 'minMs must be <= maxMs' }),
      /** Send a new viewer the current group of pictures at once so its first frame need not wait for a keyframe; default true. */
      fastStart: z.boolean().default(true),
      /** Largest group of pictures kept for fast start, in bytes; default 4 MiB. */
      fastStartMaxBytes: z.number().int().min(0).max(64 * 1024 * 1024).default(4 * 1024 * 1024),
      /** Viewers per camera before WHEP answers 503; default 200. */
      maxViewersPerCamera: z.number().int().min(1).max(10_000).default(200),
      transcode: z
        .strictObject({
          /** libx264 preset for H.265 → H.264 transcodes; default ultrafast. */
          preset: z.enum(['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium']).default('ultrafast'),
          /** Bitrate of the transcoded stream in kbit/s; default 2000. */
          bitrateKbps: z.number().int().min(100).max(50_000).default(2000),
          /** Stop a transcode this long after its last viewer left, in ms; default 5000. */
          idleStopMs: z.number().int().min(0).max(600_000).default(5000),
        })
        .prefault({}),
    })
    .prefault({}),
  security: z
    .strictObject({
      lockout: z
        .strictObject({
          /** Failed sign-ins that lock an account; default 5. */
          maxFailures: z.number().int().min(1).max(1000).default(5),
          /** …within this many seconds; default 900. */
          windowS: z.number().int().min(1).max(86_400).default(900),
          /** How long the lock lasts, in s; default 900. */
          lockS: z.number().int().min(1).max(86_400).default(900),
        })
        .prefault({}),
      limits: z
        .strictObject({
          /** Sign-in attempts (and token requests) per client address. */
          signInPerAddress: z.array(limit).default([{ max: 3, windowS: 1 }, { max: 10, windowS: 60 }, { max: 50, windowS: 3600 }]),
          /** API requests per signed-in user or token. */
          apiPerPrincipal: z.array(limit).default([{ max: 1200, windowS: 60 }]),
          /** New live-viewing sessions (WHEP) per signed-in user or token. */
          // A wall of cameras reconnecting after a node failed opens a session per tile, with retries.
          whepPerPrincipal: z.array(limit).default([{ max: 240, windowS: 60 }]),
        })
        .prefault({}),
      /** Lifetime of the tokens POST /api/auth/token issues, in s; default 3600. */
      shortTokenTtlS: z.number().int().min(60).max(86_400 * 30).default(3600),
    })
    .prefault({}),
  cluster: z
    .strictObject({
      /** Where a node enrols and reaches the master's API (a signaling instance), e.g. https://master:8080. */
      masterUrl: z.string().regex(/^https?:\/\/[^\s]+$/, 'must be an http(s) URL').optional(),
      /** SHA-256 fingerprint of the master's certificate (as it prints it), pinned by nodes for a self-signed one. */
      masterFingerprint: z.string().regex(/^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$/, 'must be 32 colon-separated hex bytes').optional(),
      /** A secret shared by the deployment that lets a node enrol (CCTV_ENROLL_SECRET); or use a one-time token. */
      enrollSecret: z.string().min(16).optional(),
      /** A one-time enrolment token made by an admin (CCTV_ENROLL_TOKEN). */
      enrollToken: z.string().min(8).optional(),
      /** A node missing its heartbeats this long is dead, ms; default 3000. */
      leaseMs: z.number().int().min(500).max(60_000).default(3000),
      /** Heartbeat period, ms; default 1000. */
      heartbeatMs: z.number().int().min(100).max(30_000).default(1000),
      /** Clock offsets beyond this raise a warning, ms; default 100. */
      clockWarningMs: z.number().int().min(1).max(60_000).default(100),
    })
    .prefault({}),
  recorder: z
    .strictObject({
      /** Local spool segments are written to before they go to the storage; default dataDir/spool. */
      spoolDir: z.string().min(1).optional(),
      /** The spool's size limit: past it the oldest spooled segments are dropped (and counted); default 2 GiB. */
      spoolMaxBytes: z.number().int().min(16 * 1024 * 1024).default(2 * 1024 ** 3),
      /** Warn when the spool holds more than this share of its limit; default 0.5. */
      spoolWarnRatio: z.number().min(0.05).max(1).default(0.5),
      /** Where recordings are kept; default one storage in dataDir/archive (CCTV_NAS_DIR sets its path). */
      storage: StorageSchema.optional(),
      /** Target segment length in seconds (cut at the next keyframe); default 4 (RFC 8216 allows any; 2–6 suits scrubbing). */
      segmentSeconds: z.number().min(1).max(10).default(4),
      /** Any one storage operation that takes longer than this is failed and the storage marked unavailable, ms; default 5000. */
      ioTimeoutMs: z.number().int().min(200).max(120_000).default(5000),
      /** The encoder of cameras recorded with `storageCodec: H265`: libx265 preset and CRF (lower is better and bigger). */
      h265: z
        .strictObject({
          preset: z.enum(['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium']).default('veryfast'),
          crf: z.number().int().min(0).max(51).default(28),
        })
        .prefault({}),
      /** Address SFUs send a camera's RTP to for recording (this machine's, as they reach it); default 127.0.0.1. */
      listenHost: z.string().min(1).default('127.0.0.1'),
      /** How often retention runs, s; default 60. */
      retentionIntervalS: z.number().int().min(1).max(86_400).default(60),
    })
    .prefault({}),
  alerts: z
    .strictObject({
      /** The dashboard's address as alert receivers reach it, for links in alerts (e.g. https://cctv.example.com); default the server's own URL. */
      publicUrl: z.string().regex(/^https?:\/\/[^\s]+$/, 'must be an http(s) URL').optional(),
      /** Time zone of alert schedules (IANA name, e.g. Europe/London); default this machine's. */
      timeZone: z.string().min(1).refine(validTimeZone, 'must be an IANA time zone such as Europe/London').optional(),
      webhook: z
        .strictObject({
          /** A request that takes longer is failed (and retried), ms; default 5000. */
          timeoutMs: z.number().int().min(100).max(60_000).default(5000),
          /** Tries before a delivery goes to the dead letters; default 8. */
          maxAttempts: z.number().int().min(1).max(50).default(8),
          /** Wait before the first retry, ms; it doubles each time; default 1000. */
          initialBackoffMs: z.number().int().min(10).max(600_000).default(1000),
          /** Longest wait between retries, ms; default 600000 (10 min). */
          maxBackoffMs: z.number().int().min(100).max(86_400_000).default(600_000),
        })
        .prefault({}),
      /** An MQTT broker (e.g. Mosquitto, Home Assistant's) to publish motion to; default none. */
      mqtt: z
        .strictObject({
          /** mqtt://, mqtts://, ws:// or wss:// URL of the broker. */
          url: z.string().regex(/^(mqtts?|wss?):\/\/[^\s]+$/, 'must be an mqtt://, mqtts://, ws:// or wss:// URL'),
          username: z.string().optional(),
          password: z.string().optional(),
          /** Topics start with this; default cctv. */
          topicPrefix: z.string().regex(/^[a-zA-Z0-9_\/-]{1,64}$/, 'must be letters, digits, _, - or /').default('cctv'),
          /** Publish Home Assistant discovery (a motion binary_sensor per camera); default true. */
          homeAssistant: z.boolean().default(true),
          /** Home Assistant's discovery prefix; default homeassistant. */
          discoveryPrefix: z.string().regex(/^[a-zA-Z0-9_\/-]{1,64}$/).default('homeassistant'),
        })
        .optional(),
    })
    .prefault({}),
  detector: z
    .strictObject({
      /** The ONNX motion model; default the one shipped in recorder/model/motion.onnx. */
      model: z.string().min(1).optional(),
      /** Address SFUs send a camera's RTP to for detection (this machine's, as they reach it); default 127.0.0.1. */
      listenHost: z.string().min(1).default('127.0.0.1'),
      /**
       * Frames of several cameras run through the model together, up to this many; default 1: the shipped
       * model is faster per frame one at a time on a small CPU (bench:motion measures both).
       */
      maxBatch: z.number().int().min(1).max(256).default(1),
    })
    .prefault({}),
  metrics: z
    .strictObject({
      /**
       * A process without the signaling role (a node) serves Prometheus metrics at `/metrics` on this port;
       * 0 (the default): not served. Signaling serves them on its API port, to a token with `metrics:read`.
       */
      port: portOrZero.default(0),
      /** Address the node's metrics port listens on; default 0.0.0.0 (keep it on the private network). */
      host: z.string().min(1).default('0.0.0.0'),
      /** A secret the scraper must send as `Authorization: Bearer <token>`; unset: none is asked. */
      token: z.string().min(16, 'must be at least 16 characters').optional(),
    })
    .prefault({}),
  /** On a first start with no cameras, add the synthetic test camera `demo`; default true. */
  demoCamera: z.boolean().default(true),
  /** Cameras declared in the file; they are created (or updated) at start. */
  cameras: z.array(CameraSchema).default([]),
});

export type Config = z.infer<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;
