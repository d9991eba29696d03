/**
 * The storage worker: a child process that does every file operation on the storage (the NAS), so that
 * a hung mount (NFS or SMB that stopped answering, a FUSE daemon that froze) blocks this process, never
 * the recorder. The recorder gives each request a deadline; past it, it kills this process, marks the
 * storage unavailable and starts a fresh worker when it next needs one.
 *
 * Requests arrive over IPC as `{ id, op, ...args }`; answers are `{ id, ok: true, result }` or
 * `{ id, ok: false, error: { code, message } }`.
 */
import { constants } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, stat, statfs, unlink } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IDENTITY_FILE, type ProbeResult, type StorageIdentity, type WorkerRequest } from './storageProtocol.js';
import { hashFile } from './hash.js';

function inside(root: string, rel: string): string {
  const abs = resolve(root, rel);
  const r = relative(resolve(root), abs);
  if (r.startsWith('..') || r.startsWith(sep) || r === '') throw Object.assign(new Error(`path ${rel} is outside the storage`), { code: 'EINVAL' });
  return abs;
}


async function syncDir(path: string): Promise<void> {
  const fh = await open(path, constants.O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Before every write: the storage is still the one checked (its identity file is there, and with
 * `requireMount` it is still a mount point). A share unmounted since the last check is an empty local
 * directory, and nothing may be written into it.
 */
async function assertMounted(root: string, requireMount: boolean): Promise<void> {
  const abs = resolve(root);
  try {
    await stat(join(abs, IDENTITY_FILE));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw Object.assign(new Error(`${abs} has no identity file now: the share is not mounted`), { code: 'ENOTMOUNTED' });
    throw e;
  }
  if (requireMount) {
    const [self, parent] = await Promise.all([stat(abs), stat(dirname(abs))]);
    if (self.dev === parent.dev && self.ino !== parent.ino) throw Object.assign(new Error(`${abs} is not a mount point now`), { code: 'ENOTMOUNTED' });
  }
}

/** Writes `data` to `rel` atomically (temp file, fsync, rename, fsync of the directory), reads it back and compares. */
async function writeVerified(root: string, rel: string, data: Buffer, sha256: string): Promise<{ bytes: number }> {
  const dest = inside(root, rel);
  await mkdir(dirname(dest), { recursive: true });
  const tmp = `${dest}.part`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, dest);
  await syncDir(dirname(dest));
  const back = await hashFile(dest);
  if (back.sha256 !== sha256 || back.bytes !== data.length) {
    await unlink(dest).catch(() => {});
    throw Object.assign(new Error(`read back ${back.bytes} bytes with SHA-256 ${back.sha256}, wrote ${data.length} with ${sha256}`), { code: 'EVERIFY' });
  }
  return { bytes: back.bytes };
}

async function handle(m: WorkerRequest): Promise<unknown> {
  switch (m.op) {
    case 'probe': {
      const root = resolve(m.root);
      const st = await stat(root).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return null;
        throw e;
      });
      const out: ProbeResult = { exists: st !== null, isMount: false, entries: 0, identity: null, freeBytes: 0, totalBytes: 0, writable: false, writeError: null };
      if (!st) return out;
      const parent = await stat(dirname(root));
      out.isMount = parent.dev !== st.dev || parent.ino === st.ino;
      const names = await readdir(root);
      out.entries = names.filter((n) => n !== IDENTITY_FILE).length;
      try {
        out.identity = JSON.parse(await readFile(join(root, IDENTITY_FILE), 'utf8')) as StorageIdentity;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      const fs = await statfs(root);
      out.freeBytes = fs.bavail * fs.bsize;
      out.totalBytes = fs.blocks * fs.bsize;
      if (m.requireMount && !out.isMount) return out;
      if (!out.identity) return out;
      try {
        const probe = join(root, '.cctv-probe');
        const fh = await open(probe, 'w');
        try {
          await fh.writeFile(String(Date.now()));
          await fh.sync();
        } finally {
          await fh.close();
        }
        await readFile(probe);
        await unlink(probe);
        out.writable = true;
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        out.writeError = { code: err.code ?? 'EIO', message: err.message };
      }
      return out;
    }
    case 'init': {
      const root = resolve(m.root);
      const data = Buffer.from(JSON.stringify(m.identity, null, 2) + '\n');
      const fh = await open(join(root, IDENTITY_FILE), 'wx');
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await syncDir(root);
      return {};
    }
    case 'mkdir':
      await mkdir(resolve(m.root), { recursive: true });
      return {};
    case 'put': {
      const data = await readFile(m.src).catch((e: NodeJS.ErrnoException) => {
        throw Object.assign(new Error(`the spooled file ${m.src} cannot be read: ${e.message}`), { code: e.code === 'ENOENT' ? 'ESPOOL' : e.code });
      });
      await assertMounted(m.root, m.requireMount);
      return writeVerified(m.root, m.rel, data, m.sha256);
    }
    case 'putData':
      await assertMounted(m.root, m.requireMount);
      return writeVerified(m.root, m.rel, Buffer.from(m.data), m.sha256);
    case 'hash':
      return hashFile(inside(m.root, m.rel));
    case 'read':
      return { data: await readFile(inside(m.root, m.rel)) };
    case 'remove':
      await rm(inside(m.root, m.rel), { force: true });
      return {};
    case 'list': {
      // Every file under `rel`, as paths relative to the root.
      const base = inside(m.root, m.rel);
      const out: string[] = [];
      const walk = async (dir: string): Promise<void> => {
        let entries;
        try {
          entries = await readdir(dir, { withFileTypes: true });
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
          throw e;
        }
        for (const e of entries) {
          const p = join(dir, e.name);
          if (e.isDirectory()) await walk(p);
          else out.push(relative(resolve(m.root), p));
        }
      };
      await walk(base);
      return { files: out };
    }
  }
}

// Only as the worker process itself (never when imported): answer requests, and go when the recorder does.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url) && process.send) {
  process.on('message', (m: WorkerRequest) => {
    handle(m).then(
      (result) => process.send?.({ id: m.id, ok: true, result }),
      (e: NodeJS.ErrnoException) => process.send?.({ id: m.id, ok: false, error: { code: e.code ?? 'EIO', message: e.message } }),
    );
  });
  process.on('disconnect', () => process.exit(0));
}
