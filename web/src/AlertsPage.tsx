import { useCallback, useEffect, useId, useState, type FormEvent } from 'react';
import { api, type Camera, type DeadDelivery, type Webhook, type WebhookTest } from './api';
import { ConfirmButton, CopyButton, ErrorMessage, when } from './ui';

/** Dead letters per page. */
const PAGE = 50;

/** A time the server gives as ISO 8601 or as ms since the epoch. */
function whenAny(t: string | number | null | undefined): string {
  return typeof t === 'number' ? new Date(t).toLocaleString() : when(t);
}

/** What a test delivery met, in a sentence. */
function testText(r: WebhookTest | undefined): string {
  if (!r || (r.ok === undefined && r.status === undefined && !r.error)) return 'Test sent.';
  const facts = [r.status ? `HTTP ${r.status}` : null, r.durationMs !== undefined ? `${Math.round(r.durationMs)} ms` : null].filter(Boolean).join(', ');
  const said = facts ? ` (${facts})` : '';
  if (r.ok === false || r.error) return `Test failed${said}${r.error ? `: ${r.error}` : '.'}`;
  return `Test delivered${said}.`;
}

function NewWebhookForm({ cameras, onCreated }: { cameras: Camera[]; onCreated: (secret: string, url: string) => void }) {
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const ids = { url: useId(), error: useId() };

  const submit = async (ev: FormEvent<HTMLFormElement>): Promise<void> => {
    ev.preventDefault();
    const formEl = ev.currentTarget;
    const form = new FormData(formEl);
    const url = String(form.get('webhookUrl') ?? '').trim();
    const cams = form.getAll('webhookCamera').map(String);
    setBusy(true);
    try {
      // No camera ticked: every camera, now and later (the server's default).
      const made = await api.addWebhook({ url, ...(cams.length ? { cameras: cams } : {}) });
      setError(null);
      formEl.reset();
      onCreated(made.secret, made.url);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="subpanel" onSubmit={(ev) => void submit(ev)} noValidate aria-labelledby="new-webhook-heading">
      <h3 id="new-webhook-heading">Add an endpoint</h3>
      <div className="fields">
        <div className="field field-wide">
          <label htmlFor={ids.url}>URL</label>
          <input
            id={ids.url}
            name="webhookUrl"
            type="url"
            required
            placeholder="https://example.org/cctv-alerts"
            autoComplete="off"
            aria-describedby={error ? ids.error : undefined}
            data-testid="webhook-url"
          />
        </div>
      </div>
      {cameras.length > 0 && (
        <fieldset className="checks">
          <legend>Only these cameras (none ticked: every camera)</legend>
          {cameras.map((c) => (
            <label key={c.id} className="toggle">
              <input type="checkbox" name="webhookCamera" value={c.id} />
              {c.name} <span className="muted">({c.id})</span>
            </label>
          ))}
        </fieldset>
      )}
      <div className="form-actions">
        <button type="submit" disabled={busy} data-testid="webhook-add">
          {busy ? 'Adding…' : 'Add endpoint'}
        </button>
        <ErrorMessage error={error} id={ids.error} testId="webhook-error" />
      </div>
    </form>
  );
}

function WebhookRow({ hook, nameOf, onChanged, onRemoved }: { hook: Webhook; nameOf: (id: string) => string; onChanged: (w: Webhook) => void; onRemoved: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [result, setResult] = useState<string | null>(null);

  const run = async (action: () => Promise<void>): Promise<void> => {
    setBusy(true);
    setResult(null);
    try {
      await action();
      setError(null);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <tr data-testid="webhook-row" data-webhook={hook.id}>
      <td className="wrap-anywhere">
        <code>{hook.url}</code>
      </td>
      <td>{hook.cameras === null ? 'every camera' : hook.cameras.map(nameOf).join(', ') || 'none'}</td>
      <td>
        <label className="toggle">
          <input
            type="checkbox"
            checked={hook.enabled}
            disabled={busy}
            onChange={(e) => {
              const enabled = e.target.checked;
              void run(async () => onChanged({ ...hook, ...(await api.setWebhookEnabled(hook.id, enabled)), enabled }));
            }}
            data-testid="webhook-enabled"
          />
          {hook.enabled ? 'On' : 'Off'}
          <span className="visually-hidden"> ({hook.url})</span>
        </label>
      </td>
      <td>
        {hook.createdBy}
        <br />
        <span className="muted small">{whenAny(hook.createdAt)}</span>
      </td>
      <td>
        <div className="row-actions">
          <button type="button" disabled={busy} onClick={() => void run(async () => setResult(testText(await api.testWebhook(hook.id))))} data-testid="webhook-test">
            Send a test
            <span className="visually-hidden"> to {hook.url}</span>
          </button>
          <ConfirmButton
            label="Delete…"
            question="Delete this endpoint?"
            confirmLabel="Delete"
            disabled={busy}
            onConfirm={() =>
              void run(async () => {
                await api.removeWebhook(hook.id);
                onRemoved();
              })
            }
            testId="webhook-delete"
          />
        </div>
        {result && (
          <p className="small" role="status" data-testid="webhook-test-result">
            {result}
          </p>
        )}
        <ErrorMessage error={error} />
      </td>
    </tr>
  );
}

function WebhooksSection({ cameras }: { cameras: Camera[] }) {
  const [hooks, setHooks] = useState<Webhook[] | null>(null);
  const [fresh, setFresh] = useState<{ secret: string; url: string } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const nameOf = (id: string): string => cameras.find((c) => c.id === id)?.name ?? id;

  const load = useCallback(async () => {
    try {
      setHooks(await api.webhooks());
      setError(null);
    } catch (e) {
      setError(e);
    }
  }, []);
  useEffect(() => void load(), [load]);

  return (
    <section className="panel" aria-labelledby="webhooks-heading">
      <h2 id="webhooks-heading">Webhook endpoints</h2>
      <p className="muted">
        Alerts of the cameras’ alert rules are POSTed as JSON to each endpoint that is on, signed with the endpoint’s secret.
      </p>
      {fresh && (
        <div className="once" role="status">
          <p>
            <strong>Copy the signing secret now: it is shown only once.</strong> The endpoint at <code>{fresh.url}</code> checks the
            signature of each alert with it.
          </p>
          <p className="secret-line">
            <code className="secret" data-testid="webhook-secret">
              {fresh.secret}
            </code>{' '}
            <CopyButton text={fresh.secret} label="Copy secret" />
          </p>
          <button type="button" onClick={() => setFresh(null)}>
            I have copied it
          </button>
        </div>
      )}
      {hooks === null ? (
        !error && <p className="muted">Loading…</p>
      ) : hooks.length === 0 ? (
        <p className="muted">No endpoints yet.</p>
      ) : (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">URL</th>
                <th scope="col">Cameras</th>
                <th scope="col">Sends</th>
                <th scope="col">Added by</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {hooks.map((h) => (
                <WebhookRow
                  key={h.id}
                  hook={h}
                  nameOf={nameOf}
                  onChanged={(w) => setHooks((cur) => cur?.map((x) => (x.id === w.id ? w : x)) ?? cur)}
                  onRemoved={() => setHooks((cur) => cur?.filter((x) => x.id !== h.id) ?? cur)}
                />
              ))}
            </tbody>
          </table>
        </div>
      )}
      <ErrorMessage error={error} />
      <NewWebhookForm
        cameras={cameras}
        onCreated={(secret, url) => {
          setFresh({ secret, url });
          void load();
        }}
      />
    </section>
  );
}

function DeadRow({ d, nameOf, onRetried }: { d: DeadDelivery; nameOf: (id: string) => string; onRetried: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const retry = async (): Promise<void> => {
    setBusy(true);
    try {
      await api.retryDelivery(d.id);
      setError(null);
      onRetried();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <tr data-testid="dead-row" data-delivery={d.id}>
      <td className="nowrap">{whenAny(d.createdMs)}</td>
      <td>{nameOf(d.camera)}</td>
      <td className="num">{d.eventId}</td>
      <td>
        {d.channel}
        {d.webhookId !== null && <span className="muted"> #{d.webhookId}</span>}
      </td>
      <td>{d.type}</td>
      <td className="num">{d.attempts}</td>
      <td className="wrap-anywhere">
        {d.lastStatus !== null && <span className="badge badge-error">HTTP {d.lastStatus}</span>} {d.lastError ?? ''}
      </td>
      <td>
        <button type="button" disabled={busy} onClick={() => void retry()} data-testid="dead-retry">
          {busy ? 'Retrying…' : 'Retry'}
          <span className="visually-hidden"> delivery {d.id}</span>
        </button>
        <ErrorMessage error={error} />
      </td>
    </tr>
  );
}

function DeadLettersSection({ cameras }: { cameras: Camera[] }) {
  const [rows, setRows] = useState<DeadDelivery[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const nameOf = (id: string): string => cameras.find((c) => c.id === id)?.name ?? id;

  const load = useCallback(async (before?: string) => {
    setBusy(true);
    try {
      const page = await api.deadDeliveries({ limit: PAGE, ...(before !== undefined ? { before } : {}) });
      setRows((cur) => (before !== undefined && cur ? [...cur, ...page.deliveries] : page.deliveries));
      setNext(page.deliveries.length < PAGE ? null : page.next);
      setError(null);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }, []);
  useEffect(() => void load(), [load]);

  return (
    <section className="panel" aria-labelledby="dead-heading">
      <h2 id="dead-heading">Undelivered alerts</h2>
      <p className="muted">Alerts that still failed after their last attempt. Retry sends one again.</p>
      <div className="form-actions">
        <button type="button" onClick={() => (setNotice(null), void load())} disabled={busy} data-testid="dead-refresh">
          Refresh
        </button>
        {notice && (
          <span className="ok-text" role="status">
            {notice}
          </span>
        )}
      </div>
      <ErrorMessage error={error} />
      {rows === null ? (
        !error && <p className="muted">Loading…</p>
      ) : rows.length === 0 ? (
        <p className="muted" data-testid="dead-empty">
          Every alert was delivered.
        </p>
      ) : (
        <>
          <div className="table-wrap">
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Camera</th>
                  <th scope="col">Event</th>
                  <th scope="col">Channel</th>
                  <th scope="col">What</th>
                  <th scope="col">Attempts</th>
                  <th scope="col">Last failure</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {rows.map((d) => (
                  <DeadRow
                    key={d.id}
                    d={d}
                    nameOf={nameOf}
                    onRetried={() => {
                      setRows((cur) => cur?.filter((x) => x.id !== d.id) ?? cur);
                      setNotice(`Delivery ${d.id} queued again.`);
                    }}
                  />
                ))}
              </tbody>
            </table>
          </div>
          {next !== null && (
            <div className="form-actions load-more">
              <button type="button" disabled={busy} onClick={() => void load(next)} data-testid="dead-more">
                {busy ? 'Loading…' : 'Load more'}
              </button>
            </div>
          )}
        </>
      )}
    </section>
  );
}

/** Route `/alerts` (alerts:manage): the webhook endpoints alerts go to, and the alerts that could not be delivered. */
export function AlertsPage({ cameras }: { cameras: Camera[] }) {
  return (
    <div className="page">
      <h1>Alerts</h1>
      <p className="muted">Which events alert, and over which channels, is set per camera in its motion settings.</p>
      <WebhooksSection cameras={cameras} />
      <DeadLettersSection cameras={cameras} />
    </div>
  );
}
