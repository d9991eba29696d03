import { useCallback, useEffect, useId, useState, type FormEvent } from 'react';
import { api, type AuditEntry, type AuditQuery, type Camera, type ChainCheck } from './api';
import { ErrorMessage, when } from './ui';

/** Entries per page. */
const PAGE = 50;

/** The areas actions are named after (`area.verb`); the server matches `area.*` as a prefix. */
const AREAS = [
  ['auth.*', 'sign-in'],
  ['user.*', 'users'],
  ['token.*', 'tokens'],
  ['camera.*', 'cameras'],
  ['view.*', 'viewing'],
  ['settings.*', 'settings'],
] as const;

/** A datetime-local value (local time, no offset) as ISO 8601 with an offset, which the server wants. */
function toIso(local: string): string | undefined {
  if (!local) return undefined;
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

function detailsText(details: Record<string, unknown>): string {
  return Object.keys(details).length === 0 ? '' : JSON.stringify(details);
}

function AuditTable({ entries }: { entries: AuditEntry[] }) {
  return (
    <div className="table-wrap">
      <table className="table audit-table">
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">When</th>
            <th scope="col">Who</th>
            <th scope="col">What</th>
            <th scope="col">Target</th>
            <th scope="col">Camera</th>
            <th scope="col">Address</th>
            <th scope="col">Details</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((e) => (
            <tr key={e.seq} data-testid="audit-row" data-action={e.action}>
              <td className="num">{e.seq}</td>
              <td className="nowrap">{when(e.at)}</td>
              <td>
                {e.actor} {e.actorKind !== 'user' && <span className="muted">({e.actorKind})</span>}
              </td>
              <td>
                <code>{e.action}</code>
              </td>
              <td>{e.target ?? ''}</td>
              <td>{e.cameraId ?? ''}</td>
              <td>{e.ip ?? ''}</td>
              <td className="details-cell">
                <code title={detailsText(e.details)}>{detailsText(e.details)}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function VerifyChain() {
  const [result, setResult] = useState<ChainCheck | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const verify = async (): Promise<void> => {
    setBusy(true);
    try {
      setResult(await api.verifyAudit());
      setError(null);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section className="panel" aria-labelledby="verify-heading">
      <h2 id="verify-heading">Integrity</h2>
      <p className="muted">
        Each entry carries the hash of the one before it, so an entry changed, removed or slipped in behind the server’s back breaks
        the chain.
      </p>
      <div className="form-actions">
        <button type="button" onClick={() => void verify()} disabled={busy} data-testid="audit-verify">
          {busy ? 'Checking…' : 'Verify chain'}
        </button>
        <ErrorMessage error={error} />
      </div>
      {result && (
        <div className={`verify-result ${result.ok ? 'verify-ok' : 'verify-bad'}`} data-testid="audit-verify-result" role="status">
          {result.ok ? (
            <p>
              The chain is intact: {result.entries} entries checked.
            </p>
          ) : (
            <>
              <p>
                The chain is broken in {result.breaks.length} place{result.breaks.length === 1 ? '' : 's'} ({result.entries} entries checked):
              </p>
              <ul>
                {result.breaks.map((b, i) => (
                  <li key={`${b.seq}-${b.kind}-${i}`}>
                    <span className="badge badge-error">{b.kind}</span> entry {b.seq}: {b.message}
                  </li>
                ))}
              </ul>
            </>
          )}
        </div>
      )}
    </section>
  );
}

/** Route `/audit` (audit:read): the audit log, filtered and paged, and a check of its hash chain. */
export function AuditPage({ cameras }: { cameras: Camera[] }) {
  const [filters, setFilters] = useState<AuditQuery>({});
  const [entries, setEntries] = useState<AuditEntry[] | null>(null);
  const [next, setNext] = useState<number | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const ids = { actor: useId(), action: useId(), camera: useId(), cameras: useId(), from: useId(), to: useId() };

  const load = useCallback(async (q: AuditQuery, before?: number) => {
    setBusy(true);
    try {
      const page = await api.audit({ ...q, limit: PAGE, ...(before ? { before } : {}) });
      setEntries((cur) => (before && cur ? [...cur, ...page.entries] : page.entries));
      // The server gives a `next` with every page that is not empty; a short page is the last one,
      // which saves asking for an empty one.
      setNext(page.entries.length < PAGE ? null : page.next);
      setError(null);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }, []);

  useEffect(() => void load({}), [load]);

  const apply = (ev: FormEvent<HTMLFormElement>): void => {
    ev.preventDefault();
    const form = new FormData(ev.currentTarget);
    const text = (name: string): string | undefined => String(form.get(name) ?? '').trim() || undefined;
    const q: AuditQuery = {
      actor: text('actor'),
      action: text('action'),
      camera: text('camera'),
      from: toIso(String(form.get('from') ?? '')),
      to: toIso(String(form.get('to') ?? '')),
    };
    setFilters(q);
    void load(q);
  };
  // The browser clears the inputs after this; the list goes back to everything.
  const clear = (): void => {
    setFilters({});
    void load({});
  };

  return (
    <div className="page page-wide">
      <h1>Audit log</h1>
      <form className="panel filters" onSubmit={apply} onReset={clear} aria-label="Filters">
        <div className="fields">
          <div className="field">
            <label htmlFor={ids.actor}>Who</label>
            <input id={ids.actor} name="actor" placeholder="username" autoComplete="off" />
          </div>
          <div className="field">
            <label htmlFor={ids.action}>What</label>
            <select id={ids.action} name="action" defaultValue="" data-testid="audit-action">
              <option value="">Everything</option>
              {AREAS.map(([value, label]) => (
                <option key={value} value={value}>
                  {value} ({label})
                </option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor={ids.camera}>Camera</label>
            {/* Free text with suggestions: the log also names cameras removed since. */}
            <input id={ids.camera} name="camera" list={ids.cameras} placeholder="camera id" autoComplete="off" />
            <datalist id={ids.cameras}>
              {cameras.map((c) => (
                <option key={c.id} value={c.id}>
                  {c.name}
                </option>
              ))}
            </datalist>
          </div>
          <div className="field">
            <label htmlFor={ids.from}>From</label>
            <input id={ids.from} name="from" type="datetime-local" step={1} />
          </div>
          <div className="field">
            <label htmlFor={ids.to}>Until</label>
            <input id={ids.to} name="to" type="datetime-local" step={1} />
          </div>
        </div>
        <div className="form-actions">
          <button type="submit" disabled={busy} data-testid="audit-apply">
            Show
          </button>
          <button type="reset">Clear</button>
        </div>
      </form>
      <ErrorMessage error={error} />
      {entries === null ? (
        !error && <p className="muted">Loading…</p>
      ) : entries.length === 0 ? (
        <p className="muted">No entries match.</p>
      ) : (
        <>
          <AuditTable entries={entries} />
          <div className="form-actions load-more">
            <span className="muted">
              {entries.length} entr{entries.length === 1 ? 'y' : 'ies'} shown
            </span>
            {next !== null && (
              <button type="button" disabled={busy} onClick={() => void load(filters, next)} data-testid="audit-more">
                {busy ? 'Loading…' : 'Load more'}
              </button>
            )}
          </div>
        </>
      )}
      <VerifyChain />
    </div>
  );
}
