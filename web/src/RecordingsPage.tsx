// hls.js (its light build: no subtitles, alternate audio or DRM) is loaded when this page is opened.
import type Hls from 'hls.js';
import type { Fragment } from 'hls.js';
import { useCallback, useEffect, useMemo, useRef, useState, type MouseEvent } from 'react';
import { api, type Camera, type EventView, type ExportResult, type Timeline } from './api';
import { onEventMessage } from './liveEvents';
import { navigate, useSearch } from './router';
import { duration, ErrorMessage, localInputValue, percent } from './ui';

const DAY = 86_400_000;

function localDay(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

function clock(ms: number): string {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** Events of a day asked for per page, and the most pages read (a day of a busy camera is a lot). */
const EVENTS_PAGE = 200;
const EVENTS_MAX_PAGES = 20;

/** `?t=<ms>` of the address: the moment to open at; null when absent or not a time. */
function momentOf(search: string): number | null {
  const t = new URLSearchParams(search).get('t');
  if (t === null || t.trim() === '') return null;
  const n = Number(t);
  return Number.isFinite(n) && n > 0 ? n : null;
}

/**
 * The camera's detected events that start within [from, to), oldest first, read page by page; and those
 * the event socket announces later, while `live`.
 */
function useDayEvents(camera: string | null, from: number, to: number, live: boolean): EventView[] {
  const [events, setEvents] = useState<EventView[]>([]);
  useEffect(() => {
    setEvents([]);
    if (!camera) return;
    let stop = false;
    void (async () => {
      const all: EventView[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < EVENTS_MAX_PAGES && !stop; page++) {
        const res = await api.events({ cameras: [camera], from, to, limit: EVENTS_PAGE, ...(cursor ? { cursor } : {}) });
        all.push(...res.events);
        if (res.next === null || res.events.length === 0) break;
        cursor = res.next;
      }
      if (stop) return;
      setEvents((cur) => {
        // Events the socket brought while the pages were read are kept; each id once.
        const byId = new Map(all.map((e) => [e.id, e]));
        for (const e of cur) byId.set(e.id, e);
        return [...byId.values()].sort((a, b) => a.startMs - b.startMs);
      });
    })().catch(() => {}); // marks are extra: the day plays without them
    const off = live
      ? onEventMessage(({ event }) => {
          if (event.camera !== camera || event.startMs < from || event.startMs >= to) return;
          setEvents((cur) => {
            const i = cur.findIndex((e) => e.id === event.id);
            if (i >= 0) return cur.map((e, k) => (k === i ? event : e));
            return [...cur, event].sort((a, b) => a.startMs - b.startMs);
          });
        })
      : undefined;
    return () => {
      stop = true;
      off?.();
    };
  }, [camera, from, to, live]);
  return events;
}

/**
 * A camera's recordings for one day: the day as one bar (recorded stretches, gaps with their reasons,
 * the minute's thumbnail under the cursor),
 * the player (hls.js over the archive's VOD playlist), jumps between gaps, and export of a clip with its
 * proof.
 */
export function RecordingsPage({ cameras, cameraId }: { cameras: Camera[] | null; cameraId: string | null }) {
  const camera = cameraId ?? cameras?.[0]?.id ?? null;
  // `?t=<ms>` (a link from an event): open that day and play from there.
  const moment = momentOf(useSearch());
  const [day, setDay] = useState(() => localDay(moment ?? Date.now()));
  const dayStart = useMemo(() => new Date(`${day}T00:00:00`).getTime(), [day]);
  const [now, setNow] = useState(() => Date.now());
  const dayEnd = Math.min(dayStart + DAY, now);
  const [timeline, setTimeline] = useState<Timeline | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [playingAt, setPlayingAt] = useState<number | null>(null);
  const [hover, setHover] = useState<number | null>(null);
  const videoRef = useRef<HTMLVideoElement | null>(null);
  const hlsRef = useRef<Hls | null>(null);
  const pendingSeek = useRef<number | null>(moment);

  // The day's timeline, refreshed every 10 s while it is today.
  useEffect(() => {
    // Another day's bar must not feed this day's player.
    setTimeline(null);
    if (!camera) return;
    let stop = false;
    const load = () => {
      const t = Date.now();
      setNow(t);
      api.archiveTimeline(camera, dayStart, Math.min(dayStart + DAY, t)).then(
        (tl) => !stop && (setTimeline(tl), setError(null)),
        (e: unknown) => !stop && setError(e),
      );
    };
    load();
    const timer = dayStart + DAY > Date.now() ? setInterval(load, 10_000) : undefined;
    return () => {
      stop = true;
      clearInterval(timer);
    };
  }, [camera, dayStart]);

  const fragments = (): Fragment[] => hlsRef.current?.levels?.[0]?.details?.fragments ?? [];

  /** Plays from wall-clock time `t` (or the next recorded moment after it). */
  const seek = useCallback((t: number) => {
    const v = videoRef.current;
    const frags = fragments();
    if (!v || frags.length === 0) {
      pendingSeek.current = t;
      return;
    }
    const frag = frags.find((f) => f.programDateTime !== null && t < f.programDateTime + f.duration * 1000) ?? frags[frags.length - 1]!;
    const pdt = frag.programDateTime ?? t;
    v.currentTime = frag.start + Math.max(0, Math.min(frag.duration - 0.05, (t - pdt) / 1000));
    void v.play().catch(() => {});
  }, []);

  // A new `?t=`: its day, then the moment. Within the day that is playing it seeks at once; otherwise the
  // seek waits for the day's playlist.
  useEffect(() => {
    if (moment === null) return;
    const target = localDay(moment);
    if (target === day && fragments().length > 0) seek(moment);
    else {
      pendingSeek.current = moment;
      setDay(target);
    }
    // Only a new moment (or camera) moves the player; changing the day by hand does not bring it back.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [moment, camera]);

  // The player, on a playlist of the whole day so far.
  const playlistTo = timeline ? Math.max(...[dayStart + 1, ...timeline.recorded.map((r) => r.endMs)]) : null;
  useEffect(() => {
    const v = videoRef.current;
    if (!camera || !v || playlistTo === null || !timeline || timeline.recorded.length === 0) return;
    const src = `/api/cameras/${encodeURIComponent(camera)}/archive/playlist.m3u8?from=${dayStart}&to=${playlistTo}`;
    const keepAt = playingAt;
    let cancelled = false;
    let hls: Hls | null = null;
    void import('hls.js/light').then(({ default: HlsJs }) => {
      if (cancelled) return;
      if (!HlsJs.isSupported()) {
        v.src = src;
        return;
      }
      const h = new HlsJs({ maxBufferLength: 20 });
      hls = h;
      hlsRef.current = h;
      h.on(HlsJs.Events.LEVEL_LOADED, () => {
        const t = pendingSeek.current ?? keepAt;
        pendingSeek.current = null;
        if (t !== null) seek(t);
      });
      h.on(HlsJs.Events.ERROR, (_e, data) => {
        if (data.fatal) setError(new Error(`playback failed: ${data.details}`));
      });
      h.loadSource(src);
      h.attachMedia(v);
    });
    return () => {
      cancelled = true;
      hls?.destroy();
      hlsRef.current = null;
    };
    // A new playlist when the camera, the day, or the end of what is recorded changes by a minute.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [camera, dayStart, playlistTo === null ? null : Math.floor(playlistTo / 60_000), timeline === null || timeline.recorded.length === 0]);

  useEffect(() => {
    const v = videoRef.current;
    if (!v) return;
    const tick = () => {
      const d = hlsRef.current?.playingDate;
      if (d) setPlayingAt(d.getTime());
    };
    v.addEventListener('timeupdate', tick);
    return () => v.removeEventListener('timeupdate', tick);
  }, [camera]);

  const span = Math.max(1, dayEnd - dayStart);
  const at = (ev: MouseEvent<HTMLDivElement>): number => {
    const r = ev.currentTarget.getBoundingClientRect();
    return dayStart + ((ev.clientX - r.left) / r.width) * DAY;
  };
  const pct = (t: number) => `${(((t - dayStart) / DAY) * 100).toFixed(4)}%`;
  const width = (a: number, b: number) => `${(((b - a) / DAY) * 100).toFixed(4)}%`;

  // To the stretch of recording before (or after) the gap behind (or ahead of) the playhead.
  const jump = (dir: 1 | -1) => {
    if (!timeline || timeline.recorded.length === 0) return;
    const cur = playingAt ?? dayStart;
    const rs = timeline.recorded;
    // The stretch the playhead is in, or the last one before it (-1 when none).
    let i = -1;
    for (const [k, r] of rs.entries()) if (r.startMs <= cur) i = k;
    const inside = i >= 0 && cur < rs[i]!.endMs;
    const target = dir > 0 ? rs[i + 1] : inside ? rs[i - 1] : rs[i];
    if (target) seek(target.startMs);
  };

  const isToday = dayStart + DAY > now;
  const events = useDayEvents(camera, dayStart, dayStart + DAY, isToday);

  // To the start of the next event after the playhead, or of the one before (an event playing for more
  // than a moment goes back to its own start first, as a player's "previous" does).
  const jumpEvent = (dir: 1 | -1) => {
    if (events.length === 0) return;
    const cur = playingAt ?? (dir > 0 ? dayStart - 1 : dayStart + DAY);
    const target = dir > 0 ? events.find((e) => e.startMs > cur + 500) : [...events].reverse().find((e) => e.startMs < cur - 1500);
    if (target) seek(target.startMs);
  };

  if (!camera) return <p className="muted">No cameras.</p>;
  return (
    <section className="recordings">
      <div className="recordings-head">
        <h1>Recordings</h1>
        <label>
          Camera{' '}
          <select value={camera} onChange={(e) => navigate(`/recordings/${encodeURIComponent(e.target.value)}`)} data-testid="recordings-camera">
            {(cameras ?? []).map((c) => (
              <option key={c.id} value={c.id}>
                {c.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Day{' '}
          <input type="date" value={day} max={localDay(Date.now())} onChange={(e) => e.target.value && setDay(e.target.value)} data-testid="recordings-day" />
        </label>
      </div>
      <ErrorMessage error={error} />
      <video ref={videoRef} className="recordings-video" controls muted playsInline data-testid="recordings-video" />
      <div className="timeline-info">
        <span data-testid="playhead-time">{playingAt ? clock(playingAt) : '—'}</span>
        <button type="button" onClick={() => jump(-1)} data-testid="prev-gap">
          ◀ Previous gap
        </button>
        <button type="button" onClick={() => jump(1)} data-testid="next-gap">
          Next gap ▶
        </button>
        <button type="button" onClick={() => jumpEvent(-1)} disabled={events.length === 0} data-testid="prev-event">
          ◀ Previous event
        </button>
        <button type="button" onClick={() => jumpEvent(1)} disabled={events.length === 0} data-testid="next-event">
          Next event ▶
        </button>
        {timeline && (
          <span className="muted">
            {duration(timeline.recordedMs)} recorded of {duration(span)}; {timeline.gaps.length} gap{timeline.gaps.length === 1 ? '' : 's'};{' '}
            {events.length} event{events.length === 1 ? '' : 's'}
          </span>
        )}
      </div>
      <div className="timeline-wrap">
        <div
          className="timeline-bar"
          role="slider"
          aria-label="Time of day"
          aria-valuemin={dayStart}
          aria-valuemax={dayStart + DAY}
          aria-valuenow={playingAt ?? dayStart}
          tabIndex={0}
          data-testid="timeline-bar"
          onClick={(e) => seek(at(e))}
          onMouseMove={(e) => setHover(at(e))}
          onMouseLeave={() => setHover(null)}
        >
          {timeline?.recorded.map((r) => (
            <div key={`r${r.startMs}`} className="timeline-range" style={{ left: pct(r.startMs), width: width(r.startMs, r.endMs) }} data-testid="timeline-range" />
          ))}
          {timeline?.gaps.map((g) => (
            <div
              key={`g${g.startMs}`}
              className="timeline-gap"
              style={{ left: pct(g.startMs), width: width(g.startMs, g.endMs) }}
              title={`${clock(g.startMs)}–${clock(g.endMs)} not recorded${g.reason ? `: ${g.reason}` : ''}`}
              data-testid="timeline-gap"
            />
          ))}
          {playingAt !== null && <div className="timeline-playhead" style={{ left: pct(playingAt) }} />}
          {hover !== null && (
            <div className="timeline-hover" style={{ left: pct(hover) }}>
              {timeline?.recorded.some((r) => hover >= r.startMs - 60_000 && hover < r.endMs) && (
                <img
                  className="timeline-thumb"
                  alt=""
                  width={160}
                  src={`/api/cameras/${encodeURIComponent(camera)}/archive/thumbnail?at=${Math.floor(hover / 60_000) * 60_000}`}
                  data-testid="timeline-thumb"
                />
              )}
              {clock(hover)}
            </div>
          )}
        </div>
        {/* Beside the slider rather than in it (a slider's children are not announced); laid over its top
            half. Keyboard users move between events with the buttons above. */}
        <div className="timeline-events">
          {events.map((e) => {
            const end = e.endMs ?? now;
            const label = `Motion at ${clock(e.startMs)}, ${e.endMs === null ? 'in progress' : duration(end - e.startMs)}, peak ${percent(e.peakScore)}${e.zones.length ? ` in ${e.zones.join(', ')}` : ''}`;
            return (
              <button
                key={e.id}
                type="button"
                tabIndex={-1}
                className={`timeline-event${e.endMs === null ? ' timeline-event-live' : ''}`}
                style={{ left: pct(e.startMs), width: width(e.startMs, Math.max(end, e.startMs)) }}
                title={label}
                aria-label={label}
                data-testid="timeline-event"
                data-start={e.startMs}
                onClick={() => seek(e.startMs)}
              />
            );
          })}
        </div>
      </div>
      <div className="timeline-hours" aria-hidden>
        {[0, 3, 6, 9, 12, 15, 18, 21].map((h) => (
          <span key={h} style={{ left: `${(h / 24) * 100}%` }}>
            {String(h).padStart(2, '0')}:00
          </span>
        ))}
      </div>
      <ExportForm camera={camera} around={playingAt} />
    </section>
  );
}

function ExportForm({ camera, around }: { camera: string; around: number | null }) {
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<ExportResult | null>(null);
  const [error, setError] = useState<unknown>(null);
  const fill = () => {
    const t = around ?? Date.now();
    setFrom(localInputValue(t - 30_000));
    setTo(localInputValue(t + 30_000));
  };
  const submit = async () => {
    setBusy(true);
    setError(null);
    setResult(null);
    try {
      setResult(await api.exportClip(camera, new Date(from).toISOString(), new Date(to).toISOString()));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form
      className="export-form"
      onSubmit={(e) => {
        e.preventDefault();
        void submit();
      }}
    >
      <h2>Export a clip</h2>
      <label>
        From <input type="datetime-local" step={1} value={from} onChange={(e) => setFrom(e.target.value)} required data-testid="export-from" />
      </label>
      <label>
        To <input type="datetime-local" step={1} value={to} onChange={(e) => setTo(e.target.value)} required data-testid="export-to" />
      </label>
      <button type="button" onClick={fill}>
        Around the playhead
      </button>
      <button type="submit" disabled={busy || !from || !to} data-testid="export-button">
        {busy ? 'Exporting…' : 'Export'}
      </button>
      <ErrorMessage error={error} />
      {result && (
        <p data-testid="export-links">
          <a href={result.mp4} download>
            The clip (MP4, {Math.round(result.bytes / 1024)} KiB, {result.segments} segments)
          </a>{' '}
          and{' '}
          <a href={result.proof} download>
            its proof
          </a>
          . SHA-256 <code>{result.sha256}</code>. Check it anywhere with <code>cctv verify-export clip.mp4 clip.proof.json</code>.
        </p>
      )}
    </form>
  );
}
