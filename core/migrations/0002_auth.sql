-- Users. Usernames are unique regardless of case. Passwords are argon2id hashes.
CREATE TABLE users (
  id text PRIMARY KEY,
  username text NOT NULL,
  password_hash text NOT NULL,
  role text NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
  -- null: every camera with the role's permissions; otherwise { cameraId: [permission, ...] }.
  camera_grants jsonb,
  disabled boolean NOT NULL DEFAULT false,
  -- RFC 6238 key once 2FA is enabled; the pending key while it is being set up.
  totp_key bytea,
  totp_pending_key bytea,
  -- Last TOTP time step accepted, so a code is not taken twice.
  totp_last_step bigint,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_lower ON users (lower(username));

-- Single-use 2FA recovery codes, stored hashed.
CREATE TABLE recovery_codes (
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  code_hash text NOT NULL,
  used_at timestamptz,
  PRIMARY KEY (user_id, code_hash)
);

-- Browser sessions (Lucia's design): the id is the SHA-256 of the token in the cookie.
CREATE TABLE sessions (
  id text PRIMARY KEY,
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  two_factor_verified boolean NOT NULL DEFAULT false,
  ip text,
  user_agent text
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Bearer tokens for scripts, nodes and WHEP clients; the id is the SHA-256 of the token.
CREATE TABLE api_tokens (
  id text PRIMARY KEY,
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name text NOT NULL,
  -- short: issued by POST /api/auth/token; api: made by the user, scoped.
  kind text NOT NULL CHECK (kind IN ('short', 'api')),
  -- null: the user's permissions; otherwise a subset.
  permissions text[],
  -- null: every camera the user may use; otherwise these.
  cameras text[],
  prefix text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  last_used_at timestamptz,
  revoked_at timestamptz
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- The audit log: append-only, each entry chained to the one before by its hash.
CREATE TABLE audit_log (
  seq bigint PRIMARY KEY,
  at timestamptz NOT NULL,
  actor text NOT NULL,
  actor_kind text NOT NULL,
  action text NOT NULL,
  target text,
  camera_id text,
  ip text,
  details jsonb NOT NULL DEFAULT '{}'::jsonb,
  prev_hash text NOT NULL,
  hash text NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor, seq);
CREATE INDEX audit_log_action ON audit_log (action, seq);
CREATE INDEX audit_log_camera ON audit_log (camera_id, seq);

-- Nothing edits or deletes an audit entry through the application's database user; verify() finds
-- it when someone does so behind the database's back.
CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
