import { useEffect, useId, useRef, useState, type FormEvent, type KeyboardEvent, type PointerEvent, type ReactNode } from 'react';
import {
  api, ApiError, isQueued, MOTION_DEFAULTS, whepUrl,
  type AlertRule, type AlertWindow, type Camera, type MotionConfig, type MotionZone, type ServerMessage,
} from './api';
import { useWhepPlayer } from './CameraPlayer';
import { messageOf, percent } from './ui';
import { frameStyle, useVideoFrame } from './videoFrame';
import { PlayerState } from './whep';

type Point = [number, number];

/** Limits the server checks; the editor keeps within them so the user meets few refusals. */
const MAX_ZONES = 16;
const MIN_POINTS = 3;
const MAX_POINTS = 64;
const ZONE_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_-]{0,31}$/;
const ZONE_DEFAULTS = { threshold: 0.06, minArea: 0.005 } as const;
/** A corner moves this far per arrow key (a share of the picture); a tenth of it with Shift. */
const KEY_STEP = 0.01;
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'] as const;

const clamp01 = (v: number): number => Math.min(1, Math.max(0, v));
const round4 = (v: number): number => Math.round(v * 10_000) / 10_000;

/** Whether two segments cross at a point inside both (touching and overlapping do not count). */
function segmentsCross(a: Point, b: Point, c: Point, d: Point): boolean {
  const side = (p: Point, q: Point, r: Point): number => Math.sign((q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]));
  return side(a, b, c) * side(a, b, d) < 0 && side(c, d, a) * side(c, d, b) < 0;
}

/** Whether a closed polygon's edges cross each other, which the server refuses. */
export function selfCrossing(points: readonly Point[]): boolean {
  const n = points.length;
  for (let i = 0; i < n; i++) {
    for (let j = i + 2; j < n; j++) {
      if (i === 0 && j === n - 1) continue; // neighbours through the closing edge
      if (segmentsCross(points[i]!, points[(i + 1) % n]!, points[j]!, points[(j + 1) % n]!)) return true;
    }
  }
  return false;
}

/** The camera's motion section with every key present (older configs may lack some). */
function motionOf(camera: Camera): MotionConfig {
  const m = { ...MOTION_DEFAULTS, ...(camera.motion ?? {}) };
  return { ...m, zones: m.zones.map((z) => ({ ...z, points: z.points.map(([x, y]) => [x, y] as Point) })), alerts: m.alerts.map((a) => ({ ...a })) };
}

/** A name not yet taken: `zone-1`, `zone-2`, … */
function freeName(prefix: string, taken: readonly string[]): string {
  for (let n = 1; ; n++) if (!taken.includes(`${prefix}-${n}`)) return `${prefix}-${n}`;
}

/** The zone index an error field points at (`motion.zones[2].points` → 2), or null. */
function zoneOfField(field: string | undefined): number | null {
  const m = field ? /^motion\.zones\[(\d+)\]/.exec(field) : null;
  return m ? Number(m[1]) : null;
}

/**
 * A number input that lets the user type freely (an empty box, a lone minus) and reports only numbers.
 * `field` is its path in the request, to mark it when the server blames it.
 */
function NumberField({ label, hint, value, onChange, min, max, step, field, bad, testId }: {
  label: string; hint?: string; value: number; onChange: (n: number) => void; min?: number; max?: number; step?: number;
  field: string; bad: string | undefined; testId?: string;
}) {
  const id = useId();
  const [text, setText] = useState(String(value));
  useEffect(() => {
    // Changed from elsewhere (a reset, the server's answer): show it, unless it is what is being typed.
    setText((t) => (Number(t) === value && t.trim() !== '' ? t : String(value)));
  }, [value]);
  return (
    <div className="field">
      <label htmlFor={id}>
        {label}
        {hint && <span className="muted"> ({hint})</span>}
      </label>
      <input
        id={id}
        type="number"
        inputMode="decimal"
        min={min}
        max={max}
        step={step}
        value={text}
        aria-invalid={bad === field || undefined}
        onChange={(e) => {
          setText(e.target.value);
          const n = Number(e.target.value);
          if (e.target.value.trim() !== '' && Number.isFinite(n)) onChange(n);
        }}
        onBlur={() => setText(String(value))}
        data-testid={testId}
      />
    </div>
  );
}

/**
 * A slider over [min, max] on a logarithmic scale: thresholds and areas matter by their order of
 * magnitude (0.1 % and 1 % are far apart; 60 % and 61 % are not).
 */
function LogRange({ label, hint, min, max, value, onChange, field, bad, testId }: {
  label: string; hint?: string; min: number; max: number; value: number; onChange: (n: number) => void;
  field: string; bad: string | undefined; testId?: string;
}) {
  const id = useId();
  const steps = 1000;
  const span = Math.log(max / min);
  const pos = Math.round((Math.log(Math.min(max, Math.max(min, value)) / min) / span) * steps);
  return (
    <div className="field">
      <label htmlFor={id}>
        {label} <output htmlFor={id}>{percent(value)}</output>
        {hint && <span className="muted"> ({hint})</span>}
      </label>
      <input
        id={id}
        type="range"
        min={0}
        max={steps}
        step={1}
        value={pos}
        aria-valuetext={percent(value)}
        aria-invalid={bad === field || undefined}
        onChange={(e) => onChange(Number((min * Math.exp((Number(e.target.value) / steps) * span)).toPrecision(3)))}
        data-testid={testId}
      />
    </div>
  );
}

/** A slider over 0–1, shown as a percentage. */
function ShareRange({ label, hint, min = 0, value, onChange, field, bad, testId }: {
  label: string; hint?: string; min?: number; value: number; onChange: (n: number) => void; field: string; bad: string | undefined; testId?: string;
}) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>
        {label} <output htmlFor={id}>{percent(value)}</output>
        {hint && <span className="muted"> ({hint})</span>}
      </label>
      <input
        id={id}
        type="range"
        min={min}
        max={1}
        step={0.01}
        value={value}
        aria-valuetext={percent(value)}
        aria-invalid={bad === field || undefined}
        onChange={(e) => onChange(Number(e.target.value))}
        data-testid={testId}
      />
    </div>
  );
}

/** What is being dragged: a corner of a zone or of the polygon being drawn, or a whole zone. */
type Drag = { target: number | 'drawing'; index: number } | { target: number; whole: Point };

/**
 * The picture with the zones over it. Click to add corners (a new polygon starts where nothing is
 * selected), click the first corner or press Enter to close it; drag corners or whole zones; a corner's
 * midpoint handle adds a corner; double-click a corner to remove it. Corners take the arrow keys too.
 */
function ZoneCanvas({ camera, zones, selected, onSelect, onZones, drawing, onDrawing, onClose }: {
  camera: Camera;
  zones: MotionZone[];
  selected: number | null;
  onSelect: (i: number | null) => void;
  onZones: (zones: MotionZone[]) => void;
  drawing: Point[] | null;
  onDrawing: (points: Point[] | null) => void;
  onClose: () => void;
}) {
  const { videoRef, state, error } = useWhepPlayer(camera.enabled ? whepUrl(camera.id) : null);
  const frame = useVideoFrame(videoRef);
  const svgRef = useRef<SVGSVGElement>(null);
  const drag = useRef<Drag | null>(null);
  const [hover, setHover] = useState<Point | null>(null);
  const hintId = useId();
  const W = frame.width;
  const H = frame.height;

  const shareAt = (ev: { clientX: number; clientY: number }): Point => {
    const r = svgRef.current!.getBoundingClientRect();
    return [round4(clamp01((ev.clientX - r.left) / r.width)), round4(clamp01((ev.clientY - r.top) / r.height))];
  };
  const px = (p: Point): string => `${(p[0] * W).toFixed(1)},${(p[1] * H).toFixed(1)}`;
  const setPoints = (zone: number, points: Point[]): void => onZones(zones.map((z, i) => (i === zone ? { ...z, points } : z)));
  const capture = (ev: PointerEvent): void => svgRef.current?.setPointerCapture(ev.pointerId);

  const onBackground = (ev: PointerEvent<SVGSVGElement>): void => {
    if (ev.button !== 0) return;
    const p = shareAt(ev);
    if (drawing) {
      if (drawing.length < MAX_POINTS) onDrawing([...drawing, p]);
    } else if (selected !== null) {
      onSelect(null);
    } else if (zones.length < MAX_ZONES) {
      onDrawing([p]);
    }
  };

  const onMove = (ev: PointerEvent<SVGSVGElement>): void => {
    const d = drag.current;
    const p = shareAt(ev);
    if (!d) {
      if (drawing) setHover(p);
      return;
    }
    if ('whole' in d) {
      // The whole zone moves with the pointer, but never out of the picture.
      const pts = zones[d.target]?.points ?? [];
      const xs = pts.map((q) => q[0]);
      const ys = pts.map((q) => q[1]);
      const dx = Math.min(1 - Math.max(...xs), Math.max(-Math.min(...xs), p[0] - d.whole[0]));
      const dy = Math.min(1 - Math.max(...ys), Math.max(-Math.min(...ys), p[1] - d.whole[1]));
      drag.current = { target: d.target, whole: [d.whole[0] + dx, d.whole[1] + dy] };
      setPoints(d.target, pts.map(([x, y]) => [round4(x + dx), round4(y + dy)]));
    } else if (d.target === 'drawing') {
      if (drawing) onDrawing(drawing.map((q, i) => (i === d.index ? p : q)));
    } else {
      const pts = zones[d.target]?.points ?? [];
      setPoints(d.target, pts.map((q, i) => (i === d.index ? p : q)));
    }
  };

  const endDrag = (): void => {
    drag.current = null;
  };

  const onCorner = (ev: PointerEvent, target: number | 'drawing', index: number): void => {
    if (ev.button !== 0) return;
    ev.stopPropagation();
    if (target === 'drawing' && index === 0 && (drawing?.length ?? 0) >= MIN_POINTS) return onClose();
    drag.current = { target, index };
    capture(ev);
  };

  const onMidpoint = (ev: PointerEvent, zone: number, after: number): void => {
    if (ev.button !== 0) return;
    ev.stopPropagation();
    const pts = zones[zone]?.points ?? [];
    if (pts.length >= MAX_POINTS) return;
    const a = pts[after]!;
    const b = pts[(after + 1) % pts.length]!;
    setPoints(zone, [...pts.slice(0, after + 1), [round4((a[0] + b[0]) / 2), round4((a[1] + b[1]) / 2)], ...pts.slice(after + 1)]);
    drag.current = { target: zone, index: after + 1 };
    capture(ev);
  };

  const removeCorner = (target: number | 'drawing', index: number): void => {
    if (target === 'drawing') return onDrawing(drawing?.filter((_, i) => i !== index) ?? null);
    const pts = zones[target]?.points ?? [];
    if (pts.length > MIN_POINTS) setPoints(target, pts.filter((_, i) => i !== index));
  };

  const onCornerKey = (ev: KeyboardEvent, target: number | 'drawing', index: number): void => {
    const step = ev.shiftKey ? KEY_STEP / 10 : KEY_STEP;
    const move: Record<string, Point> = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    const by = move[ev.key];
    if (by) {
      ev.preventDefault();
      ev.stopPropagation();
      const pts = target === 'drawing' ? (drawing ?? []) : (zones[target]?.points ?? []);
      const next = pts.map((q, i) => (i === index ? ([round4(clamp01(q[0] + by[0])), round4(clamp01(q[1] + by[1]))] as Point) : q));
      if (target === 'drawing') onDrawing(next);
      else setPoints(target, next);
    } else if (ev.key === 'Delete' || ev.key === 'Backspace') {
      ev.preventDefault();
      ev.stopPropagation();
      removeCorner(target, index);
    }
  };

  const onKey = (ev: KeyboardEvent<SVGSVGElement>): void => {
    if (!drawing) return;
    if (ev.key === 'Enter' && drawing.length >= MIN_POINTS) {
      ev.preventDefault();
      onClose();
    } else if (ev.key === 'Escape') {
      ev.preventDefault();
      onDrawing(null);
    } else if (ev.key === 'Backspace') {
      ev.preventDefault();
      onDrawing(drawing.slice(0, -1));
    }
  };

  const corner = (p: Point, target: number | 'drawing', index: number, zoneName: string, closes = false): ReactNode => (
    <circle
      key={`c${index}`}
      className={`zone-corner${closes ? ' zone-corner-first' : ''}`}
      cx={p[0] * W}
      cy={p[1] * H}
      r={closes ? 8 : 6}
      tabIndex={0}
      role="button"
      aria-label={`${closes ? 'Close the polygon at c' : 'C'}orner ${index + 1} of ${zoneName}: ${percent(p[0])} across, ${percent(p[1])} down`}
      onPointerDown={(ev) => onCorner(ev, target, index)}
      onDoubleClick={(ev) => {
        ev.stopPropagation();
        removeCorner(target, index);
      }}
      onKeyDown={(ev) => {
        if (closes && (ev.key === 'Enter' || ev.key === ' ')) {
          ev.preventDefault();
          ev.stopPropagation();
          return onClose();
        }
        onCornerKey(ev, target, index);
      }}
      data-testid="zone-corner"
    />
  );

  const live = state === PlayerState.Live;
  const sel = selected !== null ? zones[selected] : undefined;
  return (
    <div className="zone-stage-wrap">
      <div className="zone-stage">
        <video ref={videoRef} autoPlay muted playsInline aria-label={`Live video of ${camera.name}`} data-testid="zone-video" />
        {W > 0 && H > 0 && (
          <svg
            ref={svgRef}
            className={`zone-canvas${drawing ? ' zone-canvas-drawing' : ''}`}
            style={frameStyle(frame)}
            viewBox={`0 0 ${W} ${H}`}
            tabIndex={0}
            role="group"
            aria-label="Zones over the picture"
            aria-describedby={hintId}
            onPointerDown={onBackground}
            onPointerMove={onMove}
            onPointerUp={endDrag}
            onPointerCancel={endDrag}
            onPointerLeave={() => setHover(null)}
            onKeyDown={onKey}
            data-testid="zone-canvas"
          >
            <rect className="zone-bg" width={W} height={H} />
            {zones.map((z, i) => {
              const cx = z.points.reduce((s, p) => s + p[0], 0) / Math.max(1, z.points.length);
              const cy = z.points.reduce((s, p) => s + p[1], 0) / Math.max(1, z.points.length);
              return (
                <g key={i} className={`zone zone-${z.kind}${i === selected ? ' zone-selected' : ''}${selfCrossing(z.points) ? ' zone-crossing' : ''}`}>
                  <polygon
                    points={z.points.map(px).join(' ')}
                    onPointerDown={(ev) => {
                      if (drawing || ev.button !== 0) return;
                      ev.stopPropagation();
                      onSelect(i);
                      drag.current = { target: i, whole: shareAt(ev) };
                      capture(ev);
                    }}
                    data-testid="zone-shape"
                    data-zone={z.name}
                  >
                    <title>{`${z.name} (${z.kind})`}</title>
                  </polygon>
                  <text className="zone-label" x={cx * W} y={cy * H} textAnchor="middle" dominantBaseline="middle">
                    {z.name}
                  </text>
                </g>
              );
            })}
            {sel && selected !== null && !drawing && (
              <g className="zone-handles">
                {sel.points.length < MAX_POINTS &&
                  sel.points.map((p, i) => {
                    const q = sel.points[(i + 1) % sel.points.length]!;
                    return (
                      <circle
                        key={`m${i}`}
                        className="zone-midpoint"
                        cx={((p[0] + q[0]) / 2) * W}
                        cy={((p[1] + q[1]) / 2) * H}
                        r={4}
                        onPointerDown={(ev) => onMidpoint(ev, selected, i)}
                        aria-hidden
                      />
                    );
                  })}
                {sel.points.map((p, i) => corner(p, selected, i, sel.name))}
              </g>
            )}
            {drawing && (
              <g className="zone-drawing">
                {drawing.length > 1 && <polyline points={drawing.map(px).join(' ')} />}
                {hover && drawing.length > 0 && <polyline className="zone-rubber" points={`${px(drawing[drawing.length - 1]!)} ${px(hover)}`} />}
                {drawing.map((p, i) => corner(p, 'drawing', i, 'the new zone', i === 0 && drawing.length >= MIN_POINTS))}
              </g>
            )}
          </svg>
        )}
      </div>
      {!live && (
        <p className="warn-text small zone-hint" role="status" data-testid="zone-no-picture">
          {!camera.enabled ? 'The camera is disabled: no picture.' : `No picture yet (${error ?? 'connecting'}).`}
          {!frame.known && ' Until it comes, zones are drawn over the whole frame.'}
        </p>
      )}
      <p id={hintId} className="muted small zone-hint">
        {drawing
          ? `Drawing: click to add corners (${drawing.length} so far), then click the first corner or press Enter to close. Backspace takes the last corner back, Escape cancels.`
          : selected !== null
            ? 'Drag the corners or the whole zone; drag a small dot between two corners to add one; double-click a corner (or press Delete on it) to remove it. Click outside to deselect.'
            : zones.length >= MAX_ZONES
              ? `There are ${MAX_ZONES} zones, the most a camera may have.`
              : 'Click on the picture to start a new zone, or click a zone to change it.'}
      </p>
    </div>
  );
}

function ZoneItem({ zone, index, selected, duplicate, onSelect, onChange, onRemove, bad }: {
  zone: MotionZone; index: number; selected: boolean; duplicate: boolean; onSelect: () => void; onChange: (z: MotionZone) => void; onRemove: () => void; bad: string | undefined;
}) {
  const ids = { name: useId(), kind: useId() };
  const path = `motion.zones[${index}]`;
  const blamed = bad !== undefined && bad.startsWith(path);
  const nameOk = ZONE_NAME.test(zone.name);
  const crossing = selfCrossing(zone.points);
  return (
    <li
      className={`zone-item${selected ? ' zone-item-selected' : ''}${blamed ? ' zone-item-bad' : ''}`}
      onFocusCapture={onSelect}
      data-testid="zone-item"
      data-zone={zone.name}
    >
      <div className="zone-item-head">
        <button type="button" className="link-button" aria-pressed={selected} onClick={onSelect}>
          {selected ? 'Selected' : 'Select'}
          <span className="visually-hidden"> zone {zone.name}</span>
        </button>
        <span className={`badge zone-kind-${zone.kind}`}>{zone.kind}</span>
        <span className="muted small">{zone.points.length} corners</span>
        <button type="button" onClick={onRemove} aria-label={`Delete zone ${zone.name}`} data-testid="zone-delete">
          Delete
        </button>
      </div>
      <div className="fields">
        <div className="field">
          <label htmlFor={ids.name}>
            Name <span className="muted">(letters, digits, _ or -)</span>
          </label>
          <input
            id={ids.name}
            value={zone.name}
            maxLength={32}
            autoComplete="off"
            aria-invalid={!nameOk || duplicate || bad === `${path}.name` || undefined}
            onChange={(e) => onChange({ ...zone, name: e.target.value })}
            data-testid="zone-name"
          />
        </div>
        <div className="field">
          <label htmlFor={ids.kind}>Kind</label>
          <select id={ids.kind} value={zone.kind} onChange={(e) => onChange({ ...zone, kind: e.target.value as MotionZone['kind'] })} data-testid="zone-kind">
            <option value="include">Include</option>
            <option value="mask">Mask (ignored)</option>
          </select>
        </div>
        <LogRange label="Threshold" hint="how much a spot must change" min={0.005} max={1} value={zone.threshold} onChange={(threshold) => onChange({ ...zone, threshold })} field={`${path}.threshold`} bad={bad} testId="zone-threshold" />
        <LogRange label="Minimum area" hint="of the zone, moving" min={0.0001} max={1} value={zone.minArea} onChange={(minArea) => onChange({ ...zone, minArea })} field={`${path}.minArea`} bad={bad} testId="zone-min-area" />
      </div>
      {!nameOk && <p className="warn-text small">A name is 1–32 letters, digits, _ or -, and starts with a letter or digit.</p>}
      {duplicate && <p className="warn-text small">Another zone has this name.</p>}
      {crossing && <p className="warn-text small">Its edges cross: move the corners so the outline does not cross itself.</p>}
    </li>
  );
}

function WindowRow({ window: w, index, onChange, onRemove }: { window: AlertWindow; index: number; onChange: (w: AlertWindow) => void; onRemove: () => void }) {
  const ids = { from: useId(), to: useId() };
  return (
    <li className="window-row" data-testid="alert-window">
      <fieldset className="days">
        <legend className="visually-hidden">Days of time window {index + 1}</legend>
        {DAYS.map((d, day) => (
          <label key={d} className="toggle">
            <input
              type="checkbox"
              checked={w.days.includes(day)}
              onChange={(e) => onChange({ ...w, days: e.target.checked ? [...w.days, day].sort() : w.days.filter((x) => x !== day) })}
            />
            <span aria-hidden>{d.slice(0, 3)}</span>
            <span className="visually-hidden">{d}</span>
          </label>
        ))}
      </fieldset>
      {w.days.length === 0 && <span className="warn-text small">Tick at least one day.</span>}
      <label htmlFor={ids.from}>From</label>
      <input id={ids.from} type="time" value={w.from} onChange={(e) => onChange({ ...w, from: e.target.value })} required />
      <label htmlFor={ids.to}>to</label>
      <input id={ids.to} type="time" value={w.to} onChange={(e) => onChange({ ...w, to: e.target.value })} required />
      <button type="button" onClick={onRemove} aria-label={`Remove time window ${index + 1}`}>
        Remove
      </button>
    </li>
  );
}

function AlertRuleEditor({ rule, index, zoneNames, onChange, onRemove, bad }: {
  rule: AlertRule; index: number; zoneNames: string[]; onChange: (r: AlertRule) => void; onRemove: () => void; bad: string | undefined;
}) {
  const nameId = useId();
  const path = `motion.alerts[${index}]`;
  // Zones the rule names that are gone are listed too, so they can be unticked.
  const names = [...new Set([...zoneNames, ...rule.zones])];
  const nameOk = ZONE_NAME.test(rule.name);
  return (
    <li className={`alert-rule${bad?.startsWith(path) ? ' zone-item-bad' : ''}`} data-testid="alert-rule">
      <div className="fields">
        <div className="field">
          <label htmlFor={nameId}>Name</label>
          <input id={nameId} value={rule.name} autoComplete="off" aria-invalid={!nameOk || bad === `${path}.name` || undefined} onChange={(e) => onChange({ ...rule, name: e.target.value })} data-testid="alert-name" />
          {!nameOk && <span className="warn-text small">1–32 letters, digits, _ or -, starting with a letter or digit.</span>}
        </div>
        <ShareRange label="Lowest peak score" value={rule.minScore} onChange={(minScore) => onChange({ ...rule, minScore })} field={`${path}.minScore`} bad={bad} testId="alert-min-score" />
        <NumberField label="Quiet after an alert" hint="s" min={0} max={86_400} step={1} value={rule.cooldownS} onChange={(cooldownS) => onChange({ ...rule, cooldownS })} field={`${path}.cooldownS`} bad={bad} />
      </div>
      <fieldset className="checks">
        <legend>Zones (none ticked: any)</legend>
        {names.map((n) => (
          <label key={n} className="toggle">
            <input type="checkbox" checked={rule.zones.includes(n)} onChange={(e) => onChange({ ...rule, zones: e.target.checked ? [...rule.zones, n] : rule.zones.filter((z) => z !== n) })} />
            {n}
            {!zoneNames.includes(n) && <span className="warn-text"> (not an include zone)</span>}
          </label>
        ))}
      </fieldset>
      <fieldset className="checks">
        <legend>Send to</legend>
        <label className="toggle">
          <input type="checkbox" checked={rule.webhooks} onChange={(e) => onChange({ ...rule, webhooks: e.target.checked })} data-testid="alert-webhooks" />
          Webhooks
        </label>
        <label className="toggle">
          <input type="checkbox" checked={rule.mqtt} onChange={(e) => onChange({ ...rule, mqtt: e.target.checked })} data-testid="alert-mqtt" />
          MQTT
        </label>
      </fieldset>
      <div className="schedule">
        <p className="small">
          When <span className="muted">(no time window: at any time; a window whose end is before its start runs past midnight)</span>
        </p>
        {rule.schedule.length > 0 && (
          <ul className="plain-list">
            {rule.schedule.map((w, k) => (
              <WindowRow
                key={k}
                window={w}
                index={k}
                onChange={(nw) => onChange({ ...rule, schedule: rule.schedule.map((x, j) => (j === k ? nw : x)) })}
                onRemove={() => onChange({ ...rule, schedule: rule.schedule.filter((_, j) => j !== k) })}
              />
            ))}
          </ul>
        )}
        <div className="form-actions">
          <button type="button" onClick={() => onChange({ ...rule, schedule: [...rule.schedule, { days: [1, 2, 3, 4, 5], from: '18:00', to: '07:00' }] })} data-testid="alert-add-window">
            Add a time window
          </button>
          <button type="button" onClick={onRemove} aria-label={`Delete alert rule ${rule.name}`} data-testid="alert-delete">
            Delete rule
          </button>
        </div>
      </div>
    </li>
  );
}

/**
 * A camera's motion detection: the zones drawn over its live picture, the detector's settings and the
 * alert rules. Saving sends the whole `motion` section (the server replaces it).
 */
export function MotionSettings({ camera, apply, onDone }: { camera: Camera; apply: (change: ServerMessage) => void; onDone: () => void }) {
  const [draft, setDraft] = useState<MotionConfig>(() => motionOf(camera));
  const [saved, setSaved] = useState(() => JSON.stringify(motionOf(camera)));
  const [selected, setSelected] = useState<number | null>(null);
  const [drawing, setDrawing] = useState<Point[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const errorId = useId();
  const bad = error instanceof ApiError ? error.field : undefined;
  const dirty = JSON.stringify(draft) !== saved;
  const set = (patch: Partial<MotionConfig>): void => {
    setDraft((d) => ({ ...d, ...patch }));
    setNotice(null);
  };
  const hasInclude = draft.zones.some((z) => z.kind === 'include');
  const zoneNames = hasInclude ? draft.zones.filter((z) => z.kind === 'include').map((z) => z.name) : ['all'];

  const setZones = (zones: MotionZone[]): void => set({ zones });
  const addZone = (points: Point[]): void => {
    if (draft.zones.length >= MAX_ZONES) return;
    const zone: MotionZone = { name: freeName('zone', draft.zones.map((z) => z.name)), kind: 'include', points, ...ZONE_DEFAULTS };
    set({ zones: [...draft.zones, zone] });
    setSelected(draft.zones.length);
  };
  const closeDrawing = (): void => {
    if (!drawing || drawing.length < MIN_POINTS) return;
    addZone(drawing);
    setDrawing(null);
  };
  const changeZone = (i: number, z: MotionZone): void => {
    const old = draft.zones[i]!.name;
    // A renamed zone keeps its place in the alert rules.
    const alerts = z.name === old ? draft.alerts : draft.alerts.map((a) => ({ ...a, zones: a.zones.map((n) => (n === old ? z.name : n)) }));
    set({ zones: draft.zones.map((x, k) => (k === i ? z : x)), alerts });
  };
  const removeZone = (i: number): void => {
    const name = draft.zones[i]!.name;
    set({ zones: draft.zones.filter((_, k) => k !== i), alerts: draft.alerts.map((a) => ({ ...a, zones: a.zones.filter((n) => n !== name) })) });
    setSelected(null);
  };

  const save = async (ev: FormEvent<HTMLFormElement>): Promise<void> => {
    ev.preventDefault();
    setBusy(true);
    setNotice(null);
    try {
      const answer = await api.updateCamera(camera.id, { motion: draft });
      if (isQueued(answer)) {
        setNotice(`${camera.name}: ${answer.error.message}`);
      } else {
        apply({ type: 'camera', camera: answer });
        const now = motionOf(answer);
        setDraft(now);
        setSaved(JSON.stringify(now));
        setNotice('Saved.');
      }
      setError(null);
    } catch (e) {
      setError(e);
      // Show the zone the server blamed.
      const zone = e instanceof ApiError ? zoneOfField(e.field) : null;
      if (zone !== null && zone < draft.zones.length) setSelected(zone);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form
      className="motion-editor"
      aria-label={`Motion detection of ${camera.name}`}
      onSubmit={(ev) => void save(ev)}
      noValidate
      data-testid="zone-editor"
    >
      <div className="motion-layout">
        <div>
          <ZoneCanvas
            camera={camera}
            zones={draft.zones}
            selected={selected}
            onSelect={setSelected}
            onZones={setZones}
            drawing={drawing}
            onDrawing={(d) => {
              setDrawing(d);
              if (d) setSelected(null);
            }}
            onClose={closeDrawing}
          />
          <div className="form-actions">
            {drawing ? (
              <>
                <button type="button" onClick={closeDrawing} disabled={drawing.length < MIN_POINTS} data-testid="zone-close">
                  Close the polygon
                </button>
                <button type="button" onClick={() => setDrawing(drawing.slice(0, -1))} disabled={drawing.length === 0}>
                  Undo a corner
                </button>
                <button type="button" onClick={() => setDrawing(null)}>
                  Cancel drawing
                </button>
              </>
            ) : (
              <>
                <button type="button" onClick={() => (setSelected(null), setDrawing([]))} disabled={draft.zones.length >= MAX_ZONES} data-testid="zone-new">
                  Draw a zone
                </button>
                <button
                  type="button"
                  onClick={() => addZone([[0.25, 0.25], [0.75, 0.25], [0.75, 0.75], [0.25, 0.75]])}
                  disabled={draft.zones.length >= MAX_ZONES}
                  data-testid="zone-rectangle"
                >
                  Add a rectangle
                </button>
              </>
            )}
          </div>
        </div>
        <div>
          <h4>Zones</h4>
          {draft.zones.length === 0 ? (
            <p className="muted small">No zones: motion is looked for in the whole picture.</p>
          ) : (
            <ul className="zone-list">
              {draft.zones.map((z, i) => (
                <ZoneItem
                  key={i}
                  zone={z}
                  index={i}
                  selected={selected === i}
                  duplicate={draft.zones.some((o, k) => k !== i && o.name === z.name)}
                  onSelect={() => selected !== i && (setDrawing(null), setSelected(i))}
                  onChange={(nz) => changeZone(i, nz)}
                  onRemove={() => removeZone(i)}
                  bad={bad}
                />
              ))}
            </ul>
          )}
          {!hasInclude && (
            <fieldset className="fields whole-picture">
              <legend>Whole picture (the zone “all”, used while there is no include zone)</legend>
              <LogRange label="Threshold" hint="how much a spot must change" min={0.005} max={1} value={draft.threshold} onChange={(threshold) => set({ threshold })} field="motion.threshold" bad={bad} testId="motion-threshold" />
              <LogRange label="Minimum area" hint="of the picture, moving" min={0.0001} max={1} value={draft.minArea} onChange={(minArea) => set({ minArea })} field="motion.minArea" bad={bad} testId="motion-min-area" />
            </fieldset>
          )}
        </div>
      </div>

      <fieldset className="motion-detection">
        <legend>Detection</legend>
        <label className="toggle">
          <input type="checkbox" checked={draft.enabled} onChange={(e) => set({ enabled: e.target.checked })} data-testid="motion-enabled" />
          Detect motion on this camera
        </label>
        <div className="fields">
          <NumberField label="Frames analysed" hint="per second, 1–30" min={1} max={30} step={1} value={draft.fps} onChange={(fps) => set({ fps })} field="motion.fps" bad={bad} testId="motion-fps" />
          <NumberField label="Shortest event" hint="ms, up to 30000" min={0} max={30_000} step={100} value={draft.minDurationMs} onChange={(minDurationMs) => set({ minDurationMs })} field="motion.minDurationMs" bad={bad} testId="motion-min-duration" />
          <NumberField label="Ends after no motion for" hint="ms, 200–300000" min={200} max={300_000} step={100} value={draft.endAfterMs} onChange={(endAfterMs) => set({ endAfterMs })} field="motion.endAfterMs" bad={bad} testId="motion-end-after" />
          <ShareRange label="Light change" hint="this much of the picture at once is light, not motion" min={0.05} value={draft.lightChange} onChange={(lightChange) => set({ lightChange })} field="motion.lightChange" bad={bad} testId="motion-light-change" />
        </div>
      </fieldset>
      <details className="motion-more">
        <summary>More detection settings</summary>
        <div className="fields">
          <NumberField label="Analysis width" hint="px, 64–1280, a multiple of 16" min={64} max={1280} step={16} value={draft.width} onChange={(width) => set({ width })} field="motion.width" bad={bad} testId="motion-width" />
          <NumberField label="Background follows slow changes over" hint="s, 0.2–3600" min={0.2} max={3600} step={0.1} value={draft.adaptS} onChange={(adaptS) => set({ adaptS })} field="motion.adaptS" bad={bad} />
          <NumberField label="Still things become background after" hint="s, 0.5–86400" min={0.5} max={86_400} step={0.5} value={draft.settleS} onChange={(settleS) => set({ settleS })} field="motion.settleS" bad={bad} />
        </div>
      </details>

      <h4>Alert rules</h4>
      {draft.alerts.length === 0 ? (
        <p className="muted small">No alert rules: events are recorded, and nobody is told.</p>
      ) : (
        <ul className="alert-rules">
          {draft.alerts.map((r, i) => (
            <AlertRuleEditor
              key={i}
              rule={r}
              index={i}
              zoneNames={zoneNames}
              onChange={(nr) => set({ alerts: draft.alerts.map((x, k) => (k === i ? nr : x)) })}
              onRemove={() => set({ alerts: draft.alerts.filter((_, k) => k !== i) })}
              bad={bad}
            />
          ))}
        </ul>
      )}
      <div className="form-actions">
        <button
          type="button"
          onClick={() =>
            set({
              alerts: [...draft.alerts, { name: freeName('alert', draft.alerts.map((a) => a.name)), zones: [], minScore: 0, schedule: [], cooldownS: 60, webhooks: true, mqtt: true }],
            })
          }
          data-testid="alert-add"
        >
          Add an alert rule
        </button>
      </div>

      <div className="form-actions motion-actions">
        <button type="submit" disabled={busy || drawing !== null} data-testid="zone-save">
          {busy ? 'Saving…' : 'Save motion settings'}
        </button>
        <button type="button" onClick={onDone}>
          {dirty ? 'Cancel' : 'Close'}
        </button>
        {dirty && !busy && <span className="muted small">Unsaved changes</span>}
        {error !== null && (
          <p id={errorId} className="error-text" role="alert" data-testid="zone-error">
            {messageOf(error)}
            {bad && <span className="muted"> ({bad})</span>}
          </p>
        )}
        {notice && (
          <p className={notice === 'Saved.' ? 'ok-text' : 'notice'} role="status" data-testid="zone-saved">
            {notice}
          </p>
        )}
      </div>
    </form>
  );
}
