import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { findExecutable, loadConfig } from '@cctv/core';
import { newWebhookSecret, signWebhook } from '@cctv/recorder';
import { routes, startSystem, type System } from '@cctv/signaling';

/**
 * Every shell command the documentation shows (```sh blocks of README.md, docs/, and the READMEs of the
 * packages and deploy/) is checked against what exists: each program is installed here or named below
 * as one that runs on the target machines; npm scripts, `cctv` subcommands and their options, the
 * cluster script's and the installer's options, files and API routes exist. Blocks that talk to the API
 * are then run, in order, with bash and curl against a system started for this test (the documents'
 * https://localhost:8080 is its address, `…` in a password is the admin password), and must succeed:
 * curl fails on any answer of 400 or more.
 */

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PASSWORD = 'documentation-password';

/** Programs the documents show that run on the machines they are about (a Pi, a Docker host), not here. */
const TARGET_ONLY: Record<string, string> = {
  'rpicam-vid': 'the Raspberry Pi camera stack, on a Pi',
  chronyc: 'chrony, the time daemon the operations guide suggests installing',
  'rpicam-hello': 'the Raspberry Pi camera stack, on a Pi',
  cctv: 'installed by deploy/install/install.sh; its subcommands are checked against the CLI',
};
/** Shell builtins and keywords (not on PATH). */
const BUILTINS = new Set(['cd', 'export', 'set', 'source', '.', 'read', 'eval', 'exit', 'return', 'local', 'unset', 'if', 'then', 'fi', 'for', 'do', 'done', 'while', '{', '}', '[', '[[', 'test', 'true', 'false', 'echo', 'printf']);
/** Commands a block may hold and still be run here (it talks to the API). */
const RUNNABLE = new Set(['curl', 'jq', 'echo', 'export', 'cctv', 'date', 'cat']);

interface Block { file: string; line: number; text: string }
interface Command { words: string[]; line: string }

function docFiles(): string[] {
  const out = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  const tracked = spawnSync('git', ['ls-files', '*README.md'], { cwd: ROOT, encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  for (const f of tracked) if (!out.includes(f) && !f.includes('node_modules')) out.push(f);
  return out.filter((f) => existsSync(join(ROOT, f)));
}

function shellBlocks(file: string): Block[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const out: Block[] = [];
  const re = /^([ \t]*)```(sh|bash|shell)[ \t]*\n([\s\S]*?)^[ \t]*```/gm;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const indent = m[1]!.length;
    const body = m[3]!.split('\n').map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length))).join('\n');
    out.push({ file, line: text.slice(0, m.index).split('\n').length, text: body });
  }
  return out;
}

/** Splits a block into commands: continuations joined, comments and heredoc bodies dropped, split at |, &&, ||, ;, $( and ). */
function commandsOf(text: string): Command[] {
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  const out: Command[] = [];
  let heredoc: string | null = null;
  for (const raw of lines) {
    if (heredoc !== null) {
      if (raw.trim() === heredoc) heredoc = null;
      continue;
    }
    const here = /<<-?\s*'?(\w+)'?/.exec(raw);
    if (here) heredoc = here[1]!;
    let words: string[] = [];
    let word = '';
    let quote: string | null = null;
    let inWord = false;
    const flush = () => {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    };
    const end = () => {
      flush();
      if (words.length) out.push({ words, line: raw.trim() });
      words = [];
    };
    for (let i = 0; i < raw.length; i++) {
      const c = raw[i]!;
      if (quote) {
        if (c === quote) quote = null;
        else word += c;
        continue;
      }
      if (c === "'" || c === '"') {
        quote = c;
        inWord = true;
        continue;
      }
      if (c === '#' && !inWord) break;
      if (c === '$' && raw[i + 1] === '(') {
        end();
        i++;
        continue;
      }
      if (c === ')' && !inWord) {
        end();
        continue;
      }
      if (c === '|' || c === ';' || c === '&') {
        end();
        if (raw[i + 1] === c) i++;
        continue;
      }
      if (c === ' ' || c === '\t') {
        flush();
        continue;
      }
      word += c;
      inWord = true;
    }
    end();
  }
  return out;
}

/** The program of a command, past variable assignments, sudo (and its -u user), env, time, xargs -r. */
function program(words: string[]): { name: string; args: string[] } | null {
  let i = 0;
  for (;;) {
    const w = words[i];
    if (w === undefined) return null;
    if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(w)) i++;
    else if (w === 'sudo') i += words[i + 1] === '-u' ? 3 : 1;
    else if (w === 'env' || w === 'time' || w === 'exec' || w === 'command') i++;
    else if (w === 'xargs') i += words[i + 1]?.startsWith('-') ? 2 : 1;
    else return { name: w, args: words.slice(i + 1) };
  }
}

const help = (() => {
  const cache = new Map<string, string>();
  return (key: string, args: string[]): string => {
    if (!cache.has(key)) {
      const r = spawnSync(args[0]!, args.slice(1), { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
      cache.set(key, `${r.stdout}${r.stderr}`);
    }
    return cache.get(key)!;
  };
})();
const tsx = ['--import', join(ROOT, 'test/support/tsxRegister.mjs')];
const cliHelp = () => help('cli', [process.execPath, ...tsx, join(ROOT, 'signaling/src/cli.ts'), '--help']);

/** Problems with one command, or none. */
function check(c: Command, functions: Set<string>, routeKeys: Array<{ method: string; re: RegExp }>): string[] {
  const p = program(c.words);
  if (!p) return [];
  const { name, args } = p;
  const problems: string[] = [];
  const options = args.filter((a) => /^--[a-z]/.test(a)).map((a) => a.split('=')[0]!);
  if (/\(\)$/.test(name)) {
    functions.add(name.slice(0, -2));
    return [];
  }
  if (BUILTINS.has(name) || functions.has(name)) return [];
  if (name === 'npm') {
    const scripts = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts as Record<string, string>;
    if (args[0] === 'run') {
      if (!(args[1]! in scripts)) problems.push(`npm run ${args[1]}: no such script in package.json`);
      if (args[1] === 'cluster') {
        const text = help('cluster', [process.execPath, join(ROOT, 'scripts/cluster.mjs'), '--help']);
        for (const o of options) if (!text.includes(o)) problems.push(`npm run cluster: ${o} is not an option of scripts/cluster.mjs`);
      }
    } else if (!['start', 'test', 'ci', 'install'].includes(args[0] ?? '')) problems.push(`npm ${args[0]}: not a command the project uses`);
    return problems;
  }
  if (name === 'npx') {
    const path = args.find((a, i) => i > 1 && !a.startsWith('-'));
    if (args[0] === 'vitest' && path && !existsSync(join(ROOT, path))) problems.push(`npx vitest run ${path}: no such file or folder`);
    return problems;
  }
  const cli = name === 'cctv' ? args : name === 'node' && args[0] === 'signaling/dist/cli.js' ? args.slice(1) : null;
  if (cli) {
    const text = cliHelp();
    const sub = cli.find((a) => !a.startsWith('-'));
    if (sub && !new RegExp(`^  ${sub.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`, 'm').test(text)) problems.push(`cctv ${sub}: not a command of the CLI (cctv --help)`);
    for (const o of options) if (!text.includes(o)) problems.push(`cctv ${sub ?? ''}: ${o} is not an option of the CLI`);
    return problems;
  }
  if (name === 'node') {
    // node -e / -p / -pe: code, not a file.
    if (args.some((a) => /^-[a-z]*[ep][a-z]*$/.test(a))) return [];
    const file = args.find((a, i) => !a.startsWith('-') && args[i - 1] !== '--import');
    if (file && !existsSync(join(ROOT, file))) problems.push(`node ${file}: no such file`);
    return problems;
  }
  if (name.includes('/')) {
    // `./x`, and `~/cctv/x` where a guide has the repository cloned to ~/cctv.
    const path = name.replace(/^\.\/|^~\/cctv\//, '');
    if (!path.startsWith('/') && !existsSync(join(ROOT, path))) problems.push(`${name}: no such file in the repository`);
    if (path.endsWith('install/install.sh')) {
      const text = help('install', ['bash', join(ROOT, 'deploy/install/install.sh'), '--help']);
      for (const o of options) if (!text.includes(o)) problems.push(`install.sh: ${o} is not one of its options`);
    }
    return problems;
  }
  if (!findExecutable(name) && !(name in TARGET_ONLY)) problems.push(`${name}: not installed here, and not named in TARGET_ONLY as a program of the target machines`);
  if (name === 'curl') {
    const url = args.find((a) => /\/(api\/|metrics\b)/.test(a));
    if (url) {
      const x = args.indexOf('-X') >= 0 ? args[args.indexOf('-X') + 1] : args.indexOf('--request') >= 0 ? args[args.indexOf('--request') + 1] : undefined;
      const method = (x ?? (args.some((a) => /^(-d|--data.*|-F|--form|-T)$/.test(a)) ? 'POST' : 'GET')).toUpperCase();
      const path = url.replace(/^[^/]*\/\/[^/]+|^\$\{?SITE\}?/, '').replace(/[?#].*$/, '');
      if (!routeKeys.some((r) => r.method === method && r.re.test(path))) problems.push(`curl ${method} ${path}: no such route in the API`);
    }
  }
  return problems;
}

/** What makes a block runnable here: the API at the documents' address, with the admin's password. */
function forThisSystem(text: string, base: string): string {
  return text
    .replace(/https?:\/\/(localhost|192\.168\.1\.10):8080/g, base)
    .replace(/"password":"…"/g, `"password":"${PASSWORD}"`)
    .replace(/,\s*"totp":"123456"/g, '');
}

function runnable(text: string): boolean {
  if (/…|<[a-z][a-z-]*>|\b[A-Z]+_PASSWORD\b/.test(text)) return false;
  const cmds = commandsOf(text);
  return cmds.length > 0 && cmds.every((c) => {
    const p = program(c.words);
    return p === null || RUNNABLE.has(p.name) || c.words.every((w) => /^[A-Za-z_][A-Za-z0-9_]*=/.test(w));
  }) && /curl/.test(text);
}

/**
 * Runs a command without blocking this process, which serves the API the command talks to (spawnSync would
 * leave the server unable to answer).
 */
function run(cmd: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

let dir: string;
let work: string;
let system: System;
let base = '';
let token = '';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cctv-docs-'));
  work = mkdtempSync(join(tmpdir(), 'cctv-docs-work-'));
  const config = loadConfig({
    env: {},
    overrides: {
      http: { host: '127.0.0.1', port: 0 }, dataDir: dir, recorder: { segmentSeconds: 1 },
    },
  });
  // As `npm start` makes it: the demo camera; and `front`, which the operations guide's examples change.
  system = await startSystem({ config, adminPassword: PASSWORD });
  await system.store.create({ id: 'front', source: { kind: 'test', width: 320, height: 180, fps: 10 }, recording: { enabled: false } });
  base = `https://127.0.0.1:${system.port}`;
  const r = await run('curl', ['-sk', '--fail-with-body', `${base}/api/auth/token`, '-H', 'content-type: application/json', '-d', JSON.stringify({ username: 'admin', password: PASSWORD })]);
  token = (JSON.parse(r.stdout) as { token: string }).token;
}, 60_000);

afterAll(async () => {
  await system?.close();
  rmSync(dir, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

describe('the documentation', () => {
  it('shows only commands that exist: programs, scripts, CLI commands and options, files, API routes', () => {
    const table = routes({} as Parameters<typeof routes>[0]);
    const routeKeys = table.map((r) => ({ method: r.method, re: new RegExp(`^${r.path.replace(/[.]/g, '\\.').replace(/:[a-z]+/gi, '[^/]+')}$`) }));
    const problems: string[] = [];
    let checked = 0;
    for (const file of docFiles()) {
      const functions = new Set<string>();
      for (const b of shellBlocks(file)) {
        const syntax = spawnSync('bash', ['-n'], { input: b.text, encoding: 'utf8' });
        if (syntax.status !== 0) problems.push(`${file}:${b.line}: bash -n: ${syntax.stderr.trim()}`);
        for (const c of commandsOf(b.text)) {
          checked++;
          for (const p of check(c, functions, routeKeys)) problems.push(`${file}:${b.line}: ${p}   [${c.line.slice(0, 100)}]`);
        }
      }
    }
    expect(problems).toEqual([]);
    expect(checked).toBeGreaterThan(50);
  });

  it('runs every block that talks to the API, in order, against a running system', async () => {
    // Let the demo camera record a few seconds and raise a motion event, for the blocks that export and protect.
    const started = Date.now();
    for (;;) {
      const r = await run('curl', ['-sk', '--fail-with-body', '-H', `authorization: Bearer ${token}`, `${base}/api/events?camera=demo&limit=1`]);
      if (r.status === 0 && (JSON.parse(r.stdout) as { events: unknown[] }).events.length > 0 && Date.now() - started > 5000) break;
      if (Date.now() - started > 60_000) throw new Error(`the demo camera raised no motion event in 60 s: ${r.stdout}${r.stderr}`);
      await new Promise((res) => setTimeout(res, 500));
    }
    const ran: string[] = [];
    const failures: string[] = [];
    for (const file of docFiles()) {
      for (const b of shellBlocks(file)) {
        const text = forThisSystem(b.text, base);
        if (!runnable(text)) continue;
        const script = [
          'set -eo pipefail',
          // As documented, but every HTTP error fails the block, and the self-signed certificate is accepted.
          'curl() { command curl -k --fail-with-body "$@"; }',
          `cctv() { node ${tsx.join(' ')} ${join(ROOT, 'signaling/src/cli.ts')} "$@"; }`,
          `export TOKEN='${token}'`,
          text,
        ].join('\n');
        const r = await run('bash', ['-c', script], { cwd: work });
        ran.push(`${file}:${b.line}`);
        if (r.status !== 0) failures.push(`${file}:${b.line} exited ${String(r.status)}: ${(r.stderr || r.stdout).trim().slice(0, 400)}\n${b.text}`);
      }
    }
    expect(failures).toEqual([]);
    // The README's sign-in and API examples are among them (the test cannot pass by running nothing).
    expect(ran.filter((r) => r.startsWith('README.md:')).length).toBeGreaterThanOrEqual(2);
    console.log(`MEASURED docs_blocks_run=${ran.length} (${ran.join(', ')})`);
  }, 120_000);

  it('shows a webhook check (docs/api.md) that accepts what the system signs and refuses what it did not', () => {
    const text = readFileSync(join(ROOT, 'docs/api.md'), 'utf8');
    const fn = /^function verify\([\s\S]*?^\}$/m.exec(text)?.[0];
    expect(fn, 'docs/api.md shows function verify(secret, headers, body)').toBeTruthy();
    const TOLERANCE_S = 300;
    const verify = new Function('createHmac', 'timingSafeEqual', 'TOLERANCE_S', `${fn}; return verify;`)(createHmac, timingSafeEqual, TOLERANCE_S) as (secret: string, headers: Record<string, string>, body: Buffer) => unknown;
    const secret = newWebhookSecret();
    const body = Buffer.from(JSON.stringify({ type: 'event.start', timestamp: new Date().toISOString(), data: { id: 1, camera: 'demo' } }));
    const ts = Math.floor(Date.now() / 1000);
    const headers = { 'webhook-id': 'msg_docs', 'webhook-timestamp': String(ts), 'webhook-signature': signWebhook(secret, 'msg_docs', ts, body) };
    expect(verify(secret, headers, body)).toMatchObject({ type: 'event.start', data: { camera: 'demo' } });
    expect(() => verify(secret, headers, Buffer.concat([body, Buffer.from(' ')]))).toThrow(/signature/);
    expect(() => verify(newWebhookSecret(), headers, body)).toThrow(/signature/);
    expect(() => verify(secret, { ...headers, 'webhook-timestamp': String(ts - 3600) }, body)).toThrow(/timestamp/);
  });
});
