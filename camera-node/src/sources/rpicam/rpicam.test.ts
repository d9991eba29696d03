import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CameraState, INGEST_PAYLOAD_TYPE, findExecutable } from '@cctv/core';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { RPICAM_COMMANDS, createCameraNode } from '../../index.js';
import { FakeSfu } from '../../testing/fakeSfu.js';
import { Resources, cameraConfig, nodeSettings, quietLogs, tempDir, waitFor } from '../../testing/helpers.js';

/**
 * A stand-in for rpicam-vid: records its argv (one per line, its own name first) next to itself, then
 * writes an H.264 Annex-B stream to stdout as the Pi's encoder would, at the size and rate it was asked for.
 */
const STAND_IN = `#!/bin/sh
dir=$(dirname "$0")
{ basename "$0"; printf '%s\\n' "$@"; } > "$dir/argv.txt"
w=640; h=480; fps=30; intra=30
while [ $# -gt 0 ]; do
  case "$1" in
    --width) w=$2; shift ;;
    --height) h=$2; shift ;;
    --framerate) fps=$2; shift ;;
    --intra) intra=$2; shift ;;
  esac
  shift
done
exec ffmpeg -hide_banner -loglevel error -nostdin -re -f lavfi -i "testsrc2=size=\${w}x\${h}:rate=\${fps}" \\
  -c:v libx264 -preset ultrafast -tune zerolatency -profile:v baseline -pix_fmt yuv420p -g "$intra" -bf 0 \\
  -x264-params repeat-headers=1 -f h264 -
`;

const res = new Resources();
const dir = tempDir();
const originalPath = process.env.PATH;
beforeAll(() => quietLogs());
afterEach(async () => {
  try {
    await res.closeAll();
  } finally {
    process.env.PATH = originalPath;
  }
});
afterAll(() => dir.remove());

/** A folder holding the stand-in under `name`, put first on PATH (with the system folders after it, for ffmpeg). */
function binWith(name: string | null): string {
  const bin = join(dir.path, `bin-${name ?? 'none'}-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(bin);
  if (name) {
    writeFileSync(join(bin, name), STAND_IN);
    chmodSync(join(bin, name), 0o755);
  }
  process.env.PATH = [bin, '/usr/local/bin', '/usr/bin', '/bin'].join(':');
  return bin;
}

function recordedArgv(bin: string): string[] {
  return readFileSync(join(bin, 'argv.txt'), 'utf8').split('\n').filter(Boolean);
}

/** The value after `flag` in argv. */
function arg(argv: string[], flag: string): string | undefined {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
}

async function setup(stallTimeoutMs?: number) {
  const sfu = res.add(await FakeSfu.start(), (s) => s.close());
  const node = res.add(await createCameraNode({ settings: nodeSettings({ stallTimeoutMs }), dataDir: dir.path }), (n) => n.close());
  return { sfu, node };
}

describe('rpicam source', () => {
  test('runs rpicam-vid with the configured picture and pipes its H.264 into RTP', async () => {
    const bin = binWith('rpicam-vid');
    const { sfu, node } = await setup();
    const cam = await node.addCamera(
      cameraConfig({ id: 'pi', source: { kind: 'rpicam', width: 320, height: 240, fps: 12, gop: 6, bitrateKbps: 400, extraArgs: ['--hflip'] } }),
      sfu.address,
    );
    await waitFor(() => `the camera to be live (${cam.state}: ${cam.status().lastError ?? ''})`, () => cam.state === CameraState.Live, 15_000);
    expect(cam.status().input.codec).toBe('H264');
    await waitFor('a keyframe at the SFU', () => sfu.frames(cam.ssrc, 'H264').some((f) => f.key));
    expect([...sfu.countByPt.keys()]).toEqual([INGEST_PAYLOAD_TYPE.H264]);
    // Two processes: the camera tool and the ffmpeg that packetizes its output.
    expect(cam.pids).toHaveLength(2);

    const argv = recordedArgv(bin);
    expect(argv[0]).toBe('rpicam-vid');
    expect(arg(argv, '--width')).toBe('320');
    expect(arg(argv, '--height')).toBe('240');
    expect(arg(argv, '--framerate')).toBe('12');
    expect(arg(argv, '--intra')).toBe('6');
    expect(arg(argv, '--bitrate')).toBe('400000');
    expect(arg(argv, '--codec')).toBe('h264');
    expect(arg(argv, '--output')).toBe('-');
    expect(argv).toContain('--inline');
    expect(argv).toContain('--hflip');
    // The output goes last, after the extra arguments.
    expect(argv.slice(-2)).toEqual(['--output', '-']);
  });

  test('falls back to libcamera-vid when rpicam-vid is not on PATH', async () => {
    const bin = binWith('libcamera-vid');
    expect(findExecutable('rpicam-vid')).toBeNull();
    const { sfu, node } = await setup();
    const cam = await node.addCamera(cameraConfig({ id: 'old-pi', source: { kind: 'rpicam', width: 320, height: 240, fps: 10 } }), sfu.address);
    await waitFor(() => `the camera to be live (${cam.state}: ${cam.status().lastError ?? ''})`, () => cam.state === CameraState.Live, 15_000);
    expect(recordedArgv(bin)[0]).toBe('libcamera-vid');
  });

  test('with neither executable the camera stays reconnecting and says what to install', async () => {
    binWith(null);
    for (const c of RPICAM_COMMANDS) expect(findExecutable(c)).toBeNull();
    const { sfu, node } = await setup();
    const cam = await node.addCamera(cameraConfig({ id: 'no-pi', source: { kind: 'rpicam' } }), sfu.address);

    const err = await waitFor('the camera to report the missing executable', () => cam.status().lastError, 10_000);
    expect(cam.state).toBe(CameraState.Reconnecting);
    expect(err).toContain('rpicam-vid');
    expect(err).toContain('libcamera-vid');
    expect(err).toMatch(/apt-get install rpicam-apps/);
    // It keeps retrying (a later install is picked up) and keeps saying why.
    await waitFor('a few retries', () => cam.inputStats().reconnects >= 3, 10_000);
    expect(cam.state).toBe(CameraState.Reconnecting);
    expect(cam.status().lastError).toBe(err);
    expect(cam.pids).toEqual([]);
    expect(sfu.total).toBe(0);
  });

  test('a tool installed while the camera waits is picked up at the next retry', async () => {
    const bin = binWith(null);
    const { sfu, node } = await setup();
    const cam = await node.addCamera(cameraConfig({ id: 'late-pi', source: { kind: 'rpicam', width: 320, height: 240, fps: 10 } }), sfu.address);
    await waitFor('the missing executable to be reported', () => cam.status().lastError?.includes('rpicam-vid'));
    writeFileSync(join(bin, 'rpicam-vid'), STAND_IN);
    chmodSync(join(bin, 'rpicam-vid'), 0o755);
    await waitFor(() => `the camera to be live (${cam.state}: ${cam.status().lastError ?? ''})`, () => cam.state === CameraState.Live, 15_000);
    expect(existsSync(join(bin, 'argv.txt'))).toBe(true);
  });

  test('a 2 fps camera goes live within the stall timeout', async () => {
    // Regression: ffmpeg probed raw H.264 with its defaults (up to 5 s of stream), so at low frame rates
    // the first packet came after the stall timeout and the camera was restarted forever.
    binWith('rpicam-vid');
    const { sfu, node } = await setup(5000);
    const cam = await node.addCamera(cameraConfig({ id: 'slow-pi', source: { kind: 'rpicam', width: 320, height: 240, fps: 2 } }), sfu.address);
    await waitFor(() => `the camera to be live (${cam.state}: ${cam.status().lastError ?? ''})`, () => cam.state === CameraState.Live, 15_000);
    expect(cam.inputStats().reconnects).toBe(0);
  });
});
