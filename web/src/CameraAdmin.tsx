import { useId, useState, type FormEvent, type ReactNode } from 'react';
import { api, ApiError, SOURCE_KINDS, type Camera, type CameraInput, type ServerMessage, type SourceKind } from './api';
import { messageOf } from './ui';

const KIND_LABEL: Record<SourceKind, string> = {
  test: 'Test pattern',
  rtsp: 'RTSP (IP camera)',
  rpicam: 'Raspberry Pi camera',
  rtp: 'RTP over UDP',
};

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
    try {
      const camera = await api.addCamera(input);
      apply({ type: 'camera', camera });
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
      </div>
    </form>
  );
}

function CameraRow({ camera, apply, onError }: { camera: Camera; apply: (change: ServerMessage) => void; onError: (message: string | null) => void }) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);

  const run = async (action: () => Promise<void>): Promise<void> => {
    setBusy(true);
    try {
      await action();
      onError(null);
    } catch (e) {
      onError(`${camera.name}: ${messageOf(e)}`);
    } finally {
      setBusy(false);
    }
  };
  const toggle = () => run(async () => apply({ type: 'camera', camera: await api.updateCamera(camera.id, { enabled: !camera.enabled }) }));
  const remove = () =>
    run(async () => {
      await api.removeCamera(camera.id);
      apply({ type: 'camera-removed', id: camera.id });
    });

  return (
    <li className="camera-row">
      <span className="camera-row-name">
        {camera.name} <span className="muted">({camera.id}, {camera.source.kind})</span>
      </span>
      <label className="toggle">
        <input type="checkbox" checked={camera.enabled} disabled={busy} onChange={() => void toggle()} />
        Enabled
        <span className="visually-hidden"> ({camera.name})</span>
      </label>
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
    </li>
  );
}

/** Add, enable or disable, and delete cameras. */
export function CameraAdmin({ cameras, apply }: { cameras: Camera[]; apply: (change: ServerMessage) => void }) {
  const [error, setError] = useState<string | null>(null);
  return (
    <section className="admin" aria-labelledby="admin-heading">
      <h2 id="admin-heading">Cameras</h2>
      {cameras.length > 0 && (
        <ul className="camera-list">
          {cameras.map((c) => (
            <CameraRow key={c.id} camera={c} apply={apply} onError={setError} />
          ))}
        </ul>
      )}
      {error && (
        <p className="error-text" role="alert">
          {error}
        </p>
      )}
      <AddCameraForm apply={apply} />
    </section>
  );
}
