import { join } from 'node:path';
import { counter, type Database } from '@cctv/core';
import { rowLink, SEGMENT_COLUMNS, storagePath, type SegmentRow } from './archive.js';
import { verifyManifest, type Manifest } from './manifest.js';
import type { Storage } from './storage.js';
import { hashFile } from './hash.js';

const verifyFailures = counter('cctv_archive_verification_failures_total', 'Problems verify found in the archive, by kind.', ['kind']);

export type FindingKind =
  /** The file's bytes differ from the SHA-256 recorded for it. */
  | 'altered'
  /** The row is there, the file is not. */
  | 'missing'
  /** A file on the storage that no row accounts for. */
  | 'inserted'
  /** The row's fields no longer give its link: the row was edited. */
  | 'edited'
  /** The row does not link to the one before it: a row was removed or inserted between them. */
  | 'chain-broken'
  /** A signed manifest does not match the rows, or its signature is bad. */
  | 'manifest'
  /** Given up when the spool overflowed (reported, not tampering). */
  | 'dropped'
  /** The storage could not be read. */
  | 'unreadable';

export interface Finding {
  kind: FindingKind;
  camera: string;
  segment?: number;
  path?: string;
  detail: string;
}

export interface VerifyReport {
  ok: boolean;
  cameras: string[];
  segments: number;
  bytes: number;
  findings: Finding[];
  manifests: number;
  durationMs: number;
}

export interface VerifyOptions {
  db: Database;
  storage: Storage;
  spoolDir: string;
  /** Cameras to check; default every camera with recordings. */
  cameras?: string[];
  /** Re-hash every file (default true); false checks the rows and the chain only. */
  rehash?: boolean;
  /** The site's Ed25519 public key (hex): signed manifests are checked against it. */
  sitePublicKey?: string;
}


type ChainEntry = { id: number; prev_link: string | null; link: string; tomb: boolean };

/**
 * Re-hashes the archive and walks each camera's chain, naming every altered, missing or inserted
 * segment, every edited row and every break in the chain; checks the signed hourly manifests.
 */
export async function verifyArchive(o: VerifyOptions): Promise<VerifyReport> {
  const started = Date.now();
  const findings: Finding[] = [];
  const add = (f: Finding) => {
    findings.push(f);
    verifyFailures.inc({ kind: f.kind });
  };
  const cameras = o.cameras ?? (await o.db.query<{ camera_id: string }>(
    'SELECT camera_id FROM archive_heads UNION SELECT DISTINCT camera_id FROM segments ORDER BY 1',
  )).map((r) => r.camera_id);
  let segments = 0;
  let bytes = 0;
  let manifests = 0;
  for (const camera of cameras) {
    const paths = new Set<string>();
    let expected: string | null = null;
    let first = true;
    let lastId = 0;
    const byId = new Map<number, { sha256: string; link: string }>();
    for (;;) {
      // Segments and tombstones in id order: the chain as it was written.
      const page = await o.db.query<SegmentRow & { tomb: boolean }>(
        `SELECT * FROM (
           SELECT ${SEGMENT_COLUMNS}, false AS tomb FROM segments WHERE camera_id = $1 AND id > $2
           UNION ALL
           SELECT id, camera_id, '' AS run, 0 AS seq, start_ms, 0 AS duration_ms, 0 AS bytes, '' AS sha256, '' AS init_sha256, prev_link, link, 'deleted' AS state, NULL AS storage_id, '' AS path, '' AS recorder, true AS tomb
             FROM segment_tombstones WHERE camera_id = $1 AND id > $2
         ) x ORDER BY id LIMIT 2000`,
        [camera, lastId],
      );
      if (page.length === 0) break;
      for (const raw of page) {
        const r = { ...raw, id: Number(raw.id), seq: Number(raw.seq), start_ms: Number(raw.start_ms), duration_ms: Number(raw.duration_ms), bytes: Number(raw.bytes) };
        lastId = r.id;
        const e: ChainEntry = { id: r.id, prev_link: r.prev_link, link: r.link, tomb: r.tomb };
        if (first) {
          if (e.prev_link !== null) add({ kind: 'chain-broken', camera, segment: e.id, detail: `segment ${e.id} is the first but links to an earlier one that has no record: rows before it were removed` });
        } else if (e.prev_link !== expected) {
          add({ kind: 'chain-broken', camera, segment: e.id, detail: `segment ${e.id} does not link to the segment before it: a row was removed or inserted before it` });
        }
        first = false;
        expected = e.link;
        if (r.tomb) continue;
        segments++;
        byId.set(r.id, { sha256: r.sha256, link: r.link });
        if (rowLink(r) !== r.link) {
          add({ kind: 'edited', camera, segment: r.id, detail: `segment ${r.id}'s row was edited: its fields no longer give its link` });
        }
        if (r.state === 'dropped') {
          add({ kind: 'dropped', camera, segment: r.id, detail: `segment ${r.id} was given up when the spool was full` });
          continue;
        }
        if (r.state === 'stored') paths.add(r.path);
        // A copy to the storage that was cut short before its row was updated: the same copy is made
        // again when the recorder resumes; the file there is not foreign.
        if (r.state === 'spool') paths.add(storagePath(r.camera_id, r.start_ms, r.id));
        if (o.rehash === false) continue;
        try {
          const h = r.state === 'stored' ? await o.storage.hash(r.path) : await hashFile(join(o.spoolDir, r.path));
          bytes += h.bytes;
          if (h.sha256 !== r.sha256 || h.bytes !== r.bytes) add({ kind: 'altered', camera, segment: r.id, path: r.path, detail: `segment ${r.id} (${r.path}) has changed: SHA-256 ${h.sha256}, recorded ${r.sha256}` });
        } catch (error) {
          const code = (error as { code?: string }).code;
          if (code === 'ENOENT') add({ kind: 'missing', camera, segment: r.id, path: r.path, detail: `segment ${r.id} (${r.path}) is missing` });
          else add({ kind: 'unreadable', camera, segment: r.id, path: r.path, detail: `segment ${r.id} (${r.path}) cannot be read: ${(error as Error).message}` });
        }
      }
    }
    const head = await o.db.query<{ link: string }>('SELECT link FROM archive_heads WHERE camera_id = $1', [camera]);
    if (head[0] && expected !== null && head[0].link !== expected) {
      add({ kind: 'chain-broken', camera, detail: `the chain's recorded head is not its last segment: segments after ${lastId} were removed` });
    }
    // Files nobody recorded.
    if (o.rehash !== false) {
      try {
        for (const f of await o.storage.list(camera)) {
          if (f.endsWith('.m4s') && !paths.has(f)) add({ kind: 'inserted', camera, path: f, detail: `${f} is on the storage but in no row: it was put there` });
        }
      } catch (error) {
        add({ kind: 'unreadable', camera, detail: `cannot list the camera's files on the storage: ${(error as Error).message}` });
      }
    }
    // Signed hourly manifests against the rows.
    const ms = await o.db.query<{ hour_ms: number; body: string; signature: string }>('SELECT hour_ms, body, signature FROM archive_manifests WHERE camera_id = $1 ORDER BY hour_ms', [camera]);
    for (const m of ms) {
      manifests++;
      let body: Manifest;
      try {
        body = JSON.parse(m.body) as Manifest;
      } catch {
        add({ kind: 'manifest', camera, detail: `the manifest of hour ${new Date(Number(m.hour_ms)).toISOString()} is not JSON` });
        continue;
      }
      if (o.sitePublicKey && !verifyManifest(m.body, m.signature, o.sitePublicKey)) {
        add({ kind: 'manifest', camera, detail: `the manifest of hour ${new Date(Number(m.hour_ms)).toISOString()} has a bad signature` });
      }
      for (const s of body.segments) {
        const row = byId.get(s.id);
        if (!row) {
          const tomb = await o.db.query('SELECT 1 FROM segment_tombstones WHERE id = $1', [s.id]);
          if (tomb.length === 0) add({ kind: 'missing', camera, segment: s.id, detail: `segment ${s.id}, signed in the manifest of hour ${new Date(body.hourMs).toISOString()}, has no row and no deletion record` });
        } else if (row.sha256 !== s.sha256 || row.link !== s.link) {
          add({ kind: 'manifest', camera, segment: s.id, detail: `segment ${s.id}'s row differs from what the manifest of hour ${new Date(body.hourMs).toISOString()} signed` });
        }
      }
    }
  }
  const bad = findings.filter((f) => f.kind !== 'dropped');
  return { ok: bad.length === 0, cameras, segments, bytes, findings, manifests, durationMs: Date.now() - started };
}
