import { useEffect, type ReactNode } from 'react';
import type { Me, Permission } from './api';
import { AccountPage } from './AccountPage';
import { AlertsPage } from './AlertsPage';
import { AuditPage } from './AuditPage';
import { AuthStatus, can, refreshAuth, signOut, useAuth } from './auth';
import { EventsPage } from './EventsPage';
import { CodePage, EnrollPage, isLoginRoute, LoginPage, LoginRoute } from './LoginPages';
import { NodesPage } from './NodesPage';
import { RecordingsPage } from './RecordingsPage';
import { CameraPage, GridPage } from './pages';
import { Link, navigate, usePath, useSearch } from './router';
import { SecurityPage } from './SecurityPage';
import { NotAllowed } from './ui';
import { useCameras } from './useCameras';
import { UsersPage } from './UsersPage';

const CAMERA_ROUTE = /^\/camera\/([^/]+)\/?$/;
const RECORDINGS_ROUTE = /^\/recordings(?:\/([^/]+))?\/?$/;

/** The pages of the header, each shown to those who hold its permission (none: everyone signed in). */
const NAV: readonly { to: string; label: string; permission?: Permission }[] = [
  { to: '/', label: 'Live' },
  { to: '/recordings', label: 'Recordings', permission: 'camera:archive' },
  { to: '/events', label: 'Events', permission: 'camera:archive' },
  { to: '/alerts', label: 'Alerts', permission: 'alerts:manage' },
  { to: '/nodes', label: 'Nodes', permission: 'nodes:read' },
  { to: '/users', label: 'Users', permission: 'users:manage' },
  { to: '/security', label: 'Security', permission: 'settings:manage' },
  { to: '/audit', label: 'Audit', permission: 'audit:read' },
  { to: '/account', label: 'Account' },
];

/** The sign-in page a session in this state must be on, or null when it may go anywhere. */
function loginRouteFor(status: AuthStatus): LoginRoute | null {
  switch (status) {
    case AuthStatus.SignedOut:
      return LoginRoute.SignIn;
    case AuthStatus.Verify:
      return LoginRoute.Code;
    case AuthStatus.Enroll:
      return LoginRoute.Enroll;
    default:
      return null;
  }
}

/**
 * Where to go after signing in: the `next` of the query when it is a path of this site. Anything else
 * (`//evil.example`, a full URL) goes to the start page, so a crafted link cannot send the user away.
 */
function nextOf(search: string): string {
  const next = new URLSearchParams(search).get('next');
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return '/';
  return isLoginRoute(new URL(next, location.origin).pathname) ? '/' : next;
}

function withNext(route: LoginRoute, next: string): string {
  return next === '/' ? route : `${route}?next=${encodeURIComponent(next)}`;
}

export function App() {
  const auth = useAuth();
  const path = usePath();
  const search = useSearch();
  const wanted = loginRouteFor(auth.status);

  useEffect(() => {
    void refreshAuth().catch(() => {});
    // A session can end elsewhere (signed out everywhere, disabled by an admin); looking again when the
    // page comes back into view finds out before the user clicks into a refusal.
    const onVisible = (): void => {
      if (document.visibilityState === 'visible') void refreshAuth().catch(() => {});
    };
    document.addEventListener('visibilitychange', onVisible);
    return () => document.removeEventListener('visibilitychange', onVisible);
  }, []);

  // Every session state has its page: send the user there, remembering where they were going; once
  // nothing is owed, go on to that place.
  useEffect(() => {
    if (auth.status === AuthStatus.Loading) return;
    if (wanted !== null) {
      if (path !== wanted) navigate(withNext(wanted, isLoginRoute(path) ? nextOf(search) : `${path}${search}`), { replace: true });
    } else if (isLoginRoute(path)) {
      navigate(nextOf(search), { replace: true });
    }
  }, [auth.status, wanted, path, search]);

  if (auth.status === AuthStatus.Loading) {
    return (
      <Frame>
        {auth.error ? (
          <section className="login">
            <h1>Cannot reach the server</h1>
            <p className="error-text">{auth.error}</p>
            <button type="button" onClick={() => void refreshAuth().catch(() => {})}>
              Try again
            </button>
          </section>
        ) : (
          <p className="muted">Loading…</p>
        )}
      </Frame>
    );
  }
  if (wanted !== null || !auth.me) {
    return (
      <Frame>
        {path === LoginRoute.SignIn && wanted === LoginRoute.SignIn && <LoginPage />}
        {path === LoginRoute.Code && wanted === LoginRoute.Code && <CodePage />}
        {path === LoginRoute.Enroll && wanted === LoginRoute.Enroll && <EnrollPage />}
      </Frame>
    );
  }
  // Signed in but still on a sign-in page: the effect above is moving on.
  if (isLoginRoute(path)) return <Frame />;
  return <SignedIn me={auth.me} path={path} />;
}

/** The header without navigation, for the sign-in pages. */
function Frame({ children }: { children?: ReactNode }) {
  return (
    <>
      <header className="top">
        <span className="brand">CCTV</span>
      </header>
      <main>{children}</main>
    </>
  );
}

function SignedIn({ me, path }: { me: Me; path: string }) {
  const mayWatch = can(me, 'cameras:read');
  const { cameras, connected, apply } = useCameras(mayWatch, can(me, 'camera:archive'));
  const match = CAMERA_ROUTE.exec(path);
  const cameraId = match?.[1] !== undefined ? decodeURIComponent(match[1]) : null;
  const cameraName = cameraId !== null ? cameras?.find((c) => c.id === cameraId)?.name ?? cameraId : null;
  const nav = NAV.filter((n) => !n.permission || can(me, n.permission));
  const recordings = RECORDINGS_ROUTE.exec(path);
  const section = nav.find((n) => n.to !== '/' && (path === n.to || (n.to === '/recordings' && recordings !== null)))?.label ?? null;

  useEffect(() => {
    document.title = cameraName ? `${cameraName} · CCTV` : section ? `${section} · CCTV` : 'CCTV';
  }, [cameraName, section]);

  const leave = async (): Promise<void> => {
    await signOut();
    // The next user starts from the start page, not from where this one was.
    navigate(LoginRoute.SignIn, { replace: true });
  };

  const gated = (permission: Permission, page: ReactNode): ReactNode => (can(me, permission) ? page : <NotAllowed />);

  return (
    <>
      <header className="top">
        <div className="top-left">
          <Link to="/" className="brand">
            CCTV
          </Link>
          <nav aria-label="Main">
            <ul className="nav">
              {nav.map((n) => {
                const current = n.to === '/' ? path === '/' || cameraId !== null : n.to === '/recordings' ? recordings !== null : path === n.to;
                return (
                  <li key={n.to}>
                    <Link to={n.to} aria-current={current ? 'page' : undefined} data-testid={`nav-${n.label.toLowerCase()}`}>
                      {n.label}
                    </Link>
                  </li>
                );
              })}
            </ul>
          </nav>
        </div>
        <div className="top-right">
          {mayWatch && (
            <span className={`conn ${connected ? 'conn-up' : 'conn-down'}`} role="status">
              {connected ? 'Live updates on' : 'Connecting to the server…'}
            </span>
          )}
          <span className="whoami" title={`Role: ${me.user.role}`}>
            <span className="visually-hidden">Signed in as </span>
            <span data-testid="whoami">{me.user.username}</span>
          </span>
          <button type="button" onClick={() => void leave()} data-testid="sign-out">
            Sign out
          </button>
        </div>
      </header>
      <main>
        {cameraId !== null ? (
          <CameraPage id={cameraId} cameras={cameras} />
        ) : path === '/' ? (
          <GridPage cameras={mayWatch ? cameras : []} apply={apply} canManage={can(me, 'cameras:manage')} />
        ) : recordings !== null ? (
          gated('camera:archive', <RecordingsPage cameras={cameras} cameraId={recordings[1] !== undefined ? decodeURIComponent(recordings[1]) : null} />)
        ) : path === '/events' ? (
          gated('camera:archive', <EventsPage me={me} cameras={cameras} />)
        ) : path === '/alerts' ? (
          gated('alerts:manage', <AlertsPage cameras={cameras ?? []} />)
        ) : path === '/account' ? (
          <AccountPage me={me} cameras={cameras ?? []} />
        ) : path === '/users' ? (
          gated('users:manage', <UsersPage me={me} cameras={cameras ?? []} />)
        ) : path === '/security' ? (
          gated('settings:manage', <SecurityPage />)
        ) : path === '/nodes' ? (
          gated('nodes:read', <NodesPage me={me} />)
        ) : path === '/audit' ? (
          gated('audit:read', <AuditPage cameras={cameras ?? []} />)
        ) : (
          <section>
            <h1>Not found</h1>
            <p>
              Nothing lives at {path}. <Link to="/">Back to the cameras</Link>
            </p>
          </section>
        )}
      </main>
    </>
  );
}
