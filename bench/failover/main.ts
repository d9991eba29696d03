// `npm run bench:failover`: how fast the cluster heals. Ends with RESULT lines.
//
// The cluster of the tests, from the build: two signaling instances, two SFUs, three camera-nodes as
// separate processes against the machine's Redis and Postgres, two synthetic cameras, and a viewer that
// reconnects like the dashboard's player. Each role is killed with SIGKILL `--kills` times (default 10):
//   detect_ms    kill → the leading instance declares the node dead (its log),
//   replace_ms   kill → the camera is placed elsewhere (the leader's log; for signaling: another leads),
//   frame_ms     kill → the viewer decodes the first frame that entered the camera's encoder after the
//                kill (the timecode the test pattern draws, read back after decoding: live video again,
//                not a replay of older frames); for signaling: the longest silence the viewer saw, as
//                video does not depend on the master.
// Baseline, same sitting: the same failures as a frozen process (SIGSTOP: connections stay open, so only
// the 3 s lease can tell), i.e. what heartbeat-timeout detection alone gives.
// Placement rate: `place()` for 1,000 cameras on 50 nodes, in-process; and end to end, cameras created
// through the API until each has a camera-node, an open room and its assignment.
// Options: --kills N (default 10), --frozen N (default 5), --cameras N (end-to-end placement, default 100).
import { randomBytes } from 'node:crypto';
import { CameraSchema, type Role } from '@cctv/core';
import { place, type Candidate } from '../../signaling/src/cluster/placement.js';
import { createTestDatabase } from '../../core/src/db/testing/testDatabase.js';
import { TestCluster, until, type Proc } from '../../test/support/cluster.js';
import { watchResilient, type ResilientViewer } from '../../test/support/resilientViewer.js';
import { result, summary } from '../lib/stats.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const KILLS = Number(args.get('kills') ?? 10);
const FROZEN = Number(args.get('frozen') ?? 5);
const E2E_CAMERAS = Number(args.get('cameras') ?? 100);
const CAMERA = { source: { kind: 'test', pattern: 'timecode', width: 640, height: 360, fps: 30, gop: 30, bitrateKbps: 1500 } };

interface Sample {
  detect: number;
  replace: number;
  frame: number;
}

const log = (s: string) => process.stderr.write(`${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function placementRate(): number {
  const nodes: Candidate[] = [];
  for (let i = 0; i < 50; i++) {
    const roles: Role[] = i < 40 ? ['camera-node'] : ['sfu'];
    nodes.push({ id: `n${i}`, roles, labels: { site: `s${i % 4}` }, alive: true, drained: false, cpu: (i % 7) / 10, cpus: 4, ingressBps: 0, viewers: 0 });
  }
  const cams = Array.from({ length: 1000 }, (_, i) => CameraSchema.parse({ id: `c${i}`, source: { kind: 'test' }, placement: { prefer: { site: `s${i % 4}` } } }));
  const t0 = performance.now();
  let rounds = 0;
  while (performance.now() - t0 < 2000) {
    place(cams, nodes, new Map(), { now: Date.now() });
    rounds++;
  }
  return (rounds * cams.length) / ((performance.now() - t0) / 1000);
}

async function main(): Promise<void> {
  const db = await createTestDatabase('cctv_bench');
  const cluster = new TestCluster({ redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', databaseUrl: db.url, prefix: `bench-failover-${randomBytes(4).toString('hex')}`, fromSource: false });
  let viewer: ResilientViewer | null = null;
  try {
    log('starting the cluster…');
    await cluster.add({ id: 'sig1', roles: ['signaling'] });
    await cluster.add({ id: 'sig2', roles: ['signaling'] });
    for (const id of ['sfu1', 'sfu2']) await cluster.add({ id, roles: ['sfu'] });
    for (const id of ['cn1', 'cn2', 'cn3']) await cluster.add({ id, roles: ['camera-node'] });
    const alive = async () => (await cluster.api<Array<{ id: string; state: string; leader: boolean }>>('/api/nodes')).body;
    await until(async () => (await alive()).filter((n) => n.state === 'alive').length === 7, 'seven nodes', 60_000);
    for (const id of ['cam-a', 'cam-b']) await cluster.api('/api/cameras', { method: 'POST', body: { id, ...CAMERA } });
    await until(async () => (await cluster.api<Array<{ status: { state: string } }>>('/api/cameras')).body.every((c) => c.status.state === 'live'), 'cameras live', 30_000);
    const doors = () => [...cluster.procs.values()].filter((p) => p.spec.roles.includes('signaling') && p.running).map((p) => p.url);
    viewer = await watchResilient({ doors, camera: 'cam-a', headers: { authorization: `Bearer ${await cluster.token()}` }, timecode: { width: 640 } });
    await viewer.freshFrameAfter(Date.now());
    const v = viewer;

    const leader = async (): Promise<Proc> => cluster.get((await until(async () => (await alive()).find((n) => n.leader), 'a leader', 10_000)).id);
    const at = (entries: Array<{ time: string }>, after: number) => entries.map((e) => Date.parse(e.time)).find((t) => t >= after);
    const backAlive = async (p: Proc) => {
      await until(async () => (await alive()).find((n) => n.id === p.id)?.state === 'alive', `${p.id} back`, 30_000);
      await until(async () => (await cluster.api<Array<{ status: { state: string } }>>('/api/cameras')).body.every((c) => c.status.state === 'live'), 'cameras live', 30_000);
      await sleep(1500);
    };

    /** One failure of the node running cam-a in `role`, by SIGKILL or SIGSTOP. */
    async function fail(role: 'camera-node' | 'sfu', how: 'kill' | 'freeze'): Promise<Sample> {
      const p = (await cluster.placement('cam-a'))!;
      const victim = cluster.get(role === 'sfu' ? p.sfu! : p.cameraNode!);
      const boss = await leader();
      const t0 = Date.now();
      if (how === 'kill') await victim.kill9();
      else victim.freeze();
      const frame = (await v.freshFrameAfter(t0, 20_000)) - t0;
      const detectAt = await until(() => at(boss.logs(/node lost its connection|node missed its lease/).filter((e) => e.node === victim.id), t0), 'detection in the log', 10_000);
      const moveAt = await until(() => at(boss.logs('camera moved').filter((e) => e.camera === 'cam-a' && e.from === victim.id), t0), 'the move in the log', 10_000);
      if (how === 'kill') victim.start();
      else victim.thaw();
      await backAlive(victim);
      return { detect: detectAt - t0, replace: moveAt - t0, frame };
    }

    async function failLeader(): Promise<Sample> {
      const boss = await leader();
      const others = [...cluster.procs.values()].filter((x) => x.spec.roles.includes('signaling') && x !== boss);
      const t0 = Date.now();
      await boss.kill9();
      const takeover = await until(() => others.map((o) => at(o.logs('leading the cluster'), t0)).find((t) => t !== undefined), 'a new leader', 15_000);
      const detect = others.map((o) => at(o.logs('the leader is gone; taking over'), t0)).find((t) => t !== undefined) ?? takeover;
      await sleep(2000);
      const silence = v.longestSilence(t0, Date.now());
      boss.start();
      await cluster.waitHealthy(boss);
      await backAlive(boss);
      return { detect: detect - t0, replace: takeover - t0, frame: silence };
    }

    const report = (name: string, samples: Sample[]) => {
      const d = summary(samples.map((s) => s.detect));
      const r = summary(samples.map((s) => s.replace));
      const f = summary(samples.map((s) => s.frame));
      result(name, { n: samples.length, detect_p50_ms: d.p50, detect_max_ms: d.max, replace_p50_ms: r.p50, replace_max_ms: r.max, [name.endsWith('signaling') ? 'video_silence_p50_ms' : 'frame_p50_ms']: f.p50, [name.endsWith('signaling') ? 'video_silence_max_ms' : 'frame_max_ms']: f.max });
      return f;
    };

    const runs: Record<string, Sample[]> = {};
    for (const role of ['camera-node', 'sfu'] as const) {
      runs[`kill-${role}`] = [];
      for (let i = 0; i < KILLS; i++) {
        const s = await fail(role, 'kill');
        runs[`kill-${role}`]!.push(s);
        log(`kill ${role} ${i + 1}/${KILLS}: detect ${s.detect} ms, re-placed ${s.replace} ms, keyframe at the viewer ${s.frame} ms`);
      }
      runs[`frozen-${role}`] = [];
      for (let i = 0; i < FROZEN; i++) {
        const s = await fail(role, 'freeze');
        runs[`frozen-${role}`]!.push(s);
        log(`freeze ${role} ${i + 1}/${FROZEN}: detect ${s.detect} ms, re-placed ${s.replace} ms, keyframe at the viewer ${s.frame} ms`);
      }
    }
    runs['kill-signaling'] = [];
    for (let i = 0; i < KILLS; i++) {
      const s = await failLeader();
      runs['kill-signaling']!.push(s);
      log(`kill leader ${i + 1}/${KILLS}: detected ${s.detect} ms, new leader ${s.replace} ms, longest video silence ${s.frame} ms`);
    }

    await viewer.close();
    viewer = null;
    // End to end: cameras that need no encoder (RTP inputs), created through the API in parallel.
    log(`placing ${E2E_CAMERAS} cameras through the API…`);
    const t0 = Date.now();
    const ids = Array.from({ length: E2E_CAMERAS }, (_, i) => `rtp-${i}`);
    for (let i = 0; i < ids.length; i += 10) {
      await Promise.all(ids.slice(i, i + 10).map((id, j) => cluster.api('/api/cameras', { method: 'POST', body: { id, source: { kind: 'rtp', port: 40000 + i + j, host: '127.0.0.1', codec: 'H264', payloadType: 96 } } })));
    }
    const created = Date.now();
    await until(async () => {
      const nodes = (await cluster.api<Array<{ roles: string[]; cameras: Array<{ id: string }>; rooms: Array<{ camera: string }> }>>('/api/nodes')).body;
      const running = new Set(nodes.flatMap((n) => n.cameras.map((c) => c.id)));
      const rooms = new Set(nodes.flatMap((n) => n.rooms.map((r) => r.camera)));
      return ids.every((id) => running.has(id) && rooms.has(id));
    }, 'every camera running with a room', 60_000, 50);
    const done = Date.now();

    log('');
    const fKill = report('failover-camera-node', runs['kill-camera-node']!);
    const fFrozen = report('failover-camera-node-frozen', runs['frozen-camera-node']!);
    const sKill = report('failover-sfu', runs['kill-sfu']!);
    const sFrozen = report('failover-sfu-frozen', runs['frozen-sfu']!);
    report('failover-signaling', runs['kill-signaling']!);
    result('failover-vs-frozen', {
      camera_node_frame_p50_ratio: fKill.p50 / fFrozen.p50,
      sfu_frame_p50_ratio: sKill.p50 / sFrozen.p50,
      target_ms: 3000,
      worst_frame_ms: Math.max(fKill.max, sKill.max),
    });
    const rate = placementRate();
    result('placement', { place_cameras_per_s: Math.round(rate), e2e_cameras: E2E_CAMERAS, e2e_create_s: (created - t0) / 1000, e2e_all_running_s: (done - t0) / 1000, e2e_cameras_per_s: Math.round(E2E_CAMERAS / ((done - t0) / 1000)), after_last_create_s: (done - created) / 1000 });
  } catch (error) {
    log(cluster.dump());
    throw error;
  } finally {
    await viewer?.close();
    await cluster.close();
    await db.drop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench:failover failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
