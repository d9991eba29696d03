import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');

/** A TCP port free on 127.0.0.1 now. */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/**
 * The built server (`signaling/dist/cli.js`) in a process of its own: plain HTTP on 127.0.0.1, no demo
 * camera, its data in `dir`, the admin's password given; `env` on top. Resolves once it has
 * printed its dashboard URL.
 */
export async function startServer(dir: string, opts: { env?: Record<string, string>; adminPassword: string }): Promise<{ base: string; stop: () => Promise<void> }> {
  const port = await freePort();
  const p: ChildProcess = spawn(process.execPath, [join(ROOT, 'signaling', 'dist', 'cli.js')], {
    env: { ...process.env, CCTV_PORT: String(port), CCTV_HOST: '127.0.0.1', CCTV_DATA_DIR: dir, CCTV_LOG_LEVEL: 'warn', CCTV_HTTP__TLS__MODE: 'off', CCTV_DEMO_CAMERA: 'false', CCTV_ADMIN_PASSWORD: opts.adminPassword, ...opts.env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    p.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('Dashboard:')) resolve();
    });
    p.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  return {
    base: `http://127.0.0.1:${port}`,
    stop: () => new Promise<void>((r) => {
      p.once('exit', () => r());
      p.kill('SIGTERM');
    }),
  };
}
