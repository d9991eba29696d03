-- Nodes enrolled in the cluster: each proves who it is with the Ed25519 key whose public half is here.
CREATE TABLE nodes (
  id text PRIMARY KEY,
  roles text[] NOT NULL,
  public_key text NOT NULL,
  -- X25519: the master seals what only this node may read (camera credentials) to it.
  box_public_key text NOT NULL,
  -- A drained node keeps running but is given no cameras; its cameras move away.
  drained boolean NOT NULL DEFAULT false,
  enrolled_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz
);

-- Single-use enrolment tokens (stored hashed), made by an admin for a new node.
CREATE TABLE enrollment_tokens (
  id text PRIMARY KEY,
  roles text[] NOT NULL,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  used_at timestamptz,
  used_by text
);

-- Where each camera runs: written by the master (the signaling instance holding the lease), fenced by
-- the lease's epoch so a master that lost the lease cannot overwrite a newer one's decisions.
CREATE TABLE placements (
  camera_id text PRIMARY KEY REFERENCES cameras (id) ON DELETE CASCADE,
  camera_node text,
  sfu_node text,
  epoch bigint NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Intervals in which a camera's video was not ingested (a node died, a source stalled).
CREATE TABLE gaps (
  id bigserial PRIMARY KEY,
  camera_id text NOT NULL,
  start_at timestamptz NOT NULL,
  end_at timestamptz NOT NULL,
  reason text NOT NULL,
  UNIQUE (camera_id, start_at)
);
CREATE INDEX gaps_camera_time ON gaps (camera_id, start_at);

-- One row: the highest master epoch that wrote, and the config version (bumped at every camera change).
CREATE TABLE cluster_state (
  id int PRIMARY KEY CHECK (id = 1),
  epoch bigint NOT NULL DEFAULT 0,
  config_version bigint NOT NULL DEFAULT 0
);
INSERT INTO cluster_state (id) VALUES (1);

-- How a camera is placed: pinned to a node, labels it requires or prefers of its camera-node.
ALTER TABLE cameras ADD COLUMN placement jsonb NOT NULL DEFAULT '{}'::jsonb;
