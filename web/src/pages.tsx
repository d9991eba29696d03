import type { Camera, ServerMessage } from './api';
import { CameraAdmin } from './CameraAdmin';
import { CameraPlayer, placementText } from './CameraPlayer';
import { Link } from './router';

/** Route `/`: every camera live, and the admin panel for those who may manage cameras. */
export function GridPage({ cameras, apply, canManage }: { cameras: Camera[] | null; apply: (change: ServerMessage) => void; canManage: boolean }) {
  return (
    <>
      <section aria-labelledby="live-heading">
        <h1 id="live-heading">Live</h1>
        {cameras === null ? (
          <p className="muted">Loading cameras…</p>
        ) : cameras.length === 0 ? (
          <p className="muted">{canManage ? 'No cameras yet. Add one below.' : 'There are no cameras you may watch.'}</p>
        ) : (
          <ul className="grid">
            {cameras.map((c) => (
              <li key={c.id}>
                <Link to={`/camera/${encodeURIComponent(c.id)}`} className="tile-link" aria-label={`Open ${c.name}`}>
                  <CameraPlayer camera={c} />
                </Link>
              </li>
            ))}
          </ul>
        )}
      </section>
      {canManage && <CameraAdmin cameras={cameras ?? []} apply={apply} />}
    </>
  );
}

function describeSource(c: Camera): string {
  const s = c.source;
  switch (s.kind) {
    case 'test':
      return `Test pattern ${s.pattern}, ${s.width}x${s.height} at ${s.fps} fps, ${s.bitrateKbps} kbit/s`;
    case 'rtsp':
      return `RTSP ${s.url} over ${s.transport}`;
    case 'rpicam':
      return `Raspberry Pi camera ${s.camera}, ${s.width}x${s.height} at ${s.fps} fps, ${s.bitrateKbps} kbit/s`;
    case 'rtp':
      return `RTP ${s.codec} (payload type ${s.payloadType}) on ${s.host}:${s.port}`;
    case 'whip':
      return `WHIP publisher, to ${window.location.origin}/api/cameras/${encodeURIComponent(c.id)}/whip`;
  }
}

/** Route `/camera/:id`: one camera, large, with what the server knows of its input. */
export function CameraPage({ id, cameras }: { id: string; cameras: Camera[] | null }) {
  const camera = cameras?.find((c) => c.id === id);
  const input = camera?.status.input;
  return (
    <section aria-labelledby="camera-heading">
      <Link to="/" className="back">
        ← All cameras
      </Link>
      <h1 id="camera-heading">{camera?.name ?? id}</h1>
      {cameras === null ? (
        <p className="muted">Loading…</p>
      ) : !camera || !input ? (
        <p className="muted">There is no camera with id “{id}”.</p>
      ) : (
        <>
          <CameraPlayer camera={camera} large />
          <dl className="details">
            <dt>Source</dt>
            <dd>{describeSource(camera)}</dd>
            <dt>Input</dt>
            <dd>
              {input.codec ?? 'no codec yet'} · {input.fps.toFixed(0)} fps · {input.bitrateKbps.toFixed(0)} kbit/s · keyframes{' '}
              {input.keyframes} · reconnects {input.reconnects}
            </dd>
            <dt>Viewers</dt>
            <dd>{camera.status.viewers}</dd>
            <dt>Runs</dt>
            <dd>
              {placementText(camera.placement) ?? 'not placed'}
              {camera.placement?.problem && <span className="placement-problem"> {camera.placement.problem}</span>}
            </dd>
            {camera.status.lastError && (
              <>
                <dt>Last error</dt>
                <dd className="error-text">{camera.status.lastError}</dd>
              </>
            )}
          </dl>
        </>
      )}
    </section>
  );
}
