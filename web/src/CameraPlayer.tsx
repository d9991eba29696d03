import { useEffect, useRef, useState, type RefObject } from 'react';
import { whepUrl, type Camera, type EventView } from './api';
import { useActiveEvent } from './liveEvents';
import { frameStyle, useVideoFrame } from './videoFrame';
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

/** A share 0–1 as a CSS percentage. */
function pc(share: number): string {
  return `${(Math.max(0, Math.min(1, share)) * 100).toFixed(3)}%`;
}

/**
 * While the camera has an event in progress: a Motion badge, and the changed region outlined over the
 * picture (the box is in shares of the picture, which letterboxing moves inside the element).
 */
function MotionMark({ event, videoRef }: { event: EventView; videoRef: RefObject<HTMLVideoElement | null> }) {
  const frame = useVideoFrame(videoRef);
  const box = event.box;
  return (
    <>
      <span className="motion-badge" data-testid="live-motion" data-event={event.id} title={event.zones.length ? `Zones: ${event.zones.join(', ')}` : undefined}>
        Motion
        {event.zones.length > 0 && <span className="visually-hidden"> in {event.zones.join(', ')}</span>}
      </span>
      {box && frame.width > 0 && (
        <div className="frame-overlay" style={frameStyle(frame)} aria-hidden>
          <div
            className="motion-box"
            style={{ left: pc(box.x), top: pc(box.y), width: pc(box.w), height: pc(box.h) }}
            data-testid="live-motion-box"
          />
        </div>
      )}
    </>
  );
}

/**
 * One camera: its video over WHEP, the player's and the server's state, and live stats. A disabled
 * camera is not played, since the server has no video to send.
 */
export function CameraPlayer({ camera, large = false }: { camera: Camera; large?: boolean }) {
  const { videoRef, state, error, stats } = useWhepPlayer(camera.enabled ? whepUrl(camera.id) : null);
  const motion = useActiveEvent(camera.id);
  const server = camera.status.state;
  const note = !camera.enabled ? 'Disabled' : state !== PlayerState.Live ? (error ?? STATE_LABEL[state]) : null;

  return (
    <figure
      className={`player${large ? ' player-large' : ''}${motion ? ' player-motion' : ''}`}
      data-testid={`tile-${camera.id}`}
      data-state={state}
      data-camera-state={server}
      data-motion={motion ? 'true' : undefined}
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
        {motion && <MotionMark event={motion} videoRef={videoRef} />}
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
