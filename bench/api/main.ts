// `npm run bench:api`: what GraphQL costs and saves against the REST routes it runs. Ends with RESULT lines.
//   - list: the cameras with every field, as GET /api/cameras and as the GraphQL query asking for the
//     same fields (each field runs the REST route in-process): requests/s and latency;
//   - page: what a dashboard page needs, every camera with its day's timeline: 1 + N REST requests (made
//     in parallel, as a browser would) against one GraphQL query;
//   - refuse: time to refuse a query over the cost limit (nothing runs);
//   - push: a camera disabled and enabled again, the time until each of 50 clients hears the state change,
//     over GraphQL subscriptions (graphql-ws) and over the dashboard's /api/ws (the baseline).
// Options: --seconds N (per measurement, default 5), --concurrency N (default 16), --cameras N (default 20),
// --clients N (default 50), --toggles N (default 5).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { startServer } from '../lib/server.js';
import { result, summary } from '../lib/stats.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const SECONDS = Number(args.get('seconds') ?? 5);
const CONCURRENCY = Number(args.get('concurrency') ?? 16);
const CAMERAS = Number(args.get('cameras') ?? 20);
const CLIENTS = Number(args.get('clients') ?? 50);
const TOGGLES = Number(args.get('toggles') ?? 5);
const PASSWORD = 'bench-password-1';

/** Runs `fn` from CONCURRENCY workers for SECONDS; latencies (ms) and how many failed. */
async function load(fn: () => Promise<boolean>): Promise<{ ms: number[]; failed: number; elapsedS: number }> {
  const ms: number[] = [];
  let failed = 0;
  const end = performance.now() + SECONDS * 1000;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (performance.now() < end) {
      const t = performance.now();
      if (!(await fn())) failed++;
      ms.push(performance.now() - t);
    }
  }));
  return { ms, failed, elapsedS: (performance.now() - t0) / 1000 };
}

const CAMERA_FIELDS = 'id name enabled source version createdAt updatedAt status { id state since lastError input viewers } placementRules recording motion placement { cameraNode sfu recorder detector problem since }';

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'cctv-bench-api-'));
  // The API rate limit out of the way: this measures the work behind it.
  const srv = await startServer(dir, { adminPassword: PASSWORD, env: { CCTV_SECURITY__LIMITS__API_PER_PRINCIPAL: '[{"max":10000000,"windowS":60}]' } });
  try {
    const t = await fetch(`${srv.base}/api/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: PASSWORD }) });
    const token = ((await t.json()) as { token: string }).token;
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const get = async (path: string) => (await fetch(`${srv.base}${path}`, { headers })).ok;
    const gql = async (query: string) => {
      const r = await fetch(`${srv.base}/api/graphql`, { method: 'POST', headers, body: JSON.stringify({ query }) });
      const body = (await r.json()) as { errors?: unknown[] };
      return r.ok && !body.errors;
    };
    // Disabled test cameras: the API's work without their ffmpegs competing for the CPU.
    for (let i = 0; i < CAMERAS; i++) {
      const r = await fetch(`${srv.base}/api/cameras`, { method: 'POST', headers, body: JSON.stringify({ id: `cam${i}`, enabled: false, source: { kind: 'test' } }) });
      if (r.status !== 201) throw new Error(`creating cam${i}: ${r.status} ${await r.text()}`);
    }

    const rest = await load(() => get('/api/cameras'));
    const graph = await load(() => gql(`{ cameras { ${CAMERA_FIELDS} } }`));
    const r = summary(rest.ms);
    const g = summary(graph.ms);
    result('api_list', {
      cameras: CAMERAS, rest_per_s: rest.ms.length / rest.elapsedS, rest_p50_ms: r.p50, rest_p95_ms: r.p95,
      graphql_per_s: graph.ms.length / graph.elapsedS, graphql_p50_ms: g.p50, graphql_p95_ms: g.p95,
      throughput_ratio: (graph.ms.length / graph.elapsedS) / (rest.ms.length / rest.elapsedS), failed: rest.failed + graph.failed,
    });

    const day = `from=${Date.now() - 86_400_000}&to=${Date.now()}`;
    const restPage = await load(async () => {
      const list = await fetch(`${srv.base}/api/cameras`, { headers });
      const cams = (await list.json()) as Array<{ id: string }>;
      const all = await Promise.all(cams.map((c) => get(`/api/cameras/${c.id}/archive/timeline?${day}`)));
      return list.ok && all.every(Boolean);
    });
    const graphPage = await load(() => gql(`{ cameras { id name status { state viewers } timeline(from: "${Date.now() - 86_400_000}", to: "${Date.now()}") { recorded { startMs endMs } gaps { startMs endMs reason } } } }`));
    const rp = summary(restPage.ms);
    const gp = summary(graphPage.ms);
    result('api_page', {
      cameras: CAMERAS, rest_requests: CAMERAS + 1, rest_pages_per_s: restPage.ms.length / restPage.elapsedS, rest_p50_ms: rp.p50, rest_p95_ms: rp.p95,
      graphql_requests: 1, graphql_pages_per_s: graphPage.ms.length / graphPage.elapsedS, graphql_p50_ms: gp.p50, graphql_p95_ms: gp.p95,
      p50_ratio: gp.p50 / rp.p50, failed: restPage.failed + graphPage.failed,
    });

    const refused = await load(async () => {
      const res = await fetch(`${srv.base}/api/graphql`, { method: 'POST', headers, body: JSON.stringify({ query: '{ cameras { events(first: 200) { events { box { x } cameraInfo { id } } } } }' }) });
      return JSON.stringify(await res.json()).includes('QUERY_TOO_COSTLY');
    });
    const rf = summary(refused.ms);
    result('api_refuse_costly', { per_s: refused.ms.length / refused.elapsedS, p50_ms: rf.p50, p95_ms: rf.p95, not_refused: refused.failed });

    // Push: CLIENTS subscribers of each kind; cam0 is enabled and disabled TOGGLES times.
    const heard = { graphql: [] as number[], ws: [] as number[] };
    let want: { state: string; at: number } | null = null;
    const gotGql = new Map<number, string>();
    const gotWs = new Map<number, string>();
    const clients: Client[] = [];
    const sockets: WebSocket[] = [];
    for (let i = 0; i < CLIENTS; i++) {
      const c = createClient({ url: `${srv.base.replace('http', 'ws')}/api/graphql`, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${token}` }, lazy: false, retryAttempts: 0 });
      clients.push(c);
      c.subscribe<{ cameraStatus: { id: string; state: string } }>({ query: 'subscription { cameraStatus(cameras: ["cam0"]) { id state } }' }, {
        next: (m) => {
          const s = m.data?.cameraStatus.state;
          if (want && s === want.state && gotGql.get(i) !== s) {
            gotGql.set(i, s);
            heard.graphql.push(performance.now() - want.at);
          }
        },
        error: (e) => console.error('graphql subscription failed', e),
        complete: () => {},
      });
      const ws = new WebSocket(`${srv.base.replace('http', 'ws')}/api/ws`, { headers: { authorization: `Bearer ${token}` } });
      sockets.push(ws);
      ws.on('message', (d) => {
        const m = JSON.parse(d.toString()) as { type: string; status?: { id: string; state: string } };
        if (want && m.type === 'status' && m.status?.id === 'cam0' && m.status.state === want.state && gotWs.get(i) !== m.status.state) {
          gotWs.set(i, m.status.state);
          heard.ws.push(performance.now() - want.at);
        }
      });
      await new Promise<void>((res, rej) => ws.once('open', () => res()).once('error', rej));
    }
    await new Promise((res) => setTimeout(res, 1000));
    for (let k = 0; k < TOGGLES; k++) {
      for (const enabled of [true, false]) {
        gotGql.clear();
        gotWs.clear();
        want = { state: enabled ? 'starting' : 'stopped', at: performance.now() };
        await fetch(`${srv.base}/api/cameras/cam0`, { method: 'PATCH', headers, body: JSON.stringify({ enabled }) });
        const deadline = performance.now() + 10_000;
        while ((gotGql.size < CLIENTS || gotWs.size < CLIENTS) && performance.now() < deadline) await new Promise((res) => setTimeout(res, 5));
        if (enabled) await new Promise((res) => setTimeout(res, 1500));
      }
    }
    const pg = summary(heard.graphql);
    const pw = summary(heard.ws);
    result('api_push', {
      clients: CLIENTS, changes: TOGGLES * 2, graphql_heard: pg.n, graphql_p50_ms: pg.p50, graphql_p95_ms: pg.p95, graphql_max_ms: pg.max,
      ws_heard: pw.n, ws_p50_ms: pw.p50, ws_p95_ms: pw.p95, ws_max_ms: pw.max, p95_ratio_vs_ws: pg.p95 / pw.p95,
    });
    for (const c of clients) await c.dispose();
    for (const s of sockets) s.close();
  } finally {
    await srv.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
