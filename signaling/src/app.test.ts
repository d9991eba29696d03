import inject from 'light-my-request';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { routes, type AppDeps } from './app.js';
import { harness, type FakeWhep, type Harness } from './testing/harness.js';

// Routes are tested on the app itself, without a port; the database is a real embedded Postgres.
// The media side is a small fake: what is under test here is the HTTP edge. Requests are made as the
// admin, with a Bearer token (access itself is tested in access.test.ts).

let h: Harness;
let admin: Record<string, string>;
let whep: FakeWhep;
let store: Harness['store'];
let app: Harness['app'];

beforeAll(async () => {
  h = await harness();
  ({ whep, store, app } = h);
  admin = await h.token('admin');
});
afterAll(async () => {
  await h?.close();
});

const json = (method: 'POST' | 'PUT' | 'PATCH', url: string, body: unknown) =>
  inject(app, { method, url, payload: JSON.stringify(body), headers: { ...admin, 'content-type': 'application/json' } });
const get = (url: string, method: 'GET' | 'DELETE' | 'OPTIONS' = 'GET') => inject(app, { method, url, headers: admin });

describe('cameras API', () => {
  it('creates a camera and answers 201 with its Location', async () => {
    const r = await json('POST', '/api/cameras', { id: 'front', name: 'Front door', source: { kind: 'test', fps: 15 } });
    expect(r.statusCode).toBe(201);
    expect(r.headers.location).toBe('/api/cameras/front');
    expect(r.json()).toMatchObject({ id: 'front', name: 'Front door', enabled: true, source: { kind: 'test', fps: 15, width: 640 }, status: { state: 'live' } });
  });

  it('refuses a duplicate id with 409 CAMERA_EXISTS', async () => {
    const r = await json('POST', '/api/cameras', { id: 'front', source: { kind: 'test' } });
    expect(r.statusCode).toBe(409);
    expect(r.json().error).toMatchObject({ code: 'CAMERA_EXISTS', field: 'id' });
  });

  it('names the bad field of a refused camera', async () => {
    const cases: Array<[unknown, string, RegExp]> = [
      [{ id: 'a b', source: { kind: 'test' } }, 'id', /must be 1–64 letters/],
      [{ id: 'r', source: { kind: 'rtp', port: 70000, codec: 'H264', payloadType: 96 } }, 'source.port', /<= 65535/],
      [{ id: 'r', source: { kind: 'rtp', port: 5004, codec: 'VP8', payloadType: 96 } }, 'source.codec', /one of "H264", "H265"/],
      [{ id: 'r', source: { kind: 'usb' } }, 'source.kind', /./],
      [{ id: 'r', source: { kind: 'rtsp', url: 'http://x/y' } }, 'source.url', /rtsp:\/\//],
      [{ id: 'r', source: { kind: 'test' }, extra: 1 }, 'extra', /not a known key/],
      [{ source: { kind: 'test' } }, 'id', /missing/],
    ];
    for (const [body, field, message] of cases) {
      const r = await json('POST', '/api/cameras', body);
      expect(r.statusCode, JSON.stringify(body)).toBe(400);
      expect(r.json().error.code).toBe('VALIDATION_FAILED');
      expect(r.json().error.field).toBe(field);
      expect(r.json().error.message).toMatch(message);
    }
    expect((await store.list()).map((c) => c.config.id)).toEqual(['front']);
  });

  it('answers malformed JSON, a wrong Content-Type and an oversized body with their codes', async () => {
    const bad = await inject(app, { method: 'POST', url: '/api/cameras', payload: '{"id": ', headers: { ...admin, 'content-type': 'application/json' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('MALFORMED_JSON');
    const type = await inject(app, { method: 'POST', url: '/api/cameras', payload: 'id=x', headers: { ...admin, 'content-type': 'application/x-www-form-urlencoded' } });
    expect(type.statusCode).toBe(415);
    expect(type.json().error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    const big = await json('POST', '/api/cameras', { id: 'big', name: 'x'.repeat(10_000), source: { kind: 'test' } });
    expect(big.statusCode).toBe(413);
    expect(big.json().error.code).toBe('BODY_TOO_LARGE');
  });

  it('stores strings with SQL-significant characters as they are', async () => {
    const name = "O'Brien\"; DROP TABLE cameras; --";
    const r = await json('POST', '/api/cameras', { id: 'sql', name, source: { kind: 'test' } });
    expect(r.statusCode).toBe(201);
    expect((await store.get('sql'))!.config.name).toBe(name);
    expect((await get('/api/cameras/sql', 'DELETE')).statusCode).toBe(204);
  });

  it('lists, reads, replaces, patches and deletes', async () => {
    const list = await get('/api/cameras');
    expect(list.json().map((c: { id: string }) => c.id)).toEqual(['front']);
    const put = await json('PUT', '/api/cameras/front', { name: 'Front', source: { kind: 'test', fps: 10 } });
    expect(put.statusCode).toBe(200);
    expect(put.json()).toMatchObject({ name: 'Front', source: { fps: 10 }, version: 2 });
    const patch = await json('PATCH', '/api/cameras/front', { enabled: false });
    expect(patch.json()).toMatchObject({ name: 'Front', enabled: false, source: { fps: 10 }, version: 3 });
    const wrongId = await json('PUT', '/api/cameras/front', { id: 'other', source: { kind: 'test' } });
    expect(wrongId.statusCode).toBe(400);
    expect(wrongId.json().error.field).toBe('id');
    expect((await get('/api/cameras/front')).json().version).toBe(3);
  });

  it('answers 404 for unknown and malformed ids, also with path tricks', async () => {
    for (const url of ['/api/cameras/nope', '/api/cameras/..%2f..%2fetc%2fpasswd', '/api/cameras/%00']) {
      const r = await get(url);
      expect(r.statusCode, url).toBe(404);
      expect(r.json().error.code).toBe('CAMERA_NOT_FOUND');
    }
    expect((await get('/api/cameras/nope', 'DELETE')).statusCode).toBe(404);
    const unknown = await get('/api/nothing-here');
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error.code).toBe('NOT_FOUND');
  });

  it('never shows an RTSP password, and keeps it when the client sends back what it read', async () => {
    const r = await json('POST', '/api/cameras', { id: 'ip', source: { kind: 'rtsp', url: 'rtsp://admin:s3cret@10.0.0.9/stream1' } });
    expect(r.statusCode).toBe(201);
    expect(r.body).not.toContain('s3cret');
    const shown = r.json().source;
    expect(shown).toMatchObject({ url: 'rtsp://***@10.0.0.9/stream1', hasPassword: true });
    const back = await json('PUT', '/api/cameras/ip', { name: 'IP cam', source: shown });
    expect(back.statusCode).toBe(200);
    expect((await store.get('ip'))!.config.source).toMatchObject({ url: 'rtsp://admin:s3cret@10.0.0.9/stream1' });
    const elsewhere = await json('PUT', '/api/cameras/ip', { source: { ...shown, url: 'rtsp://***@10.0.0.10/stream1' } });
    expect(elsewhere.statusCode).toBe(400);
    expect(elsewhere.json().error.field).toBe('source.url');
    const sep = await json('PUT', '/api/cameras/ip', { source: { kind: 'rtsp', url: 'rtsp://10.0.0.9/s', username: 'u', password: 'p4ss' } });
    expect(sep.body).not.toContain('p4ss');
    expect(sep.json().source).toMatchObject({ username: 'u', hasPassword: true });
    expect((await get('/api/cameras')).body).not.toMatch(/s3cret|p4ss/);
  });
});

describe('WHEP door', () => {
  const offer = 'v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n';
  const post = (url: string, body = offer, type = 'application/sdp') => inject(app, { method: 'POST', url, payload: body, headers: { ...admin, 'content-type': type } });

  it('answers an offer with 201, the SDP answer and a Location to DELETE', async () => {
    whep.next = 'ok';
    const r = await post('/api/cameras/front/whep');
    expect(r.statusCode).toBe(201);
    expect(r.headers['content-type']).toMatch(/^application\/sdp/);
    expect(r.headers.location).toMatch(/^\/api\/cameras\/front\/whep\/s\d+-\w+$/);
    expect(r.body).toContain('v=0');
    const del = await get(r.headers.location as string, 'DELETE');
    expect(del.statusCode).toBe(200);
    const again = await get(r.headers.location as string, 'DELETE');
    expect(again.statusCode).toBe(404);
    expect(again.json().error.code).toBe('SESSION_NOT_FOUND');
  });

  it('maps refusals to their codes', async () => {
    expect((await post('/api/cameras/nope/whep')).json().error.code).toBe('CAMERA_NOT_FOUND');
    const type = await post('/api/cameras/front/whep', offer, 'application/json');
    expect(type.statusCode).toBe(415);
    whep.next = 'bad-sdp';
    const bad = await post('/api/cameras/front/whep');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({ code: 'BAD_SDP', field: 'sdp' });
    whep.next = 'codec';
    const codec = await post('/api/cameras/front/whep');
    expect(codec.statusCode).toBe(406);
    expect(codec.json().error.code).toBe('UNSUPPORTED_CODEC');
    whep.next = 'offline';
    const off = await post('/api/cameras/front/whep');
    expect(off.statusCode).toBe(503);
    expect(off.headers['retry-after']).toBe('2');
    expect(off.json().error.code).toBe('CAMERA_OFFLINE');
    const big = await post('/api/cameras/front/whep', offer + 'a=x:' + 'y'.repeat(70_000) + '\r\n');
    expect(big.statusCode).toBe(413);
    whep.next = 'ok';
  });

  it('says PATCH is not supported, with Allow', async () => {
    const r = await inject(app, { method: 'PATCH', url: '/api/cameras/front/whep/s1', payload: 'a=candidate:1', headers: { ...admin, 'content-type': 'application/trickle-ice-sdpfrag' } });
    expect(r.statusCode).toBe(405);
    expect(r.headers.allow).toBe('DELETE');
  });
});

describe('WHIP door', () => {
  const offer = 'v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\n';
  const post = (url: string, body = offer, type = 'application/sdp') => inject(app, { method: 'POST', url, payload: body, headers: { ...admin, 'content-type': type } });

  it('answers a publisher of a whip camera with 201, the SDP answer and a Location to DELETE, and audits it', async () => {
    if (!(await store.get('tab'))) await store.create({ id: 'tab', source: { kind: 'whip' } });
    whep.next = 'ok';
    const r = await post('/api/cameras/tab/whip');
    expect(r.statusCode).toBe(201);
    expect(r.headers['content-type']).toMatch(/^application\/sdp/);
    expect(r.headers.location).toMatch(/^\/api\/cameras\/tab\/whip\/s\d+-\w+$/);
    expect(r.body).toContain('v=0');
    const audited = async () => (await h.auth.audit.search({ limit: 20 })).some((e) => e.action === 'live.publish_started' && e.cameraId === 'tab');
    await vi.waitFor(async () => expect(await audited()).toBe(true));
    const del = await get(r.headers.location as string, 'DELETE');
    expect(del.statusCode).toBe(200);
    const again = await get(r.headers.location as string, 'DELETE');
    expect(again.json().error.code).toBe('SESSION_NOT_FOUND');
  });

  it('refuses a camera that is not a whip camera, and bad offers', async () => {
    const notWhip = await post('/api/cameras/front/whip');
    expect(notWhip.statusCode).toBe(409);
    expect(notWhip.json().error.code).toBe('NOT_WHIP_CAMERA');
    expect((await post('/api/cameras/nope/whip')).json().error.code).toBe('CAMERA_NOT_FOUND');
    whep.next = 'bad-sdp';
    const bad = await post('/api/cameras/tab/whip');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('BAD_SDP');
    whep.next = 'codec';
    expect((await post('/api/cameras/tab/whip')).json().error.code).toBe('UNSUPPORTED_CODEC');
    whep.next = 'ok';
    const r = await inject(app, { method: 'PATCH', url: '/api/cameras/tab/whip/s1', payload: 'a=candidate:1', headers: { ...admin, 'content-type': 'application/trickle-ice-sdpfrag' } });
    expect(r.statusCode).toBe(405);
    expect(r.headers.allow).toBe('DELETE');
  });
});

describe('route table', () => {
  it('answers 405 with Allow for a method a path does not have, and OPTIONS with the methods', async () => {
    const r = await inject(app, { method: 'PUT', url: '/api/cameras', headers: admin });
    expect(r.statusCode).toBe(405);
    expect(r.headers.allow).toBe('GET, POST');
    const o = await get('/api/cameras/front/whep', 'OPTIONS');
    expect(o.statusCode).toBe(204);
    expect(o.headers.allow).toBe('POST, OPTIONS');
  });

  it('serves health and metrics', async () => {
    const health = await inject(app, { method: 'GET', url: '/api/health' });
    expect(health.json()).toMatchObject({ status: 'ok', version: 'test', database: 'pglite' });
    const m = await get('/metrics');
    expect(m.statusCode).toBe(200);
    expect(m.headers['content-type']).toMatch(/^text\/plain/);
  });

  it('has a summary for every route, and no route twice', () => {
    const table = routes({} as AppDeps);
    const keys = table.map((r) => `${r.method} ${r.path}`);
    expect(new Set(keys).size).toBe(keys.length);
    for (const r of table) expect(r.summary.length, `${r.method} ${r.path}`).toBeGreaterThan(10);
  });
});
