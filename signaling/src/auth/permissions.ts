/**
 * Who may do what. Roles give permissions; a user's camera grants can narrow the camera permissions to
 * some cameras; an API token can narrow both further. Every route declares one permission, checked in
 * one place (the route wrapper in app.ts).
 */

/** What a route may need. Camera permissions are checked against the route's camera. */
export const Permission = {
  /** See cameras (list, status); filtered to the cameras one has any camera permission on. */
  CamerasRead: 'cameras:read',
  /** Add, change and remove cameras. */
  CamerasManage: 'cameras:manage',
  /** Watch a camera live (WHEP). Per camera. */
  Live: 'camera:live',
  /** Play a camera's recordings. Per camera. */
  Archive: 'camera:archive',
  /** Export a camera's recordings. Per camera. */
  Export: 'camera:export',
  /** Control a camera (enable, disable, PTZ, publish to it over WHIP). Per camera. */
  Control: 'camera:control',
  /** Manage users, their roles, sessions and tokens. */
  UsersManage: 'users:manage',
  /** Read and verify the audit log. */
  AuditRead: 'audit:read',
  /** Change site-wide security settings. */
  SettingsManage: 'settings:manage',
  /** Read Prometheus metrics. */
  MetricsRead: 'metrics:read',
  /** See the cluster: nodes, their load and clocks, placements. */
  NodesRead: 'nodes:read',
  /** Drain, undrain and revoke nodes; make enrolment tokens. */
  NodesManage: 'nodes:manage',
  /** Manage webhook endpoints; see and retry alert deliveries (the dead letters). */
  AlertsManage: 'alerts:manage',
} as const;
export type Permission = (typeof Permission)[keyof typeof Permission];
export const ALL_PERMISSIONS = Object.values(Permission);

/** Permissions that apply to one camera at a time. */
export const CAMERA_PERMISSIONS = [Permission.Live, Permission.Archive, Permission.Export, Permission.Control] as const;
export type CameraPermission = (typeof CAMERA_PERMISSIONS)[number];

export const ROLES = ['admin', 'operator', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

/** What each role may do (on every camera, unless the user's grants narrow it). */
export const ROLE_PERMISSIONS: Record<Role, readonly Permission[]> = {
  admin: ALL_PERMISSIONS,
  operator: [Permission.CamerasRead, Permission.CamerasManage, Permission.Live, Permission.Archive, Permission.Export, Permission.Control, Permission.NodesRead],
  viewer: [Permission.CamerasRead, Permission.Live, Permission.Archive],
};

/** A route's requirement: a permission, any signed-in user, or nobody (sign-in, health). */
export type Requirement = Permission | 'authenticated' | 'public';

/** The one who makes a request, resolved from its cookie or Bearer token. */
export interface Principal {
  kind: 'user' | 'token' | 'anonymous';
  userId: string | null;
  username: string | null;
  role: Role | null;
  /** Permissions held (camera permissions here hold for the cameras in `cameras`). */
  permissions: ReadonlySet<Permission>;
  /** null: every camera; otherwise the camera permissions held per camera. */
  cameras: ReadonlyMap<string, ReadonlySet<CameraPermission>> | null;
  /** The session, when signed in with a cookie. */
  sessionId: string | null;
  /** The token, when signed in with one. */
  tokenId: string | null;
  /**
   * Signed in with a password but 2FA still to do: `verify` (a code is owed) or `enroll` (the site
   * requires 2FA and the user has none yet). Such a principal may only finish that step or sign out.
   */
  pending: 'verify' | 'enroll' | null;
}

export const ANONYMOUS: Principal = {
  kind: 'anonymous', userId: null, username: null, role: null, permissions: new Set(), cameras: new Map(), sessionId: null, tokenId: null, pending: null,
};

/** A user's permissions and camera scope from their role and grants. */
export function userScope(role: Role, grants: Record<string, string[]> | null): Pick<Principal, 'permissions' | 'cameras'> {
  const permissions = new Set(ROLE_PERMISSIONS[role]);
  if (grants === null || role === 'admin') return { permissions, cameras: null };
  const cameras = new Map<string, Set<CameraPermission>>();
  for (const [camera, perms] of Object.entries(grants)) {
    cameras.set(camera, new Set(perms.filter((p): p is CameraPermission => (CAMERA_PERMISSIONS as readonly string[]).includes(p) && permissions.has(p as Permission))));
  }
  return { permissions, cameras };
}

/** Narrows a scope to a token's: permissions ∩ token permissions, cameras ∩ token cameras. */
export function narrowScope(
  scope: Pick<Principal, 'permissions' | 'cameras'>,
  permissions: readonly string[] | null,
  cameras: readonly string[] | null,
): Pick<Principal, 'permissions' | 'cameras'> {
  const perms = permissions === null ? new Set(scope.permissions) : new Set([...scope.permissions].filter((p) => permissions.includes(p)));
  if (cameras === null) return { permissions: perms, cameras: scope.cameras };
  const out = new Map<string, ReadonlySet<CameraPermission>>();
  for (const c of cameras) {
    const held = scope.cameras === null ? new Set(CAMERA_PERMISSIONS.filter((p) => perms.has(p))) : scope.cameras.get(c);
    if (held) out.set(c, new Set([...held].filter((p) => perms.has(p))));
  }
  return { permissions: perms, cameras: out };
}

/** Whether the principal holds `permission` (on `camera`, for camera permissions). */
export function can(p: Principal, permission: Permission, camera?: string): boolean {
  if (!p.permissions.has(permission)) return false;
  if (!(CAMERA_PERMISSIONS as readonly string[]).includes(permission)) return true;
  if (p.cameras === null) return true;
  if (camera === undefined) return [...p.cameras.values()].some((s) => s.has(permission as CameraPermission));
  return p.cameras.get(camera)?.has(permission as CameraPermission) ?? false;
}

/** Whether the principal may see a camera at all (any camera permission on it). */
export function canSeeCamera(p: Principal, camera: string): boolean {
  if (!p.permissions.has(Permission.CamerasRead)) return false;
  if (p.cameras === null) return CAMERA_PERMISSIONS.some((c) => p.permissions.has(c));
  return (p.cameras.get(camera)?.size ?? 0) > 0;
}
