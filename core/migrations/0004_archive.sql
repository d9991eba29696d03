-- Storage directories of the archive (a NAS share, a disk). Each holds an identity file whose id must
-- match its row before anything is written there: an empty, unmounted mount point is never mistaken
-- for an empty archive.
CREATE TABLE storages (
  id text PRIMARY KEY,
  path text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Media initialization sections (fMP4 `ftyp`+`moov`), one per recording run, shared by its segments.
-- Named by their SHA-256.
CREATE TABLE recording_inits (
  sha256 text PRIMARY KEY,
  camera_id text NOT NULL,
  bytes integer NOT NULL,
  data bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per HLS media segment. The chain: `link` = SHA-256 over the previous row's link and this
-- row's fields (camera, run, sequence, start, duration, bytes, the media's SHA-256, the init's), so an
-- edited, deleted or inserted row breaks it from there on.
CREATE TABLE segments (
  id bigserial PRIMARY KEY,
  camera_id text NOT NULL,
  -- One ffmpeg run of one recorder: segments of a run share an init section and a timeline.
  run text NOT NULL,
  seq integer NOT NULL,
  start_ms bigint NOT NULL,
  duration_ms integer NOT NULL,
  bytes integer NOT NULL,
  sha256 text NOT NULL,
  init_sha256 text NOT NULL REFERENCES recording_inits (sha256),
  prev_link text,
  link text NOT NULL,
  -- `spool`: on the recorder's local disk only; `stored`: on the storage, read back and verified;
  -- `deleting`: retention has begun removing it (two-phase delete).
  state text NOT NULL DEFAULT 'spool',
  storage_id text REFERENCES storages (id),
  -- Path relative to the storage directory (or, while spooled, to the recorder's spool).
  path text NOT NULL,
  recorder text NOT NULL,
  keyframe boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now(),
  stored_at timestamptz,
  UNIQUE (camera_id, run, seq)
);
CREATE INDEX segments_camera_start ON segments (camera_id, start_ms);
CREATE INDEX segments_spooled ON segments (recorder, id) WHERE state = 'spool';

-- The head of each camera's chain (the row a new segment links to), locked while a segment is added.
CREATE TABLE archive_heads (
  camera_id text PRIMARY KEY,
  segment_id bigint,
  link text NOT NULL
);

-- Contiguous recorded ranges per camera, kept as segments are added: the timeline reads these, not the
-- segments, so a year of one camera is a few hundred rows.
CREATE TABLE recording_ranges (
  id bigserial PRIMARY KEY,
  camera_id text NOT NULL,
  start_ms bigint NOT NULL,
  end_ms bigint NOT NULL,
  segments integer NOT NULL DEFAULT 0,
  bytes bigint NOT NULL DEFAULT 0
);
CREATE INDEX recording_ranges_camera ON recording_ranges (camera_id, end_ms);

-- Ranges an operator protected from retention (an incident, an event).
CREATE TABLE protected_ranges (
  id bigserial PRIMARY KEY,
  camera_id text NOT NULL,
  start_ms bigint NOT NULL,
  end_ms bigint NOT NULL,
  reason text NOT NULL,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX protected_ranges_camera ON protected_ranges (camera_id, start_ms);

-- Hourly manifests per camera: the hour's segments (id, SHA-256, link) signed with the site's key.
CREATE TABLE archive_manifests (
  camera_id text NOT NULL,
  hour_ms bigint NOT NULL,
  body text NOT NULL,
  signature text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (camera_id, hour_ms)
);

-- Each camera's recording settings (enabled, retention by days and bytes).
ALTER TABLE cameras ADD COLUMN recording jsonb NOT NULL DEFAULT '{}'::jsonb;

-- What is left of a segment retention removed: its place in the chain, so verify tells a deletion by
-- retention from a deletion by someone else.
CREATE TABLE segment_tombstones (
  id bigint PRIMARY KEY,
  camera_id text NOT NULL,
  start_ms bigint NOT NULL,
  prev_link text,
  link text NOT NULL,
  reason text NOT NULL,
  deleted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX segment_tombstones_camera ON segment_tombstones (camera_id, id);

-- The recorder each camera is placed on.
ALTER TABLE placements ADD COLUMN recorder_node text;
