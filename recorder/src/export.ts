import { createHash, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnGuarded } from '@cctv/core';
import { linkOf, type Archive, type SegmentRow } from './archive.js';
import { verifyManifest, type Manifest } from './manifest.js';
import { hashFile } from './hash.js';

/** What comes with an exported clip: enough to check it offline against the site's public key. */
export interface ExportProof {
  v: 1;
  camera: string;
  from: string;
  to: string;
  createdAt: string;
  createdBy: string;
  /** The MP4: a lossless remux (`-c copy`) of the segments below, in order. */
  file: { name: string; sha256: string; bytes: number };
  segments: Array<{ id: number; run: string; seq: number; startMs: number; durationMs: number; bytes: number; sha256: string; initSha256: string; prevLink: string | null; link: string }>;
  /** The signed hourly manifests that cover these segments (those of hours that have ended). */
  manifests: Array<{ hourMs: number; body: string; signature: string }>;
  sitePublicKey: string;
  /** Ed25519 signature by the site's key over this object without `signature` (JSON, keys in this order). */
  signature: string;
}


function unsigned(p: Omit<ExportProof, 'signature'> | ExportProof): string {
  const { signature: _sig, ...rest } = p as ExportProof;
  return JSON.stringify(rest);
}

export interface ExportOptions {
  archive: Archive;
  camera: string;
  fromMs: number;
  toMs: number;
  /** Reads a segment's bytes (from the storage or the spool). */
  read: (row: SegmentRow) => Promise<Buffer>;
  ffmpeg: string;
  /** Where the MP4 goes. */
  out: string;
  createdBy: string;
  siteKey: { privateKey: string; publicKey: string };
}

/**
 * Exports a camera's recordings between two times as one MP4 (the segments remuxed without re-encoding,
 * `+faststart` so it plays from a web page) and its proof. Each segment is read and its SHA-256 checked
 * against its row before it goes in: a clip is never made from altered recordings.
 */
export async function exportClip(o: ExportOptions): Promise<ExportProof> {
  const rows = await o.archive.segments(o.camera, o.fromMs, o.toMs);
  if (rows.length === 0) throw Object.assign(new Error(`camera ${o.camera} has no recordings in that range`), { code: 'ENOENT' });
  const dir = await mkdtemp(join(tmpdir(), 'cctv-export-'));
  try {
    // One fragmented MP4 per recording run (each has its own timeline from 0, and its init section),
    // then all of them concatenated one after the other.
    const parts: string[] = [];
    let cur: { run: string; file: string; chunks: Buffer[] } | null = null;
    const flush = async () => {
      if (!cur) return;
      await writeFile(cur.file, Buffer.concat(cur.chunks));
      parts.push(cur.file);
    };
    for (const r of rows) {
      const data = await o.read(r);
      const h = createHash('sha256').update(data).digest('hex');
      if (h !== r.sha256) throw Object.assign(new Error(`segment ${r.id} does not match its recorded SHA-256: the archive was altered (run verify)`), { code: 'EVERIFY' });
      if (!cur || cur.run !== r.run) {
        await flush();
        const init = await o.archive.init(r.init_sha256);
        if (!init) throw new Error(`init section ${r.init_sha256} is missing`);
        cur = { run: r.run, file: join(dir, `part-${parts.length}.mp4`), chunks: [init] };
      }
      cur.chunks.push(data);
    }
    await flush();
    const list = join(dir, 'list.txt');
    await writeFile(list, parts.map((p) => `file '${p}'`).join('\n') + '\n');
    await new Promise<void>((resolve, reject) => {
      const child = spawnGuarded(o.ffmpeg, ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y', '-f', 'concat', '-safe', '0', '-i', list, '-c', 'copy', '-movflags', '+faststart', '-f', 'mp4', o.out], ['ignore', 'ignore', 'pipe']);
      let err = '';
      child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
      child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg could not make the MP4: ${err.trim().slice(-300)}`))));
      child.once('error', reject);
    });
    const file = await hashFile(o.out);
    const hours = [...new Set(rows.map((r) => Math.floor(r.start_ms / 3_600_000) * 3_600_000))];
    const manifests = (await o.archive.db.query<{ hour_ms: number; body: string; signature: string }>(
      'SELECT hour_ms, body, signature FROM archive_manifests WHERE camera_id = $1 AND hour_ms = ANY($2::bigint[]) ORDER BY hour_ms',
      [o.camera, hours],
    )).map((m) => ({ hourMs: Number(m.hour_ms), body: m.body, signature: m.signature }));
    const proof: Omit<ExportProof, 'signature'> = {
      v: 1,
      camera: o.camera,
      from: new Date(o.fromMs).toISOString(),
      to: new Date(o.toMs).toISOString(),
      createdAt: new Date().toISOString(),
      createdBy: o.createdBy,
      file: { name: o.out.split('/').pop()!, sha256: file.sha256, bytes: file.bytes },
      segments: rows.map((r) => ({ id: r.id, run: r.run, seq: r.seq, startMs: r.start_ms, durationMs: r.duration_ms, bytes: r.bytes, sha256: r.sha256, initSha256: r.init_sha256, prevLink: r.prev_link, link: r.link })),
      manifests,
      sitePublicKey: o.siteKey.publicKey,
    };
    const signature = sign(null, Buffer.from(unsigned(proof)), createPrivateKey(o.siteKey.privateKey)).toString('base64');
    return { ...proof, signature };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface ExportCheck {
  ok: boolean;
  /** SHA-256 of the site key the proof is signed with (compare it with the site's, shown on its dashboard). */
  siteKeyFingerprint: string;
  problems: string[];
  segments: number;
  /** Segments whose hour has a signed manifest that lists them. */
  inManifests: number;
}

/**
 * Checks an exported clip offline: the file's SHA-256, the proof's signature, every segment's chain
 * link, and the signed manifests that list them. `expectedSiteKey` (PEM), when given, must be the key
 * that signed.
 */
export async function verifyExport(mp4: string, proofText: string, expectedSiteKey?: string): Promise<ExportCheck> {
  const problems: string[] = [];
  let proof: ExportProof;
  try {
    proof = JSON.parse(proofText) as ExportProof;
  } catch {
    return { ok: false, siteKeyFingerprint: '', problems: ['the proof is not JSON'], segments: 0, inManifests: 0 };
  }
  const fp = createHash('sha256').update(createPublicKey(proof.sitePublicKey).export({ type: 'spki', format: 'der' })).digest('hex');
  if (expectedSiteKey && createPublicKey(expectedSiteKey).export({ type: 'spki', format: 'pem' }).toString() !== createPublicKey(proof.sitePublicKey).export({ type: 'spki', format: 'pem' }).toString()) {
    problems.push('the proof is signed with another key than the site key given');
  }
  let sigOk = false;
  try {
    sigOk = verify(null, Buffer.from(unsigned(proof)), createPublicKey(proof.sitePublicKey), Buffer.from(proof.signature, 'base64'));
  } catch {
    sigOk = false;
  }
  if (!sigOk) problems.push('the proof\'s signature is not valid: the proof was changed');
  const file = await hashFile(mp4).catch(() => null);
  if (!file) problems.push(`cannot read ${mp4}`);
  else if (file.sha256 !== proof.file.sha256 || file.bytes !== proof.file.bytes) problems.push(`the clip's SHA-256 is ${file.sha256}, the proof says ${proof.file.sha256}: the clip was changed`);
  for (const s of proof.segments) {
    if (linkOf(s.prevLink, { camera: proof.camera, run: s.run, seq: s.seq, startMs: s.startMs, durationMs: s.durationMs, bytes: s.bytes, sha256: s.sha256, initSha256: s.initSha256 }) !== s.link) {
      problems.push(`segment ${s.id}'s fields do not give its chain link`);
    }
  }
  let inManifests = 0;
  for (const m of proof.manifests) {
    if (!verifyManifest(m.body, m.signature, proof.sitePublicKey)) {
      problems.push(`the manifest of ${new Date(m.hourMs).toISOString()} has a bad signature`);
      continue;
    }
    const body = JSON.parse(m.body) as Manifest;
    const signed = new Map(body.segments.map((x) => [x.id, x]));
    for (const s of proof.segments) {
      if (Math.floor(s.startMs / 3_600_000) * 3_600_000 !== body.hourMs) continue;
      const x = signed.get(s.id);
      if (!x) problems.push(`segment ${s.id} is not in the signed manifest of its hour`);
      else if (x.sha256 !== s.sha256 || x.link !== s.link) problems.push(`segment ${s.id} differs from the signed manifest of its hour`);
      else inManifests++;
    }
  }
  return { ok: problems.length === 0, siteKeyFingerprint: fp, problems, segments: proof.segments.length, inManifests };
}

