// Runs a TypeScript entry point (benchmarks, tools) with the workspaces built: `node scripts/run.mjs bench/latency/main.ts`.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, build, checkNode, ensurePackages } from './ensure.mjs';

checkNode();
ensurePackages();
build();
const [entry, ...args] = process.argv.slice(2);
const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, entry), ...args], { stdio: 'inherit', cwd: ROOT });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
