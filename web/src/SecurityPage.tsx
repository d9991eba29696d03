import { useEffect, useState, type FormEvent } from 'react';
import { api, ROLES, type Role, type SecuritySettings } from './api';
import { refreshAuth } from './auth';
import { ErrorMessage } from './ui';

const ROLE_PLURAL: Record<Role, string> = { admin: 'Admins', operator: 'Operators', viewer: 'Viewers' };

/** Route `/security` (settings:manage): who must use 2FA. */
export function SecurityPage() {
  const [saved, setSaved] = useState<SecuritySettings | null>(null);
  const [all, setAll] = useState(false);
  const [roles, setRoles] = useState<Role[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [note, setNote] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const show = (s: SecuritySettings): void => {
    setSaved(s);
    setAll(s.require2fa.all);
    setRoles(s.require2fa.roles);
  };

  useEffect(() => {
    api.security().then(show, setError);
  }, []);

  const submit = async (ev: FormEvent<HTMLFormElement>): Promise<void> => {
    ev.preventDefault();
    setBusy(true);
    setNote(null);
    try {
      // Roles are kept in the server's order, so the setting reads the same however it was ticked.
      show(await api.setSecurity({ require2fa: { all, roles: ROLES.filter((r) => roles.includes(r)) } }));
      setError(null);
      setNote('Saved.');
      // Whether 2FA can be turned off on the account page depends on this.
      void refreshAuth().catch(() => {});
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const toggleRole = (r: Role, on: boolean): void => setRoles((cur) => (on ? [...cur, r] : cur.filter((x) => x !== r)));

  return (
    <div className="page">
      <h1>Security</h1>
      {saved === null ? (
        error ? <ErrorMessage error={error} /> : <p className="muted">Loading…</p>
      ) : (
        <form className="panel" onSubmit={(ev) => void submit(ev)} aria-labelledby="require-heading">
          <h2 id="require-heading">Require two-factor sign-in</h2>
          <p className="muted">
            Users who must use 2FA and have not set it up are taken to the set-up page at their next sign-in, and can do nothing else
            until they have. Sessions already open go on. Users who must use 2FA cannot turn it off.
          </p>
          <fieldset className="checks">
            <legend>Who must use 2FA</legend>
            <label className="toggle">
              <input type="checkbox" name="require2faAll" checked={all} onChange={(ev) => setAll(ev.target.checked)} data-testid="require-all" />
              Everyone
            </label>
            {ROLES.map((r) => (
              <label key={r} className="toggle">
                <input
                  type="checkbox"
                  name="require2faRole"
                  value={r}
                  checked={all || roles.includes(r)}
                  disabled={all}
                  onChange={(ev) => toggleRole(r, ev.target.checked)}
                  data-testid={`require-${r}`}
                />
                {ROLE_PLURAL[r]}
              </label>
            ))}
          </fieldset>
          <div className="form-actions">
            <button type="submit" disabled={busy} data-testid="security-save">
              {busy ? 'Saving…' : 'Save'}
            </button>
            {note && (
              <p className="ok-text" role="status">
                {note}
              </p>
            )}
            <ErrorMessage error={error} />
          </div>
        </form>
      )}
    </div>
  );
}
