import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyArchive, type Recorder, type StorageStatus } from '@cctv/recorder';
import { waitFor } from '../../sfu/src/testing/wait.js';
import { archiveRig, cameraConfig, type ArchiveRig } from '../support/archive.js';

/**
 * The NAS as real mounts: a tmpfs (the share's disk) bind-mounted, or served by bindfs (FUSE), at the
 * storage path. Each outage is made for real: the mount turned read-only, the disk filled, the share
 * unmounted, the FUSE daemon killed (ENOTCONN) and frozen (I/O that never returns). Four cameras record
 * throughout; afterwards every segment must be on the storage, verified, none lost or duplicated.
 */

const run = (cmd: string, args: string[]) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${(r.stderr || r.stdout || r.error?.message || '').trim()}`);
};
const tryRun = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// Each outage lasts this long (five of them: two minutes in all by default).
const OUTAGE_MS = Number(process.env.TEST_OUTAGE_MS ?? 24_000);

describe('recorder: a NAS that goes away in every way it does', () => {
  let rig: ArchiveRig;
  let rec: Recorder;
  let backing = '';
  let nas = '';
  let bindfs: ChildProcess | null = null;
  const problems: Array<StorageStatus['problem']> = [];
  const details: string[] = [];
  const cams = ['c1', 'c2', 'c3', 'c4'];

  const startBindfs = async () => {
    bindfs = spawn('bindfs', ['-f', '--no-allow-other', backing, nas], { stdio: 'ignore' });
    await waitFor(() => {
      try {
        return statSync(nas).dev !== statSync(rig.dir).dev;
      } catch {
        return false;
      }
    }, 10_000, () => 'bindfs did not mount');
  };
  // From the mount table, not stat(): a dead FUSE mount cannot be stat()ed.
  const mounted = (path: string) => readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === path);
  const unmountNas = () => {
    for (let i = 0; i < 10 && mounted(nas); i++) tryRun('umount', ['-l', nas]);
  };

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('these tests mount filesystems: run them as root (CI does)');
    rig = await archiveRig(cams);
    backing = join(rig.dir, 'backing');
    nas = join(rig.dir, 'nas');
    mkdirSync(backing);
    mkdirSync(nas);
    run('mount', ['-t', 'tmpfs', '-o', 'size=96m', 'tmpfs', backing]);
    run('mount', ['--bind', backing, nas]);
    for (const c of cams) await rig.feed(c);
    rec = await rig.recorder({ recorder: { storage: { path: nas, requireMount: true, minFreeBytes: 0 }, ioTimeoutMs: 1000 } });
    rec.storage.on('status', (s) => {
      problems.push(s.problem);
      details.push(`${s.problem}: ${s.detail}`);
    });
    await rec.setCameras(cams.map((c) => cameraConfig(c)));
    await waitFor(() => rec.status().spool.segments === 0 && rec.storage.available, 20_000);
  });

  afterAll(async () => {
    if (bindfs) bindfs.kill('SIGCONT');
    bindfs?.kill('SIGKILL');
    if (nas) unmountNas();
    for (let i = 0; i < 10 && backing && mounted(backing); i++) tryRun('umount', ['-l', backing]);
    await rig?.close();
  });

  it('records through a read-only share, a full disk, an unmounted share, a killed and a frozen FUSE daemon; afterwards everything is on the NAS, verified, once', async () => {
    const stored = () => rig.db.query<{ n: number }>("SELECT count(*)::int AS n FROM segments WHERE state = 'stored'").then((r) => Number(r[0]!.n));
    const wait = async (problem: string) => {
      await waitFor(() => problems.includes(problem as StorageStatus['problem']), 15_000, () => `saw ${JSON.stringify(problems)}`);
    };
    const recovered = async () => {
      await waitFor(() => rec.storage.available, 30_000, () => JSON.stringify(rec.storage.status));
    };

    // 1. The share turns read-only.
    run('mount', ['-o', 'remount,bind,ro', nas]);
    await wait('read-only');
    await sleep(OUTAGE_MS);
    run('mount', ['-o', 'remount,bind,rw', nas]);
    await rec.storage.check();
    await recovered();

    // 2. The share's disk fills.
    tryRun('dd', ['if=/dev/zero', `of=${join(backing, 'filler')}`, 'bs=1M', 'count=200']);
    await wait('full');
    await sleep(OUTAGE_MS);
    run('rm', ['-f', join(backing, 'filler')]);
    await rec.storage.check();
    await recovered();

    // 3. The share is unmounted: an empty directory, never to be written to.
    unmountNas();
    await rec.storage.check();
    await wait('not-mounted');
    await sleep(OUTAGE_MS);
    expect(readdirSync(nas)).toEqual([]);
    // 4. It comes back through FUSE, whose daemon is then killed: ENOTCONN.
    await startBindfs();
    await rec.storage.check();
    await recovered();
    bindfs!.kill('SIGKILL');
    await rec.storage.check();
    await wait('disconnected');
    await sleep(OUTAGE_MS);
    unmountNas();
    await startBindfs();
    await rec.storage.check();
    await recovered();
    // 5. The daemon freezes: I/O blocks, and is given up after the timeout without stalling recording.
    const before = rec.status().cameras.map((c) => c.lastPacketAt);
    bindfs!.kill('SIGSTOP');
    await rec.storage.check();
    await wait('hung');
    await sleep(OUTAGE_MS);
    const during = rec.status();
    expect(during.cameras.every((c, i) => c.recording && c.lastPacketAt > before[i]!)).toBe(true);
    expect(during.spool.segments).toBeGreaterThan(0);
    bindfs!.kill('SIGCONT');
    await rec.storage.check();
    await recovered();

    // Everything drains to the NAS.
    await waitFor(() => rec.status().spool.segments === 0, 60_000, () => JSON.stringify(rec.status().spool));
    await rec.setCameras([]);
    // The last segments are entered and copied; then nothing changes any more.
    let last = -1;
    for (;;) {
      await waitFor(() => rec.status().spool.segments === 0, 30_000, () => JSON.stringify(rec.status().spool));
      const n = await stored();
      if (n === last) break;
      last = n;
      await sleep(1500);
    }
    const rows = await rig.db.query<{ camera_id: string; run: string; seq: number; state: string; path: string }>('SELECT camera_id, run, seq, state, path FROM segments ORDER BY id');
    expect(rows.filter((r) => r.state !== 'stored')).toEqual([]);
    // No segment lost inside a run (sequence numbers without holes) and none twice.
    const runs = new Map<string, number[]>();
    for (const r of rows) runs.set(`${r.camera_id}/${r.run}`, [...(runs.get(`${r.camera_id}/${r.run}`) ?? []), Number(r.seq)]);
    for (const [, seqs] of runs) expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
    const files = cams.flatMap((c) => listFiles(join(backing, c)).filter((f) => f.endsWith('.m4s')));
    expect(files.length).toBe(rows.length);
    const report = await verifyArchive({ db: rig.db, storage: rec.storage, spoolDir: rec.spoolDir });
    expect(report.findings).toEqual([]);
    const perCamera = cams.map((c) => `${c}: ${rows.filter((r) => r.camera_id === c).length}`).join(', ');
    // The counts the closing note reports.
    console.log(`outage test: ${rows.length} segments stored and verified (${perCamera}); ${runs.size} runs; storage states seen: ${[...new Set(problems)].join(', ')}; ${await stored()} rows stored`);
    // Each outage was seen for what it is (a remount can also show as a passing ENOENT).
    expect(problems, details.join('\n')).toEqual(expect.arrayContaining([null, 'read-only', 'full', 'not-mounted', 'disconnected', 'hung']));
  }, 20 * 60_000);
});

function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else out.push(join(d, e.name));
    }
  };
  try {
    walk(dir);
  } catch {
    // none
  }
  return out;
}
