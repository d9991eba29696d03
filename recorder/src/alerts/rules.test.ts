import { describe, expect, it } from 'vitest';
import { AlertRuleSchema, type AlertRule } from '@cctv/core';
import { Cooldowns, evaluateRules, inSchedule, localTime, ruleMatches } from './rules.js';

const rule = (r: Partial<AlertRule> = {}): AlertRule => AlertRuleSchema.parse(r);
const at = (iso: string) => Date.parse(iso);
const event = (o: { zones?: string[]; peakScore?: number; startMs?: number } = {}) => ({ zones: ['all'], peakScore: 0.5, startMs: at('2024-03-01T12:00:00Z'), ...o });

// Tokyo is UTC+9 all year (no summer time): the expected local times below cannot drift.
const TOKYO = 'Asia/Tokyo';

describe('alert rules', () => {
  it('reads the day and minute of an instant in a time zone', () => {
    // 2024-03-01 is a Friday.
    expect(localTime(at('2024-03-01T14:30:00Z'), TOKYO)).toEqual({ day: 5, minute: 23 * 60 + 30 });
    expect(localTime(at('2024-03-01T15:00:00Z'), TOKYO)).toEqual({ day: 6, minute: 0 });
    expect(localTime(at('2024-03-02T23:59:00Z'), 'UTC')).toEqual({ day: 6, minute: 23 * 60 + 59 });
    expect(localTime(at('2024-03-03T00:00:00Z'), 'UTC')).toEqual({ day: 0, minute: 0 });
    // Without a zone: this machine's.
    const here = Intl.DateTimeFormat().resolvedOptions().timeZone;
    expect(localTime(at('2024-03-01T14:30:00Z'))).toEqual(localTime(at('2024-03-01T14:30:00Z'), here));
  });

  it('takes a window within a day: from included, to excluded, on its days only', () => {
    const office = [{ days: [1, 2, 3, 4, 5], from: '09:00', to: '17:00' }];
    expect(inSchedule(office, at('2024-03-01T09:00:00+09:00'), TOKYO)).toBe(true);
    expect(inSchedule(office, at('2024-03-01T16:59:00+09:00'), TOKYO)).toBe(true);
    expect(inSchedule(office, at('2024-03-01T17:00:00+09:00'), TOKYO)).toBe(false);
    expect(inSchedule(office, at('2024-03-01T08:59:00+09:00'), TOKYO)).toBe(false);
    // Saturday.
    expect(inSchedule(office, at('2024-03-02T10:00:00+09:00'), TOKYO)).toBe(false);
    expect(inSchedule([], at('2024-03-02T10:00:00+09:00'), TOKYO)).toBe(true);
  });

  it('runs a window across midnight into the next day; its days are the days it starts on', () => {
    const fridayNight = [{ days: [5], from: '22:00', to: '06:00' }];
    expect(inSchedule(fridayNight, at('2024-03-01T23:30:00+09:00'), TOKYO)).toBe(true); // Friday 23:30
    expect(inSchedule(fridayNight, at('2024-03-02T00:00:00+09:00'), TOKYO)).toBe(true); // Saturday 00:00
    expect(inSchedule(fridayNight, at('2024-03-02T05:59:00+09:00'), TOKYO)).toBe(true); // Saturday 05:59
    expect(inSchedule(fridayNight, at('2024-03-02T06:00:00+09:00'), TOKYO)).toBe(false); // Saturday 06:00
    expect(inSchedule(fridayNight, at('2024-03-02T23:00:00+09:00'), TOKYO)).toBe(false); // Saturday night: not a start day
    expect(inSchedule(fridayNight, at('2024-03-01T05:00:00+09:00'), TOKYO)).toBe(false); // Friday early: Thursday's night
    expect(inSchedule(fridayNight, at('2024-03-01T21:59:00+09:00'), TOKYO)).toBe(false);
    // The same instant in another zone is another local time.
    expect(inSchedule(fridayNight, at('2024-03-01T23:30:00+09:00'), 'UTC')).toBe(false); // Friday 14:30 UTC
  });

  it('takes from == to as a whole day from that time', () => {
    const mondayOn = [{ days: [1], from: '08:00', to: '08:00' }];
    expect(inSchedule(mondayOn, at('2024-03-04T08:00:00Z'), 'UTC')).toBe(true); // Monday
    expect(inSchedule(mondayOn, at('2024-03-05T07:59:00Z'), 'UTC')).toBe(true); // Tuesday
    expect(inSchedule(mondayOn, at('2024-03-05T08:00:00Z'), 'UTC')).toBe(false);
  });

  it('matches zones (none: any), the minimum score and the schedule', () => {
    expect(ruleMatches(rule(), event())).toBe(true);
    expect(ruleMatches(rule({ zones: ['door'] }), event({ zones: ['yard'] }))).toBe(false);
    expect(ruleMatches(rule({ zones: ['door', 'gate'] }), event({ zones: ['yard', 'gate'] }))).toBe(true);
    expect(ruleMatches(rule({ minScore: 0.6 }), event({ peakScore: 0.59 }))).toBe(false);
    expect(ruleMatches(rule({ minScore: 0.6 }), event({ peakScore: 0.6 }))).toBe(true);
    const nights = rule({ schedule: [{ days: [0, 1, 2, 3, 4, 5, 6], from: '22:00', to: '06:00' }] });
    expect(ruleMatches(nights, event({ startMs: at('2024-03-01T23:00:00+09:00') }), TOKYO)).toBe(true);
    expect(ruleMatches(nights, event({ startMs: at('2024-03-01T12:00:00+09:00') }), TOKYO)).toBe(false);
  });

  it('keeps a cooldown per camera and rule: an alert within cooldownS of the last is suppressed', () => {
    const cooldowns = new Cooldowns();
    const t0 = at('2024-03-01T12:00:00Z');
    const r = rule({ name: 'door', cooldownS: 60 });
    expect(cooldowns.admit('cam1', r, t0)).toBe(true);
    expect(cooldowns.admit('cam1', r, t0 + 59_999)).toBe(false);
    // A suppressed alert does not restart the cooldown.
    expect(cooldowns.admit('cam1', r, t0 + 60_000)).toBe(true);
    expect(cooldowns.admit('cam2', r, t0 + 60_001)).toBe(true);
    expect(cooldowns.admit('cam1', rule({ name: 'yard', cooldownS: 60 }), t0 + 60_001)).toBe(true);
    const never = rule({ name: 'all', cooldownS: 0 });
    expect(cooldowns.admit('cam1', never, t0)).toBe(true);
    expect(cooldowns.admit('cam1', never, t0)).toBe(true);
  });

  it('says which rules fire and which are cooling down', () => {
    const cooldowns = new Cooldowns();
    const rules = [rule({ name: 'door', zones: ['door'] }), rule({ name: 'any', cooldownS: 0 }), rule({ name: 'loud', minScore: 0.9 })];
    const first = evaluateRules('cam1', rules, event({ zones: ['door'] }), { cooldowns });
    expect(first.fired.map((r) => r.name)).toEqual(['door', 'any']);
    expect(first.suppressed).toEqual([]);
    const second = evaluateRules('cam1', rules, event({ zones: ['door'], startMs: at('2024-03-01T12:00:30Z') }), { cooldowns });
    expect(second.fired.map((r) => r.name)).toEqual(['any']);
    expect(second.suppressed.map((r) => r.name)).toEqual(['door']);
  });
});
