import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { findExecutable } from '@cctv/core';

// The deployment kit: deploy/install/install.sh run for real into a scratch root (--root, no systemctl,
// no npm ci: the registry is not the point here), the systemd units parsed and checked by systemd's own
// verifier when it is installed, the installer checked by shellcheck when it is installed, and the
// Dockerfile's role targets read statically (no image can be built without pulling the base image).
const ROOT = resolve(import.meta.dirname, '..');
const INSTALL = join(ROOT, 'deploy/install/install.sh');
const UNITS = join(ROOT, 'deploy/systemd');

const scratch: string[] = [];
function tempRoot(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cctv-deploy-'));
  scratch.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

function install(args: string[]) {
  const r = spawnSync('sh', [INSTALL, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, output: r.stdout + r.stderr };
}

/** The active assignments of an environment file (comments and blank lines left out). */
function readEnv(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!.replace(/^'(.*)'$/, '$1');
  }
  return out;
}

const mode = (path: string) => statSync(path).mode & 0o777;

// ---- The installer ----------------------------------------------------------------------------------

describe('install.sh', () => {
  it('needs a built release (signaling/dist/cli.js) to install', () => {
    expect(existsSync(join(ROOT, 'signaling/dist/cli.js')), 'build first: npm run build (npm test does)').toBe(true);
  });

  it('installs a server under --root: the release, the minimum cctv.env (0640), the units and the cctv command', () => {
    const root = tempRoot();
    const r = install([
      'server', '--root', root, '--no-systemctl', '--no-npm', '--node-id', 'server1',
      '--redis', 'redis://:redispw@127.0.0.1:6379', '--database', 'postgres://cctv:dbpw@127.0.0.1:5432/cctv',
      '--secret', 'a-secret-of-enough-length', '--nas-dir', '/mnt/nas/cctv', '--admin-password', 'an admin password',
    ]);
    expect(r.status, r.output).toBe(0);
    if (process.getuid?.() === 0) expect(r.stdout).toMatch(/installing under --root .*: the cctv user is not created/);
    else expect(r.stdout).toMatch(/not running as root: the cctv user is not created/);
    expect(r.stdout).toContain('systemctl not called');

    // The release, copied without dependencies or local data.
    expect(existsSync(join(root, 'opt/cctv/signaling/dist/cli.js'))).toBe(true);
    expect(existsSync(join(root, 'opt/cctv/deploy/systemd/cctv.service'))).toBe(true);
    expect(existsSync(join(root, 'opt/cctv/node_modules'))).toBe(false);
    expect(existsSync(join(root, 'opt/cctv/.git'))).toBe(false);

    const envFile = join(root, 'etc/cctv/cctv.env');
    expect(mode(envFile)).toBe(0o640);
    expect(mode(join(root, 'etc/cctv'))).toBe(0o750);
    expect(mode(join(root, 'var/lib/cctv'))).toBe(0o750);
    expect(statSync(join(root, 'var/lib/cctv/backups')).isDirectory()).toBe(true);
    expect(readEnv(envFile)).toEqual({
      CCTV_ROLES: 'signaling,sfu,camera-node,recorder,detector',
      CCTV_NODE_ID: 'server1',
      CCTV_DATA_DIR: '/var/lib/cctv',
      REDIS_URL: 'redis://:redispw@127.0.0.1:6379',
      DATABASE_URL: 'postgres://cctv:dbpw@127.0.0.1:5432/cctv',
      CCTV_ENROLL_SECRET: 'a-secret-of-enough-length',
      CCTV_ADMIN_PASSWORD: 'an admin password',
      CCTV_SFU__INGEST__BIND_HOST: '0.0.0.0',
      CCTV_NAS_DIR: '/mnt/nas/cctv',
    });
    // A value with a space is quoted so that both systemd and sh read it whole.
    expect(readFileSync(envFile, 'utf8')).toContain("CCTV_ADMIN_PASSWORD='an admin password'");

    const units = join(root, 'etc/systemd/system');
    for (const unit of ['cctv.service', 'cctv-backup.service', 'cctv-backup.timer']) {
      expect(readFileSync(join(units, unit), 'utf8')).toBe(readFileSync(join(UNITS, unit), 'utf8'));
      expect(mode(join(units, unit))).toBe(0o644);
    }
    expect(existsSync(join(units, 'cctv-node.service'))).toBe(false);
    expect(readFileSync(join(units, 'cctv.service.d/install.conf'), 'utf8')).toContain('ReadWritePaths=-/mnt/nas/cctv');

    const cctv = join(root, 'usr/local/bin/cctv');
    expect(mode(cctv)).toBe(0o755);
    const wrapper = readFileSync(cctv, 'utf8');
    expect(wrapper).toContain('. /etc/cctv/cctv.env');
    expect(wrapper).toContain('/opt/cctv/signaling/dist/cli.js "$@"');
    expect(wrapper).toContain('runuser -u cctv');
  });

  it('installs a camera-node under --root with the enrolment settings', () => {
    const root = tempRoot();
    const fingerprint = Array.from({ length: 32 }, (_, i) => (i * 7 + 16).toString(16).toUpperCase().padStart(2, '0')).join(':');
    const r = install([
      'node', '--roles', 'camera-node', '--master', 'https://example.invalid:8080', '--token', 'cctv_enroll_test',
      '--fingerprint', fingerprint, '--node-id', 'pi-garage', '--root', root, '--no-systemctl', '--no-npm',
    ]);
    expect(r.status, r.output).toBe(0);
    const envFile = join(root, 'etc/cctv/cctv.env');
    expect(mode(envFile)).toBe(0o640);
    expect(readEnv(envFile)).toEqual({
      CCTV_ROLES: 'camera-node',
      CCTV_NODE_ID: 'pi-garage',
      CCTV_DATA_DIR: '/var/lib/cctv',
      CCTV_MASTER_URL: 'https://example.invalid:8080',
      CCTV_ENROLL_TOKEN: 'cctv_enroll_test',
      CCTV_CLUSTER__MASTER_FINGERPRINT: fingerprint,
    });
    // Without --redis the node cannot run: the line is there to fill in, and it is said.
    expect(readFileSync(envFile, 'utf8')).toContain('#REDIS_URL=');
    expect(r.stderr).toContain('no REDIS_URL');
    // What to do next: enrolment at the first start, then the token goes.
    expect(r.stdout).toContain('enrols with https://example.invalid:8080 at its first start');
    expect(r.stdout).toContain("sed -i '/^CCTV_ENROLL_TOKEN=/d");

    const units = join(root, 'etc/systemd/system');
    expect(readdirSync(units).sort()).toEqual(['cctv-node.service']);
    expect(readFileSync(join(units, 'cctv-node.service'), 'utf8')).toBe(readFileSync(join(UNITS, 'cctv-node.service'), 'utf8'));
  });

  it('writes what an SFU, recorder and detector node needs', () => {
    const root = tempRoot();
    const r = install([
      'node', '--roles', 'sfu,recorder,detector', '--master', 'https://192.168.1.10:8080', '--secret', 'a-secret-of-enough-length',
      '--redis', 'redis://:pw@192.168.1.10:6379', '--database', 'postgres://cctv:pw@192.168.1.10:5432/cctv',
      '--nas-dir', '/mnt/nas/cctv', '--listen-host', '192.168.1.20', '--node-id', 'rec1', '--root', root, '--no-systemctl', '--no-npm',
    ]);
    expect(r.status, r.output).toBe(0);
    expect(readEnv(join(root, 'etc/cctv/cctv.env'))).toMatchObject({
      CCTV_ROLES: 'sfu,recorder,detector',
      REDIS_URL: 'redis://:pw@192.168.1.10:6379',
      DATABASE_URL: 'postgres://cctv:pw@192.168.1.10:5432/cctv',
      CCTV_ENROLL_SECRET: 'a-secret-of-enough-length',
      CCTV_SFU__INGEST__BIND_HOST: '0.0.0.0',
      CCTV_NAS_DIR: '/mnt/nas/cctv',
      CCTV_RECORDER__LISTEN_HOST: '192.168.1.20',
      CCTV_DETECTOR__LISTEN_HOST: '192.168.1.20',
    });
    expect(r.stderr).not.toContain('no REDIS_URL');
  });

  it('keeps an existing cctv.env when run again, and replaces it only with --force', () => {
    const root = tempRoot();
    const args = ['node', '--master', 'https://example.invalid:8080', '--token', 'cctv_enroll_test', '--root', root, '--no-systemctl', '--no-npm'];
    expect(install(args).status).toBe(0);
    const envFile = join(root, 'etc/cctv/cctv.env');
    appendFileSync(envFile, 'REDIS_URL=redis://:edited-by-hand@server:6379\n');
    const edited = readFileSync(envFile, 'utf8');

    const again = install(args);
    expect(again.status, again.output).toBe(0);
    expect(again.stdout).toContain('exists: kept as it is (--force replaces it)');
    expect(readFileSync(envFile, 'utf8')).toBe(edited);
    expect(mode(envFile)).toBe(0o640);
    // The second run replaced the release and kept the one before it.
    expect(existsSync(join(root, 'opt/cctv/signaling/dist/cli.js'))).toBe(true);
    expect(existsSync(join(root, 'opt/cctv.previous/signaling/dist/cli.js'))).toBe(true);
    expect(existsSync(join(root, 'opt/cctv.new'))).toBe(false);

    // An upgrade: with cctv.env kept, a node needs no enrolment options again.
    const upgrade = install(['node', '--root', root, '--no-systemctl', '--no-npm']);
    expect(upgrade.status, upgrade.output).toBe(0);
    expect(readFileSync(envFile, 'utf8')).toBe(edited);

    const forced = install([...args, '--force']);
    expect(forced.status, forced.output).toBe(0);
    expect(readFileSync(envFile, 'utf8')).not.toContain('edited-by-hand');
    expect(readFileSync(`${envFile}.bak`, 'utf8')).toBe(edited);
    expect(mode(envFile)).toBe(0o640);
  });

  const BAD: Array<[what: string, args: string[], message: RegExp]> = [
    ['no mode', ['--no-systemctl'], /say what to install: 'server' or 'node'/],
    ['a node without --master', ['node', '--roles', 'camera-node', '--token', 'cctv_enroll_test'], /a node needs --master URL/],
    ['a node without a token or secret', ['node', '--master', 'https://example.invalid:8080'], /a node needs --token .* or --secret/],
    ['an unknown role', ['node', '--roles', 'camera-node,cameranode', '--master', 'https://example.invalid:8080', '--token', 'cctv_enroll_test'], /unknown role 'cameranode' in --roles/],
    ['a node with signaling', ['node', '--roles', 'signaling', '--master', 'https://example.invalid:8080', '--token', 'cctv_enroll_test'], /a node does not run the signaling role/],
    ['a server without signaling', ['server', '--roles', 'sfu'], /a server runs the signaling role/],
    ['a master that is not a URL', ['node', '--master', 'example.invalid:8080', '--token', 'cctv_enroll_test'], /--master 'example.invalid:8080' must be an http:\/\/ or https:\/\/ URL/],
    ['a malformed fingerprint', ['node', '--master', 'https://example.invalid:8080', '--token', 'cctv_enroll_test', '--fingerprint', 'AB:CD'], /--fingerprint must be .* 32 colon-separated hex bytes/],
    ['a short secret', ['server', '--secret', 'short'], /--secret must be 16 characters or more/],
    ['a bad node id', ['server', '--node-id', 'pi garage'], /--node-id 'pi garage' must be/],
    ['an unknown option', ['server', '--frobnicate'], /unknown argument '--frobnicate'/],
    ['an option without its value', ['node', '--master'], /option --master needs a value/],
    ['an option followed by another option', ['node', '--master', '--token', 'cctv_enroll_test'], /option --master needs a value \(got the option '--token'\)/],
  ];
  it.each(BAD)('refuses %s, naming the problem, and writes nothing', (_what, args, message) => {
    const root = tempRoot();
    const r = install(['--root', root, '--no-systemctl', '--no-npm', ...args]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(message);
    expect(readdirSync(root)).toEqual([]);
  });

  it('refuses to install into / without root', () => {
    // Run as an unprivileged user (nobody) when the tests run as root.
    const asRoot = process.getuid?.() === 0;
    const r = spawnSync('sh', [INSTALL, 'server', '--no-systemctl', '--no-npm'], { encoding: 'utf8', timeout: 60_000, ...(asRoot ? { uid: 65534, gid: 65534, cwd: '/' } : {}) });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('installing into / needs root');
  });

  // shellcheck is installed by npm test (Debian's package); without it this fails rather than passes unseen.
  it('passes shellcheck, and so does the cctv command it writes', () => {
    expect(findExecutable('shellcheck'), 'shellcheck is not installed (apt-get install shellcheck; npm test installs it)').toBeTruthy();
    const r = spawnSync('shellcheck', ['-s', 'sh', INSTALL], { encoding: 'utf8' });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const root = tempRoot();
    expect(install(['server', '--root', root, '--no-systemctl', '--no-npm']).status).toBe(0);
    const w = spawnSync('shellcheck', ['-s', 'sh', '-e', 'SC1091', join(root, 'usr/local/bin/cctv')], { encoding: 'utf8' });
    expect(w.status, w.stdout + w.stderr).toBe(0);
  });
});

// ---- The systemd units ------------------------------------------------------------------------------

type Unit = Record<string, Record<string, string[]>>;
/** A unit file as sections of keys, each with its values in order (a key may repeat). */
function parseUnit(text: string): Unit {
  const unit: Unit = {};
  let section: Record<string, string[]> | null = null;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s) {
      section = unit[s[1]!] ??= {};
      continue;
    }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (!kv || !section) throw new Error(`not a unit file line: ${raw}`);
    (section[kv[1]!] ??= []).push(kv[2]!);
  }
  return unit;
}
const unitFile = (name: string) => parseUnit(readFileSync(join(UNITS, name), 'utf8'));

describe('systemd units', () => {
  it.each(['cctv.service', 'cctv-node.service'])('%s runs cctv as the cctv user, restarts it, kills its ffmpeg with it, and is hardened', (name) => {
    const u = unitFile(name);
    const s = u.Service!;
    expect(s.EnvironmentFile).toEqual(['/etc/cctv/cctv.env']);
    expect(s.User).toEqual(['cctv']);
    expect(s.ExecStart).toEqual(['/usr/bin/node /opt/cctv/signaling/dist/cli.js start']);
    expect(s.Restart).toEqual(['always']);
    expect(s.KillMode).toEqual(['control-group']);
    expect(s.NoNewPrivileges).toEqual(['yes']);
    expect(s.ProtectSystem).toEqual(['strict']);
    expect(s.ReadWritePaths).toEqual(['/var/lib/cctv']);
    expect(s.PrivateTmp).toEqual(['yes']);
    expect(s.AmbientCapabilities).toEqual(['']);
    expect(s.CapabilityBoundingSet).toEqual(['']);
    expect(s.SupplementaryGroups).toEqual(['video']);
    // A Pi camera is a device, and V8 writes the code it compiles.
    expect(s.PrivateDevices).toBeUndefined();
    expect(s.MemoryDenyWriteExecute).toBeUndefined();
    expect(u.Unit!.After![0]).toContain('network-online.target');
    expect(u.Install!.WantedBy).toEqual(['multi-user.target']);
  });

  it('cctv-backup.timer starts cctv-backup.service nightly, which runs cctv backup into /var/lib/cctv/backups', () => {
    const timer = unitFile('cctv-backup.timer');
    expect(timer.Timer!.OnCalendar).toEqual(['*-*-* 03:15:00']);
    expect(timer.Timer!.Persistent).toEqual(['true']);
    expect(timer.Timer!.Unit).toEqual(['cctv-backup.service']);
    expect(timer.Install!.WantedBy).toEqual(['timers.target']);
    const s = unitFile('cctv-backup.service').Service!;
    expect(s.Type).toEqual(['oneshot']);
    expect(s.User).toEqual(['cctv']);
    expect(s.EnvironmentFile).toEqual(['/etc/cctv/cctv.env']);
    expect(s.ExecStart![0]).toMatch(/\/usr\/local\/bin\/cctv backup --output \/var\/lib\/cctv\/backups\/cctv-backup-/);
    expect(s.ReadWritePaths).toEqual(['/var/lib/cctv']);
  });

  // systemd-analyze is installed by npm test (Debian's systemd package).
  it('pass systemd-analyze verify', () => {
    expect(findExecutable('systemd-analyze'), 'systemd-analyze is not installed (apt-get install systemd; npm test installs it)').toBeTruthy();
    // Copied apart so that the timer finds its service beside it; systemd warns on stderr (exit status 0)
    // about unknown keys and bad values, so the warnings are what is checked.
    const dir = tempRoot();
    const names = ['cctv.service', 'cctv-node.service', 'cctv-backup.service', 'cctv-backup.timer'];
    for (const n of names) cpSync(join(UNITS, n), join(dir, n));
    const r = spawnSync('systemd-analyze', ['verify', ...names.map((n) => join(dir, n))], { encoding: 'utf8', cwd: dir });
    const problems = (r.stdout + r.stderr).split('\n').filter((l) => /unknown|ignoring|invalid|failed to parse|not executable|bad|missing/i.test(l));
    expect(problems).toEqual([]);
    expect(r.status, r.stderr).toBe(0);
  });
});

// ---- The Dockerfile ---------------------------------------------------------------------------------

interface Stage { name: string | null; from: string; lines: string[] }
function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const joined = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  for (const line of joined) {
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?$/i.exec(line);
    if (from) stages.push({ from: from[1]!, name: from[2] ?? null, lines: [] });
    else {
      if (!stages.length) throw new Error(`instruction before FROM: ${line}`);
      stages.at(-1)!.lines.push(line);
    }
  }
  return stages;
}
/** The ENV of a stage, with what it inherits from the stages it is built FROM. */
function stageEnv(stages: Stage[], stage: Stage): Record<string, string> {
  const parent = stages.find((s) => s.name === stage.from);
  const env = parent ? stageEnv(stages, parent) : {};
  for (const line of stage.lines.filter((l) => /^ENV\s/i.test(l))) {
    for (const pair of line.replace(/^ENV\s+/i, '').split(/\s+/)) {
      const [k, ...v] = pair.split('=');
      env[k!] = v.join('=');
    }
  }
  return env;
}

describe('Dockerfile', () => {
  const stages = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
  const stage = (name: string) => stages.find((s) => s.name === name)!;
  const lines = (name: string): string[] => {
    const s = stage(name);
    const parent = stages.find((p) => p.name === s.from);
    return [...(parent ? lines(parent.name!) : []), ...s.lines];
  };

  it('every FROM and COPY --from names an earlier stage or the Node.js base image', () => {
    const seen = new Set<string>();
    for (const s of stages) {
      if (!seen.has(s.from)) expect(s.from).toMatch(/^node:20(\.\d+)*-bookworm-slim$/);
      for (const l of s.lines) {
        const from = /--from=(\S+)/.exec(l);
        if (from) expect(seen.has(from[1]!), l).toBe(true);
      }
      if (s.name) {
        expect(seen.has(s.name), `stage ${s.name} twice`).toBe(false);
        seen.add(s.name);
      }
    }
  });

  it('the build stage installs every workspace', () => {
    const workspaces = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { workspaces: string[] }).workspaces;
    const build = stage('build').lines;
    for (const w of workspaces) expect(build, w).toContain(`COPY ${w}/package.json ${w}/`);
    expect(build).toContain('RUN npm ci --no-audit --no-fund');
    expect(build).toContain('RUN npm run build');
  });

  it.each([
    ['signaling', ['8080/tcp']],
    ['sfu', ['40000-40099/udp']],
    ['camera-node', []],
    ['recorder', []],
    ['detector', []],
  ])('the %s target runs that role from the shared build, with ffmpeg, and exposes what it serves', (role, ports) => {
    const s = stage(role);
    expect(s, `no target ${role}`).toBeDefined();
    expect(s.from).toBe('runtime');
    expect(stageEnv(stages, s).CCTV_ROLES).toBe(role);
    expect(stageEnv(stages, s).CCTV_DATA_DIR).toBe('/data');
    const all = lines(role);
    expect(all.some((l) => /apt-get install .*\bffmpeg\b/.test(l))).toBe(true);
    expect(all).toContain('COPY --from=build /app /app');
    expect(all).toContain('USER node');
    expect(all).toContain('ENTRYPOINT ["node", "signaling/dist/cli.js"]');
    expect(s.lines.filter((l) => l.startsWith('EXPOSE')).flatMap((l) => l.split(/\s+/).slice(1))).toEqual(ports);
  });

  it('the sfu target listens for camera-nodes on every address and offers browsers the UDP range it exposes', () => {
    const env = stageEnv(stages, stage('sfu'));
    expect(env.CCTV_SFU__INGEST__BIND_HOST).toBe('0.0.0.0');
    expect(`${env.CCTV_SFU__ICE__PORT_MIN}-${env.CCTV_SFU__ICE__PORT_MAX}/udp`).toBe('40000-40099/udp');
  });

  it('the default target (the last stage) is the one image for every role that compose.yaml builds', () => {
    const last = stages.at(-1)!;
    expect(last.name).toBe('all');
    expect(stageEnv(stages, last).CCTV_ROLES).toBeUndefined();
    expect(stageEnv(stages, last).CCTV_DATA_DIR).toBe('/data');
    expect(lines('all')).toContain('EXPOSE 8080');
    expect(lines('all')).toContain('ENTRYPOINT ["node", "signaling/dist/cli.js"]');
    const compose = parseYaml(readFileSync(join(ROOT, 'compose.yaml'), 'utf8')) as { 'x-cctv': { build: unknown } };
    expect(compose['x-cctv'].build).toBe('.');
  });
});
