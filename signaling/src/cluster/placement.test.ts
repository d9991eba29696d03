import { describe, expect, it } from 'vitest';
import { CameraSchema, type CameraConfig, type Role } from '@cctv/core';
import { place, smooth, type Candidate, type Placement } from './placement.js';

const cam = (id: string, extra: Record<string, unknown> = {}): CameraConfig => CameraSchema.parse({ id, source: { kind: 'test' }, ...extra });
const node = (id: string, roles: Role[], o: Partial<Candidate> = {}): Candidate => ({
  id, roles, labels: {}, alive: true, drained: false, cpu: 0.1, cpus: 2, ingressBps: 0, viewers: 0, ...o,
});
const cn = (id: string, o: Partial<Candidate> = {}) => node(id, ['camera-node'], o);
const sfu = (id: string, o: Partial<Candidate> = {}) => node(id, ['sfu'], o);
const run = (cams: CameraConfig[], nodes: Candidate[], current = new Map<string, Placement>(), now = 0) => place(cams, nodes, current, { now });

describe('placement', () => {
  it('spreads new cameras over the camera-nodes and SFUs by count when the machines are alike', () => {
    const { placements } = run(['a', 'b', 'c', 'd'].map((id) => cam(id)), [cn('cn1'), cn('cn2'), sfu('s1'), sfu('s2')]);
    const count = (role: 'cameraNode' | 'sfu', id: string) => [...placements.values()].filter((p) => p[role] === id).length;
    expect([count('cameraNode', 'cn1'), count('cameraNode', 'cn2')]).toEqual([2, 2]);
    expect([count('sfu', 's1'), count('sfu', 's2')]).toEqual([2, 2]);
  });

  it('puts a camera where its required labels are, and prefers the preferred ones', () => {
    const nodes = [cn('cn1', { labels: { site: 'home' } }), cn('cn2', { labels: { site: 'shop', floor: '1' } }), cn('cn3', { labels: { site: 'shop', floor: '2' } }), sfu('s1')];
    const { placements } = run([cam('a', { placement: { require: { site: 'shop' }, prefer: { floor: '2' } } }), cam('b', { placement: { require: { site: 'home' } } })], nodes);
    expect(placements.get('a')!.cameraNode).toBe('cn3');
    expect(placements.get('b')!.cameraNode).toBe('cn1');
  });

  it('says why a camera cannot be placed', () => {
    const { placements } = run([cam('a', { placement: { require: { site: 'barn' } } }), cam('b', { placement: { node: 'pi-9' } })], [cn('cn1'), sfu('s1')]);
    expect(placements.get('a')).toMatchObject({ cameraNode: null, problem: 'no live, undrained camera-node has the labels {"site":"barn"}' });
    expect(placements.get('b')).toMatchObject({ cameraNode: null, problem: 'pinned to pi-9, which is not registered' });
    expect(run([cam('a')], [cn('cn1')]).placements.get('a')!.problem).toBe('no SFU node is alive and undrained');
  });

  it('gives a whip camera an SFU, a recorder and a detector but no camera-node, and no problem', () => {
    const whip = cam('tab', { source: { kind: 'whip' }, recording: { enabled: true }, motion: { enabled: true } });
    const nodes = [cn('cn1'), sfu('s1'), node('r1', ['recorder', 'detector'])];
    const { placements } = run([whip], nodes);
    expect(placements.get('tab')).toMatchObject({ cameraNode: null, sfu: 's1', recorder: 'r1', detector: 'r1', problem: null, publisher: 'whip' });
    // Without any camera-node at all, too; and a camera that becomes whip leaves its camera-node.
    expect(run([whip], [sfu('s1')]).placements.get('tab')).toMatchObject({ cameraNode: null, sfu: 's1', problem: null });
    const before = new Map<string, Placement>([['tab', { cameraNode: 'cn1', sfu: 's1', problem: null }]]);
    const { placements: after, moves } = run([whip], nodes, before);
    expect(after.get('tab')!.cameraNode).toBeNull();
    expect(moves).toContainEqual(expect.objectContaining({ camera: 'tab', role: 'camera-node', from: 'cn1', to: null }));
  });

  it('keeps a pinned camera on its node, and waits for it when it is down', () => {
    const nodes = [cn('cn1'), cn('pi'), sfu('s1')];
    const first = run([cam('a', { placement: { node: 'pi' } })], nodes).placements;
    expect(first.get('a')!.cameraNode).toBe('pi');
    const down = run([cam('a', { placement: { node: 'pi' } })], [cn('cn1'), cn('pi', { alive: false }), sfu('s1')], first).placements;
    expect(down.get('a')).toMatchObject({ cameraNode: null, problem: 'pi is down' });
  });

  it('never moves a Pi camera or an RTP input off the machine it is attached to', () => {
    const pi = CameraSchema.parse({ id: 'pi', source: { kind: 'rpicam' } });
    const current = new Map<string, Placement>([['pi', { cameraNode: 'cn1', sfu: 's1', problem: null }]]);
    const { placements, moves } = run([pi], [cn('cn1', { alive: false }), cn('cn2'), sfu('s1')], current);
    expect(placements.get('pi')).toMatchObject({ cameraNode: 'cn1', problem: 'cn1 is down (the camera is attached to it)' });
    expect(moves).toEqual([]);
  });

  it('moves the cameras of a dead or drained node, and keeps every other camera where it is', () => {
    const cams = ['a', 'b', 'c'].map((id) => cam(id));
    const nodes = [cn('cn1'), cn('cn2'), cn('cn3'), sfu('s1'), sfu('s2')];
    const first = run(cams, nodes).placements;
    const victim = first.get('a')!.cameraNode!;
    const dead = nodes.map((n) => (n.id === victim ? { ...n, alive: false } : n));
    const { placements, moves } = run(cams, dead, first);
    expect(placements.get('a')!.cameraNode).not.toBe(victim);
    expect(moves.map((m) => [m.camera, m.reason])).toEqual([['a', `${victim} is down`]]);
    for (const id of ['b', 'c']) expect(placements.get(id)).toMatchObject({ cameraNode: first.get(id)!.cameraNode, sfu: first.get(id)!.sfu });
    // Drained: the same, with the reason.
    const target = placements.get('b')!.cameraNode!;
    const on = [...placements.values()].filter((p) => p.cameraNode === target).length;
    const drained = nodes.map((n) => (n.id === target ? { ...n, drained: true } : n));
    const r = run(cams, drained, placements);
    expect(r.moves.map((m) => m.reason)).toEqual(Array(on).fill(`${target} is drained`));
    expect([...r.placements.values()].some((p) => p.cameraNode === target)).toBe(false);
  });

  it('moves a room off a dead SFU without moving its camera', () => {
    const nodes = [cn('cn1'), sfu('s1'), sfu('s2')];
    const first = run([cam('a')], nodes).placements;
    const from = first.get('a')!.sfu!;
    const { placements, moves } = run([cam('a')], nodes.map((n) => (n.id === from ? { ...n, alive: false } : n)), first);
    expect(placements.get('a')).toMatchObject({ cameraNode: 'cn1', sfu: from === 's1' ? 's2' : 's1' });
    expect(moves).toEqual([{ camera: 'a', role: 'sfu', from, to: placements.get('a')!.sfu, reason: `${from} is down` }]);
  });

  it('does not flap under oscillating load', () => {
    const cams = ['a', 'b', 'c', 'd'].map((id) => cam(id));
    let current = run(cams, [cn('cn1'), cn('cn2'), sfu('s1')]).placements;
    // Each node's CPU swings between 5 % and 95 % every 5 s, out of phase, for ten minutes; placement
    // sees it smoothed, as the master does.
    let s1: number | undefined;
    let s2: number | undefined;
    const over = { cn1: null as number | null, cn2: null as number | null };
    const held = (id: 'cn1' | 'cn2', v: number, t: number) => {
      over[id] = v > 0.9 ? (over[id] ?? t) : null;
      return over[id] === null ? 0 : t - over[id]!;
    };
    let moved = 0;
    for (let t = 0; t < 600_000; t += 1000) {
      const high = Math.floor(t / 5000) % 2 === 0;
      s1 = smooth(s1, high ? 0.98 : 0.05, 1000);
      s2 = smooth(s2, high ? 0.05 : 0.98, 1000);
      const nodes = [cn('cn1', { cpu: s1, overloadedMs: held('cn1', s1, t) }), cn('cn2', { cpu: s2, overloadedMs: held('cn2', s2, t) }), sfu('s1')];
      const r = run(cams, nodes, current, t);
      moved += r.moves.length;
      current = r.placements;
    }
    expect(moved).toBe(0);
    // The same swings, unsmoothed and held only 5 s, would have moved cameras: the test has teeth.
    let raw = run(cams, [cn('cn1'), cn('cn2'), sfu('s1')]).placements;
    let rawMoves = 0;
    for (let t = 0; t < 60_000; t += 1000) {
      const high = Math.floor(t / 5000) % 2 === 0;
      const r = place(cams, [cn('cn1', { cpu: high ? 0.98 : 0.05, overloadedMs: high ? 5000 : 0 }), cn('cn2', { cpu: high ? 0.05 : 0.98, overloadedMs: high ? 0 : 5000 }), sfu('s1')], raw, { now: t, overloadHoldMs: 5000, rebalanceCooldownMs: 0 });
      rawMoves += r.moves.length;
      raw = r.placements;
    }
    expect(rawMoves).toBeGreaterThan(4);
  });

  it('sheds one camera at a time off a node that stays overloaded, and not again within the cooldown', () => {
    const cams = ['a', 'b', 'c', 'd'].map((id) => cam(id));
    const current = new Map<string, Placement>(cams.map((c) => [c.id, { cameraNode: 'cn1', sfu: 's1', problem: null }]));
    // Overloaded for less than a minute: nothing moves yet.
    expect(run(cams, [cn('cn1', { cpu: 0.97, overloadedMs: 30_000 }), cn('cn2', { cpu: 0.05 }), sfu('s1')], current, 1_000_000).moves).toEqual([]);
    const nodes = [cn('cn1', { cpu: 0.97, overloadedMs: 61_000 }), cn('cn2', { cpu: 0.05 }), sfu('s1')];
    const r1 = run(cams, nodes, current, 1_000_000);
    expect(r1.moves).toEqual([{ camera: 'a', role: 'camera-node', from: 'cn1', to: 'cn2', reason: 'cn1 is overloaded' }]);
    // Still overloaded a second later: the next camera goes; the moved one stays.
    const r2 = run(cams, nodes, r1.placements, 1_001_000);
    expect(r2.moves.map((m) => m.camera)).toEqual(['b']);
    // The target is busy now: nothing moves there.
    const r3 = run(cams, [cn('cn1', { cpu: 0.97, overloadedMs: 63_000 }), cn('cn2', { cpu: 0.7 }), sfu('s1')], r2.placements, 1_002_000);
    expect(r3.moves).toEqual([]);
  });

  it('smooths CPU over about a minute', () => {
    let v = smooth(undefined, 0.1, 0);
    for (let i = 0; i < 10; i++) v = smooth(v, 1, 1000);
    expect(v).toBeGreaterThan(0.1);
    expect(v).toBeLessThan(0.3);
  });
});
