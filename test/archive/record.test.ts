import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IDENTITY_FILE, initStoragePath, timeline, verifyArchive, vodPlaylist, type Recorder, type SegmentRow } from '@cctv/recorder';
import { waitFor } from '../../sfu/src/testing/wait.js';
import { archiveRig, cameraConfig, type ArchiveRig } from '../support/archive.js';

const sqlRows = (rig: ArchiveRig, camera: string) =>
  rig.db.query<SegmentRow>('SELECT * FROM segments WHERE camera_id = $1 ORDER BY id', [camera]).then((rows) =>
    rows.map((r) => ({ ...r, id: Number(r.id), start_ms: Number(r.start_ms), duration_ms: Number(r.duration_ms), bytes: Number(r.bytes) })));

describe('recorder: from the SFU to the storage', () => {
  let rig: ArchiveRig;
  let rec: Recorder;
  const stored: number[] = [];
  let startedAt = 0;

  beforeAll(async () => {
    rig = await archiveRig(['cam1']);
    await rig.feed('cam1');
    rec = await rig.recorder();
    rec.on('stored', (s) => stored.push(s.id));
    startedAt = Date.now();
    await rec.setCameras([cameraConfig('cam1')]);
    await waitFor(() => stored.length >= 6, 40_000, () => `${stored.length} segments stored; ${JSON.stringify(rec.status())}`);
  });
  afterAll(async () => {
    await rig?.close();
  });

  it('writes HLS fMP4 segments cut at keyframes, enters each in the database in a chain, and moves it to the storage verified', async () => {
    const rows = (await sqlRows(rig, 'cam1')).filter((r) => r.state === 'stored');
    expect(rows.length).toBeGreaterThanOrEqual(4);
    // The storage got an identity file the database knows.
    const identity = JSON.parse(readFileSync(join(rig.dir, 'nas', IDENTITY_FILE), 'utf8'));
    expect(identity).toMatchObject({ storageId: 'nas', site: 'test-site' });
    const ids = await rig.db.query<{ id: string }>('SELECT id FROM storages');
    expect(ids.map((r) => r.id)).toEqual(['nas']);
    for (const [i, r] of rows.entries()) {
      const file = join(rig.dir, 'nas', r.path);
      expect(existsSync(file)).toBe(true);
      // Cut at keyframes every 2 s (1 s GOP): whole seconds.
      expect(r.duration_ms).toBeGreaterThanOrEqual(1900);
      expect(r.duration_ms).toBeLessThanOrEqual(3100);
      if (i > 0) expect(r.prev_link).toBe(rows[i - 1]!.link);
      // Consecutive segments follow each other on the wall clock.
      if (i > 0) expect(Math.abs(r.start_ms - (rows[i - 1]!.start_ms + rows[i - 1]!.duration_ms))).toBeLessThan(50);
    }
    expect(rows[0]!.prev_link).toBeNull();
    // Dated by the wall clock of its first keyframe: within a GOP and a bit of the moment recording began.
    expect(Math.abs(rows[0]!.start_ms - startedAt)).toBeLessThan(2000);
    // The spool is emptied of what has gone.
    for (const r of rows) expect(existsSync(join(rec.spoolDir, 'cam1', r.run, `seg-${r.seq}.m4s`))).toBe(false);
  });

  it('makes segments a player decodes: init section + segment is H.264 of the camera\'s size and length', async () => {
    const rows = (await sqlRows(rig, 'cam1')).filter((r) => r.state === 'stored');
    const r = rows[1]!;
    const init = readFileSync(join(rig.dir, 'nas', initStoragePath('cam1', r.init_sha256)));
    const media = readFileSync(join(rig.dir, 'nas', r.path));
    const probe = join(rig.dir, 'probe.mp4');
    writeFileSync(probe, Buffer.concat([init, media]));
    const out = spawnSync('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'stream=codec_name,width,height,nb_read_frames', '-of', 'json', probe], { encoding: 'utf8' });
    const s = JSON.parse(out.stdout).streams[0];
    expect(s).toMatchObject({ codec_name: 'h264', width: 320, height: 240 });
    // 30 fps for the segment's length: every frame arrived.
    expect(Number(s.nb_read_frames)).toBeGreaterThanOrEqual(Math.floor((r.duration_ms / 1000) * 30) - 2);
    // The first frame of every segment is a keyframe.
    const k = spawnSync('ffprobe', ['-v', 'error', '-select_streams', 'v', '-show_entries', 'frame=key_frame', '-read_intervals', '%+#1', '-of', 'csv=p=0', probe], { encoding: 'utf8' });
    expect(k.stdout.trim().split('\n')[0]).toBe('1');
  });

  it('serves a VOD playlist and a timeline of what was recorded', async () => {
    const rows = (await sqlRows(rig, 'cam1')).filter((r) => r.state === 'stored');
    const pl = vodPlaylist(rows, 'token=x');
    expect(pl).toMatch(/^#EXTM3U\n#EXT-X-VERSION:7\n/);
    expect(pl).toContain(`#EXT-X-MAP:URI="init/${rows[0]!.init_sha256}.mp4?token=x"`);
    expect(pl).toContain(`segments/${rows[0]!.id}.m4s?token=x`);
    expect(pl).toContain('#EXT-X-PLAYLIST-TYPE:VOD');
    expect(pl.trim().endsWith('#EXT-X-ENDLIST')).toBe(true);
    const from = rows[0]!.start_ms - 60_000;
    const t = await timeline(rec.archive, 'cam1', from, Date.now());
    expect(t.recorded.length).toBe(1);
    expect(t.recorded[0]!.startMs).toBe(rows[0]!.start_ms);
    expect(t.gaps[0]).toMatchObject({ startMs: from, endMs: rows[0]!.start_ms });
  });

  it('verify passes on an intact archive and names each altered, missing, inserted, edited or removed segment', async () => {
    await rec.setCameras([]);
    const ok = await verifyArchive({ db: rig.db, storage: rec.storage, spoolDir: rec.spoolDir });
    expect(ok.findings).toEqual([]);
    expect(ok.ok).toBe(true);
    const rows = (await sqlRows(rig, 'cam1')).filter((r) => r.state === 'stored');
    expect(rows.length).toBeGreaterThanOrEqual(5);
    const [a, b, c, d, e] = rows;
    // A flipped byte.
    const fa = join(rig.dir, 'nas', a!.path);
    const bytes = readFileSync(fa);
    const mid = bytes.length >> 1;
    bytes.writeUInt8(bytes.readUInt8(mid) ^ 0xff, mid);
    writeFileSync(fa, bytes);
    // A deleted file.
    rmSync(join(rig.dir, 'nas', b!.path));
    // A foreign file put beside the others.
    const foreign = join(rig.dir, 'nas', c!.path.replace(/[^/]+$/, '9999999999999-1.m4s'));
    copyFileSync(join(rig.dir, 'nas', c!.path), foreign);
    // An edited row (its start moved).
    await rig.db.query('UPDATE segments SET start_ms = start_ms + 1000 WHERE id = $1', [c!.id]);
    // A row removed from the middle, file and all.
    await rig.db.query('DELETE FROM segments WHERE id = $1', [e!.id]);
    rmSync(join(rig.dir, 'nas', e!.path));
    const r = await verifyArchive({ db: rig.db, storage: rec.storage, spoolDir: rec.spoolDir });
    expect(r.ok).toBe(false);
    const by = (kind: string) => r.findings.filter((f) => f.kind === kind);
    expect(by('altered').map((f) => f.segment)).toEqual([a!.id]);
    expect(by('missing').map((f) => f.segment)).toEqual([b!.id]);
    expect(by('inserted').map((f) => f.path)).toEqual([foreign.slice(join(rig.dir, 'nas').length + 1)]);
    expect(by('edited').map((f) => f.segment)).toEqual([c!.id]);
    // The segment after the removed one no longer links to its predecessor.
    const after = rows[rows.indexOf(e!) + 1];
    expect(by('chain-broken').map((f) => f.segment)).toEqual([after ? after.id : undefined]);
    void d;
    expect(readdirSync(join(rig.dir, 'nas', 'cam1')).length).toBeGreaterThan(0);
  });
});
