import { useCallback, useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { api, type Camera, type EventView, type Me } from './api';
import { canOnCamera } from './auth';
import { onEventMessage } from './liveEvents';
import { Link } from './router';
import { duration, ErrorMessage, fromLocalInput, localInputValue, percent } from './ui';

/** Events per page. */
const PAGE = 50;
const DAY = 86_400_000;

/** What the list shows: the filter bar's values once applied. */
interface EventFilter {
  /** Empty: every camera. */
  cameras: string[];
  /** ms since the epoch. */
  from: number;
  /** null: up to now, and live events keep arriving. */
  to: number | null;
  zone: string;
  /** 0–1; 0: any. */
  minScore: number;
}

/** Whether an event (from the socket) belongs in a list with this filter. */
function matches(e: EventView, f: EventFilter): boolean {
  return (
    (f.cameras.length === 0 || f.cameras.includes(e.camera)) &&
    e.startMs >= f.from &&
    (f.to === null || e.startMs <= f.to) &&
    (f.zone === '' || e.zones.includes(f.zone)) &&
    e.peakScore >= f.minScore
  );
}

/** The Recordings page at the event's start. */
export function eventLink(e: Pick<EventView, 'camera' | 'startMs'>): string {
  return `/recordings/${encodeURIComponent(e.camera)}?t=${e.startMs}`;
}

function dateTime(ms: number): string {
  return new Date(ms).toLocaleString([], { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

function EventRow({ event, cameraName, mayProtect, onChange }: { event: EventView; cameraName: string; mayProtect: boolean; onChange: (e: EventView) => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [thumbFailed, setThumbFailed] = useState(false);
  const thumb = event.hasThumbnail && event.thumbnailUrl && !thumbFailed ? event.thumbnailUrl : null;

  const protect = async (on: boolean): Promise<void> => {
    setBusy(true);
    try {
      if (on) {
        const { protectedId } = await api.protectEvent(event.id);
        onChange({ ...event, protectedId });
      } else {
        await api.unprotectEvent(event.id);
        onChange({ ...event, protectedId: null });
      }
      setError(null);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <li className="event-row" data-testid="event-row" data-event={event.id} data-camera={event.camera}>
      <Link to={eventLink(event)} className="event-link" title="Play the recording from here">
        {thumb ? (
          <img className="event-thumb" src={thumb} alt="" loading="lazy" width={160} height={90} onError={() => setThumbFailed(true)} data-testid="event-thumbnail" />
        ) : (
          <span className="event-thumb event-thumb-none" aria-hidden>
            no picture
          </span>
        )}
        <span className="event-facts">
          <span className="event-camera">{cameraName}</span>
          <time dateTime={new Date(event.startMs).toISOString()}>{dateTime(event.startMs)}</time>
          <span className="event-meta">
            {event.endMs === null ? (
              <span className="badge badge-live" data-testid="event-in-progress">
                in progress
              </span>
            ) : (
              <span>{duration(event.endMs - event.startMs)}</span>
            )}
            <span>
              peak <span className="num">{percent(event.peakScore)}</span>
            </span>
            {event.zones.length > 0 && <span className="muted">zones: {event.zones.join(', ')}</span>}
          </span>
        </span>
      </Link>
      <div className="event-actions">
        {event.protectedId !== null && (
          <span className="badge badge-on" data-testid="event-protected">
            Protected
          </span>
        )}
        {mayProtect &&
          (event.protectedId === null ? (
            <button type="button" disabled={busy} onClick={() => void protect(true)} data-testid="event-protect">
              Protect
              <span className="visually-hidden"> the recording of this event</span>
            </button>
          ) : (
            <button type="button" disabled={busy} onClick={() => void protect(false)} data-testid="event-unprotect">
              Unprotect
            </button>
          ))}
        <ErrorMessage error={error} />
      </div>
    </li>
  );
}

/**
 * Route `/events` (camera:archive): detected events, newest first, filtered by camera, time, zone and
 * score, paged by cursor; new events arrive over the event socket while the list reaches up to now.
 */
export function EventsPage({ me, cameras }: { me: Me; cameras: Camera[] | null }) {
  const archived = (cameras ?? []).filter((c) => canOnCamera(me, 'camera:archive', c.id));
  const nameOf = (id: string): string => cameras?.find((c) => c.id === id)?.name ?? id;
  const [filter, setFilter] = useState<EventFilter>(() => ({ cameras: [], from: Date.now() - DAY, to: null, zone: '', minScore: 0 }));
  const [draftScore, setDraftScore] = useState(0);
  const [events, setEvents] = useState<EventView[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  // Answers to an older filter that arrive late are dropped.
  const generation = useRef(0);
  const ids = { from: useId(), to: useId(), zone: useId(), score: useId() };

  const load = useCallback(async (f: EventFilter, cursor?: string) => {
    const gen = cursor ? generation.current : ++generation.current;
    setBusy(true);
    try {
      const page = await api.events({
        ...(f.cameras.length ? { cameras: f.cameras } : {}),
        from: f.from,
        ...(f.to !== null ? { to: f.to } : {}),
        ...(f.zone ? { zone: f.zone } : {}),
        ...(f.minScore > 0 ? { minScore: f.minScore } : {}),
        limit: PAGE,
        ...(cursor ? { cursor } : {}),
      });
      if (gen !== generation.current) return;
      setEvents((cur) => {
        if (!cursor || !cur) return page.events;
        // An event may have come over the socket meanwhile and be on this page too.
        const have = new Set(cur.map((e) => e.id));
        return [...cur, ...page.events.filter((e) => !have.has(e.id))];
      });
      setNext(page.next);
      setError(null);
    } catch (e) {
      if (gen === generation.current) setError(e);
    } finally {
      if (gen === generation.current) setBusy(false);
    }
  }, []);

  useEffect(() => void load(filter), [load, filter]);

  // Live: events of the socket that fit the filter are added in order; those shown are kept up to date.
  useEffect(
    () =>
      onEventMessage(({ event }) => {
        if (!canOnCamera(me, 'camera:archive', event.camera)) return;
        setEvents((cur) => {
          if (!cur) return cur;
          const i = cur.findIndex((e) => e.id === event.id);
          if (i >= 0) return cur.map((e, k) => (k === i ? { ...e, ...event } : e));
          if (!matches(event, filter)) return cur;
          const at = cur.findIndex((e) => e.startMs < event.startMs);
          // Older than everything loaded while more pages wait: it comes with them.
          if (at < 0 && next !== null) return cur;
          return at < 0 ? [...cur, event] : [...cur.slice(0, at), event, ...cur.slice(at)];
        });
      }),
    [me, filter, next],
  );

  const apply = (ev: FormEvent<HTMLFormElement>): void => {
    ev.preventDefault();
    const form = new FormData(ev.currentTarget);
    setFilter({
      cameras: form.getAll('camera').map(String),
      from: fromLocalInput(String(form.get('from') ?? '')) ?? Date.now() - DAY,
      to: fromLocalInput(String(form.get('to') ?? '')) ?? null,
      zone: String(form.get('zone') ?? '').trim(),
      minScore: Number(form.get('minScore') ?? 0),
    });
  };

  return (
    <div className="page page-wide">
      <h1>Events</h1>
      <form className="panel filters" onSubmit={apply} aria-label="Filters" data-testid="events-filters">
        {archived.length > 0 && (
          <fieldset className="checks">
            <legend>Cameras (none ticked: all)</legend>
            {archived.map((c) => (
              <label key={c.id} className="toggle">
                <input type="checkbox" name="camera" value={c.id} defaultChecked={filter.cameras.includes(c.id)} data-testid={`events-camera-${c.id}`} />
                {c.name}
              </label>
            ))}
          </fieldset>
        )}
        <div className="fields">
          <div className="field">
            <label htmlFor={ids.from}>From</label>
            <input id={ids.from} name="from" type="datetime-local" step={1} defaultValue={localInputValue(filter.from)} data-testid="events-from" />
          </div>
          <div className="field">
            <label htmlFor={ids.to}>
              Until <span className="muted">(empty: now, live)</span>
            </label>
            <input id={ids.to} name="to" type="datetime-local" step={1} data-testid="events-to" />
          </div>
          <div className="field">
            <label htmlFor={ids.zone}>Zone</label>
            <input id={ids.zone} name="zone" placeholder="any" autoComplete="off" data-testid="events-zone" />
          </div>
          <div className="field">
            <label htmlFor={ids.score}>
              Lowest peak score <output htmlFor={ids.score}>{draftScore === 0 ? 'any' : percent(draftScore)}</output>
            </label>
            <input
              id={ids.score}
              name="minScore"
              type="range"
              min={0}
              max={1}
              step={0.01}
              value={draftScore}
              onChange={(e) => setDraftScore(Number(e.target.value))}
              aria-valuetext={draftScore === 0 ? 'any' : percent(draftScore)}
              data-testid="events-min-score"
            />
          </div>
        </div>
        <div className="form-actions">
          <button type="submit" disabled={busy} data-testid="events-apply">
            Show
          </button>
          {filter.to === null && <span className="muted small">New events appear as they happen.</span>}
        </div>
      </form>
      <ErrorMessage error={error} />
      {events === null ? (
        !error && <p className="muted">Loading…</p>
      ) : events.length === 0 ? (
        <p className="muted" data-testid="events-empty">
          No events match.
        </p>
      ) : (
        <>
          <ul className="event-list" aria-label="Events, newest first">
            {events.map((e) => (
              <EventRow
                key={e.id}
                event={e}
                cameraName={nameOf(e.camera)}
                mayProtect={canOnCamera(me, 'camera:export', e.camera)}
                onChange={(changed) => setEvents((cur) => cur?.map((x) => (x.id === changed.id ? changed : x)) ?? cur)}
              />
            ))}
          </ul>
          <div className="form-actions load-more">
            <span className="muted">
              {events.length} event{events.length === 1 ? '' : 's'} shown
            </span>
            {next !== null && (
              <button type="button" disabled={busy} onClick={() => void load(filter, next)} data-testid="events-more">
                {busy ? 'Loading…' : 'Load more'}
              </button>
            )}
          </div>
        </>
      )}
    </div>
  );
}
