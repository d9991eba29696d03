import { useCallback, useEffect, useId, useState, type FormEvent } from 'react';
import {
  api, ApiError, CAMERA_PERMISSIONS, ROLES, type Camera, type CameraGrants, type CameraPermission, type Me, type Role, type SessionInfo, type TokenInfo, type User,
} from './api';
import { SessionTable, TokenTable } from './AccountPage';
import { Link } from './router';
import { ConfirmButton, ErrorMessage, when } from './ui';

/** The camera permissions each role holds. It mirrors the server's role table, so that the grants
 *  editor offers only what can take effect: a grant beyond the role is stored but does nothing. */
const ROLE_CAMERA_PERMISSIONS: Record<Role, readonly CameraPermission[]> = {
  admin: CAMERA_PERMISSIONS,
  operator: CAMERA_PERMISSIONS,
  viewer: ['camera:live', 'camera:archive'],
};

const ROLE_LABEL: Record<Role, string> = {
  admin: 'Admin: everything',
  operator: 'Operator: cameras',
  viewer: 'Viewer: watch only',
};

const CAMERA_PERMISSION_LABEL: Record<CameraPermission, string> = {
  'camera:live': 'Live',
  'camera:archive': 'Archive',
  'camera:export': 'Export',
  'camera:control': 'Control',
};

/** Drops what the role cannot use, so the stored grants say what the user can do. */
function fitGrants(grants: CameraGrants, role: Role): CameraGrants {
  if (grants === null) return null;
  const allowed = ROLE_CAMERA_PERMISSIONS[role];
  return Object.fromEntries(Object.entries(grants).map(([id, perms]) => [id, perms.filter((p) => allowed.includes(p))]));
}

/**
 * Which cameras a user may use: all of them, or some, each with its own permissions. Admins see every
 * camera whatever their grants, so the editor only says so for them.
 */
function GrantsEditor({ role, value, onChange, cameras }: { role: Role; value: CameraGrants; onChange: (g: CameraGrants) => void; cameras: Camera[] }) {
  const name = useId();
  if (role === 'admin') return <p className="muted">Admins may use every camera.</p>;
  const allowed = ROLE_CAMERA_PERMISSIONS[role];
  // Grants may name cameras removed since; they are listed so they can be taken away.
  const ids = [...new Set([...cameras.map((c) => c.id), ...Object.keys(value ?? {})])].sort();
  const nameOf = (id: string): string => cameras.find((c) => c.id === id)?.name ?? `${id} (removed)`;
  const toggle = (camera: string, perm: CameraPermission, on: boolean): void => {
    const cur = new Set(value?.[camera] ?? []);
    if (on) cur.add(perm);
    else cur.delete(perm);
    const next = { ...(value ?? {}) };
    if (cur.size) next[camera] = CAMERA_PERMISSIONS.filter((p) => cur.has(p));
    else delete next[camera];
    onChange(next);
  };
  return (
    <fieldset className="grants">
      <legend>Cameras</legend>
      <label className="toggle">
        <input type="radio" name={name} checked={value === null} onChange={() => onChange(null)} data-testid="grants-all" />
        All cameras, with everything the role allows
      </label>
      <label className="toggle">
        <input type="radio" name={name} checked={value !== null} onChange={() => onChange(value ?? {})} data-testid="grants-some" />
        Only the cameras ticked below
      </label>
      {value !== null &&
        (ids.length === 0 ? (
          <p className="muted">There are no cameras yet.</p>
        ) : (
          <div className="table-wrap">
            <table className="table grants-table">
              <thead>
                <tr>
                  <th scope="col">Camera</th>
                  {CAMERA_PERMISSIONS.map((p) => (
                    <th scope="col" key={p}>
                      {CAMERA_PERMISSION_LABEL[p]}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {ids.map((id) => (
                  <tr key={id}>
                    <th scope="row">{nameOf(id)}</th>
                    {CAMERA_PERMISSIONS.map((p) => (
                      <td key={p}>
                        <input
                          type="checkbox"
                          aria-label={`${CAMERA_PERMISSION_LABEL[p]} on ${nameOf(id)}`}
                          checked={value[id]?.includes(p) ?? false}
                          disabled={!allowed.includes(p)}
                          title={allowed.includes(p) ? undefined : `A ${role} cannot ${CAMERA_PERMISSION_LABEL[p].toLowerCase()}`}
                          onChange={(ev) => toggle(id, p, ev.target.checked)}
                          data-testid={`grant-${id}-${p.slice('camera:'.length)}`}
                        />
                      </td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ))}
    </fieldset>
  );
}

function RoleSelect({ id, name, value, onChange, disabled }: { id: string; name: string; value: Role; onChange: (r: Role) => void; disabled?: boolean }) {
  return (
    <select id={id} name={name} value={value} onChange={(ev) => onChange(ev.target.value as Role)} disabled={disabled}>
      {ROLES.map((r) => (
        <option key={r} value={r}>
          {ROLE_LABEL[r]}
        </option>
      ))}
    </select>
  );
}

function AddUserForm({ cameras, onAdded }: { cameras: Camera[]; onAdded: () => void }) {
  const [role, setRole] = useState<Role>('viewer');
  const [grants, setGrants] = useState<CameraGrants>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const ids = { user: useId(), pass: useId(), role: useId(), error: useId() };

  const submit = async (ev: FormEvent<HTMLFormElement>): Promise<void> => {
    ev.preventDefault();
    const formEl = ev.currentTarget;
    const form = new FormData(formEl);
    setBusy(true);
    try {
      await api.addUser({
        username: String(form.get('newUsername') ?? '').trim(),
        password: String(form.get('newPassword') ?? ''),
        role,
        cameras: role === 'admin' ? null : fitGrants(grants, role),
      });
      setError(null);
      formEl.reset();
      setRole('viewer');
      setGrants(null);
      onAdded();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const blame = error instanceof ApiError ? error.field : undefined;
  return (
    <form className="panel" onSubmit={(ev) => void submit(ev)} noValidate aria-labelledby="add-user-heading">
      <h2 id="add-user-heading">Add a user</h2>
      <div className="fields">
        <div className="field">
          <label htmlFor={ids.user}>
            Username <span className="muted">(letters, digits, . _ @ -)</span>
          </label>
          <input id={ids.user} name="newUsername" required autoComplete="off" autoCapitalize="none" spellCheck={false} aria-invalid={blame === 'username' || undefined} />
        </div>
        <div className="field">
          <label htmlFor={ids.pass}>
            Password <span className="muted">(at least 10 characters)</span>
          </label>
          <input id={ids.pass} name="newPassword" type="password" required autoComplete="new-password" aria-invalid={blame === 'password' || undefined} />
        </div>
        <div className="field">
          <label htmlFor={ids.role}>Role</label>
          <RoleSelect id={ids.role} name="newRole" value={role} onChange={setRole} />
        </div>
      </div>
      <GrantsEditor role={role} value={grants} onChange={setGrants} cameras={cameras} />
      <div className="form-actions">
        <button type="submit" disabled={busy} data-testid="add-user-submit">
          {busy ? 'Adding…' : 'Add user'}
        </button>
        <ErrorMessage error={error} id={ids.error} testId="add-user-error" />
      </div>
    </form>
  );
}

/** Role, disabled, cameras, a new password and a 2FA reset for one user. */
function EditUser({ user, self, cameras, onSaved }: { user: User; self: boolean; cameras: Camera[]; onSaved: (u: User) => void }) {
  const [role, setRole] = useState<Role>(user.role);
  const [disabled, setDisabled] = useState(user.disabled);
  const [grants, setGrants] = useState<CameraGrants>(user.cameras);
  const [error, setError] = useState<unknown>(null);
  const [note, setNote] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const ids = { role: useId(), pass: useId() };

  const run = async (patch: Parameters<typeof api.updateUser>[1], done: string): Promise<boolean> => {
    setBusy(true);
    setNote(null);
    try {
      onSaved(await api.updateUser(user.id, patch));
      setError(null);
      setNote(done);
      return true;
    } catch (e) {
      setError(e);
      return false;
    } finally {
      setBusy(false);
    }
  };
  const save = (ev: FormEvent<HTMLFormElement>): void => {
    ev.preventDefault();
    void run({ role, disabled, cameras: role === 'admin' ? user.cameras : fitGrants(grants, role) }, disabled && !user.disabled ? 'Saved; their sessions were ended.' : 'Saved.');
  };
  const resetPassword = async (ev: FormEvent<HTMLFormElement>): Promise<void> => {
    ev.preventDefault();
    const formEl = ev.currentTarget;
    const password = String(new FormData(formEl).get('resetPassword') ?? '');
    if (await run({ password }, 'Password set; their sessions were ended.')) formEl.reset();
  };

  return (
    <div className="subpanel">
      <form onSubmit={save} noValidate>
        <div className="fields">
          <div className="field">
            <label htmlFor={ids.role}>Role</label>
            {/* The server refuses to let an admin demote or disable themselves: another admin must. */}
            <RoleSelect id={ids.role} name="editRole" value={role} onChange={setRole} disabled={self} />
          </div>
          <label className="toggle">
            <input type="checkbox" name="editDisabled" checked={disabled} disabled={self} onChange={(ev) => setDisabled(ev.target.checked)} />
            Disabled (cannot sign in; tokens stop working)
          </label>
        </div>
        {self && <p className="muted">You cannot change your own role or disable yourself; another admin can.</p>}
        <GrantsEditor role={role} value={grants} onChange={setGrants} cameras={cameras} />
        <div className="form-actions">
          <button type="submit" disabled={busy} data-testid="edit-user-submit">
            Save changes
          </button>
        </div>
      </form>
      {self ? (
        // Setting a password here ends every session of the user, this one included; the account page
        // asks for the current password and keeps this session.
        <p className="muted">
          To change your own password, use <Link to="/account">your account page</Link>.
        </p>
      ) : (
        <>
          <form className="inline-form" onSubmit={(ev) => void resetPassword(ev)} noValidate>
            <label htmlFor={ids.pass}>New password</label>
            <input id={ids.pass} name="resetPassword" type="password" autoComplete="new-password" minLength={10} required />
            <button type="submit" disabled={busy} data-testid="reset-password-submit">
              Set password
            </button>
          </form>
          {user.totpEnabled && (
            // A lost phone and lost recovery codes: only an admin can let the user in again.
            <div className="inline-form">
              <span>2FA is on.</span>
              <ConfirmButton
                label="Reset 2FA…"
                question={`Turn off 2FA for ${user.username}? Their sessions end; if their role requires 2FA they set it up again when they next sign in.`}
                confirmLabel="Reset 2FA"
                disabled={busy}
                onConfirm={() => void run({ resetTwoFactor: true }, '2FA turned off; their sessions were ended.')}
                testId="reset-2fa"
              />
            </div>
          )}
        </>
      )}
      {note && (
        <p className="ok-text" role="status">
          {note}
        </p>
      )}
      <ErrorMessage error={error} />
    </div>
  );
}

function UserSessions({ user }: { user: User }) {
  const [sessions, setSessions] = useState<SessionInfo[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = useCallback(async () => {
    try {
      setSessions(await api.userSessions(user.id));
      setError(null);
    } catch (e) {
      setError(e);
    }
  }, [user.id]);
  useEffect(() => void load(), [load]);
  const endAll = async (): Promise<void> => {
    try {
      await api.endUserSessions(user.id);
      await load();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <div className="subpanel">
      <h3>Sessions of {user.username}</h3>
      {sessions === null ? <p className="muted">Loading…</p> : <SessionTable sessions={sessions} />}
      <div className="form-actions">
        {sessions !== null && sessions.length > 0 && (
          <ConfirmButton
            label="End all sessions…"
            question={`Sign ${user.username} out everywhere${sessions.some((s) => s.current) ? ' (you too)' : ''}?`}
            confirmLabel="End all"
            onConfirm={() => void endAll()}
            testId="user-sessions-end"
          />
        )}
        <ErrorMessage error={error} />
      </div>
    </div>
  );
}

function UserTokens({ user }: { user: User }) {
  const [tokens, setTokens] = useState<TokenInfo[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const load = useCallback(async () => {
    try {
      setTokens(await api.userTokens(user.id));
      setError(null);
    } catch (e) {
      setError(e);
    }
  }, [user.id]);
  useEffect(() => void load(), [load]);
  const revoke = async (t: TokenInfo): Promise<void> => {
    setBusy(true);
    try {
      await api.revokeUserToken(user.id, t.id);
      await load();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="subpanel">
      <h3>Tokens of {user.username}</h3>
      {tokens === null ? <p className="muted">Loading…</p> : <TokenTable tokens={tokens} onRevoke={(t) => void revoke(t)} busy={busy} />}
      <ErrorMessage error={error} />
    </div>
  );
}

type Panel = 'edit' | 'sessions' | 'tokens' | null;

function UserRow({ user, me, cameras, onChanged, onRemoved }: { user: User; me: Me; cameras: Camera[]; onChanged: (u: User) => void; onRemoved: () => void }) {
  const [panel, setPanel] = useState<Panel>(null);
  const [error, setError] = useState<unknown>(null);
  const self = user.id === me.user.id;
  const open = (p: Panel): void => setPanel(panel === p ? null : p);
  const remove = async (): Promise<void> => {
    try {
      await api.removeUser(user.id);
      onRemoved();
    } catch (e) {
      setError(e);
    }
  };
  const grants = user.role === 'admin' || user.cameras === null ? 'all cameras' : `${Object.keys(user.cameras).length} camera(s)`;
  return (
    <li className="user-row" data-testid={`user-${user.username}`}>
      <div className="user-head">
        <span className="user-name">
          <strong>{user.username}</strong> {self && <span className="muted">(you)</span>}
        </span>
        <span className="badge">{user.role}</span>
        <span className={`badge ${user.totpEnabled ? 'badge-on' : 'badge-off'}`}>2FA {user.totpEnabled ? 'on' : 'off'}</span>
        {user.disabled && <span className="badge badge-error">disabled</span>}
        <span className="muted small">{grants} · added {when(user.createdAt)}</span>
        <span className="row-actions">
          <button type="button" aria-expanded={panel === 'edit'} onClick={() => open('edit')} data-testid="user-edit">
            Edit
          </button>
          <button type="button" aria-expanded={panel === 'sessions'} onClick={() => open('sessions')} data-testid="user-sessions">
            Sessions
          </button>
          <button type="button" aria-expanded={panel === 'tokens'} onClick={() => open('tokens')} data-testid="user-tokens">
            Tokens
          </button>
          {!self && (
            <ConfirmButton
              label="Remove…"
              question={`Remove ${user.username}? Their sessions and tokens go too.`}
              confirmLabel="Remove"
              onConfirm={() => void remove()}
              testId="user-remove"
            />
          )}
        </span>
      </div>
      <ErrorMessage error={error} />
      {panel === 'edit' && <EditUser user={user} self={self} cameras={cameras} onSaved={onChanged} />}
      {panel === 'sessions' && <UserSessions user={user} />}
      {panel === 'tokens' && <UserTokens user={user} />}
    </li>
  );
}

/** Route `/users` (users:manage): every user; add, change, remove; their sessions and tokens. */
export function UsersPage({ me, cameras }: { me: Me; cameras: Camera[] }) {
  const [users, setUsers] = useState<User[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = useCallback(async () => {
    try {
      setUsers(await api.listUsers());
      setError(null);
    } catch (e) {
      setError(e);
    }
  }, []);
  useEffect(() => void load(), [load]);

  return (
    <div className="page">
      <h1>Users</h1>
      <ErrorMessage error={error} />
      {users === null ? (
        !error && <p className="muted">Loading…</p>
      ) : (
        <ul className="user-list">
          {users.map((u) => (
            <UserRow
              key={u.id}
              user={u}
              me={me}
              cameras={cameras}
              onChanged={(changed) => setUsers((cur) => cur?.map((x) => (x.id === changed.id ? changed : x)) ?? null)}
              onRemoved={() => void load()}
            />
          ))}
        </ul>
      )}
      <AddUserForm cameras={cameras} onAdded={() => void load()} />
    </div>
  );
}
