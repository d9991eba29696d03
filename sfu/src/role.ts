import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidStateError, ValidationError, createLogger, type Config, type NodeAgent, type RoomReport } from '@cctv/core';
import { Sfu } from './sfu.js';

const log = createLogger('sfu:role');

export interface SfuRoleOptions {
  config: Readonly<Config>;
  dataDir: string;
  /** The process's cluster agent (started by the caller once every role is in). */
  agent: NodeAgent;
  /** Close viewers that sent nothing for this long, ms (tests shorten it). */
  viewerIdleTimeoutMs?: number;
}

/** The SFU role of a process. */
export interface SfuRole {
  sfu: Sfu;
  close(): Promise<void>;
}

/**
 * Runs the SFU as a node of the cluster: opens and closes rooms as the master asks (keeping each room's
 * port across restarts, so camera-nodes still running on their saved assignment keep reaching it),
 * answers WHEP offers relayed by any signaling instance, and reports its rooms in every heartbeat.
 */
export async function startSfuRole(o: SfuRoleOptions): Promise<SfuRole> {
  const sfu = new Sfu({ settings: o.config.sfu, dataDir: o.dataDir, ...(o.viewerIdleTimeoutMs ? { viewerIdleTimeoutMs: o.viewerIdleTimeoutMs } : {}) });
  await sfu.initialize();
  const portsFile = join(o.dataDir, 'sfu-ports.json');
  let ports: Record<string, number> = {};
  try {
    ports = JSON.parse(readFileSync(portsFile, 'utf8')) as Record<string, number>;
  } catch {
    ports = {};
  }
  const savePorts = () => {
    try {
      mkdirSync(o.dataDir, { recursive: true });
      const now = Object.fromEntries(sfu.rooms().map((r) => [r.cameraId, r.ingestPort]));
      // A camera that comes back later gets its old port again when it is free.
      ports = { ...ports, ...now };
      writeFileSync(portsFile + '.tmp', JSON.stringify(now));
      renameSync(portsFile + '.tmp', portsFile);
    } catch (error) {
      log.warn({ err: error }, 'could not save the room ports');
    }
  };
  // Room changes are applied one at a time, in order.
  let chain: Promise<unknown> = Promise.resolve();
  const applyRooms = (cameras: string[]): Promise<Record<string, number>> => {
    const next = chain.then(async () => {
      const want = new Set(cameras);
      for (const r of sfu.rooms()) if (!want.has(r.cameraId)) await sfu.closeRoom(r.cameraId);
      for (const c of want) if (!sfu.hasRoom(c)) await sfu.createRoom(c, ports[c] ?? 0);
      savePorts();
      return Object.fromEntries(sfu.rooms().map((r) => [r.cameraId, r.ingestPort]));
    });
    chain = next.catch(() => {});
    return next;
  };

  const { agent } = o;
  let bytes = { total: 0, at: Date.now() };
  agent.contribute(() => {
    const total = sfu.rooms().reduce((n, r) => n + r.ingestCounters.bytes, 0);
    const now = Date.now();
    const ingressBps = total >= bytes.total && now > bytes.at ? ((total - bytes.total) * 8000) / (now - bytes.at) : 0;
    bytes = { total, at: now };
    const rooms: RoomReport[] = sfu.rooms().map((r) => ({
      camera: r.cameraId,
      ingestPort: r.ingestPort,
      codec: r.codec,
      viewers: r.viewerCount,
      lastPacketAt: r.ingestCounters.lastPacketAt ?? 0,
      streamStartAt: r.ingestCounters.streamStartAt ?? 0,
    }));
    return { ingestHost: sfu.ingestHost, rooms, ingressBps: Math.round(ingressBps), viewers: rooms.reduce((n, r) => n + r.viewers, 0) };
  });
  agent.handle('sfu.rooms', async (p) => {
    const { epoch, version, cameras } = p as { epoch: number; version: number; cameras: string[] };
    if (!Array.isArray(cameras) || !cameras.every((c) => typeof c === 'string')) throw new ValidationError('cameras', 'must be a list of camera ids');
    // Fencing: a master that lost its lease may still be talking; a newer one has spoken.
    if (!agent.admit(epoch)) throw new InvalidStateError(`epoch ${epoch} is older than the newest master's (${agent.epoch})`);
    const ports = await applyRooms(cameras);
    agent.appliedVersion = version;
    return { ports };
  });
  // The rooms of the last run, on their ports: camera-nodes streaming on their saved assignment find
  // them again, with or without a master.
  await applyRooms(Object.keys(ports));
  agent.handle('sfu.whep.offer', async (p) => {
    const { camera, sdp } = p as { camera: string; sdp: string };
    const a = await sfu.createViewer(camera, sdp);
    return { viewer: a.viewer.id, sdp: a.sdp };
  });
  // Plain-RTP subscriptions (recorders, detectors): subscribe, renew within the lease, unsubscribe.
  agent.handle('sfu.subscribe', async (p) => {
    const { camera, host, port, leaseMs } = p as { camera: string; host: string; port: number; leaseMs?: number };
    if (typeof host !== 'string' || host.length === 0) throw new ValidationError('host', 'must be an address');
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ValidationError('port', 'must be a UDP port (1–65535)');
    const lease = leaseMs === undefined ? 10_000 : leaseMs;
    if (!Number.isInteger(lease) || lease < 1000 || lease > 120_000) throw new ValidationError('leaseMs', 'must be 1000–120000');
    return sfu.room(camera).subscribe({ host, port, leaseMs: lease });
  });
  agent.handle('sfu.renew', async (p) => {
    const { camera, id } = p as { camera: string; id: string };
    return { ok: sfu.hasRoom(camera) && sfu.room(camera).renewSubscription(id) };
  });
  agent.handle('sfu.unsubscribe', async (p) => {
    const { camera, id } = p as { camera: string; id: string };
    if (sfu.hasRoom(camera)) sfu.room(camera).unsubscribe(id);
    return {};
  });
  // WHIP publishers (RFC 9725) of cameras whose room is here.
  agent.handle('sfu.whip.offer', async (p) => {
    const { camera, sdp } = p as { camera: string; sdp: string };
    const a = await sfu.createPublisher(camera, sdp);
    return { publisher: a.publisher.id, sdp: a.sdp };
  });
  agent.handle('sfu.whip.delete', async (p) => {
    const { camera, publisher } = p as { camera: string; publisher: string };
    await sfu.deletePublisher(camera, publisher);
    return {};
  });
  agent.handle('sfu.whep.delete', async (p) => {
    const { camera, viewer } = p as { camera: string; viewer: string };
    await sfu.deleteViewer(camera, viewer);
    return {};
  });
  return {
    sfu,
    async close() {
      await chain.catch(() => {});
      await sfu.close();
    },
  };
}
