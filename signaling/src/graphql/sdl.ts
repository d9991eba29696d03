/**
 * The GraphQL schema. Every field that reads or changes something is a REST route (named in its
 * description) run through that route's permission check and handler (dispatch.ts), so its objects have
 * the same fields, names and units as the REST answers: times the REST API gives in ISO 8601 are strings,
 * times it gives in ms since 1970 are Floats (ms do not fit GraphQL's 32-bit Int). Those fields are
 * nullable: a field refused or failing is null with its error, beside the other fields' answers.
 */
export const SDL = /* GraphQL */ `
"Any JSON value, as the REST API shows it (configuration blocks, details, load)."
scalar JSON

type Query {
  "Who is asking: user, permissions, cameras (GET /api/auth/me)."
  me: Me
  "The cameras you may see, with their status (GET /api/cameras)."
  cameras: [Camera!]
  "One camera; null when there is none you may see (GET /api/cameras/:id)."
  camera(id: ID!): Camera
  "Every node of the cluster (GET /api/nodes)."
  nodes: [Node!]
  "One node; null when unknown (GET /api/nodes/:id)."
  node(id: ID!): Node
  "The cluster: leader, placements, recent moves, warnings (GET /api/cluster)."
  cluster: JSON
  "The archive: recorder, storage, bytes per camera (GET /api/archive)."
  archive: JSON
  "Motion events, newest first; 'after' is the 'next' of the previous page (GET /api/events)."
  events(cameras: [ID!], from: String, to: String, zone: String, minScore: Float, first: Int = 50, after: String): EventPage
  "One motion event with the recording around it; null when there is none you may see (GET /api/events/:event)."
  event(id: ID!): Event
  "Every user (GET /api/users)."
  users: [User!]
  "One user; null when unknown (GET /api/users/:user)."
  user(id: ID!): User
  "The audit log, newest first; 'before' is the 'next' of the previous page (GET /api/audit)."
  audit(actor: String, action: String, camera: ID, from: String, to: String, before: Int, limit: Int = 100): AuditPage
}

type Mutation {
  "Add a camera: the body of POST /api/cameras. Queued (not applied) while the database is away."
  createCamera(camera: JSON!): CameraChange
  "Change some fields of a camera: the body of PATCH /api/cameras/:id."
  updateCamera(id: ID!, changes: JSON!): CameraChange
  "Remove a camera (DELETE /api/cameras/:id)."
  deleteCamera(id: ID!): CameraChange
  "Keep an event's footage from retention (POST /api/events/:event/protect)."
  protectEvent(id: ID!): Event
  "Let retention have an event's footage again (DELETE /api/events/:event/protect)."
  unprotectEvent(id: ID!): Event
  "Move a node's cameras away and give it no new ones (POST /api/nodes/:id/drain)."
  drainNode(id: ID!): Node
  "Let a drained node take cameras again (POST /api/nodes/:id/undrain)."
  undrainNode(id: ID!): Node
  "Add a user: the body of POST /api/users ({ username, password, role, cameras? })."
  createUser(user: JSON!): User
  "Change a user's role, cameras, disabled flag or password, or reset their 2FA: the body of PATCH /api/users/:user."
  updateUser(id: ID!, changes: JSON!): User
  "Remove a user, their sessions and tokens (DELETE /api/users/:user); true when removed."
  deleteUser(id: ID!): Boolean
}

type Subscription {
  "A camera's status when its state changes; first the status of each camera now (the cameras you may see, or those asked for)."
  cameraStatus(cameras: [ID!]): CameraStatus!
  "Motion events as they start, grow and end (cameras whose archive you may see, or those asked for)."
  motionEvents(cameras: [ID!]): MotionNotice!
}

type Me {
  user: User!
  "user or token"
  kind: String!
  permissions: [String!]!
  "null: every camera; otherwise the permissions held on each camera."
  cameras: JSON
  require2fa: Boolean!
}

type Camera {
  id: ID!
  name: String!
  enabled: Boolean!
  "The source without its password."
  source: JSON!
  version: Int!
  createdAt: String!
  updatedAt: String!
  status: CameraStatus!
  "Where it may run: pin, required and preferred labels."
  placementRules: JSON!
  recording: JSON!
  motion: JSON!
  "Where it runs now."
  placement: Placement
  "Recorded ranges and gaps between from and to (default the last 24 h) (GET /api/cameras/:id/archive/timeline)."
  timeline(from: String, to: String): Timeline
  "This camera's motion events (GET /api/events?camera=:id)."
  events(from: String, to: String, zone: String, minScore: Float, first: Int = 50, after: String): EventPage
  "Ranges kept from retention (GET /api/cameras/:id/archive/protected)."
  protectedRanges: [ProtectedRange!]
}

type CameraStatus {
  id: ID!
  "starting, live, reconnecting or stopped"
  state: String!
  since: Float!
  lastError: String
  input: JSON!
  viewers: Int!
}

type Placement {
  cameraNode: String
  sfu: String
  recorder: String
  detector: String
  problem: String
  since: Float!
}

type CameraChange {
  "The camera as it is now; null when it was removed or the change is queued."
  camera: Camera
  "Set when the database is away: the change waits on this server (GET /api/cluster shows it)."
  queued: QueuedChange
  "Whether the change is made (false: queued)."
  applied: Boolean!
}

type QueuedChange {
  id: ID!
  op: String!
  camera: ID!
  at: String!
}

type Timeline {
  camera: ID!
  fromMs: Float!
  toMs: Float!
  recorded: [TimeRange!]!
  gaps: [Gap!]!
  recordedMs: Float!
  bytes: Float!
}

type TimeRange {
  startMs: Float!
  endMs: Float!
}

type Gap {
  startMs: Float!
  endMs: Float!
  "Why nothing was recorded, when known (camera offline, node down, storage full…)."
  reason: String
}

type ProtectedRange {
  id: Int!
  from: String!
  to: String!
  reason: String!
  by: String!
  at: String!
}

type EventPage {
  events: [Event!]!
  "The cursor of the next page, or null on the last."
  next: String
}

type Event {
  id: ID!
  camera: ID!
  kind: String!
  startMs: Float!
  "null while the event goes on."
  endMs: Float
  peakScore: Float!
  zones: [String!]!
  box: Box
  node: String!
  hasThumbnail: Boolean!
  protectedId: Int
  thumbnailUrl: String
  "The recording around it (10 s either side), when the archive has one (GET /api/events/:event)."
  recording: EventRecording
  "The camera, when you may see it (GET /api/cameras/:id)."
  cameraInfo: Camera
}

type Box {
  x: Float!
  y: Float!
  w: Float!
  h: Float!
}

type EventRecording {
  from: Float!
  to: Float!
  playlistUrl: String!
}

type MotionNotice {
  "start, update or end"
  phase: String!
  event: Event!
}

type Node {
  id: ID!
  roles: [String!]!
  "alive, dead or unseen"
  state: String!
  since: Float
  deathReason: String
  drained: Boolean!
  enrolled: Boolean!
  leader: Boolean!
  labels: JSON!
  version: String
  startedAt: Float
  lastHeartbeatAt: Float
  addresses: JSON
  load: JSON
  cameras: [NodeCamera!]!
  rooms: JSON!
  clock: NodeClock!
  config: NodeConfig!
  history: JSON!
}

type NodeCamera {
  id: ID!
  state: String!
  "The camera, when you may see it (GET /api/cameras/:id)."
  camera: Camera
}

type NodeClock {
  offsetMs: Float
  warning: Boolean!
  ntp: JSON
}

type NodeConfig {
  applied: Float
  current: Float!
  upToDate: Boolean
}

type User {
  id: ID!
  username: String!
  role: String!
  "null: every camera with the role's permissions; otherwise the permissions per camera."
  cameras: JSON
  disabled: Boolean!
  totpEnabled: Boolean!
  createdAt: String!
  updatedAt: String!
}

type AuditPage {
  entries: [AuditEntry!]!
  "The 'before' of the next (older) page, or null on the last."
  next: Int
}

type AuditEntry {
  seq: Int!
  at: String!
  actor: String!
  actorKind: String!
  action: String!
  target: String
  cameraId: String
  ip: String
  details: JSON!
  prevHash: String!
  hash: String!
}
`;

/** The largest page a list argument may ask for (what the REST route allows). */
export const LIST_MAX: Readonly<Record<string, number>> = {
  'Query.events.first': 200,
  'Camera.events.first': 200,
  'Query.audit.limit': 1000,
};
