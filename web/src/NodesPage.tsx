import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { api, type ClusterView, type EnrollmentToken, type LoadSample, type Me, type NodeRole, type NodeView } from './api';
import { can } from './auth';
import { ConfirmButton, CopyButton, ErrorMessage, when } from './ui';

/** How often the page asks again, ms: a node's death shows within this. */
const POLL_MS = 2_000;
/** Moves listed, newest first. */
const MOVES_SHOWN = 10;

/** Roles a new node can be enrolled for (signaling instances share the database and are not enrolled). */
const ENROLL_ROLES: readonly { role: Exclude<NodeRole, 'signaling'>; label: string }[] = [
  { role: 'camera-node', label: 'Camera-node (runs cameras)' },
  { role: 'sfu', label: 'SFU (serves viewers)' },
  { role: 'recorder', label: 'Recorder (writes the archive)' },
  { role: 'detector', label: 'Detector (motion events)' },
];

const TOKEN_LIFETIMES: readonly (readonly [seconds: number, label: string])[] = [
  [3_600, '1 hour'],
  [86_400, '1 day'],
  [7 * 86_400, '7 days'],
];

// --- Numbers said in words -------------------------------------------------------------------------

/** An age in ms as `0.8 s`, `42 s`, `5 min`, `3 h`. */
function age(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7_200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3_600)} h`;
}

function ago(at: number | null, now: number): string {
  return at === null ? 'never' : `${age(now - at)} ago`;
}

function percent(share: number): string {
  return `${(share * 100).toFixed(0)} %`;
}

function mbits(bps: number): string {
  return `${(bps / 1e6).toFixed(bps < 1e7 ? 2 : 1)} Mbit/s`;
}

function signedMs(ms: number): string {
  return `${ms >= 0 ? '+' : '−'}${Math.abs(ms).toFixed(1)} ms`;
}

function labelsText(labels: Record<string, string>): string {
  const entries = Object.entries(labels);
  return entries.length === 0 ? 'none' : entries.map(([k, v]) => `${k}=${v}`).join(', ');
}

// --- Data ------------------------------------------------------------------------------------------

interface ClusterData {
  cluster: ClusterView | null;
  nodes: NodeView[] | null;
  /** The last failed poll; the figures shown are then those of the last good one. */
  error: unknown;
  /** When the figures were read, ms since the epoch. */
  at: number;
}

/**
 * GET /api/cluster and GET /api/nodes every POLL_MS, one poll at a time; `refresh` asks at once (after
 * an action). A page in the background waits until it is shown again. Ages (of heartbeats, placements)
 * are reckoned on this browser's clock against the server's times, so a browser whose clock is off
 * shows them off by as much.
 */
function useCluster(): ClusterData & { refresh: () => void; replaceNode: (n: NodeView) => void } {
  const [data, setData] = useState<ClusterData>({ cluster: null, nodes: null, error: null, at: Date.now() });
  const refresh = useRef<() => void>(() => {});

  useEffect(() => {
    let active = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let running = false;
    let again = false;
    // `force`: asked for (an action, the page shown again), so read even while the page is hidden.
    const load = async (force: boolean): Promise<void> => {
      if (running) {
        again ||= force;
        return;
      }
      clearTimeout(timer);
      running = true;
      try {
        if (force || document.visibilityState !== 'hidden') {
          const [cluster, nodes] = await Promise.all([api.cluster(), api.nodes()]);
          if (active) setData({ cluster, nodes, error: null, at: Date.now() });
        }
      } catch (error) {
        if (active) setData((d) => ({ ...d, error, at: d.at }));
      } finally {
        running = false;
        if (active) {
          if (again) {
            again = false;
            void load(true);
          } else {
            timer = setTimeout(() => void load(false), POLL_MS);
          }
        }
      }
    };
    const onVisible = (): void => {
      if (document.visibilityState === 'visible') void load(true);
    };
    refresh.current = () => void load(true);
    document.addEventListener('visibilitychange', onVisible);
    void load(true);
    return () => {
      active = false;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisible);
    };
  }, []);

  const replaceNode = (n: NodeView): void => setData((d) => ({ ...d, nodes: d.nodes?.map((x) => (x.id === n.id ? n : x)) ?? null }));
  return { ...data, refresh: () => refresh.current(), replaceNode };
}

// --- Charts ----------------------------------------------------------------------------------------

const CHART_W = 220;
const CHART_H = 44;

/**
 * A small line chart of one figure over the node's history (a sample every 10 s, up to an hour). The
 * vertical scale starts at 0 and ends at `max` or the highest sample, whichever is larger.
 */
function Sparkline({ samples, value, label, format, max = 0, testId }: { samples: LoadSample[]; value: (s: LoadSample) => number; label: string; format: (v: number) => string; max?: number; testId?: string }) {
  const values = samples.map(value);
  const last = values[values.length - 1];
  const top = Math.max(max, ...values, Number.EPSILON);
  const first = samples[0]?.at ?? 0;
  const span = Math.max(1, (samples[samples.length - 1]?.at ?? 0) - first);
  const x = (at: number) => (samples.length === 1 ? CHART_W : ((at - first) / span) * CHART_W);
  const y = (v: number) => CHART_H - 2 - (v / top) * (CHART_H - 4);
  const points = samples.map((s, i) => `${x(s.at).toFixed(1)},${y(values[i]!).toFixed(1)}`).join(' ');
  const peak = values.length ? Math.max(...values) : 0;
  const summary =
    last === undefined ? `${label}: no samples yet` : `${label} over the last ${age(span)}: now ${format(last)}, peak ${format(peak)}`;
  return (
    <figure className="spark" data-testid={testId}>
      <figcaption>
        <span className="muted">{label}</span> <span className="spark-now">{last === undefined ? '–' : format(last)}</span>
      </figcaption>
      <svg viewBox={`0 0 ${CHART_W} ${CHART_H}`} width={CHART_W} height={CHART_H} role="img" aria-label={summary} preserveAspectRatio="none">
        <title>{summary}</title>
        <line className="spark-axis" x1="0" y1={CHART_H - 1} x2={CHART_W} y2={CHART_H - 1} />
        {samples.length > 1 && <polyline className="spark-line" points={points} />}
        {last !== undefined && <circle className="spark-dot" cx={x(samples[samples.length - 1]!.at)} cy={y(last)} r="2.5" />}
      </svg>
    </figure>
  );
}

// --- The cluster -----------------------------------------------------------------------------------

function ClusterSummary({ cluster, at }: { cluster: ClusterView; at: number }) {
  const moves = cluster.moves.slice(-MOVES_SHOWN).reverse();
  return (
    <section className="panel" aria-labelledby="cluster-heading" data-testid="cluster-summary">
      <h2 id="cluster-heading">Cluster</h2>
      {cluster.warnings.length > 0 && (
        <div className="warnings" role="alert" data-testid="cluster-warnings">
          <strong>{cluster.warnings.length === 1 ? 'Warning' : `${cluster.warnings.length} warnings`}</strong>
          <ul>
            {cluster.warnings.map((w, i) => (
              <li key={`${i}-${w}`}>{w}</li>
            ))}
          </ul>
        </div>
      )}
      <dl className="details cluster-facts">
        <dt>Leader</dt>
        <dd data-testid="cluster-leader">
          {cluster.leader ? (
            <>
              {cluster.leader.id} <span className="muted">(epoch {cluster.leader.epoch})</span>
            </>
          ) : (
            <span className="error-text">none: nothing is placed or moved until one is elected</span>
          )}
        </dd>
        <dt>Answered by</dt>
        <dd>
          {cluster.instance}
          {cluster.leading && <span className="muted"> (the leader)</span>}
        </dd>
        <dt>Nodes</dt>
        <dd>
          {cluster.nodes.alive} of {cluster.nodes.total} alive
        </dd>
        <dt>Config version</dt>
        <dd data-testid="cluster-config-version">{cluster.configVersion}</dd>
        <dt>Bus</dt>
        <dd>
          {cluster.bus.kind === 'redis' ? 'Redis' : 'in this process'}{' '}
          <span className={`badge ${cluster.bus.healthy ? 'badge-on' : 'badge-error'}`}>{cluster.bus.healthy ? 'healthy' : 'unreachable'}</span>
        </dd>
        <dt>Database</dt>
        <dd>
          {cluster.database.kind === 'postgres' ? 'PostgreSQL' : 'embedded'}{' '}
          <span className={`badge ${cluster.database.available ? 'badge-on' : 'badge-error'}`}>{cluster.database.available ? 'available' : 'unavailable'}</span>
        </dd>
        {cluster.pendingGaps > 0 && (
          <>
            <dt>Gaps</dt>
            <dd>{cluster.pendingGaps} recording gap(s) not yet written to the database</dd>
          </>
        )}
      </dl>

      {cluster.queuedChanges.length > 0 && (
        <div className="subpanel" data-testid="queued-changes">
          <h3>Waiting for the database</h3>
          <p className="muted small">Checked and accepted by {cluster.instance}; applied when the database is back.</p>
          <ul className="plain-list">
            {cluster.queuedChanges.map((q) => (
              <li key={q.id}>
                <code>{q.op}</code> camera {q.camera} by {q.actor} <span className="muted">({when(q.at)})</span>
              </li>
            ))}
          </ul>
        </div>
      )}
      {cluster.failedChanges.length > 0 && (
        <div className="subpanel" data-testid="failed-changes">
          <h3>Queued changes that failed</h3>
          <ul className="plain-list">
            {cluster.failedChanges.map((f) => (
              <li key={f.id}>
                <code>{f.op}</code> camera {f.camera} by {f.actor} <span className="muted">({when(f.at)})</span>
                {f.error && <span className="error-text"> {f.error}</span>}
              </li>
            ))}
          </ul>
        </div>
      )}

      <h3 className="panel-sub">Placements</h3>
      {cluster.placements.length === 0 ? (
        <p className="muted">No camera is placed.</p>
      ) : (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Camera</th>
                <th scope="col">Camera-node</th>
                <th scope="col">SFU</th>
                <th scope="col">Since</th>
                <th scope="col">Problem</th>
              </tr>
            </thead>
            <tbody>
              {cluster.placements.map((p) => (
                <tr key={p.camera} data-testid={`cluster-placement-${p.camera}`}>
                  <td>{p.camera}</td>
                  <td>{p.cameraNode ?? <span className="muted">none</span>}</td>
                  <td>{p.sfu ?? <span className="muted">none</span>}</td>
                  <td className="nowrap">{ago(p.since, at)}</td>
                  <td>{p.problem && <span className="placement-problem">{p.problem}</span>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}

      <h3 className="panel-sub">Recent moves</h3>
      {moves.length === 0 ? (
        <p className="muted">No camera has moved.</p>
      ) : (
        <ul className="plain-list moves" data-testid="cluster-moves">
          {moves.map((m, i) => (
            <li key={`${m.at}-${m.camera}-${m.role}-${i}`}>
              <span className="muted nowrap">{new Date(m.at).toLocaleTimeString()}</span> camera {m.camera}: {m.role}{' '}
              {m.from ?? 'none'} → {m.to ?? 'none'} <span className="muted">({m.reason}; epoch {m.epoch})</span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

// --- One node --------------------------------------------------------------------------------------

function StateBadge({ node }: { node: NodeView }) {
  const text = node.state === 'dead' ? `dead (${node.deathReason === 'lease' ? 'missed its heartbeats' : 'connection closed'})` : node.state;
  return (
    <span className={`badge node-${node.state}`} data-testid={`node-state-${node.id}`} data-state={node.state}>
      {text}
    </span>
  );
}

function ClockFacts({ node }: { node: NodeView }) {
  const { clock } = node;
  const ntp = clock.ntp;
  return (
    <>
      <span data-testid={`node-clock-${node.id}`}>{clock.offsetMs === null ? 'offset not measured yet' : `${signedMs(clock.offsetMs)} from this server`}</span>
      {ntp && (
        <span className="muted">
          {' '}
          · NTP {ntp.source === 'none' ? 'not known' : `${ntp.source}, ${ntp.synchronized === null ? 'sync unknown' : ntp.synchronized ? 'synchronized' : 'not synchronized'}`}
          {ntp.offsetMs !== null && `, ${signedMs(ntp.offsetMs)}`}
        </span>
      )}
      {clock.warning && (
        <p className="clock-warning" role="alert" data-testid={`node-clock-warning-${node.id}`}>
          This clock is {clock.offsetMs === null ? 'too far' : `${Math.abs(clock.offsetMs).toFixed(0)} ms`} off, more than the cluster allows
          (100 ms unless set otherwise). That breaks the shared timeline: recordings, events and gaps from this node no longer line up with
          the others. Fix time synchronisation (NTP) on this machine.
        </p>
      )}
    </>
  );
}

function configText(node: NodeView): string {
  const c = node.config;
  if (c.upToDate === null) return `takes no config (cluster at version ${c.current})`;
  return `applied ${c.applied ?? 'none'} of ${c.current} · ${c.upToDate ? 'up to date' : 'behind'}`;
}

function NodeCard({ node, now, canManage, onChanged, onRemoved }: { node: NodeView; now: number; canManage: boolean; onChanged: (n: NodeView) => void; onRemoved: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = async (action: () => Promise<void>): Promise<void> => {
    setBusy(true);
    try {
      await action();
      setError(null);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const drain = () => run(async () => onChanged(await (node.drained ? api.undrainNode(node.id) : api.drainNode(node.id))));
  const revoke = () =>
    run(async () => {
      await api.revokeNode(node.id);
      onRemoved();
    });
  const load = node.load;
  // Signaling instances are not enrolled: they cannot be drained or revoked, only stopped.
  const manageable = canManage && node.enrolled;

  return (
    <li className={`node node-card-${node.state}`} data-testid={`node-${node.id}`} data-state={node.state} data-drained={node.drained}>
      <div className="node-head">
        <h3 className="node-id">{node.id}</h3>
        <StateBadge node={node} />
        {node.leader && (
          <span className="badge badge-leader" data-testid={`node-leader-${node.id}`}>
            leader
          </span>
        )}
        {node.drained && (
          <span className="badge badge-warn" data-testid={`node-drained-${node.id}`}>
            drained
          </span>
        )}
        {!node.enrolled && <span className="badge badge-off">not enrolled</span>}
        {manageable && (
          <span className="row-actions">
            <button type="button" onClick={() => void drain()} disabled={busy} data-testid={`${node.drained ? 'undrain' : 'drain'}-${node.id}`}>
              {node.drained ? 'Undrain' : 'Drain'}
            </button>
            <ConfirmButton
              label="Revoke…"
              question={<>Revoke {node.id}? Its heartbeats and answers are ignored until it enrols again.</>}
              confirmLabel="Revoke"
              onConfirm={() => void revoke()}
              disabled={busy}
              testId={`revoke-${node.id}`}
            />
          </span>
        )}
      </div>
      <ErrorMessage error={error} />
      <dl className="details node-facts">
        <dt>Roles</dt>
        <dd data-testid={`node-roles-${node.id}`}>{node.roles.join(', ') || 'none'}</dd>
        <dt>Labels</dt>
        <dd>{labelsText(node.labels)}</dd>
        <dt>Version</dt>
        <dd>
          {node.version ?? '–'}
          {node.startedAt !== null && <span className="muted"> · started {ago(node.startedAt, now)}</span>}
        </dd>
        <dt>Last heartbeat</dt>
        <dd data-testid={`node-heartbeat-${node.id}`}>{ago(node.lastHeartbeatAt, now)}</dd>
        {node.state === 'dead' && node.since !== null && (
          <>
            <dt>Down</dt>
            <dd className="error-text">since {ago(node.since, now)}</dd>
          </>
        )}
        <dt>Load</dt>
        <dd>
          {load
            ? `CPU ${percent(load.cpu)} of ${load.cpus} · in ${mbits(load.ingressBps)} · ${load.viewers} viewer${load.viewers === 1 ? '' : 's'} · ${load.cameras} camera${load.cameras === 1 ? '' : 's'}`
            : '–'}
        </dd>
        <dt>Clock</dt>
        <dd>
          <ClockFacts node={node} />
        </dd>
        <dt>Config</dt>
        <dd data-testid={`node-config-${node.id}`} className={node.config.upToDate === false ? 'warn-text' : undefined}>
          {configText(node)}
        </dd>
        {node.cameras.length > 0 && (
          <>
            <dt>Cameras</dt>
            <dd data-testid={`node-cameras-${node.id}`}>
              {node.cameras.map((c) => (
                <span key={c.id} className="node-camera">
                  {c.id} <span className={`badge badge-cam-${c.state}`}>{c.state}</span>
                </span>
              ))}
            </dd>
          </>
        )}
        {node.rooms.length > 0 && (
          <>
            <dt>Rooms</dt>
            <dd data-testid={`node-rooms-${node.id}`}>
              <ul className="plain-list">
                {node.rooms.map((r) => (
                  <li key={r.camera}>
                    {r.camera} <span className="muted">· {r.codec ?? 'no codec yet'} · {r.viewers} viewer{r.viewers === 1 ? '' : 's'} · last packet {ago(r.lastPacketAt, now)}
                    {r.streamStartAt !== null && ` · streaming for ${age(now - r.streamStartAt)}`}</span>
                  </li>
                ))}
              </ul>
            </dd>
          </>
        )}
      </dl>
      {node.history.length > 0 && (
        <div className="sparks">
          <Sparkline samples={node.history} value={(s) => s.cpu * 100} max={100} label="CPU" format={(v) => `${v.toFixed(0)} %`} testId={`chart-cpu-${node.id}`} />
          <Sparkline samples={node.history} value={(s) => s.ingressBps / 1e6} max={1} label="Ingress" format={(v) => `${v.toFixed(v < 10 ? 2 : 1)} Mbit/s`} testId={`chart-ingress-${node.id}`} />
          <Sparkline samples={node.history} value={(s) => s.viewers} max={1} label="Viewers" format={(v) => v.toFixed(0)} testId={`chart-viewers-${node.id}`} />
        </div>
      )}
    </li>
  );
}

// --- Adding a node ---------------------------------------------------------------------------------

/** The shell command a new machine runs to join, with the token filled in. */
function joinCommand(token: EnrollmentToken, name: string): string {
  const tls = location.protocol === 'https:';
  return [
    `CCTV_ROLES=${token.roles.join(',')}`,
    `CCTV_NODE_ID=${name || '<name>'}`,
    'REDIS_URL=redis://<redis-host>:6379',
    `CCTV_MASTER_URL=${location.origin}`,
    ...(tls ? ['CCTV_CLUSTER__MASTER_FINGERPRINT=<fingerprint>'] : []),
    `CCTV_ENROLL_TOKEN=${token.token}`,
    'npm start',
  ].join(' ');
}

function AddNode({ redis }: { redis: boolean }) {
  const [roles, setRoles] = useState<NodeRole[]>(['camera-node']);
  const [fresh, setFresh] = useState<{ token: EnrollmentToken; name: string } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const ids = { name: useId(), ttl: useId() };

  const submit = async (ev: FormEvent<HTMLFormElement>): Promise<void> => {
    ev.preventDefault();
    const form = new FormData(ev.currentTarget);
    if (roles.length === 0) return setError('Pick at least one role.');
    setBusy(true);
    try {
      const token = await api.createEnrollmentToken(roles, Number(form.get('ttl')));
      setFresh({ token, name: String(form.get('name') ?? '').trim() });
      setError(null);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const toggle = (r: NodeRole, on: boolean): void => setRoles((cur) => ENROLL_ROLES.map((x) => x.role).filter((x) => (x === r ? on : cur.includes(x))));

  return (
    <section className="panel" aria-labelledby="add-node-heading">
      <h2 id="add-node-heading">Add a node</h2>
      <p className="muted">
        A new machine joins with a one-time enrolment token: it enrols with this server, then takes cameras or viewers as the leader
        places them.
      </p>
      {!redis && (
        <p className="warn-text">
          This server runs its bus in-process: other machines cannot join until it runs with <code>REDIS_URL</code> set.
        </p>
      )}
      {fresh ? (
        <div className="once" role="status" data-testid="enroll-token">
          <p>
            <strong>Copy this now: the token is shown only once.</strong> It enrols one node as {fresh.token.roles.join(' and ')}, until{' '}
            {when(fresh.token.expiresAt)}.
          </p>
          <p>On the new machine, in the project’s folder, run:</p>
          <p className="secret-line">
            <code className="secret" data-testid="enroll-command">
              {joinCommand(fresh.token, fresh.name)}
            </code>{' '}
            <CopyButton text={joinCommand(fresh.token, fresh.name)} label="Copy command" />
          </p>
          <p className="muted small">
            Replace <code>&lt;redis-host&gt;</code> with the machine of the cluster’s Redis
            {!fresh.name && (
              <>
                {' '}
                and <code>&lt;name&gt;</code> with a unique name for the node
              </>
            )}
            .
            {location.protocol === 'https:' && (
              <>
                {' '}
                Set <code>CCTV_CLUSTER__MASTER_FINGERPRINT</code> to the certificate fingerprint this server printed when it started (“TLS
                certificate SHA-256”): the new node then checks it is talking to this server before it sends the token.
              </>
            )}
          </p>
          <button type="button" onClick={() => setFresh(null)}>
            I have copied it
          </button>
        </div>
      ) : (
        <form onSubmit={(ev) => void submit(ev)} noValidate>
          <fieldset className="checks">
            <legend>Roles</legend>
            {ENROLL_ROLES.map(({ role, label }) => (
              <label key={role} className="toggle">
                <input type="checkbox" checked={roles.includes(role)} onChange={(ev) => toggle(role, ev.target.checked)} data-testid={`enroll-role-${role}`} />
                {label}
              </label>
            ))}
          </fieldset>
          <div className="fields">
            <div className="field">
              <label htmlFor={ids.name}>
                Node name <span className="muted">(for the command; optional)</span>
              </label>
              <input id={ids.name} name="name" autoComplete="off" placeholder="cn2" />
            </div>
            <div className="field">
              <label htmlFor={ids.ttl}>Token valid for</label>
              <select id={ids.ttl} name="ttl" defaultValue={86_400}>
                {TOKEN_LIFETIMES.map(([s, label]) => (
                  <option key={s} value={s}>
                    {label}
                  </option>
                ))}
              </select>
            </div>
          </div>
          <div className="form-actions">
            <button type="submit" disabled={busy} data-testid="enroll-submit">
              {busy ? 'Making…' : 'Make an enrolment token'}
            </button>
            <ErrorMessage error={error} />
          </div>
        </form>
      )}
    </section>
  );
}

// --- The page --------------------------------------------------------------------------------------

/** Route `/nodes` (nodes:read): the cluster, every node with its load, clock and config, and (nodes:manage) drains, revocations and enrolment. */
export function NodesPage({ me }: { me: Me }) {
  const { cluster, nodes, error, at, refresh, replaceNode } = useCluster();
  const canManage = can(me, 'nodes:manage');

  return (
    <div className="page page-wide nodes-page">
      <h1>Nodes</h1>
      {error !== null && (
        <div className="poll-error">
          <ErrorMessage error={error} />
          {cluster && <p className="muted small">Showing what was read {ago(at, Date.now())}.</p>}
        </div>
      )}
      {cluster === null || nodes === null ? (
        error === null && <p className="muted">Loading…</p>
      ) : (
        <>
          <ClusterSummary cluster={cluster} at={at} />
          <section aria-labelledby="nodes-heading">
            <h2 id="nodes-heading">
              {nodes.length} node{nodes.length === 1 ? '' : 's'}
            </h2>
            {nodes.length === 0 ? (
              <p className="muted">No node has registered.</p>
            ) : (
              <ul className="node-list">
                {nodes.map((n) => (
                  <NodeCard
                    key={n.id}
                    node={n}
                    now={at}
                    canManage={canManage}
                    onChanged={(changed) => {
                      replaceNode(changed);
                      refresh();
                    }}
                    onRemoved={refresh}
                  />
                ))}
              </ul>
            )}
          </section>
          {canManage && <AddNode redis={cluster.bus.kind === 'redis'} />}
        </>
      )}
    </div>
  );
}
