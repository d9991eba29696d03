import { useCallback, useEffect, useId, useState, type FormEvent } from 'react';
import { api, ApiError, type Camera, type Me, type NewToken, type Permission, type SessionInfo, type TokenInfo } from './api';
import { forgetSession, refreshAuth, signOut } from './auth';
import { LoginRoute } from './LoginPages';
import { navigate } from './router';
import { RecoveryCodes, TotpEnrollment } from './TotpSetup';
import { ConfirmButton, CopyButton, ErrorMessage, when } from './ui';

/** Minimum length of a new password, as the server checks it; said before the user types. */
const MIN_PASSWORD = 10;

/** What each permission lets a token do, for the checkboxes. */
export const PERMISSION_LABEL: Record<Permission, string> = {
  'cameras:read': 'See cameras',
  'cameras:manage': 'Add, change and remove cameras',
  'camera:live': 'Watch live',
  'camera:archive': 'Play recordings',
  'camera:export': 'Export recordings',
  'camera:control': 'Control cameras',
  'users:manage': 'Manage users',
  'audit:read': 'Read the audit log',
  'settings:manage': 'Change security settings',
  'metrics:read': 'Read metrics',
  'nodes:read': 'See the cluster’s nodes',
  'nodes:manage': 'Drain, revoke and enrol nodes',
  'alerts:manage': 'Manage alert webhooks',
};

/** A short description of a browser from its User-Agent, for the sessions list. */
export function describeAgent(ua: string | null): string {
  if (!ua) return 'unknown browser';
  const browser = /Edg\//.test(ua) ? 'Edge' : /Firefox\//.test(ua) ? 'Firefox' : /Chrome\/|Chromium\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : null;
  const os = /Android/.test(ua) ? 'Android' : /iPhone|iPad/.test(ua) ? 'iOS' : /Windows/.test(ua) ? 'Windows' : /Mac OS X/.test(ua) ? 'macOS' : /Linux/.test(ua) ? 'Linux' : null;
  return browser && os ? `${browser} on ${os}` : browser ?? os ?? ua.slice(0, 60);
}

function PasswordForm({ onChanged }: { onChanged: () => void }) {
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState(false);
  const [busy, setBusy] = useState(false);
  const ids = { current: useId(), next: useId(), again: useId(), error: useId() };

  const submit = async (ev: FormEvent<HTMLFormElement>): Promise<void> => {
    ev.preventDefault();
    const formEl = ev.currentTarget;
    const form = new FormData(formEl);
    const current = String(form.get('currentPassword') ?? '');
    const next = String(form.get('newPassword') ?? '');
    setDone(false);
    if (next !== String(form.get('newPasswordAgain') ?? '')) return setError('The two new passwords are not the same.');
    if (next.length < MIN_PASSWORD) return setError(`The new password must be at least ${MIN_PASSWORD} characters long.`);
    setBusy(true);
    try {
      await api.changePassword(current, next);
      setError(null);
      setDone(true);
      formEl.reset();
      onChanged();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const blame = error instanceof ApiError ? error.field : undefined;
  return (
    <form className="panel" onSubmit={(ev) => void submit(ev)} noValidate aria-labelledby="password-heading">
      <h2 id="password-heading">Password</h2>
      <div className="fields">
        <div className="field">
          <label htmlFor={ids.current}>Current password</label>
          <input id={ids.current} name="currentPassword" type="password" autoComplete="current-password" required aria-invalid={blame === 'current' || undefined} />
        </div>
        <div className="field">
          <label htmlFor={ids.next}>
            New password <span className="muted">(at least {MIN_PASSWORD} characters)</span>
          </label>
          <input id={ids.next} name="newPassword" type="password" autoComplete="new-password" minLength={MIN_PASSWORD} required aria-invalid={blame === 'password' || undefined} />
        </div>
        <div className="field">
          <label htmlFor={ids.again}>New password again</label>
          <input id={ids.again} name="newPasswordAgain" type="password" autoComplete="new-password" required />
        </div>
      </div>
      <div className="form-actions">
        <button type="submit" disabled={busy} data-testid="password-submit">
          {busy ? 'Changing…' : 'Change password'}
        </button>
        {done && (
          <p className="ok-text" role="status">
            Password changed. Your other sessions were signed out.
          </p>
        )}
        <ErrorMessage error={error} id={ids.error} />
      </div>
    </form>
  );
}

/** A form of one input and a button, for the 2FA actions that need one proof (a code or the password). */
function ProofForm({
  label,
  name,
  type,
  submitLabel,
  onSubmit,
  onCancel,
  testId,
}: {
  label: string;
  name: string;
  type: 'password' | 'code';
  submitLabel: string;
  onSubmit: (value: string) => Promise<void>;
  onCancel: () => void;
  testId?: string;
}) {
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const id = useId();
  const submit = async (ev: FormEvent<HTMLFormElement>): Promise<void> => {
    ev.preventDefault();
    const raw = String(new FormData(ev.currentTarget).get(name) ?? '');
    setBusy(true);
    try {
      await onSubmit(type === 'code' ? raw.replace(/\s/g, '') : raw);
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  return (
    <form className="inline-form" onSubmit={(ev) => void submit(ev)} noValidate>
      <label htmlFor={id}>{label}</label>
      {type === 'code' ? (
        <input id={id} name={name} inputMode="numeric" autoComplete="one-time-code" maxLength={8} required autoFocus />
      ) : (
        <input id={id} name={name} type="password" autoComplete="current-password" required autoFocus />
      )}
      <button type="submit" disabled={busy} data-testid={testId}>
        {submitLabel}
      </button>
      <button type="button" onClick={onCancel}>
        Cancel
      </button>
      <ErrorMessage error={error} />
    </form>
  );
}

function TwoFactorSection({ me }: { me: Me }) {
  const [mode, setMode] = useState<'idle' | 'setup' | 'disable' | 'renew'>('idle');
  const [codes, setCodes] = useState<string[] | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const on = me.user.totpEnabled;

  const finish = (message: string | null): void => {
    setMode('idle');
    setCodes(null);
    setNote(message);
    void refreshAuth().catch(() => {});
  };

  return (
    <section className="panel" aria-labelledby="tfa-heading">
      <h2 id="tfa-heading">Two-factor sign-in</h2>
      <p>
        Status:{' '}
        <span className={`badge ${on ? 'badge-on' : 'badge-off'}`} data-testid="totp-status">
          {on ? 'on' : 'off'}
        </span>{' '}
        {on
          ? 'Signing in asks for a code from your authenticator app.'
          : 'Signing in asks only for your password. A code from an app on your phone makes a stolen password useless.'}
      </p>
      {me.require2fa && <p className="muted">This site requires 2FA for your role: it cannot be turned off.</p>}
      {codes ? (
        <RecoveryCodes codes={codes} onSaved={() => finish('New recovery codes saved; the old ones no longer work.')} />
      ) : mode === 'setup' ? (
        <TotpEnrollment onDone={() => finish('2FA is on.')} onCancel={() => setMode('idle')} />
      ) : mode === 'disable' ? (
        <ProofForm
          label="Your password, to turn 2FA off"
          name="disablePassword"
          type="password"
          submitLabel="Turn off 2FA"
          testId="totp-disable-submit"
          onSubmit={async (password) => {
            await api.disableTotp(password);
            finish('2FA is off.');
          }}
          onCancel={() => setMode('idle')}
        />
      ) : mode === 'renew' ? (
        <ProofForm
          label="A code from your app, to make new recovery codes"
          name="renewCode"
          type="code"
          submitLabel="Make new codes"
          testId="recovery-renew-submit"
          onSubmit={async (code) => setCodes((await api.renewRecoveryCodes(code)).recoveryCodes)}
          onCancel={() => setMode('idle')}
        />
      ) : (
        <div className="form-actions">
          {on ? (
            <>
              <button type="button" onClick={() => setMode('renew')} data-testid="recovery-renew">
                New recovery codes…
              </button>
              {!me.require2fa && (
                <button type="button" onClick={() => setMode('disable')} data-testid="totp-disable">
                  Turn off 2FA…
                </button>
              )}
            </>
          ) : (
            <button type="button" onClick={() => setMode('setup')} data-testid="totp-setup">
              Set up 2FA
            </button>
          )}
          {note && (
            <p className="ok-text" role="status">
              {note}
            </p>
          )}
        </div>
      )}
    </section>
  );
}

/** Sessions, as a table; `onEnd` ends one (when given), `current` is marked. */
export function SessionTable({ sessions, onEnd, busy }: { sessions: SessionInfo[]; onEnd?: (s: SessionInfo) => void; busy?: boolean }) {
  if (sessions.length === 0) return <p className="muted">No sessions.</p>;
  return (
    <div className="table-wrap">
      <table className="table">
        <thead>
          <tr>
            <th scope="col">Browser</th>
            <th scope="col">Address</th>
            <th scope="col">Signed in</th>
            <th scope="col">Last seen</th>
            <th scope="col">Expires</th>
            {onEnd && <th scope="col"><span className="visually-hidden">Actions</span></th>}
          </tr>
        </thead>
        <tbody>
          {sessions.map((s) => (
            <tr key={s.id} data-testid="session-row" data-current={s.current || undefined}>
              <td title={s.userAgent ?? undefined}>
                {describeAgent(s.userAgent)} {s.current && <span className="badge badge-on">this browser</span>}
                {!s.twoFactorVerified && <span className="badge badge-warn">2FA step owed</span>}
              </td>
              <td>{s.ip ?? '–'}</td>
              <td>{when(s.createdAt)}</td>
              <td>{when(s.lastSeenAt)}</td>
              <td>{when(s.expiresAt)}</td>
              {onEnd && (
                <td>
                  <button type="button" disabled={busy} onClick={() => onEnd(s)} data-testid="session-end">
                    {s.current ? 'Sign out' : 'End'}
                  </button>
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function SessionsSection() {
  const [sessions, setSessions] = useState<SessionInfo[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const load = useCallback(async () => {
    try {
      setSessions(await api.mySessions());
      setError(null);
    } catch (e) {
      setError(e);
    }
  }, []);
  useEffect(() => void load(), [load]);

  // Leaving by choice starts the next sign-in from the start page, as the header's Sign out does.
  const leave = (): void => navigate(LoginRoute.SignIn, { replace: true });

  const end = async (s: SessionInfo): Promise<void> => {
    if (s.current) {
      await signOut();
      return leave();
    }
    setBusy(true);
    try {
      await api.endMySession(s.id);
      await load();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const everywhere = async (): Promise<void> => {
    try {
      await api.signOutEverywhere();
      forgetSession();
      leave();
    } catch (e) {
      setError(e);
    }
  };

  return (
    <section className="panel" aria-labelledby="sessions-heading">
      <h2 id="sessions-heading">Where you are signed in</h2>
      {sessions === null ? <p className="muted">Loading…</p> : <SessionTable sessions={sessions} onEnd={(s) => void end(s)} busy={busy} />}
      <div className="form-actions">
        <ConfirmButton
          label="Sign out everywhere…"
          question="End every session, this one included?"
          confirmLabel="Sign out everywhere"
          onConfirm={() => void everywhere()}
          testId="sign-out-everywhere"
        />
        <ErrorMessage error={error} />
      </div>
    </section>
  );
}

/** The permissions and cameras of a token, in a line. */
export function tokenScope(t: TokenInfo): string {
  const perms = t.permissions === null ? 'all of the owner’s permissions' : t.permissions.join(', ') || 'no permissions';
  const cams = t.cameras === null ? 'every camera' : t.cameras.join(', ') || 'no camera';
  return `${perms}; ${cams}`;
}

/** Tokens, as a table; `onRevoke` revokes one that still works (when given). */
export function TokenTable({ tokens, onRevoke, busy }: { tokens: TokenInfo[]; onRevoke?: (t: TokenInfo) => void; busy?: boolean }) {
  if (tokens.length === 0) return <p className="muted">No tokens.</p>;
  const now = Date.now();
  return (
    <div className="table-wrap">
      <table className="table">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Starts with</th>
            <th scope="col">May</th>
            <th scope="col">Made</th>
            <th scope="col">Expires</th>
            <th scope="col">Last used</th>
            {onRevoke && <th scope="col"><span className="visually-hidden">Actions</span></th>}
          </tr>
        </thead>
        <tbody>
          {tokens.map((t) => {
            const expired = t.expiresAt !== null && Date.parse(t.expiresAt) <= now;
            return (
              <tr key={t.id} data-testid="token-row">
                <td>
                  {t.name} {t.kind !== 'api' && <span className="badge">{t.kind}</span>}
                  {t.revokedAt && <span className="badge badge-error">revoked {when(t.revokedAt)}</span>}
                  {!t.revokedAt && expired && <span className="badge badge-stopped">expired</span>}
                </td>
                <td>
                  <code>{t.prefix}…</code>
                </td>
                <td>{tokenScope(t)}</td>
                <td>{when(t.createdAt)}</td>
                <td>{t.expiresAt ? when(t.expiresAt) : 'never'}</td>
                <td>{when(t.lastUsedAt)}</td>
                {onRevoke && (
                  <td>
                    {!t.revokedAt && !expired && (
                      <ConfirmButton
                        label="Revoke…"
                        question={`Revoke “${t.name}”?`}
                        confirmLabel="Revoke"
                        disabled={busy}
                        onConfirm={() => onRevoke(t)}
                        testId="token-revoke"
                      />
                    )}
                  </td>
                )}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function NewTokenForm({ me, cameras, onCreated }: { me: Me; cameras: Camera[]; onCreated: (token: string) => void }) {
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const ids = { name: useId(), days: useId(), error: useId() };

  const submit = async (ev: FormEvent<HTMLFormElement>): Promise<void> => {
    ev.preventDefault();
    const formEl = ev.currentTarget;
    const form = new FormData(formEl);
    const permissions = form.getAll('tokenPermission').map(String) as Permission[];
    const cams = form.getAll('tokenCamera').map(String);
    const days = String(form.get('tokenDays') ?? '').trim();
    // Nothing ticked means no narrowing: the token can do what its owner can, as the server's default.
    const input: NewToken = {
      name: String(form.get('tokenName') ?? '').trim(),
      ...(permissions.length ? { permissions } : {}),
      ...(cams.length ? { cameras: cams } : {}),
      ...(days ? { expiresInDays: Number(days) } : {}),
    };
    setBusy(true);
    try {
      const made = await api.createToken(input);
      setError(null);
      formEl.reset();
      onCreated(made.token);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="subpanel" onSubmit={(ev) => void submit(ev)} noValidate aria-labelledby="new-token-heading">
      <h3 id="new-token-heading">Make a token</h3>
      <div className="fields">
        <div className="field">
          <label htmlFor={ids.name}>Name</label>
          <input id={ids.name} name="tokenName" required maxLength={100} placeholder="NVR export script" autoComplete="off" />
        </div>
        <div className="field">
          <label htmlFor={ids.days}>
            Expires after <span className="muted">(days; empty: never)</span>
          </label>
          <input id={ids.days} name="tokenDays" type="number" min={1} max={3650} placeholder="90" />
        </div>
      </div>
      <fieldset className="checks">
        <legend>Only these permissions (none ticked: all you hold)</legend>
        {me.permissions.map((p) => (
          <label key={p} className="toggle">
            <input type="checkbox" name="tokenPermission" value={p} />
            {PERMISSION_LABEL[p] ?? p} <span className="muted">({p})</span>
          </label>
        ))}
      </fieldset>
      {cameras.length > 0 && (
        <fieldset className="checks">
          <legend>Only these cameras (none ticked: every camera you may use)</legend>
          {cameras.map((c) => (
            <label key={c.id} className="toggle">
              <input type="checkbox" name="tokenCamera" value={c.id} />
              {c.name} <span className="muted">({c.id})</span>
            </label>
          ))}
        </fieldset>
      )}
      <div className="form-actions">
        <button type="submit" disabled={busy} data-testid="token-create">
          {busy ? 'Making…' : 'Make token'}
        </button>
        <ErrorMessage error={error} id={ids.error} testId="token-error" />
      </div>
    </form>
  );
}

function TokensSection({ me, cameras }: { me: Me; cameras: Camera[] }) {
  const [tokens, setTokens] = useState<TokenInfo[] | null>(null);
  const [fresh, setFresh] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const load = useCallback(async () => {
    try {
      setTokens(await api.myTokens());
      setError(null);
    } catch (e) {
      setError(e);
    }
  }, []);
  useEffect(() => void load(), [load]);

  const revoke = async (t: TokenInfo): Promise<void> => {
    setBusy(true);
    try {
      await api.revokeMyToken(t.id);
      await load();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="panel" aria-labelledby="tokens-heading">
      <h2 id="tokens-heading">API tokens</h2>
      <p className="muted">
        For scripts and other programs: send <code>Authorization: Bearer &lt;token&gt;</code>. A token can do at most what you can.
      </p>
      {fresh && (
        <div className="once" role="status">
          <p>
            <strong>Copy your new token now: it is shown only once.</strong> Anyone who has it can act as you within its limits.
          </p>
          <p className="secret-line">
            <code className="secret" data-testid="new-token">
              {fresh}
            </code>{' '}
            <CopyButton text={fresh} label="Copy token" />
          </p>
          <button type="button" onClick={() => setFresh(null)}>
            I have copied it
          </button>
        </div>
      )}
      {tokens === null ? <p className="muted">Loading…</p> : <TokenTable tokens={tokens} onRevoke={(t) => void revoke(t)} busy={busy} />}
      <ErrorMessage error={error} />
      <NewTokenForm
        me={me}
        cameras={cameras}
        onCreated={(token) => {
          setFresh(token);
          void load();
        }}
      />
    </section>
  );
}

/** Route `/account`: your password, 2FA, sessions and API tokens. */
export function AccountPage({ me, cameras }: { me: Me; cameras: Camera[] }) {
  // A new password ends the other sessions: the list is loaded again (a new key remounts it).
  const [sessionsKey, setSessionsKey] = useState(0);
  return (
    <div className="page">
      <h1>Your account</h1>
      <p>
        Signed in as <strong>{me.user.username}</strong> <span className="badge">{me.user.role}</span>
      </p>
      <PasswordForm onChanged={() => setSessionsKey((k) => k + 1)} />
      <TwoFactorSection me={me} />
      <SessionsSection key={sessionsKey} />
      <TokensSection me={me} cameras={cameras} />
    </div>
  );
}
