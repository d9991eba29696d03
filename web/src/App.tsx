import { useEffect } from 'react';
import { CameraPage, GridPage } from './pages';
import { Link, usePath } from './router';
import { useCameras } from './useCameras';

const CAMERA_ROUTE = /^\/camera\/([^/]+)\/?$/;

export function App() {
  const { cameras, connected, apply } = useCameras();
  const path = usePath();
  const match = CAMERA_ROUTE.exec(path);
  const cameraId = match?.[1] !== undefined ? decodeURIComponent(match[1]) : null;
  const cameraName = cameraId !== null ? cameras?.find((c) => c.id === cameraId)?.name ?? cameraId : null;

  useEffect(() => {
    document.title = cameraName ? `${cameraName} · CCTV` : 'CCTV';
  }, [cameraName]);

  return (
    <>
      <header className="top">
        <Link to="/" className="brand">
          CCTV
        </Link>
        <span className={`conn ${connected ? 'conn-up' : 'conn-down'}`} role="status">
          {connected ? 'Live updates on' : 'Connecting to the server…'}
        </span>
      </header>
      <main>
        {cameraId !== null ? (
          <CameraPage id={cameraId} cameras={cameras} />
        ) : path === '/' ? (
          <GridPage cameras={cameras} apply={apply} />
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
