import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnGuarded } from '@cctv/core';
import type { Archive, SegmentRow } from './archive.js';

export const THUMBNAIL_WIDTH = 160;

/**
 * The thumbnail of one minute of a camera: the first frame (a keyframe: segments start with one) of the
 * first segment that minute, 160 pixels wide, as a JPEG. Made when first asked for, then kept in
 * `cacheDir`. Null when nothing was recorded in that minute.
 */
export async function minuteThumbnail(o: {
  archive: Archive;
  camera: string;
  minuteMs: number;
  cacheDir: string;
  read: (row: SegmentRow) => Promise<Buffer>;
  ffmpeg: string;
}): Promise<Buffer | null> {
  const minute = Math.floor(o.minuteMs / 60_000) * 60_000;
  const file = join(o.cacheDir, o.camera, `${minute}.jpg`);
  try {
    return await readFile(file);
  } catch {
    // Not made yet.
  }
  const rows = await o.archive.segments(o.camera, minute, minute + 60_000, 1);
  const row = rows[0];
  if (!row) return null;
  const init = await o.archive.init(row.init_sha256);
  if (!init) return null;
  const media = await o.read(row);
  const jpeg = await new Promise<Buffer>((resolve, reject) => {
    const child = spawnGuarded(o.ffmpeg, [
      '-hide_banner', '-loglevel', 'error', '-nostdin', '-f', 'mp4', '-i', 'pipe:0',
      '-frames:v', '1', '-vf', `scale=${THUMBNAIL_WIDTH}:-2`, '-q:v', '6', '-f', 'image2', '-c:v', 'mjpeg', 'pipe:1',
    ], ['pipe', 'pipe', 'pipe']);
    const out: Buffer[] = [];
    let err = '';
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.stdin!.on('error', () => {});
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 && out.length ? resolve(Buffer.concat(out)) : reject(new Error(`ffmpeg could not make a thumbnail: ${err.trim().slice(-200)}`))));
    child.stdin!.end(Buffer.concat([init, media]));
  });
  await mkdir(join(o.cacheDir, o.camera), { recursive: true });
  await writeFile(`${file}.tmp`, jpeg);
  await rename(`${file}.tmp`, file);
  return jpeg;
}
