import { useEffect, useId, useState, type FormEvent, type ReactNode } from 'react';
import { api, ApiError, isQueued, SOURCE_KINDS, type Camera, type CameraInput, type PlacementConfig, type QueuedChange, type ServerMessage, type SourceKind } from './api';
import { can, useAuth } from './auth';
import { placementText } from './CameraPlayer';
import { MotionSettings } from './MotionSettings';
import { messageOf } from './ui';

/** What became of a change: refused, or queued while the database is away (neither done nor refused). */
type Outcome = { tone: 'error' | 'notice'; text: string } | null;

/** The server's words for a queued change, which says it is neither applied nor lost. */
function queuedText(q: QueuedChange, what: string): string {
  return `${what}: ${q.error.message}`;
}

function OutcomeMessage({ outcome, testId }: { outcome: Outcome; testId?: string }) {
  if (!outcome) return null;
  return outcome.tone === 'error' ? (
    <p className="error-text" role="alert" data-testid={testId}>
      {outcome.text}
    </p>
  ) : (
    <p className="notice" role="status" data-testid={testId}>
      {outcome.text}
    </p>
  );
}

/** `site=shop, floor=2` → { site: 'shop', floor: '2' }; throws a sentence naming the bad part. */
function parseLabels(text: string, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    const key = eq > 0 ? part.slice(0, eq).trim() : '';
    if (!key) throw new Error(`${what}: “${part}” is not key=value`);
    out[key] = part.slice(eq + 1).trim();
  }
  return out;
}

const KIND_LABEL: Record<SourceKind, string> = {
  test: 'Test pattern',
  rtsp: 'RTSP (IP camera)',
  rpicam: 'Raspberry Pi camera',
  rtp: 'RTP over UDP',
  whip: 'WHIP publisher (OBS, GStreamer, a browser)',
};

/** Where a WHIP publisher sends its offer for a camera (RFC 9725), on this server. */
function whipUrl(id: string): string {
  return `${window.location.origin}/api/cameras/${encodeURIComponent(id)}/whip`;
}

// Empty inputs are left out, so the server applies its own defaults.
function text(form: FormData, name: string): string | undefined {
  const v = String(form.get(name) ?? '').trim();
  return v === '' ? undefined : v;
}

function num(form: FormData, name: string): number | undefined {
  const v = text(form, name);
  return v === undefined ? undefined : Number(v);
}

function sourceFrom(form: FormData, kind: SourceKind): CameraInput['source'] {
  switch (kind) {
    case 'test':
      return { kind, width: num(form, 'width'), height: num(form, 'height'), fps: num(form, 'fps'), bitrateKbps: num(form, 'bitrateKbps'), pattern: text(form, 'pattern') };
    case 'rtsp': {
      // A password may well begin or end with a space: not trimmed.
      const password = String(form.get('password') ?? '');
      return { kind, url: text(form, 'url'), transport: text(form, 'transport'), username: text(form, 'username'), password: password || undefined };
    }
    case 'rpicam':
      return { kind, width: num(form, 'width'), height: num(form, 'height'), fps: num(form, 'fps'), bitrateKbps: num(form, 'bitrateKbps'), camera: num(form, 'camera') };
    case 'rtp':
      return { kind, port: num(form, 'port'), host: text(form, 'host'), codec: text(form, 'codec'), payloadType: num(form, 'payloadType') };
    case 'whip':
      return { kind };
  }
}

interface FieldProps {
  label: string;
  name: string;
  /** The field the server blamed, to mark its input. */
  bad: string | null;
  errorId: string;
  hint?: string;
  required?: boolean;
  type?: 'text' | 'number' | 'password' | 'url';
  placeholder?: string;
  defaultValue?: string;
  options?: readonly (readonly [value: string, label: string])[];
}

function Field({ label, name, bad, errorId, hint, required, type = 'text', placeholder, defaultValue, options }: FieldProps) {
  const id = useId();
  const invalid = bad === name;
  const common = {
    id,
    name,
    required,
    defaultValue,
    'aria-invalid': invalid || undefined,
    'aria-describedby': invalid ? errorId : undefined,
  };
  return (
    <div className="field">
      <label htmlFor={id}>
        {label}
        {hint && <span className="muted"> ({hint})</span>}
      </label>
      {options ? (
        <select {...common}>
          {options.map(([value, text]) => (
            <option key={value} value={value}>
              {text}
            </option>
          ))}
        </select>
      ) : (
        <input {...common} type={type} placeholder={placeholder} autoComplete="off" />
      )}
    </div>
  );
}

function AddCameraForm({ apply }: { apply: (change: ServerMessage) => void }) {
  const [kind, setKind] = useState<SourceKind>('test');
  const [error, setError] = useState<ApiError | string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const errorId = useId();
  const kindId = useId();
  // `source.url` → `url`: the inputs are named after the last part of the path.
  const bad = error instanceof ApiError && error.field ? (error.field.split('.').pop() ?? null) : null;
  const f = (props: Omit<FieldProps, 'bad' | 'errorId'>): ReactNode => <Field {...props} bad={bad} errorId={errorId} />;

  const submit = async (ev: FormEvent<HTMLFormElement>): Promise<void> => {
    ev.preventDefault();
    const formEl = ev.currentTarget;
    const form = new FormData(formEl);
    const input: CameraInput = { id: text(form, 'id') ?? '', name: text(form, 'name'), source: sourceFrom(form, kind) };
    setBusy(true);
    setNotice(null);
    try {
      const answer = await api.addCamera(input);
      // Queued: checked and accepted, so the form is done with; the camera appears when it is applied.
      if (isQueued(answer)) setNotice(queuedText(answer, `Camera ${input.id}`));
      else apply({ type: 'camera', camera: answer });
      setError(null);
      formEl.reset();
      setKind('test');
    } catch (e) {
      setError(e instanceof ApiError ? e : messageOf(e));
    } finally {
      setBusy(false);
    }
  };

  const video = (
    <>
      {f({ label: 'Width', name: 'width', type: 'number', placeholder: '640' })}
      {f({ label: 'Height', name: 'height', type: 'number', placeholder: '360' })}
      {f({ label: 'Frames per second', name: 'fps', type: 'number', placeholder: '30' })}
      {f({ label: 'Bitrate', name: 'bitrateKbps', hint: 'kbit/s', type: 'number', placeholder: '1500' })}
    </>
  );

  return (
    // The server validates, and its message is what the user should read: no browser validation bubbles.
    <form className="add-camera" onSubmit={(ev) => void submit(ev)} noValidate aria-labelledby="add-heading">
      <h3 id="add-heading">Add a camera</h3>
      <div className="fields">
        {f({ label: 'Id', name: 'id', required: true, hint: 'letters, digits, _ or -', placeholder: 'front-door' })}
        {f({ label: 'Name', name: 'name', placeholder: 'Front door' })}
        <div className="field">
          <label htmlFor={kindId}>Source</label>
          <select id={kindId} name="kind" value={kind} onChange={(ev) => setKind(ev.target.value as SourceKind)}>
            {SOURCE_KINDS.map((k) => (
              <option key={k} value={k}>
                {KIND_LABEL[k]}
              </option>
            ))}
          </select>
        </div>
      </div>
      {/* Keyed by kind, so switching kinds starts from empty fields. */}
      <fieldset key={kind} className="fields">
        <legend>{KIND_LABEL[kind]}</legend>
        {kind === 'test' && (
          <>
            {video}
            {f({ label: 'Pattern', name: 'pattern', options: [['testsrc2', 'Test pattern with clock'], ['timecode', 'Timecode (latency)']] })}
          </>
        )}
        {kind === 'rtsp' && (
          <>
            {f({ label: 'URL', name: 'url', required: true, type: 'url', placeholder: 'rtsp://192.168.1.20:554/stream1' })}
            {f({ label: 'Transport', name: 'transport', options: [['tcp', 'TCP'], ['udp', 'UDP']] })}
            {f({ label: 'Username', name: 'username' })}
            {f({ label: 'Password', name: 'password', type: 'password' })}
          </>
        )}
        {kind === 'rpicam' && (
          <>
            {video}
            {f({ label: 'Camera number', name: 'camera', type: 'number', placeholder: '0' })}
          </>
        )}
        {kind === 'rtp' && (
          <>
            {f({ label: 'UDP port', name: 'port', required: true, type: 'number', placeholder: '5004' })}
            {f({ label: 'Listen address', name: 'host', placeholder: '0.0.0.0' })}
            {f({ label: 'Codec', name: 'codec', options: [['H264', 'H.264'], ['H265', 'H.265']] })}
            {f({ label: 'Payload type', name: 'payloadType', required: true, type: 'number', defaultValue: '96' })}
          </>
        )}
        {kind === 'whip' && (
          <p className="muted small" data-testid="whip-hint">
            Nothing to set: once added, the publisher sends to <code>{whipUrl('<id>')}</code> with a Bearer token that holds
            camera:control (H.264 or H.265 video).
          </p>
        )}
      </fieldset>
      <div className="form-actions">
        <button type="submit" data-testid="add-camera-submit" disabled={busy}>
          {busy ? 'Adding…' : 'Add camera'}
        </button>
        {error && (
          <p id={errorId} className="error-text" role="alert" data-testid="add-camera-error">
            {typeof error === 'string' ? error : messageOf(error)}
          </p>
        )}
        <OutcomeMessage outcome={notice ? { tone: 'notice', text: notice } : null} testId="add-camera-notice" />
      </div>
    </form>
  );
}

/** Labels as the editor shows them: `key=value, …`. */
function labelsText(labels: Record<string, string> | undefined): string {
  return Object.entries(labels ?? {}).map(([k, v]) => `${k}=${v}`).join(', ');
}

/**
 * Pins a camera to a camera-node, or unpins it, with the labels placement requires and prefers. The
 * whole placement is sent: the server replaces it, it does not merge it.
 */
function PlacementEditor({ camera, apply, onOutcome, onDone }: { camera: Camera; apply: (change: ServerMessage) => void; onOutcome: (o: Outcome) => void; onDone: () => void }) {
  const [nodes, setNodes] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const listId = useId();
  const ids = { node: useId(), require: useId(), prefer: useId() };
  const mayListNodes = can(useAuth().me, 'nodes:read');

  useEffect(() => {
    // Suggestions only: without nodes:read the id is typed by hand.
    if (!mayListNodes) return;
    let active = true;
    api.nodes().then(
      (all) => active && setNodes(all.filter((n) => n.roles.includes('camera-node')).map((n) => n.id)),
      () => {},
    );
    return () => {
      active = false;
    };
  }, [mayListNodes]);

  const send = async (form: HTMLFormElement, pin: boolean): Promise<void> => {
    const data = new FormData(form);
    let placement: PlacementConfig;
    try {
      const node = String(data.get('node') ?? '').trim();
      if (pin && !node) throw new Error('name the camera-node to pin it to');
      placement = {
        ...(pin ? { node } : {}),
        require: parseLabels(String(data.get('require') ?? ''), 'Required labels'),
        prefer: parseLabels(String(data.get('prefer') ?? ''), 'Preferred labels'),
      };
    } catch (e) {
      onOutcome({ tone: 'error', text: `${camera.name}: ${(e as Error).message}` });
      return;
    }
    setBusy(true);
    try {
      const answer = await api.updateCamera(camera.id, { placement });
      if (isQueued(answer)) onOutcome({ tone: 'notice', text: queuedText(answer, camera.name) });
      else {
        apply({ type: 'camera', camera: answer });
        onOutcome(null);
      }
      onDone();
    } catch (e) {
      onOutcome({ tone: 'error', text: `${camera.name}: ${messageOf(e)}` });
    } finally {
      setBusy(false);
    }
  };

  return (
    <form
      className="placement-editor"
      aria-label={`Placement of ${camera.name}`}
      data-testid={`placement-editor-${camera.id}`}
      noValidate
      onSubmit={(ev) => {
        ev.preventDefault();
        void send(ev.currentTarget, true);
      }}
    >
      <div className="fields">
        <div className="field">
          <label htmlFor={ids.node}>Camera-node</label>
          <input id={ids.node} name="node" list={listId} defaultValue={camera.placementRules?.node ?? camera.placement?.cameraNode ?? ''} autoComplete="off" placeholder="cn1" />
          <datalist id={listId}>
            {nodes.map((n) => (
              <option key={n} value={n} />
            ))}
          </datalist>
        </div>
        <div className="field">
          <label htmlFor={ids.require}>
            Required labels <span className="muted">(key=value, …)</span>
          </label>
          <input id={ids.require} name="require" defaultValue={labelsText(camera.placementRules?.require)} autoComplete="off" placeholder="site=shop" />
        </div>
        <div className="field">
          <label htmlFor={ids.prefer}>
            Preferred labels <span className="muted">(key=value, …)</span>
          </label>
          <input id={ids.prefer} name="prefer" defaultValue={labelsText(camera.placementRules?.prefer)} autoComplete="off" placeholder="rack=a" />
        </div>
      </div>
      <p className="muted small">
        {camera.placementRules?.node ? `Pinned to ${camera.placementRules.node}. ` : 'Not pinned. '}
        Saving replaces the camera’s whole placement: its pin and both sets of labels.
      </p>
      <div className="form-actions">
        <button type="submit" disabled={busy} data-testid={`pin-${camera.id}`}>
          Pin to this node
        </button>
        <button type="button" disabled={busy} data-testid={`unpin-${camera.id}`} onClick={(ev) => ev.currentTarget.form && void send(ev.currentTarget.form, false)}>
          Unpin (any node that fits)
        </button>
        <button type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function CameraRow({ camera, apply, onOutcome }: { camera: Camera; apply: (change: ServerMessage) => void; onOutcome: (o: Outcome) => void }) {
  const [confirming, setConfirming] = useState(false);
  const [placing, setPlacing] = useState(false);
  const [motion, setMotion] = useState(false);
  const [busy, setBusy] = useState(false);

  const run = async (action: () => Promise<void>): Promise<void> => {
    setBusy(true);
    try {
      await action();
    } catch (e) {
      onOutcome({ tone: 'error', text: `${camera.name}: ${messageOf(e)}` });
    } finally {
      setBusy(false);
    }
  };
  const toggle = () =>
    run(async () => {
      const answer = await api.updateCamera(camera.id, { enabled: !camera.enabled });
      if (isQueued(answer)) return onOutcome({ tone: 'notice', text: queuedText(answer, camera.name) });
      apply({ type: 'camera', camera: answer });
      onOutcome(null);
    });
  const remove = () =>
    run(async () => {
      const answer = await api.removeCamera(camera.id);
      setConfirming(false);
      if (isQueued(answer)) return onOutcome({ tone: 'notice', text: queuedText(answer, camera.name) });
      apply({ type: 'camera-removed', id: camera.id });
      onOutcome(null);
    });
  const where = placementText(camera.placement);

  return (
    <li className="camera-row" data-testid={`camera-row-${camera.id}`}>
      <div className="camera-row-head">
        <span className="camera-row-name">
          {camera.name} <span className="muted">({camera.id}, {camera.source.kind})</span>
          {where && <span className="muted small"> · {where}</span>}
          {camera.placement?.problem && <span className="placement-problem small"> {camera.placement.problem}</span>}
          {camera.source.kind === 'whip' && (
            <span className="muted small" data-testid={`whip-url-${camera.id}`}>
              {' '}
              · publish to <code>{whipUrl(camera.id)}</code>
            </span>
          )}
        </span>
        <label className="toggle">
          <input type="checkbox" checked={camera.enabled} disabled={busy} onChange={() => void toggle()} />
          Enabled
          <span className="visually-hidden"> ({camera.name})</span>
        </label>
        <button type="button" onClick={() => setPlacing((v) => !v)} aria-expanded={placing} data-testid={`placement-${camera.id}-edit`}>
          Placement…
          <span className="visually-hidden"> ({camera.name})</span>
        </button>
        <button type="button" onClick={() => setMotion((v) => !v)} aria-expanded={motion} data-testid={`motion-${camera.id}-edit`}>
          Motion…
          <span className="visually-hidden"> ({camera.name})</span>
          {camera.motion?.enabled && <span className="badge badge-on motion-on">on</span>}
        </button>
        {confirming ? (
          <span className="confirm" role="group" aria-label={`Confirm deleting ${camera.name}`}>
            <span>Delete {camera.name}?</span>
            <button type="button" className="danger" disabled={busy} onClick={() => void remove()}>
              Delete
            </button>
            <button type="button" onClick={() => setConfirming(false)}>
              Cancel
            </button>
          </span>
        ) : (
          <button type="button" onClick={() => setConfirming(true)} aria-label={`Delete ${camera.name}`}>
            Delete…
          </button>
        )}
      </div>
      {placing && <PlacementEditor camera={camera} apply={apply} onOutcome={onOutcome} onDone={() => setPlacing(false)} />}
      {motion && <MotionSettings camera={camera} apply={apply} onDone={() => setMotion(false)} />}
    </li>
  );
}

/** Add, enable or disable, pin to a node, set up motion detection, and delete cameras. */
export function CameraAdmin({ cameras, apply }: { cameras: Camera[]; apply: (change: ServerMessage) => void }) {
  const [outcome, setOutcome] = useState<Outcome>(null);
  return (
    <section className="admin" aria-labelledby="admin-heading">
      <h2 id="admin-heading">Cameras</h2>
      {cameras.length > 0 && (
        <ul className="camera-list">
          {cameras.map((c) => (
            <CameraRow key={c.id} camera={c} apply={apply} onOutcome={setOutcome} />
          ))}
        </ul>
      )}
      <OutcomeMessage outcome={outcome} testId="camera-admin-outcome" />
      <AddCameraForm apply={apply} />
    </section>
  );
}
