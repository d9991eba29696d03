import { RANGE_JOIN_MS, type Archive, type SegmentRow } from './archive.js';

/** Segments further apart than this (ms) are separated by a discontinuity in a playlist. */
const GAP_MS = RANGE_JOIN_MS;

/**
 * A VOD playlist (RFC 8216, version 7: fMP4 with EXT-X-MAP) of the segments between `fromMs` and `toMs`.
 * Across a gap or a new recording run it says EXT-X-DISCONTINUITY (and names the run's init section); every segment carries its
 * EXT-X-PROGRAM-DATE-TIME so players show the wall clock. URIs are relative to the playlist's own URL:
 * `init/<sha256>.mp4` and `segments/<id>.m4s`, followed by `query` (e.g. a token) when given.
 */
export function vodPlaylist(rows: SegmentRow[], query = ''): string {
  const q = query ? `?${query}` : '';
  const target = Math.max(1, ...rows.map((r) => Math.ceil(r.duration_ms / 1000)));
  const out = ['#EXTM3U', '#EXT-X-VERSION:7', `#EXT-X-TARGETDURATION:${target}`, '#EXT-X-PLAYLIST-TYPE:VOD', '#EXT-X-MEDIA-SEQUENCE:0', '#EXT-X-INDEPENDENT-SEGMENTS'];
  let run: string | null = null;
  let prevEnd: number | null = null;
  for (const r of rows) {
    // Each run (one ffmpeg) has its own timeline from zero: a discontinuity, and its init section again.
    const newRun = r.run !== run;
    if (prevEnd !== null && (newRun || Math.abs(r.start_ms - prevEnd) > GAP_MS)) out.push('#EXT-X-DISCONTINUITY');
    if (newRun) {
      out.push(`#EXT-X-MAP:URI="init/${r.init_sha256}.mp4${q}"`);
      run = r.run;
    }
    out.push(`#EXT-X-PROGRAM-DATE-TIME:${new Date(r.start_ms).toISOString()}`);
    out.push(`#EXTINF:${(r.duration_ms / 1000).toFixed(3)},`);
    out.push(`segments/${r.id}.m4s${q}`);
    prevEnd = r.start_ms + r.duration_ms;
  }
  out.push('#EXT-X-ENDLIST', '');
  return out.join('\n');
}

export interface Timeline {
  camera: string;
  fromMs: number;
  toMs: number;
  /** Recorded ranges, clipped to the window. */
  recorded: Array<{ startMs: number; endMs: number }>;
  /** What is not recorded inside the window, with the reason when one was recorded (a failover, a camera offline). */
  gaps: Array<{ startMs: number; endMs: number; reason: string | null }>;
  recordedMs: number;
  bytes: number;
}

/**
 * A camera's timeline over a window: recorded ranges (from `recording_ranges`, a few rows per day, not
 * one per segment) and the gaps between them, with reasons from the cluster's gap records.
 */
export async function timeline(archive: Archive, camera: string, fromMs: number, toMs: number): Promise<Timeline> {
  const ranges = await archive.ranges(camera, fromMs, toMs);
  const reasons = await archive.db.query<{ start_ms: number; end_ms: number; reason: string }>(
    `SELECT (extract(epoch FROM start_at) * 1000)::int8 AS start_ms, (extract(epoch FROM end_at) * 1000)::int8 AS end_ms, reason
     FROM gaps WHERE camera_id = $1 AND end_at > to_timestamp($2 / 1000.0) AND start_at < to_timestamp($3 / 1000.0) ORDER BY start_at LIMIT 10000`,
    [camera, fromMs, toMs],
  );
  const recorded: Timeline['recorded'] = [];
  let bytes = 0;
  for (const r of ranges) {
    const s = Math.max(fromMs, r.startMs);
    const e = Math.min(toMs, r.endMs);
    if (e <= s) continue;
    bytes += r.bytes;
    const last = recorded[recorded.length - 1];
    if (last && s <= last.endMs) last.endMs = Math.max(last.endMs, e);
    else recorded.push({ startMs: s, endMs: e });
  }
  const gaps: Timeline['gaps'] = [];
  let cursor = fromMs;
  const now = Date.now();
  const end = Math.min(toMs, now);
  for (const r of [...recorded, { startMs: end, endMs: end }]) {
    if (r.startMs - cursor > GAP_MS) {
      const g = { startMs: cursor, endMs: r.startMs };
      const why = reasons.find((x) => Number(x.start_ms) < g.endMs && Number(x.end_ms) > g.startMs);
      gaps.push({ ...g, reason: why ? why.reason : null });
    }
    cursor = Math.max(cursor, r.endMs);
  }
  return { camera, fromMs, toMs, recorded, gaps, recordedMs: recorded.reduce((n, r) => n + r.endMs - r.startMs, 0), bytes };
}
