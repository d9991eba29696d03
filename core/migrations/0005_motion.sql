-- Motion detection: each camera's settings, the events the detectors raise, and the alerts sent for them.

ALTER TABLE cameras ADD COLUMN motion jsonb NOT NULL DEFAULT '{}'::jsonb;
-- The detector node that watches a camera (null: motion detection off, or no detector alive).
ALTER TABLE placements ADD COLUMN detector_node text;

CREATE TABLE events (
  id bigserial PRIMARY KEY,
  camera_id text NOT NULL,
  kind text NOT NULL DEFAULT 'motion',
  start_ms bigint NOT NULL,
  -- Null while the event is in progress.
  end_ms bigint,
  peak_score real NOT NULL,
  -- The zones it moved in (include zones; the whole picture is 'all' when a camera has none).
  zones text[] NOT NULL DEFAULT '{}',
  -- Where it moved at its peak, as shares of the picture: { x, y, w, h }.
  box jsonb,
  node text NOT NULL,
  thumbnail bytea,
  -- Set while an operator keeps its footage from retention.
  protected_id bigint,
  updated_at timestamptz NOT NULL DEFAULT now()
);
-- Search walks (camera, time) backwards, keyset-paginated by (start_ms, id).
CREATE INDEX events_camera_time ON events (camera_id, start_ms DESC, id DESC);
CREATE INDEX events_time ON events (start_ms DESC, id DESC);
CREATE INDEX events_zones ON events USING gin (zones);

-- Webhook endpoints (Standard Webhooks): each gets the events of the cameras its filter names.
CREATE TABLE webhooks (
  id text PRIMARY KEY,
  url text NOT NULL,
  -- whsec_<base64>: the HMAC-SHA256 key, shown once when the endpoint is made.
  secret text NOT NULL,
  -- Null: every camera.
  cameras text[],
  enabled boolean NOT NULL DEFAULT true,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- One message to one endpoint (webhook) or the broker (mqtt); kept after delivery as its record.
CREATE TABLE alert_deliveries (
  -- The webhook-id header: the same on every retry, so receivers can drop duplicates.
  id text PRIMARY KEY,
  event_id bigint NOT NULL,
  camera_id text NOT NULL,
  channel text NOT NULL,            -- 'webhook' | 'mqtt'
  webhook_id text,                  -- the endpoint, for channel webhook
  type text NOT NULL,               -- 'event.start' | 'event.end'
  payload jsonb NOT NULL,
  state text NOT NULL DEFAULT 'pending', -- 'pending' | 'delivered' | 'dead'
  attempts int NOT NULL DEFAULT 0,
  next_ms bigint NOT NULL,
  -- Who is sending it now, until when: another node takes over pending deliveries when this runs out.
  claimed_by text,
  claim_until_ms bigint,
  last_status int,
  last_error text,
  -- When the motion's first frame was seen, and when the delivery succeeded (ms since the epoch).
  motion_ms bigint NOT NULL,
  delivered_ms bigint,
  created_ms bigint NOT NULL
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_ms) WHERE state = 'pending';
CREATE INDEX alert_deliveries_dead ON alert_deliveries (created_ms DESC) WHERE state = 'dead';
CREATE INDEX alert_deliveries_event ON alert_deliveries (event_id);

-- Every try of a delivery: when, what came back, how long it took.
CREATE TABLE alert_attempts (
  delivery_id text NOT NULL,
  n int NOT NULL,
  at_ms bigint NOT NULL,
  status int,
  error text,
  duration_ms int NOT NULL,
  PRIMARY KEY (delivery_id, n)
);
