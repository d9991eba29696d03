// `npm test`: installs what the tests need, builds, type-checks the tests and runs every test.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, build, checkNode, ensureCommand, ensureGstRtsp, ensurePackages, ensureServices, fail, say } from './ensure.mjs';

checkNode();
ensurePackages();
ensureCommand('ffmpeg', ['ffmpeg'], 'the tests run real cameras');
ensureCommand('chromium', ['chromium'], 'the end-to-end tests drive a real browser');
ensureGstRtsp();
await ensureServices();
build();
say('type-checking the tests…');
if (spawnSync(join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.tests.json'], { stdio: 'inherit', cwd: ROOT }).status !== 0) fail('the tests do not type-check; see the errors above.');
const r = spawnSync(join(ROOT, 'node_modules', '.bin', 'vitest'), ['run', ...process.argv.slice(2)], { stdio: 'inherit', cwd: ROOT });
process.exit(r.status ?? 1);
