import { createHash } from 'node:crypto';
import {
  CameraSchema, Channel, Key, createLogger, isDatabaseUnavailable,
  type Bus, type CameraConfig, type Config, type Database, type NodeAgent,
} from '@cctv/core';
import { Recorder } from './recorder.js';
import type { RetentionResult } from './retention.js';

const log = createLogger('recorder:role');

export interface RecorderRoleOptions {
  config: Readonly<Config>;
  db: Database;
  bus: Bus;
  /** The process's cluster agent: the recorder's ports go out in its heartbeats. */
  agent: NodeAgent;
  /** The site the archive belongs to (in the storage's identity file). */
  site: string;
  onDeleted?: (r: RetentionResult) => void;
}

export interface RecorderRole {
  recorder: Recorder;
  close(): Promise<void>;
}

interface Published {
  epoch: number;
  placements: Array<{ camera: string; recorder?: string | null; detector?: string | null }>;
}

/** A site's short name in storage identity files: the start of its public key's SHA-256. */
export function siteIdOf(sitePublicKeyPem: string): string {
  return createHash('sha256').update(sitePublicKeyPem).digest('hex').slice(0, 16);
}

/** The cameras in the database (the source of truth), as configs; rows that no longer parse are skipped. */
export async function loadCameras(db: Database): Promise<CameraConfig[]> {
  const rows = await db.query<{ id: string; name: string; enabled: boolean; source: unknown; placement: unknown; recording: unknown; motion: unknown }>(
    'SELECT id, name, enabled, source, placement, recording, motion FROM cameras ORDER BY id',
  );
  const out: CameraConfig[] = [];
  for (const r of rows) {
    const json = (v: unknown) => (typeof v === 'string' ? JSON.parse(v) : v);
    const parsed = CameraSchema.safeParse({ id: r.id, name: r.name, enabled: r.enabled, source: json(r.source), placement: json(r.placement) ?? {}, recording: json(r.recording) ?? {}, motion: json(r.motion) ?? {} });
    if (parsed.success) out.push(parsed.data);
    else log.warn({ camera: r.id }, 'a camera in the database does not parse; skipping it');
  }
  return out;
}

/**
 * Follows the master's published placements and the cameras' configs: calls `apply` with the configs
 * of the cameras placed on this node in `field` (its recorder, its detector) whenever either changes,
 * and every 30 s (the database may have been away when a change came).
 */
export async function followPlacements(o: { bus: Bus; db: Database; node: string; field: 'recorder' | 'detector'; apply: (cameras: CameraConfig[]) => Promise<void> }): Promise<{ close(): Promise<void> }> {
  let published: Published | null = null;
  let applying: Promise<void> = Promise.resolve();
  let closed = false;
  const apply = () => {
    applying = applying.then(async () => {
      if (closed || !published) return;
      const mine = new Set(published.placements.filter((p) => p[o.field] === o.node).map((p) => p.camera));
      try {
        await o.apply((await loadCameras(o.db)).filter((c) => mine.has(c.id)));
      } catch (error) {
        log.warn({ err: error, role: o.field }, isDatabaseUnavailable(error) ? 'cannot read the cameras while the database is away; keeping the current ones' : 'cannot apply the placements');
      }
    });
    return applying;
  };
  const take = (m: unknown) => {
    const p = m as Published;
    if (!p || !Array.isArray(p.placements) || typeof p.epoch !== 'number') return;
    if (published && p.epoch < published.epoch) return;
    published = p;
    void apply();
  };
  const unsubs = [
    await o.bus.subscribe(Channel.placements, take),
    // A camera changed (its recording or motion settings, say): read them again.
    await o.bus.subscribe(Channel.config, () => void apply()),
  ];
  const raw = await o.bus.get(Key.placements).catch(() => null);
  if (raw) take(JSON.parse(raw));
  const timer = setInterval(() => void apply(), 30_000);
  timer.unref();
  return {
    async close() {
      closed = true;
      clearInterval(timer);
      await Promise.allSettled(unsubs.map((u) => u()));
      await applying;
    },
  };
}

/**
 * Runs the recorder as a node of the cluster: it records the cameras the master placed on it (the
 * published placements), with their configs from the database, and reports in every heartbeat the UDP
 * port of each, to which the master subscribes the camera's SFU. When this node dies, the master
 * places its cameras on another recorder.
 */
export async function startRecorderRole(o: RecorderRoleOptions): Promise<RecorderRole> {
  const id = o.agent.id;
  const listenHost = o.config.recorder.listenHost;
  const recorder = new Recorder({
    config: o.config, db: o.db, id, site: o.site, listenHost,
    source: {
      passive: true,
      subscribe: () => Promise.reject(new Error('a passive source does not subscribe')),
      renew: async () => true,
      unsubscribe: async () => {},
    },
    ...(o.onDeleted ? { onDeleted: o.onDeleted } : {}),
  });
  await recorder.start();
  o.agent.contribute(() => ({ recorder: { host: listenHost, ports: recorder.ports(), recording: recorder.status().cameras.filter((c) => c.recording).map((c) => c.id) } }));
  const follow = await followPlacements({ bus: o.bus, db: o.db, node: id, field: 'recorder', apply: (cameras) => recorder.setCameras(cameras) });
  return {
    recorder,
    async close() {
      await follow.close();
      await recorder.close();
    },
  };
}
