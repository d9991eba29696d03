// `npm test`: installs what the tests need, builds, type-checks the tests and runs every test.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, build, checkNode, ensureCommand, ensureGstRtsp, ensurePackages, ensureServices, fail, say } from './ensure.mjs';

/**
 * `npm audit` at high or critical fails the run. When the registry's audit service cannot be reached
 * (a mirror without it, no network), that is said plainly and the run goes on: it is not a finding.
 */
function audit() {
  const r = spawnSync('npm', ['audit', '--audit-level=high', '--json'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  let report;
  try {
    report = JSON.parse(r.stdout);
  } catch {
    report = null;
  }
  const counts = report?.metadata?.vulnerabilities;
  if (!counts) {
    const why = report?.message ?? report?.error?.summary ?? (r.stderr ?? '').split('\n').find((l) => l.trim()) ?? 'no answer';
    say(`npm audit could not run (${why.trim()}); the dependency audit was NOT done in this run`);
    return;
  }
  const bad = (counts.high ?? 0) + (counts.critical ?? 0);
  if (bad > 0) fail(`npm audit found ${counts.critical ?? 0} critical and ${counts.high ?? 0} high vulnerabilities; run npm audit for the list.`);
  say(`npm audit: no high or critical vulnerabilities (${counts.moderate ?? 0} moderate, ${counts.low ?? 0} low)`);
}

checkNode();
ensurePackages();
ensureCommand('ffmpeg', ['ffmpeg'], 'the tests run real cameras');
ensureCommand('chromium', ['chromium'], 'the end-to-end tests drive a real browser');
ensureCommand('bindfs', ['bindfs'], 'the archive tests serve a NAS through FUSE and kill it');
ensureCommand('promtool', ['prometheus'], 'the monitoring test checks the alert rules and the dashboard\'s queries with Prometheus\' own parser');
ensureCommand('shellcheck', ['shellcheck'], 'the deployment test checks deploy/install/install.sh with it');
ensureCommand('systemd-analyze', ['systemd'], 'the deployment test checks the systemd units with it');
ensureCommand('curl', ['curl'], 'the documentation test runs the guides\' API examples with it');
ensureCommand('jq', ['jq'], 'the guides\' API examples read JSON with it');
ensureGstRtsp();
await ensureServices();
build();
audit();
say('type-checking the tests…');
if (spawnSync(join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.tests.json'], { stdio: 'inherit', cwd: ROOT }).status !== 0) fail('the tests do not type-check; see the errors above.');
const r = spawnSync(join(ROOT, 'node_modules', '.bin', 'vitest'), ['run', ...process.argv.slice(2)], { stdio: 'inherit', cwd: ROOT });
process.exit(r.status ?? 1);
