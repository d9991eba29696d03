// `npm start`: everything on this machine with embedded defaults (no Redis or Postgres server needed).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, build, checkNode, ensureCommand, ensurePackages } from './ensure.mjs';

checkNode();
ensurePackages();
ensureCommand('ffmpeg', ['ffmpeg'], 'it runs the cameras');
build();
const child = spawn(process.execPath, [join(ROOT, 'signaling', 'dist', 'cli.js'), ...process.argv.slice(2)], { stdio: 'inherit' });
// The server handles SIGINT/SIGTERM itself and stops its cameras; pass them on and wait.
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
