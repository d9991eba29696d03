import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initStoragePath, type Recorder } from '@cctv/recorder';
import { waitFor } from '../../sfu/src/testing/wait.js';
import { archiveRig, cameraConfig, type ArchiveRig } from '../support/archive.js';

describe('recorder: an H.264 camera stored as H.265', () => {
  let rig: ArchiveRig;
  let rec: Recorder;
  let stored = 0;

  beforeAll(async () => {
    rig = await archiveRig(['hx']);
    await rig.feed('hx');
    rec = await rig.recorder({ recorder: { h265: { preset: 'ultrafast', crf: 30 } } });
    rec.on('stored', () => stored++);
    await rec.setCameras([cameraConfig('hx', { storageCodec: 'H265' })]);
    await waitFor(() => stored >= 3, 40_000, () => `${stored} stored`);
  });
  afterAll(async () => {
    await rig?.close();
  });

  it('writes HEVC segments that start with a keyframe and decode', async () => {
    const rows = await rig.db.query<{ path: string; init_sha256: string; duration_ms: number }>("SELECT path, init_sha256, duration_ms FROM segments WHERE state = 'stored' ORDER BY id");
    const r = rows[1]!;
    const probe = join(rig.dir, 'hevc.mp4');
    writeFileSync(probe, Buffer.concat([readFileSync(join(rig.dir, 'nas', initStoragePath('hx', r.init_sha256))), readFileSync(join(rig.dir, 'nas', r.path))]));
    const out = spawnSync('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'stream=codec_name,width,height,nb_read_frames', '-of', 'json', probe], { encoding: 'utf8' });
    const s = JSON.parse(out.stdout).streams[0];
    expect(s).toMatchObject({ codec_name: 'hevc', width: 320, height: 240 });
    expect(Number(s.nb_read_frames)).toBeGreaterThanOrEqual(Math.floor((Number(r.duration_ms) / 1000) * 30) - 2);
    const k = spawnSync('ffprobe', ['-v', 'error', '-select_streams', 'v', '-show_entries', 'frame=key_frame', '-read_intervals', '%+#1', '-of', 'csv=p=0', probe], { encoding: 'utf8' });
    expect(k.stdout.trim().split('\n')[0]!.split(',')[0]).toBe('1');
  });
});

describe('recorder: an H.265 camera', () => {
  let rig: ArchiveRig;
  let rec: Recorder;
  let stored = 0;

  beforeAll(async () => {
    rig = await archiveRig(['hv']);
    await rig.feed('hv', { codec: 'H265' });
    rec = await rig.recorder();
    rec.on('stored', () => stored++);
    await rec.setCameras([cameraConfig('hv')]);
    await waitFor(() => stored >= 3, 40_000, () => `${stored} stored`);
  });
  afterAll(async () => {
    await rig?.close();
  });

  it('is recorded as it is: HEVC segments, copied, each starting with a keyframe', async () => {
    const rows = await rig.db.query<{ path: string; init_sha256: string; duration_ms: number }>("SELECT path, init_sha256, duration_ms FROM segments WHERE state = 'stored' ORDER BY id");
    const r = rows[1]!;
    const probe = join(rig.dir, 'hvc.mp4');
    writeFileSync(probe, Buffer.concat([readFileSync(join(rig.dir, 'nas', initStoragePath('hv', r.init_sha256))), readFileSync(join(rig.dir, 'nas', r.path))]));
    const out = spawnSync('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'stream=codec_name,codec_tag_string,width,height,nb_read_frames', '-of', 'json', probe], { encoding: 'utf8' });
    const s = JSON.parse(out.stdout).streams[0];
    expect(s).toMatchObject({ codec_name: 'hevc', width: 320, height: 240 });
    expect(Number(s.nb_read_frames)).toBeGreaterThanOrEqual(Math.floor((Number(r.duration_ms) / 1000) * 30) - 2);
    const k = spawnSync('ffprobe', ['-v', 'error', '-select_streams', 'v', '-show_entries', 'frame=key_frame', '-read_intervals', '%+#1', '-of', 'csv=p=0', probe], { encoding: 'utf8' });
    expect(k.stdout.trim().split('\n')[0]!.split(',')[0]).toBe('1');
  });
});
