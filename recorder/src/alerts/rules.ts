import type { AlertRule } from '@cctv/core';
import type { MotionEvent } from '../motion/types.js';

/**
 * Which alert rules of a camera fire for an event: its zones, its peak score, the rule's schedule in the
 * site's time zone, and the rule's cooldown for that camera. Pure, apart from the cooldowns' memory.
 */

const DAY_OF: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string | undefined): Intl.DateTimeFormat {
  const key = timeZone ?? '';
  let f = formatters.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    formatters.set(key, f);
  }
  return f;
}

/** The day of the week (0–6 from Sunday) and the minute of the day (0–1439) of an instant in a time zone (default this machine's). */
export function localTime(ms: number, timeZone?: string): { day: number; minute: number } {
  let day = 0;
  let hour = 0;
  let minute = 0;
  for (const p of formatter(timeZone).formatToParts(ms)) {
    if (p.type === 'weekday') day = DAY_OF[p.value] ?? 0;
    else if (p.type === 'hour') hour = Number(p.value) % 24;
    else if (p.type === 'minute') minute = Number(p.value);
  }
  return { day, minute: hour * 60 + minute };
}

function minutes(hhmm: string): number {
  const [h, m] = hhmm.split(':');
  return Number(h) * 60 + Number(m);
}

/**
 * Whether an instant falls in a schedule (none: always). A window runs from `from` (included) to `to`
 * (excluded) on each of its `days`; when `to` is not after `from` it runs past midnight into the next
 * day, so `days` are the days a window starts on (Fri 22:00–06:00 covers Saturday 05:59).
 */
export function inSchedule(schedule: AlertRule['schedule'], ms: number, timeZone?: string): boolean {
  if (schedule.length === 0) return true;
  const t = localTime(ms, timeZone);
  const yesterday = (t.day + 6) % 7;
  return schedule.some((w) => {
    const from = minutes(w.from);
    const to = minutes(w.to);
    if (from < to) return w.days.includes(t.day) && t.minute >= from && t.minute < to;
    return (w.days.includes(t.day) && t.minute >= from) || (w.days.includes(yesterday) && t.minute < to);
  });
}

/** Whether a rule takes an event, cooldown aside: a zone in common (no zones: any), the score, the schedule. */
export function ruleMatches(rule: AlertRule, event: Pick<MotionEvent, 'zones' | 'peakScore' | 'startMs'>, timeZone?: string): boolean {
  if (rule.zones.length > 0 && !rule.zones.some((z) => event.zones.includes(z))) return false;
  if (event.peakScore < rule.minScore) return false;
  return inSchedule(rule.schedule, event.startMs, timeZone);
}

/**
 * When each (camera, rule) last alerted, in this process. A rule that alerted for a camera stays quiet
 * for that camera `cooldownS` after it; the quiet alerts are suppressed, not postponed.
 */
export class Cooldowns {
  readonly #last = new Map<string, number>();

  /** Takes an alert at `atMs` (ms since the epoch) if the rule is not cooling down for the camera, and remembers it; false when suppressed. */
  admit(camera: string, rule: Pick<AlertRule, 'name' | 'cooldownS'>, atMs: number): boolean {
    const key = `${camera}\u0000${rule.name}`;
    const last = this.#last.get(key);
    if (last !== undefined && Math.abs(atMs - last) < rule.cooldownS * 1000) return false;
    this.#last.set(key, atMs);
    return true;
  }

  /** Forgets every camera's last alert. */
  clear(): void {
    this.#last.clear();
  }
}

/** What the rules of a camera make of an event. */
export interface RuleVerdict {
  /** The rules that fire: matching, and not cooling down. */
  fired: AlertRule[];
  /** The rules that match but are cooling down for this camera. */
  suppressed: AlertRule[];
}

/** The rules of `camera` that fire for an event starting; the fired ones start their cooldown. */
export function evaluateRules(
  camera: string,
  rules: readonly AlertRule[],
  event: Pick<MotionEvent, 'zones' | 'peakScore' | 'startMs'>,
  o: { cooldowns: Cooldowns; timeZone?: string | undefined },
): RuleVerdict {
  const verdict: RuleVerdict = { fired: [], suppressed: [] };
  for (const rule of rules) {
    if (!ruleMatches(rule, event, o.timeZone)) continue;
    if (o.cooldowns.admit(camera, rule, event.startMs)) verdict.fired.push(rule);
    else verdict.suppressed.push(rule);
  }
  return verdict;
}
