import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { loadConfig, registry } from '@cctv/core';
import { startSystem, type System } from '../signaling/src/system.js';

// The monitoring kit of deploy/monitoring against what the code really exports: the one-machine system
// runs (every role, a camera watched for motion), a token holding only metrics:read reads its /metrics as
// Prometheus would, and every metric and label the alert rules and the dashboard name must be there.
// With promtool installed, Prometheus' own parser checks the rules, the configs and every panel's query,
// and the rules' unit tests below run.
const ROOT = resolve(import.meta.dirname, '..');
const KIT = join(ROOT, 'deploy/monitoring');
const read = (name: string) => readFileSync(join(KIT, name), 'utf8');

// ---- The files ----------------------------------------------------------------------------------------

interface Rule { alert?: string; record?: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }
interface RuleFile { groups: Array<{ name: string; rules: Rule[] }> }
interface Target { refId: string; expr: string; legendFormat?: string; datasource?: { type: string; uid: string } }
interface Panel { id: number; type: string; title: string; gridPos: { h: number; w: number; x: number; y: number }; datasource?: { type: string; uid: string }; targets?: Target[]; panels?: Panel[] }
interface Dashboard {
  __inputs: Array<{ name: string; type: string; pluginId: string }>;
  schemaVersion: number;
  uid: string;
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; query: string | { query: string } }> };
  annotations: { list: Array<{ expr?: string }> };
}

const rules = parseYaml(read('cctv-alerts.yml')) as RuleFile;
const alerts = rules.groups.flatMap((g) => g.rules).filter((r): r is Rule & { alert: string } => !!r.alert);
const dashboard = JSON.parse(read('grafana-dashboard.json')) as Dashboard;
const allPanels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const queryPanels = allPanels.filter((p) => p.type !== 'row');
const dashboardQueries = [
  ...queryPanels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel ${p.id} "${p.title}" ${t.refId}`, expr: t.expr, legend: t.legendFormat }))),
  ...dashboard.annotations.list.filter((a) => a.expr).map((a) => ({ where: 'annotation', expr: a.expr!, legend: undefined })),
];

/** The alerts the issue asks for (and two that complete them), by their name in cctv-alerts.yml and a metric each must watch. */
const ISSUE_ALERTS: Record<string, [alert: string, metric: string]> = {
  'camera down': ['CctvCameraDown', 'cctv_camera_up'],
  'camera down (the SFU ingest stalled)': ['CctvCameraDown', 'cctv_sfu_ingest_packets_total'],
  'node down': ['CctvNodeDown', 'cctv_node_up'],
  'no live node of a role': ['CctvNoLiveNode', 'cctv_nodes'],
  'no leader': ['CctvNoLeader', 'cctv_leader'],
  'NAS unavailable': ['CctvStorageUnavailable', 'cctv_storage_available'],
  'spool filling': ['CctvSpoolFilling', 'cctv_recorder_spool_bytes'],
  'spool backlog': ['CctvSpoolBacklog', 'cctv_recorder_spool_oldest_age_seconds'],
  'storage floor': ['CctvStorageFloor', 'cctv_storage_floor_warning'],
  'clock offset': ['CctvClockOffset', 'cctv_node_clock_offset_ms'],
  'archive verification failures': ['CctvArchiveVerificationFailed', 'cctv_archive_verification_failures_total'],
  'alert dead letters': ['CctvAlertDeadLetters', 'cctv_alerts_total'],
  'slow alerts': ['CctvAlertsSlow', 'cctv_alert_delay_seconds_bucket'],
  'detector dropping frames': ['CctvDetectorDroppingFrames', 'cctv_detector_dropped_frames_total'],
};

// ---- A small PromQL reader: which series and labels a query names ------------------------------------

interface Selector { metric: string; labels: string[] }
interface QueryRefs { selectors: Selector[]; grouping: string[]; by: string[] }

const AGGREGATIONS = new Set(['sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile', 'limitk', 'limit_ratio']);
const GROUPING = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const WORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'atan2', 'inf', 'nan']);

type Token = { kind: 'id' | '(' | ')' | 'matchers' | 'other'; value: string; matchers?: Array<{ name: string; value: string }> };

function quoted(s: string, i: number): [value: string, end: number] {
  const q = s[i]!;
  let v = '';
  let j = i + 1;
  while (j < s.length && s[j] !== q) {
    if (s[j] === '\\' && q !== '`') j++;
    v += s[j];
    j++;
  }
  if (j >= s.length) throw new Error(`unclosed string in ${s}`);
  return [v, j + 1];
}

function tokenize(expr: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < expr.length) {
    const c = expr[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '"' || c === "'" || c === '`') {
      out.push({ kind: 'other', value: 'string' });
      i = quoted(expr, i)[1];
    } else if (c === '[') {
      // A range or subquery: durations and Grafana's $__rate_interval, no names.
      i = expr.indexOf(']', i) + 1 || expr.length;
    } else if (c === '{') {
      const matchers: Array<{ name: string; value: string }> = [];
      i++;
      for (;;) {
        while (/[\s,]/.test(expr[i] ?? '')) i++;
        if (expr[i] === '}') break;
        const name = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(expr.slice(i))?.[0];
        if (!name) throw new Error(`bad label matcher at ${expr.slice(i)}`);
        i += name.length;
        const op = /^\s*(=~|!~|!=|=)\s*/.exec(expr.slice(i));
        if (!op) throw new Error(`bad label matcher at ${expr.slice(i)}`);
        i += op[0].length;
        const [value, end] = quoted(expr, i);
        matchers.push({ name, value });
        i = end;
      }
      i++;
      out.push({ kind: 'matchers', value: '{}', matchers });
    } else if (/[a-zA-Z_:]/.test(c)) {
      const id = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(expr.slice(i))![0];
      out.push({ kind: 'id', value: id });
      i += id.length;
    } else if (/[0-9.]/.test(c)) {
      // Numbers and durations (0.95, 2147483648, 15m after offset).
      i += /^[0-9.][0-9a-zA-Z_.]*/.exec(expr.slice(i))![0].length;
      out.push({ kind: 'other', value: 'number' });
    } else {
      out.push({ kind: c === '(' ? '(' : c === ')' ? ')' : 'other', value: c });
      i++;
    }
  }
  return out;
}

function promqlRefs(expr: string): QueryRefs {
  const tokens = tokenize(expr);
  const selectors: Selector[] = [];
  const grouping: string[] = [];
  const by: string[] = [];
  let depth = 0;
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k]!;
    const next = tokens[k + 1];
    if (t.kind === '(') depth++;
    if (t.kind === ')') depth--;
    if (t.kind === 'id') {
      if (GROUPING.has(t.value)) {
        if (next?.kind !== '(') continue;
        for (k += 2; tokens[k] && tokens[k]!.kind !== ')'; k++) {
          if (tokens[k]!.kind !== 'id') continue;
          grouping.push(tokens[k]!.value);
          if (t.value === 'by') by.push(tokens[k]!.value);
        }
        continue;
      }
      if (WORDS.has(t.value)) continue;
      // A function call, or an aggregation written `sum by (…) (…)`.
      if (next?.kind === '(' || (AGGREGATIONS.has(t.value) && next?.kind === 'id' && GROUPING.has(next.value))) continue;
      selectors.push({ metric: t.value, labels: next?.kind === 'matchers' ? next.matchers!.map((m) => m.name) : [] });
      if (next?.kind === 'matchers') k++;
    } else if (t.kind === 'matchers') {
      // A selector by name pattern: {__name__=~"a|b"}.
      const names = t.matchers!.find((m) => m.name === '__name__')?.value.split('|') ?? [];
      for (const metric of names) selectors.push({ metric, labels: t.matchers!.filter((m) => m.name !== '__name__').map((m) => m.name) });
    }
  }
  if (depth !== 0) throw new Error(`unbalanced parentheses in ${expr}`);
  return { selectors, grouping, by };
}

/** Grafana's variables, replaced the way Grafana would, so the query is plain PromQL. */
const plainPromql = (expr: string) =>
  expr.replaceAll('$__rate_interval', '1m').replaceAll('$__range', '1h').replaceAll('$__interval', '15s').replaceAll('$camera', '.*');

// ---- What the running system exports --------------------------------------------------------------------

/** Series Prometheus makes itself, with their labels. */
const PROMETHEUS_SERIES: Record<string, string[]> = { up: [], ALERTS: ['alertname', 'alertstate', 'severity'] };
/** Labels Prometheus adds to every scraped series. */
const TARGET_LABELS = ['job', 'instance'];
const HISTOGRAM_SUFFIXES = ['_bucket', '_sum', '_count'];

interface Family { name: string; type: string; declared: string[]; observed: Map<string, Set<string>> }

function parseExposition(text: string): Map<string, Family> {
  // Declared label names, from the registry of this process: a labelled series may have no sample yet.
  const declared = new Map<string, string[]>(registry.getMetricsAsArray().map((m) => {
    const metric = m as unknown as { name: string; labelNames?: readonly string[] };
    return [metric.name, [...(metric.labelNames ?? [])]];
  }));
  const families = new Map<string, Family>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) families.set(type[1]!, { name: type[1]!, type: type[2]!, declared: declared.get(type[1]!) ?? [], observed: new Map() });
  }
  for (const line of text.split('\n')) {
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? /.exec(line);
    if (!sample) continue;
    const name = sample[1]!;
    const base = families.has(name) ? name : HISTOGRAM_SUFFIXES.map((s) => name.endsWith(s) && name.slice(0, -s.length)).find((b) => b && families.has(b));
    if (!base) continue;
    const labels = [...(sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)].map((m) => m[1]!);
    const seen = families.get(base)!.observed.get(name) ?? new Set<string>();
    for (const l of labels) seen.add(l);
    families.get(base)!.observed.set(name, seen);
  }
  return families;
}

let dir: string;
let system: System;
let metricsBody = '';
let families = new Map<string, Family>();
const tokenStatus = { metrics: 0, cameras: 0 };

/** The family a referenced series belongs to (a histogram's `_bucket`, `_sum`, `_count` included), if any. */
function familyOf(series: string): Family | undefined {
  const exact = families.get(series);
  if (exact) return exact;
  for (const s of HISTOGRAM_SUFFIXES) {
    const f = series.endsWith(s) ? families.get(series.slice(0, -s.length)) : undefined;
    if (f && (f.type === 'histogram' || f.type === 'summary')) return f;
  }
  return undefined;
}

/** Labels a referenced series can carry once scraped; undefined when nothing exports it. */
function labelsOf(series: string): Set<string> | undefined {
  if (series in PROMETHEUS_SERIES) return new Set([...PROMETHEUS_SERIES[series]!, ...TARGET_LABELS]);
  const f = familyOf(series);
  if (!f) return undefined;
  const labels = new Set([...f.declared, ...TARGET_LABELS, ...(f.observed.get(series) ?? [])]);
  if (series.endsWith('_bucket') && f.type === 'histogram') labels.add('le');
  return labels;
}

/** Every problem with the series and labels a query names; empty when all of them exist. */
function problemsOf(where: string, expr: string, templateLabels: string[] = [], strictBy = false): string[] {
  const problems: string[] = [];
  const refs = promqlRefs(plainPromql(expr));
  if (refs.selectors.length === 0) problems.push(`${where}: names no series: ${expr}`);
  const union = new Set<string>();
  for (const s of refs.selectors) {
    const labels = labelsOf(s.metric);
    if (!labels) {
      problems.push(`${where}: ${s.metric} is not exported (no # TYPE line for it)`);
      continue;
    }
    for (const l of labels) union.add(l);
    for (const l of s.labels) if (!labels.has(l)) problems.push(`${where}: ${s.metric} has no label '${l}' (it has ${[...labels].join(', ')})`);
  }
  for (const l of refs.grouping) if (!union.has(l)) problems.push(`${where}: groups by '${l}', a label none of its series has`);
  // After `by (…)` only those labels are left for templates to use.
  const usable = strictBy && refs.by.length ? new Set(refs.by) : union;
  for (const l of templateLabels) if (!usable.has(l)) problems.push(`${where}: uses the label '${l}', which its result does not have`);
  return problems;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cctv-monitoring-'));
  const config = loadConfig({
    env: {},
    overrides: {
      http: { host: '127.0.0.1', port: 0, tls: { mode: 'off' } },
      dataDir: dir,
      demoCamera: false,
      cameras: [{ id: 'cam', source: { kind: 'test', width: 320, height: 180, fps: 15, pattern: 'motion' }, motion: { enabled: true } }],
    },
  });
  system = await startSystem({ config, webDir: null, adminPassword: 'monitoring-test-password' });
  const base = `http://127.0.0.1:${system.port}`;
  // The scraper's token, made as docs/operations.md says: sign in, then POST /api/tokens from this site.
  const login = await fetch(`${base}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'monitoring-test-password' }) });
  const cookie = login.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const made = await fetch(`${base}/api/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', cookie, origin: base },
    body: JSON.stringify({ name: 'prometheus', permissions: ['metrics:read'] }),
  });
  if (made.status !== 201) throw new Error(`POST /api/tokens: ${made.status} ${await made.text()}`);
  const bearer = { authorization: `Bearer ${((await made.json()) as { token: string }).token}` };
  tokenStatus.cameras = (await fetch(`${base}/api/cameras`, { headers: bearer })).status;
  // Until the detector has looked at frames of the camera, so its per-camera series are there too.
  const end = Date.now() + 20_000;
  do {
    const r = await fetch(`${base}/metrics`, { headers: bearer });
    tokenStatus.metrics = r.status;
    metricsBody = await r.text();
    if (/^cctv_detector_frames_total\{camera="cam"\}/m.test(metricsBody) && /^cctv_camera_up\{camera="cam"\} 1/m.test(metricsBody)) break;
    await new Promise((r) => setTimeout(r, 250));
  } while (Date.now() < end);
  families = parseExposition(metricsBody);
});

afterAll(async () => {
  await system?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the monitoring kit against the running system', () => {
  it('reads /metrics with a token holding only metrics:read, which opens nothing else', () => {
    expect(tokenStatus.metrics).toBe(200);
    expect(tokenStatus.cameras).toBe(403);
    expect(metricsBody).toMatch(/^cctv_camera_up\{camera="cam"\} 1/m);
    expect(metricsBody).toMatch(/^cctv_detector_frames_total\{camera="cam"\} \d+/m);
  });

  it('alerts only on metrics and labels the code exports', () => {
    const problems = alerts.flatMap((a) => {
      const templated = Object.values(a.annotations ?? {}).flatMap((v) => [...v.matchAll(/\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)/g)].map((m) => m[1]!));
      return problemsOf(a.alert, a.expr, templated, true);
    });
    expect(problems).toEqual([]);
  });

  it('draws only metrics and labels the code exports', () => {
    const problems = dashboardQueries.flatMap((q) => problemsOf(q.where, q.expr, [...(q.legend ?? '').matchAll(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g)].map((m) => m[1]!)));
    for (const v of dashboard.templating.list.filter((t) => t.type === 'query')) {
      const query = typeof v.query === 'string' ? v.query : v.query.query;
      const m = /^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$/.exec(query);
      if (!m) problems.push(`variable ${v.name}: not label_values(…): ${query}`);
      else problems.push(...problemsOf(`variable ${v.name}`, m[1]!, [m[2]!]));
    }
    expect(problems).toEqual([]);
  });

  it('shows every metric the code registers on the dashboard (the process metrics aside)', () => {
    const shown = new Set(dashboardQueries.flatMap((q) => promqlRefs(plainPromql(q.expr)).selectors.map((s) => familyOf(s.metric)?.name)));
    const missing = [...families.keys()].filter((n) => n.startsWith('cctv_') && !n.startsWith('cctv_process_') && !shown.has(n));
    expect(missing).toEqual([]);
  });
});

describe('the alert rules', () => {
  it('has every alert the issue asks for, each watching its metric', () => {
    for (const [what, [name, metric]] of Object.entries(ISSUE_ALERTS)) {
      const rule = alerts.find((a) => a.alert === name);
      expect(rule, `${what}: no alert ${name}`).toBeDefined();
      expect(promqlRefs(rule!.expr).selectors.map((s) => s.metric), `${what}: ${name}`).toContain(metric);
    }
  });

  it('gives every alert a duration, a severity, a summary and a description', () => {
    const names = alerts.map((a) => a.alert);
    expect(new Set(names).size).toBe(names.length);
    for (const a of alerts) {
      expect(a.alert, a.alert).toMatch(/^Cctv[A-Z][A-Za-z]+$/);
      expect(a.for, `${a.alert}: for`).toMatch(/^\d+[smh]$/);
      expect(['critical', 'warning'], `${a.alert}: severity`).toContain(a.labels?.severity);
      expect(a.annotations?.summary, `${a.alert}: summary`).toBeTruthy();
      expect(a.annotations?.description, `${a.alert}: description`).toBeTruthy();
    }
  });
});

describe('the dashboard', () => {
  it('is importable: a Prometheus input and a data source variable every query uses', () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.__inputs).toContainEqual(expect.objectContaining({ type: 'datasource', pluginId: 'prometheus' }));
    expect(dashboard.templating.list).toContainEqual(expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' }));
    for (const p of queryPanels) {
      expect(p.datasource, `panel ${p.id}`).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(p.targets?.length, `panel ${p.id} "${p.title}" has no query`).toBeGreaterThan(0);
      for (const t of p.targets!) expect(t.datasource, `panel ${p.id} ${t.refId}`).toEqual({ type: 'prometheus', uid: '${datasource}' });
    }
  });

  it('has a row for each part, and panels with unique ids that do not overlap', () => {
    expect(allPanels.filter((p) => p.type === 'row').map((p) => p.title)).toEqual(expect.arrayContaining(['Cameras', 'Nodes', 'Live', 'Recording', 'Storage', 'Motion & alerts']));
    const ids = allPanels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of allPanels) {
      const g = p.gridPos;
      expect([g.h, g.w, g.x, g.y].every(Number.isInteger), `panel ${p.id} gridPos`).toBe(true);
      expect(g.x >= 0 && g.w > 0 && g.h > 0 && g.x + g.w <= 24, `panel ${p.id} "${p.title}" fits in 24 columns`).toBe(true);
    }
    for (const [i, a] of allPanels.entries()) {
      for (const b of allPanels.slice(i + 1)) {
        const overlap = a.gridPos.x < b.gridPos.x + b.gridPos.w && b.gridPos.x < a.gridPos.x + a.gridPos.w && a.gridPos.y < b.gridPos.y + b.gridPos.h && b.gridPos.y < a.gridPos.y + a.gridPos.h;
        expect(overlap, `panels ${a.id} "${a.title}" and ${b.id} "${b.title}" overlap`).toBe(false);
      }
    }
  });
});

describe('the Prometheus configurations and the Compose overlay', () => {
  const configs = ['prometheus.yml', 'prometheus.compose.yml'].map((name) => ({ name, config: parseYaml(read(name)) as {
    rule_files: string[];
    scrape_configs: Array<{ job_name: string; metrics_path: string; scheme: string; authorization: { type?: string; credentials_file: string }; static_configs: Array<{ targets: string[] }> }>;
  } }));

  it('scrape /metrics as job cctv (the job the alerts name) with the token file, and load the rules', () => {
    const ignored = read('.gitignore').split('\n');
    for (const { name, config } of configs) {
      expect(config.rule_files, name).toEqual(['cctv-alerts.yml']);
      const job = config.scrape_configs.find((j) => j.job_name === 'cctv');
      expect(job, name).toMatchObject({ metrics_path: '/metrics', authorization: { credentials_file: 'cctv-metrics.token' } });
      expect(ignored, `${name}: the token file is kept out of version control`).toContain(job!.authorization.credentials_file);
    }
    expect(alerts.find((a) => a.alert === 'CctvScrapeFailed')?.expr).toContain('job="cctv"');
  });

  it('scrapes the signaling services of compose.yaml at their ports, and mounts files that exist', () => {
    const compose = parseYaml(readFileSync(join(ROOT, 'compose.yaml'), 'utf8'), { merge: true }) as { services: Record<string, { environment?: Record<string, string> }> };
    const targets = configs.find((c) => c.name === 'prometheus.compose.yml')!.config.scrape_configs[0]!.static_configs.flatMap((s) => s.targets);
    const signaling = Object.entries(compose.services).filter(([, s]) => s.environment?.CCTV_ROLES?.split(',').includes('signaling'));
    expect(targets.sort()).toEqual(signaling.map(([name, s]) => `${name}:${s.environment!.CCTV_PORT ?? '8080'}`).sort());

    type Mount = string | { source: string; target: string };
    const overlay = parseYaml(read('compose.monitoring.yaml')) as { services: Record<string, { volumes: Mount[]; command?: string[] }> };
    const mounts = Object.values(overlay.services).flatMap((s) => s.volumes).map((v) => typeof v === 'string' ? { source: v.split(':')[0]!, target: v.split(':')[1]! } : v);
    for (const m of mounts.filter((m) => m.source.startsWith('./') && !m.source.endsWith('.token'))) expect(existsSync(join(ROOT, m.source)), m.source).toBe(true);
    const targetOf = (file: string) => mounts.find((m) => m.source === `./deploy/monitoring/${file}`)?.target;
    expect(overlay.services.prometheus!.command).toContain(`--config.file=${targetOf('prometheus.compose.yml')}`);
    expect(dirname(targetOf('cctv-alerts.yml')!)).toBe(dirname(targetOf('prometheus.compose.yml')!));
    expect(dirname(targetOf('cctv-metrics.token')!)).toBe(dirname(targetOf('prometheus.compose.yml')!));
    const provider = parseYaml(read('grafana/dashboards.yml')) as { providers: Array<{ options: { path: string } }> };
    expect(dirname(targetOf('grafana-dashboard.json')!)).toBe(provider.providers[0]!.options.path);
    const sources = parseYaml(read('grafana/datasources.yml')) as { datasources: Array<{ type: string; url: string }> };
    expect(sources.datasources[0]).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090' });
  });
});

// ---- promtool ---------------------------------------------------------------------------------------------

const PROMTOOL = (() => {
  const r = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  return !r.error && r.status === 0;
})();
// `npm test` installs it (Debian's prometheus package); without it these checks fail rather than pass unseen.

function promtool(...args: string[]): string {
  if (!PROMTOOL) throw new Error('promtool is not installed (Debian: apt-get install prometheus); npm test installs it');
  const r = spawnSync('promtool', args, { encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) throw new Error(`promtool ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Unit tests of the rules for `promtool test rules` (15 s samples; `_` is a missing sample). */
const S = (name: string, labels: Record<string, string>, values: string) => ({ series: `${name}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',')}}`, values });
const s1 = { instance: 's1:8080', job: 'cctv' };
const s2 = { instance: 's2:8081', job: 'cctv' };
const r1 = { instance: 'r1:8080', job: 'cctv' };
const RULE_TESTS = [
  {
    interval: '15s',
    input_series: [
      S('cctv_camera_up', { camera: 'front', ...s1 }, '1x8 0x40'),
      S('cctv_camera_state', { camera: 'front', state: 'stopped', ...s1 }, '0x48'),
      // A disabled camera is stopped, not down.
      S('cctv_camera_up', { camera: 'off', ...s1 }, '0x48'),
      S('cctv_camera_state', { camera: 'off', state: 'stopped', ...s1 }, '1x48'),
      // The SFU room of a camera whose packets stop after 4 minutes.
      S('cctv_sfu_ingest_packets_total', { camera: 'yard', ...s1 }, '0+100x16 1600x32'),
    ],
    alert_rule_test: [
      { eval_time: '2m30s', alertname: 'CctvCameraDown', exp_alerts: [] },
      { eval_time: '4m', alertname: 'CctvCameraDown', exp_alerts: [{ exp_labels: { severity: 'critical', camera: 'front', ...s1 } }] },
      { eval_time: '7m', alertname: 'CctvCameraDown', exp_alerts: [{ exp_labels: { severity: 'critical', camera: 'front', ...s1 } }, { exp_labels: { severity: 'critical', camera: 'yard', ...s1 } }] },
    ],
  },
  {
    interval: '15s',
    input_series: [
      // cn1 is alive for one instance: not down. cn2 is dead for both.
      S('cctv_node_up', { node: 'cn1', ...s1 }, '1x40'),
      S('cctv_node_up', { node: 'cn1', ...s2 }, '0x40'),
      S('cctv_node_up', { node: 'cn2', ...s1 }, '0x40'),
      S('cctv_node_up', { node: 'cn2', ...s2 }, '0x40'),
      S('cctv_nodes', { role: 'sfu', state: 'dead', ...s1 }, '2x40'),
      S('cctv_nodes', { role: 'camera-node', state: 'dead', ...s1 }, '1x40'),
      S('cctv_nodes', { role: 'camera-node', state: 'alive', ...s1 }, '1x40'),
      S('cctv_leader', { epoch: '4', ...s1 }, '1x8 0x32'),
      S('cctv_leader', { epoch: '4', ...s2 }, '0x40'),
      S('cctv_node_clock_offset_ms', { node: 'cn1', ...s1 }, '-250x40'),
      S('cctv_node_clock_offset_ms', { node: 'cn3', ...s1 }, '40x40'),
      S('up', s2, '1x4 0x36'),
    ],
    alert_rule_test: [
      { eval_time: '1m', alertname: 'CctvNoLeader', exp_alerts: [] },
      { eval_time: '8m', alertname: 'CctvNoLeader', exp_alerts: [{ exp_labels: { severity: 'critical' } }] },
      { eval_time: '8m', alertname: 'CctvNodeDown', exp_alerts: [{ exp_labels: { severity: 'warning', node: 'cn2' } }] },
      { eval_time: '8m', alertname: 'CctvNoLiveNode', exp_alerts: [{ exp_labels: { severity: 'critical', role: 'sfu' } }] },
      { eval_time: '8m', alertname: 'CctvClockOffset', exp_alerts: [{ exp_labels: { severity: 'warning', node: 'cn1', ...s1 } }] },
      { eval_time: '8m', alertname: 'CctvScrapeFailed', exp_alerts: [{ exp_labels: { severity: 'warning', ...s2 } }] },
    ],
  },
  {
    interval: '15s',
    input_series: [
      S('cctv_storage_available', { storage: 'nas', ...r1 }, '1x4 0x80'),
      S('cctv_recorder_spool_bytes', r1, '0+100000000x80'),
      S('cctv_recorder_spool_oldest_age_seconds', r1, '1000x80'),
      // Counters that appear at their first increment: increase() alone would never see these.
      S('cctv_recorder_spool_dropped_total', { camera: 'front', ...r1 }, '_x20 1x60'),
      S('cctv_archive_verification_failures_total', { kind: 'altered', ...s1 }, '_x10 3x70'),
      S('cctv_storage_floor_warning', { storage: 'nas', ...r1 }, '0x4 1x80'),
      S('cctv_storage_free_bytes', { storage: 'nas', ...r1 }, '5000000000x84'),
      S('cctv_storage_free_bytes', { storage: 'nas', ...s1 }, '5000000000x84'),
    ],
    alert_rule_test: [
      { eval_time: '4m', alertname: 'CctvSpoolDropping', exp_alerts: [] },
      { eval_time: '15m', alertname: 'CctvStorageUnavailable', exp_alerts: [{ exp_labels: { severity: 'critical', storage: 'nas', ...r1 } }] },
      { eval_time: '15m', alertname: 'CctvSpoolFilling', exp_alerts: [{ exp_labels: { severity: 'warning', ...r1 } }] },
      { eval_time: '15m', alertname: 'CctvSpoolBacklog', exp_alerts: [{ exp_labels: { severity: 'warning', ...r1 } }] },
      { eval_time: '15m', alertname: 'CctvSpoolDropping', exp_alerts: [{ exp_labels: { severity: 'critical', camera: 'front', ...r1 } }] },
      { eval_time: '15m', alertname: 'CctvArchiveVerificationFailed', exp_alerts: [{ exp_labels: { severity: 'critical', kind: 'altered', ...s1 } }] },
      { eval_time: '15m', alertname: 'CctvStorageFloor', exp_alerts: [{ exp_labels: { severity: 'warning', storage: 'nas' } }] },
    ],
  },
  {
    interval: '15s',
    input_series: [
      S('cctv_alerts_total', { channel: 'webhook', result: 'dead', ...s1 }, '_x8 1x92'),
      S('cctv_alerts_total', { channel: 'webhook', result: 'delivered', ...s1 }, '0+1x100'),
      // MQTT alerts all take 2–5 s; webhook ones under a second.
      S('cctv_alert_delay_seconds_bucket', { channel: 'mqtt', le: '1', ...r1 }, '0x100'),
      S('cctv_alert_delay_seconds_bucket', { channel: 'mqtt', le: '2', ...r1 }, '0x100'),
      S('cctv_alert_delay_seconds_bucket', { channel: 'mqtt', le: '5', ...r1 }, '0+4x100'),
      S('cctv_alert_delay_seconds_bucket', { channel: 'mqtt', le: '+Inf', ...r1 }, '0+4x100'),
      S('cctv_alert_delay_seconds_bucket', { channel: 'webhook', le: '1', ...r1 }, '0+4x100'),
      S('cctv_alert_delay_seconds_bucket', { channel: 'webhook', le: '2', ...r1 }, '0+4x100'),
      S('cctv_alert_delay_seconds_bucket', { channel: 'webhook', le: '5', ...r1 }, '0+4x100'),
      S('cctv_alert_delay_seconds_bucket', { channel: 'webhook', le: '+Inf', ...r1 }, '0+4x100'),
      // front drops a fifth of its frames, back one in 76.
      S('cctv_detector_frames_total', { camera: 'front', ...r1 }, '0+60x100'),
      S('cctv_detector_dropped_frames_total', { camera: 'front', ...r1 }, '0+15x100'),
      S('cctv_detector_frames_total', { camera: 'back', ...r1 }, '0+75x100'),
      S('cctv_detector_dropped_frames_total', { camera: 'back', ...r1 }, '0+1x100'),
      S('cctv_mqtt_connected', r1, '1x4 0x96'),
      S('cctv_mqtt_queued_messages', r1, '0x4 12x96'),
    ],
    alert_rule_test: [
      { eval_time: '5m', alertname: 'CctvAlertDeadLetters', exp_alerts: [{ exp_labels: { severity: 'critical', channel: 'webhook', result: 'dead', ...s1 } }] },
      { eval_time: '15m', alertname: 'CctvAlertsSlow', exp_alerts: [{ exp_labels: { severity: 'warning', channel: 'mqtt' } }] },
      { eval_time: '15m', alertname: 'CctvDetectorDroppingFrames', exp_alerts: [{ exp_labels: { severity: 'warning', camera: 'front', instance: r1.instance } }] },
      { eval_time: '15m', alertname: 'CctvMqttDisconnected', exp_alerts: [{ exp_labels: { severity: 'warning', ...r1 } }] },
    ],
  },
];

describe('with promtool', () => {
  let work: string;
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'cctv-promtool-'));
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('checks the rules and both configurations', () => {
    expect(promtool('check', 'rules', join(KIT, 'cctv-alerts.yml'))).toContain(`SUCCESS: ${alerts.length} rules found`);
    for (const name of ['prometheus.yml', 'prometheus.compose.yml', 'cctv-alerts.yml']) copyFileSync(join(KIT, name), join(work, name));
    // A stand-in token: promtool checks that the file is there.
    writeFileSync(join(work, 'cctv-metrics.token'), 'cctv_stand_in\n');
    writeFileSync(join(work, 'cctv-nodes.token'), 'a-nodes-metrics-token\n');
    for (const name of ['prometheus.yml', 'prometheus.compose.yml']) expect(promtool('check', 'config', join(work, name))).toContain('SUCCESS');
  });

  it("parses every query of the dashboard with Prometheus' parser", () => {
    const file = join(work, 'dashboard-queries.yml');
    const record = dashboardQueries.map((q, i) => ({ record: `dashboard:query_${i}`, expr: plainPromql(q.expr) }));
    writeFileSync(file, stringifyYaml({ groups: [{ name: 'dashboard', rules: record }] }));
    expect(promtool('check', 'rules', file)).toContain(`SUCCESS: ${record.length} rules found`);
  });

  it('fires each alert when it should, and not otherwise', () => {
    // The expressions under test, without the annotations (promtool would compare their text too).
    const bare = { groups: rules.groups.map((g) => ({ ...g, rules: g.rules.map(({ annotations: _, ...r }) => r) })) };
    writeFileSync(join(work, 'rules.yml'), stringifyYaml(bare));
    writeFileSync(join(work, 'rules.test.yml'), stringifyYaml({ rule_files: ['rules.yml'], evaluation_interval: '15s', tests: RULE_TESTS }));
    const tested = new Set(RULE_TESTS.flatMap((t) => t.alert_rule_test.map((a) => a.alertname)));
    expect(alerts.map((a) => a.alert).filter((a) => !tested.has(a))).toEqual([]);
    expect(promtool('test', 'rules', join(work, 'rules.test.yml'))).toContain('SUCCESS');
  });
});
