import { useEffect, useRef, useState, type RefObject } from 'react';
import { whepUrl, type Camera } from './api';
import { EMPTY_STATS, PlayerState, WhepPlayer, type PlayerStats } from './whep';

export interface WhepPlayback {
  videoRef: RefObject<HTMLVideoElement | null>;
  state: PlayerState;
  error: string | null;
  stats: PlayerStats;
}

/** Plays `url` over WHEP into the returned video ref while `url` is not null. */
export function useWhepPlayer(url: string | null): WhepPlayback {
  const videoRef = useRef<HTMLVideoElement>(null);
  const [state, setState] = useState<PlayerState>(PlayerState.Stopped);
  const [error, setError] = useState<string | null>(null);
  const [stats, setStats] = useState<PlayerStats>(EMPTY_STATS);

  useEffect(() => {
    const video = videoRef.current;
    if (!url || !video) return;
    const player = new WhepPlayer(video, url, {
      onState: (s, e) => {
        setState(s);
        setError(e);
      },
      onStats: setStats,
    });
    player.start();
    return () => player.stop();
  }, [url]);

  return { videoRef, state, error, stats };
}

const STATE_LABEL: Record<PlayerState, string> = {
  connecting: 'Connecting',
  live: 'Live',
  reconnecting: 'Reconnecting',
  error: 'Error',
  stopped: 'Stopped',
};

/** Where a camera runs, in a few words: `on cn1 via sfu1`; null while the cluster has not placed it. */
export function placementText(placement: Camera['placement']): string | null {
  if (!placement) return null;
  if (!placement.cameraNode && !placement.sfu) return 'not running on any node';
  return `on ${placement.cameraNode ?? 'no camera-node'} via ${placement.sfu ?? 'no SFU'}`;
}

/** The node a camera runs on and its SFU, and why not when it cannot run. */
export function PlacementLine({ camera }: { camera: Camera }) {
  const where = placementText(camera.placement);
  const problem = camera.placement?.problem ?? null;
  if (!where) return null;
  return (
    <p className="placement" data-testid={`placement-${camera.id}`}>
      <span>{where}</span>
      {problem && (
        <span className="placement-problem" data-testid={`placement-problem-${camera.id}`}>
          {problem}
        </span>
      )}
    </p>
  );
}

function show(n: number | null, digits = 0): string {
  return n === null ? '–' : n.toFixed(digits);
}

/**
 * One camera: its video over WHEP, the player's and the server's state, and live stats. A disabled
 * camera is not played, since the server has no video to send.
 */
export function CameraPlayer({ camera, large = false }: { camera: Camera; large?: boolean }) {
  const { videoRef, state, error, stats } = useWhepPlayer(camera.enabled ? whepUrl(camera.id) : null);
  const server = camera.status.state;
  const note = !camera.enabled ? 'Disabled' : state !== PlayerState.Live ? (error ?? STATE_LABEL[state]) : null;

  return (
    <figure
      className={`player${large ? ' player-large' : ''}`}
      data-testid={`tile-${camera.id}`}
      data-state={state}
      data-camera-state={server}
    >
      <div className="screen">
        <video
          ref={videoRef}
          data-testid={`video-${camera.id}`}
          autoPlay
          muted
          playsInline
          aria-label={`Live video of ${camera.name}`}
        />
        {note && <p className="screen-note" role="status">{note}</p>}
      </div>
      <figcaption>
        <div className="caption-head">
          <span className="camera-name">{camera.name}</span>
          <span className={`badge badge-${state}`} title="Player state">
            {STATE_LABEL[state]}
          </span>
        </div>
        <dl className="stats">
          <div>
            <dt>fps</dt>
            <dd data-testid={`fps-${camera.id}`}>{show(stats.fps)}</dd>
          </div>
          <div>
            <dt>kbit/s</dt>
            <dd data-testid={`bitrate-${camera.id}`}>{show(stats.bitrateKbps)}</dd>
          </div>
          <div>
            <dt>size</dt>
            <dd data-testid={`resolution-${camera.id}`}>
              {stats.width !== null && stats.height !== null ? `${stats.width}x${stats.height}` : '–'}
            </dd>
          </div>
          <div>
            <dt>lost</dt>
            <dd data-testid={`lost-${camera.id}`}>{show(stats.packetsLost)}</dd>
          </div>
          <div>
            <dt>camera</dt>
            <dd>
              <span className={`badge badge-cam-${server}`} title={camera.status.lastError ?? undefined}>
                {server}
              </span>
            </dd>
          </div>
        </dl>
        <PlacementLine camera={camera} />
      </figcaption>
    </figure>
  );
}
