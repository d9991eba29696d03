import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { createLogger, type Database } from '@cctv/core';

const log = createLogger('recorder:manifest');

export const HOUR_MS = 3_600_000;

/** One camera's hour of segments as signed: each segment's id, SHA-256 and chain link. */
export interface Manifest {
  v: 1;
  camera: string;
  hourMs: number;
  segments: Array<{ id: number; startMs: number; sha256: string; link: string }>;
  /** The last link of the hour: everything before it in the chain is bound by it. */
  head: string | null;
  signedAt: number;
}

export function signManifest(body: string, privateKeyPem: string): string {
  return sign(null, Buffer.from(body), createPrivateKey(privateKeyPem)).toString('base64');
}

export function verifyManifest(body: string, signature: string, publicKeyPem: string): boolean {
  try {
    return verify(null, Buffer.from(body), createPublicKey(publicKeyPem), Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

/**
 * Signs the manifest of every camera-hour that has ended (with a minute's grace for the last segments
 * to be entered) and has none yet. Run by the master, which holds the site's key.
 */
export async function signPendingManifests(db: Database, privateKeyPem: string, now = Date.now()): Promise<number> {
  const before = Math.floor((now - 60_000) / HOUR_MS) * HOUR_MS;
  const hours = await db.query<{ camera_id: string; hour_ms: number }>(
    `SELECT DISTINCT s.camera_id, (s.start_ms / ${HOUR_MS}) * ${HOUR_MS} AS hour_ms FROM segments s
     WHERE s.start_ms < $1 AND s.start_ms >= $1 - ${48 * HOUR_MS}
       AND NOT EXISTS (SELECT 1 FROM archive_manifests m WHERE m.camera_id = s.camera_id AND m.hour_ms = (s.start_ms / ${HOUR_MS}) * ${HOUR_MS})
     ORDER BY 2 LIMIT 1000`,
    [before],
  );
  let n = 0;
  for (const h of hours) {
    const hourMs = Number(h.hour_ms);
    const rows = await db.query<{ id: number; start_ms: number; sha256: string; link: string }>(
      `SELECT id, start_ms, sha256, link FROM segments WHERE camera_id = $1 AND start_ms >= $2 AND start_ms < $3 AND state IN ('spool', 'stored') ORDER BY id`,
      [h.camera_id, hourMs, hourMs + HOUR_MS],
    );
    const m: Manifest = {
      v: 1,
      camera: h.camera_id,
      hourMs,
      segments: rows.map((r) => ({ id: Number(r.id), startMs: Number(r.start_ms), sha256: r.sha256, link: r.link })),
      head: rows.length ? rows[rows.length - 1]!.link : null,
      signedAt: now,
    };
    const body = JSON.stringify(m);
    await db.query('INSERT INTO archive_manifests (camera_id, hour_ms, body, signature) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING', [h.camera_id, hourMs, body, signManifest(body, privateKeyPem)]);
    n++;
  }
  if (n) log.info({ manifests: n }, 'signed hourly archive manifests');
  return n;
}
