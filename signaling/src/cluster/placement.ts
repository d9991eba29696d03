import type { CameraConfig, Role } from '@cctv/core';

/** A node as placement sees it. */
export interface Candidate {
  id: string;
  roles: readonly Role[];
  labels: Readonly<Record<string, string>>;
  alive: boolean;
  drained: boolean;
  /** CPU share smoothed over about a minute (0–1): short spikes do not move cameras. */
  cpu: number;
  /** How long the smoothed CPU has been above the overload mark, ms (0: it is not). */
  overloadedMs?: number;
  cpus: number;
  ingressBps: number;
  viewers: number;
}

/** Where a camera runs: its camera-node, its SFU and its recorder (null: nowhere fits now, or not recorded). */
export interface Placement {
  cameraNode: string | null;
  sfu: string | null;
  /** The recorder that records it (null when recording is off or no recorder is alive). */
  recorder?: string | null;
  /** The detector that watches it for motion (null when motion detection is off or no detector is alive). */
  detector?: string | null;
  /** Why it is not (fully) placed, for the API. */
  problem: string | null;
  /**
   * `whip`: the camera is fed by a WHIP publisher through its SFU, so it has no camera-node (and
   * `cameraNode: null` is not a problem).
   */
  publisher?: 'whip';
  /** When the camera was last moved by load (not by a failure), ms; limits rebalancing. */
  rebalancedAt?: number;
}

export interface Move {
  camera: string;
  role: 'camera-node' | 'sfu' | 'recorder' | 'detector';
  from: string | null;
  to: string | null;
  reason: string;
}

export interface PlaceOptions {
  now: number;
  /**
   * A node whose smoothed CPU has been above this for `overloadHoldMs` sheds one camera per round to a
   * node below `targetCpu`.
   */
  overloadCpu?: number;
  overloadHoldMs?: number;
  targetCpu?: number;
  /** A camera moved for load is not moved for load again within this, ms. */
  rebalanceCooldownMs?: number;
}

/** Source kinds tied to the machine they run on: a Pi camera is attached to it, an RTP source sends to it. */
const ATTACHED: ReadonlySet<string> = new Set(['rpicam', 'rtp']);

// Cost of a node: its smoothed CPU plus what is placed on it; each camera or room counts for a share of
// the machine, so that cameras spread by count when the machines are alike (or are one machine), and a
// busy machine takes fewer.
const CAMERA_COST = 0.25;
const ROOM_COST = 0.2;
const RECORDING_COST = 0.1;
const DETECTION_COST = 0.1;
const VIEWER_COST = 0.01;

function labelsMatch(labels: Readonly<Record<string, string>>, want: Readonly<Record<string, string>>): boolean {
  return Object.entries(want).every(([k, v]) => labels[k] === v);
}

function preferScore(labels: Readonly<Record<string, string>>, prefer: Readonly<Record<string, string>>): number {
  return Object.entries(prefer).filter(([k, v]) => labels[k] === v).length;
}

/** Whether a camera may run on a camera-node, and if not, why. */
export function cameraNodeFit(cam: CameraConfig, n: Candidate): string | null {
  if (!n.roles.includes('camera-node')) return `${n.id} is not a camera-node`;
  if (!n.alive) return `${n.id} is down`;
  if (cam.placement.node && cam.placement.node !== n.id) return `pinned to ${cam.placement.node}`;
  if (n.drained) return `${n.id} is drained`;
  if (!labelsMatch(n.labels, cam.placement.require)) return `${n.id} lacks the labels ${JSON.stringify(cam.placement.require)}`;
  return null;
}

/**
 * Places every enabled camera on a camera-node and an SFU (a WHIP camera on an SFU only). A camera stays where it is while that node is
 * alive, not drained and still matches (labels, pin); otherwise it goes to the matching node with the
 * most preferred labels and then the lowest cost. Load alone moves a camera only when a node is
 * overloaded on its smoothed CPU, one camera per node per round, and never the same camera twice within
 * the cooldown: oscillating load does not make cameras flap. Cameras tied to their machine (Pi camera,
 * RTP input) never move for load or failure; they wait for their node.
 */
export function place(
  cameras: readonly CameraConfig[],
  nodes: readonly Candidate[],
  current: ReadonlyMap<string, Placement>,
  o: PlaceOptions,
): { placements: Map<string, Placement>; moves: Move[] } {
  const overload = o.overloadCpu ?? 0.9;
  const target = o.targetCpu ?? 0.6;
  const cooldown = o.rebalanceCooldownMs ?? 10 * 60_000;
  const hold = o.overloadHoldMs ?? 60_000;
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const out = new Map<string, Placement>();
  const moves: Move[] = [];
  const camCost = new Map<string, number>();
  const sfuCost = new Map<string, number>();
  const recCost = new Map<string, number>();
  const detCost = new Map<string, number>();
  for (const n of nodes) {
    camCost.set(n.id, n.cpu);
    sfuCost.set(n.id, n.cpu + n.ingressBps / 200e6 + n.viewers * VIEWER_COST);
    recCost.set(n.id, n.cpu);
    detCost.set(n.id, n.cpu);
  }
  // Costs of what stays: counted before anything new is placed.
  const sorted = [...cameras].filter((c) => c.enabled).sort((a, b) => a.id.localeCompare(b.id));
  for (const cam of sorted) {
    const cur = current.get(cam.id);
    if (cur?.cameraNode && byId.has(cur.cameraNode)) camCost.set(cur.cameraNode, (camCost.get(cur.cameraNode) ?? 0) + CAMERA_COST / Math.max(1, byId.get(cur.cameraNode)!.cpus / 2));
    if (cur?.sfu && byId.has(cur.sfu)) sfuCost.set(cur.sfu, (sfuCost.get(cur.sfu) ?? 0) + ROOM_COST / Math.max(1, byId.get(cur.sfu)!.cpus / 2));
    if (cur?.recorder && byId.has(cur.recorder)) recCost.set(cur.recorder, (recCost.get(cur.recorder) ?? 0) + RECORDING_COST);
    if (cur?.detector && byId.has(cur.detector)) detCost.set(cur.detector, (detCost.get(cur.detector) ?? 0) + DETECTION_COST);
  }
  const shedThisRound = new Set<string>();

  for (const cam of sorted) {
    const cur = current.get(cam.id);
    const whip = cam.source.kind === 'whip';
    // A WHIP camera has no camera-node: its publisher sends to the SFU (one that ran it before lets go).
    if (whip && cur?.cameraNode) moves.push({ camera: cam.id, role: 'camera-node', from: cur.cameraNode, to: null, reason: 'the camera is fed by a WHIP publisher' });
    let cameraNode = whip ? null : (cur?.cameraNode ?? null);
    let problem: string | null = null;
    let rebalancedAt = cur?.rebalancedAt;
    const curNode = cameraNode ? byId.get(cameraNode) : undefined;
    const attached = ATTACHED.has(cam.source.kind);
    let reason: string | null = null;
    if (whip) reason = null;
    else if (!cameraNode) reason = 'new';
    else if (!curNode) reason = attached ? null : `${cameraNode} is gone`;
    else {
      const misfit = cameraNodeFit(cam, curNode);
      if (misfit) reason = attached && !curNode.alive && !cam.placement.node ? null : misfit;
      else if (!attached && !cam.placement.node && curNode.cpu > overload && (curNode.overloadedMs ?? 0) >= hold && !shedThisRound.has(curNode.id) && (rebalancedAt === undefined || o.now - rebalancedAt > cooldown)) {
        reason = `${curNode.id} is overloaded`;
      }
    }
    if (attached && cameraNode && curNode && !curNode.alive && !cam.placement.node) problem = `${cameraNode} is down (the camera is attached to it)`;
    if (reason) {
      const overloaded = reason.endsWith('is overloaded');
      const fits = nodes.filter((n) => cameraNodeFit(cam, n) === null && n.id !== (overloaded ? cameraNode : null));
      const pool = overloaded ? fits.filter((n) => (camCost.get(n.id) ?? 0) < target) : fits;
      const best = pick(pool, cam.placement.prefer, camCost);
      if (best) {
        if (best.id !== cameraNode) {
          if (cameraNode && curNode) camCost.set(cameraNode, (camCost.get(cameraNode) ?? 0) - CAMERA_COST / Math.max(1, curNode.cpus / 2));
          moves.push({ camera: cam.id, role: 'camera-node', from: cameraNode, to: best.id, reason });
          if (overloaded) {
            shedThisRound.add(cameraNode!);
            rebalancedAt = o.now;
          }
          cameraNode = best.id;
          camCost.set(best.id, (camCost.get(best.id) ?? 0) + CAMERA_COST / Math.max(1, best.cpus / 2));
        }
      } else if (!overloaded) {
        if (cameraNode) moves.push({ camera: cam.id, role: 'camera-node', from: cameraNode, to: null, reason });
        problem = noFitReason(cam, nodes);
        cameraNode = null;
      }
    }

    // The SFU: kept while alive and not drained; else the cheapest, preferring the camera's labels.
    let sfu = cur?.sfu ?? null;
    const curSfu = sfu ? byId.get(sfu) : undefined;
    const sfuOk = (n: Candidate) => n.roles.includes('sfu') && n.alive && !n.drained;
    if (!curSfu || !sfuOk(curSfu)) {
      const why = !sfu ? 'new' : !curSfu ? `${sfu} is gone` : !curSfu.alive ? `${sfu} is down` : `${sfu} is drained`;
      const best = pick(nodes.filter(sfuOk), cam.placement.prefer, sfuCost);
      if (best) {
        moves.push({ camera: cam.id, role: 'sfu', from: sfu, to: best.id, reason: why });
        sfu = best.id;
        sfuCost.set(best.id, (sfuCost.get(best.id) ?? 0) + ROOM_COST / Math.max(1, best.cpus / 2));
      } else {
        if (sfu) moves.push({ camera: cam.id, role: 'sfu', from: sfu, to: null, reason: why });
        sfu = null;
        problem ??= 'no SFU node is alive and undrained';
      }
    }
    // The recorder and the detector: each kept while alive and not drained; else the least loaded node
    // of the role, preferring the camera's labels.
    const helper = (role: 'recorder' | 'detector', wanted: boolean, current: string | null, costs: Map<string, number>, cost: number): string | null => {
      let chosen = wanted ? current : null;
      if (!wanted) return null;
      const curNode = chosen ? byId.get(chosen) : undefined;
      const ok = (n: Candidate) => n.roles.includes(role) && n.alive && !n.drained;
      if (curNode && ok(curNode)) return chosen;
      const why = !chosen ? 'new' : !curNode ? `${chosen} is gone` : !curNode.alive ? `${chosen} is down` : `${chosen} is drained`;
      const best = pick(nodes.filter(ok), cam.placement.prefer, costs);
      if (best) {
        moves.push({ camera: cam.id, role, from: chosen, to: best.id, reason: why });
        costs.set(best.id, (costs.get(best.id) ?? 0) + cost);
        chosen = best.id;
      } else {
        if (chosen) moves.push({ camera: cam.id, role, from: chosen, to: null, reason: why });
        chosen = null;
      }
      return chosen;
    };
    const recorder = helper('recorder', cam.recording.enabled, cur?.recorder ?? null, recCost, RECORDING_COST);
    const detector = helper('detector', cam.motion.enabled, cur?.detector ?? null, detCost, DETECTION_COST);
    out.set(cam.id, { cameraNode, sfu, recorder, detector, problem, ...(rebalancedAt !== undefined ? { rebalancedAt } : {}), ...(whip ? { publisher: 'whip' as const } : {}) });
  }
  return { placements: out, moves };
}

function pick(pool: readonly Candidate[], prefer: Readonly<Record<string, string>>, cost: ReadonlyMap<string, number>): Candidate | null {
  let best: Candidate | null = null;
  let bestKey: [number, number] = [0, 0];
  for (const n of pool) {
    const key: [number, number] = [preferScore(n.labels, prefer), -(cost.get(n.id) ?? 0)];
    if (!best || key[0] > bestKey[0] || (key[0] === bestKey[0] && (key[1] > bestKey[1] || (key[1] === bestKey[1] && n.id < best.id)))) {
      best = n;
      bestKey = key;
    }
  }
  return best;
}

function noFitReason(cam: CameraConfig, nodes: readonly Candidate[]): string {
  if (cam.placement.node) {
    const n = nodes.find((x) => x.id === cam.placement.node);
    if (!n) return `pinned to ${cam.placement.node}, which is not registered`;
    return cameraNodeFit(cam, n) ?? `pinned to ${cam.placement.node}`;
  }
  const cn = nodes.filter((n) => n.roles.includes('camera-node'));
  if (cn.length === 0) return 'no camera-node is registered';
  if (!cn.some((n) => n.alive)) return 'no camera-node is alive';
  if (Object.keys(cam.placement.require).length) return `no live, undrained camera-node has the labels ${JSON.stringify(cam.placement.require)}`;
  return 'every live camera-node is drained';
}

/** Exponential smoothing of a node's CPU with a time constant (ms): what placement calls its load. */
export function smooth(prev: number | undefined, sample: number, dtMs: number, tauMs = 60_000): number {
  if (prev === undefined) return sample;
  const a = 1 - Math.exp(-Math.max(0, dtMs) / tauMs);
  return prev + a * (sample - prev);
}

export type { Role };
