import { useSyncExternalStore } from 'react';
import { api, ApiError, AuthRefusal, onAuthRefusal, type CameraPermission, type Me, type Permission } from './api';

/** Where the browser stands with the server. */
export const AuthStatus = {
  /** GET /api/auth/me is on its way (or the server could not be reached: see `error`). */
  Loading: 'loading',
  /** No session: the sign-in page. */
  SignedOut: 'signed-out',
  /** Password given, a 2FA code owed: the code page. */
  Verify: 'verify',
  /** Password given, the site requires 2FA and there is none yet: the set-up page. */
  Enroll: 'enroll',
  SignedIn: 'signed-in',
} as const;
export type AuthStatus = (typeof AuthStatus)[keyof typeof AuthStatus];

export interface AuthState {
  status: AuthStatus;
  /** Who is signed in; null until GET /api/auth/me answers for a full session. */
  me: Me | null;
  /** Why the session could not be checked (the server is unreachable), or null. */
  error: string | null;
}

// One store for the page: the session is a fact about the browser, not about a component.
let state: AuthState = { status: AuthStatus.Loading, me: null, error: null };
const listeners = new Set<() => void>();

function set(next: Partial<AuthState>): void {
  // A re-check that finds nothing new keeps the same objects, so pages that depend on `me` stay put.
  const me = next.me !== undefined && JSON.stringify(next.me) === JSON.stringify(state.me) ? state.me : next.me;
  const merged = { ...state, ...next, ...(me !== undefined ? { me } : {}) };
  if (merged.status === state.status && merged.me === state.me && merged.error === state.error) return;
  state = merged;
  for (const l of listeners) l();
}

function subscribe(onChange: () => void): () => void {
  listeners.add(onChange);
  return () => listeners.delete(onChange);
}

/** The session state; re-renders when it changes. */
export function useAuth(): AuthState {
  return useSyncExternalStore(subscribe, () => state);
}

/** Whether the signed-in user holds `permission` (for camera permissions: on some camera). */
export function can(me: Me | null, permission: Permission): boolean {
  return me?.permissions.includes(permission) ?? false;
}

/** Whether the signed-in user holds the camera permission `permission` on camera `camera`. */
export function canOnCamera(me: Me | null, permission: CameraPermission, camera: string): boolean {
  if (!can(me, permission)) return false;
  return me?.cameras === null || (me?.cameras[camera]?.includes(permission) ?? false);
}

// Any call refused for want of a session (or of its 2FA step) moves the app to the page that fixes it.
onAuthRefusal((code) => {
  if (code === AuthRefusal.Unauthenticated) set({ status: AuthStatus.SignedOut, me: null, error: null });
  else if (code === AuthRefusal.SecondFactorPending) set({ status: AuthStatus.Verify, me: null, error: null });
  else set({ status: AuthStatus.Enroll, me: null, error: null });
});

/**
 * Asks the server who is signed in and sets the state from the answer. Resolves to whether the session
 * is complete (signed in, nothing owed).
 */
export async function refreshAuth(): Promise<boolean> {
  try {
    const me = await api.me();
    const status = me.pending === 'verify' ? AuthStatus.Verify : me.pending === 'enroll' ? AuthStatus.Enroll : AuthStatus.SignedIn;
    set({ status, me, error: null });
    return status === AuthStatus.SignedIn;
  } catch (error) {
    // A refusal has already set the state through the listener above.
    if (error instanceof ApiError) return false;
    set({ error: `cannot reach the server: ${(error as Error).message}` });
    throw error;
  }
}

/**
 * Whether it is worth reconnecting something that needs the session (the event socket): false once the
 * server says the session is gone; true when the server cannot be reached (it may come back).
 */
export async function sessionStillValid(): Promise<boolean> {
  try {
    return await refreshAuth();
  } catch {
    return true;
  }
}

/** Ends this session on the server (best effort) and in the page. */
export async function signOut(): Promise<void> {
  try {
    await api.signOut();
  } catch {
    // Already gone on the server, or unreachable: either way this page forgets it.
  }
  set({ status: AuthStatus.SignedOut, me: null, error: null });
}

/** After the server ended this session itself (sign out everywhere). */
export function forgetSession(): void {
  set({ status: AuthStatus.SignedOut, me: null, error: null });
}
