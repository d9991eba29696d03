import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.js';
import { loadConfig } from './load.js';

const dir = mkdtempSync(join(tmpdir(), 'cctv-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function failure(fn: () => unknown): ValidationError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
  throw new Error('expected a ValidationError');
}

describe('loadConfig', () => {
  it('has defaults for everything, frozen', () => {
    const c = loadConfig({ env: {} });
    expect(c.http.port).toBe(8080);
    expect(c.dataDir).toBe('./data');
    expect(c.sfu.playoutDelay).toEqual({ minMs: 0, maxMs: 0 });
    expect(c.cameraNode.reconnect.maxDelayMs).toBe(1000);
    expect(Object.isFrozen(c.http)).toBe(true);
  });

  it('reads YAML and JSON files', () => {
    const y = loadConfig({ env: {}, file: file('a.yaml', 'http:\n  port: 9000\ncameras:\n  - id: front\n    source: { kind: test, fps: 15 }\n') });
    expect(y.http.port).toBe(9000);
    expect(y.cameras[0]!.source).toMatchObject({ kind: 'test', fps: 15, width: 640 });
    const j = loadConfig({ env: {}, file: file('a.json', JSON.stringify({ dataDir: '/srv/cctv' })) });
    expect(j.dataDir).toBe('/srv/cctv');
  });

  it('lets the environment override the file: aliases and the generic form', () => {
    const c = loadConfig({
      file: file('b.yaml', 'http:\n  port: 9000\n'),
      env: { CCTV_PORT: '9100', CCTV_DATA_DIR: '/tmp/x', CCTV_SFU__ICE__LOOPBACK: 'true', CCTV_SFU__ICE__HOST_ADDRESSES: '10.0.0.2, 10.0.0.3', DATABASE_URL: 'postgres://u@h/db' },
    });
    expect(c.http.port).toBe(9100);
    expect(c.dataDir).toBe('/tmp/x');
    expect(c.sfu.ice.loopback).toBe(true);
    expect(c.sfu.ice.hostAddresses).toEqual(['10.0.0.2', '10.0.0.3']);
    expect(c.database.url).toBe('postgres://u@h/db');
  });

  it('names an unknown key and lists the known ones', () => {
    const e = failure(() => loadConfig({ env: {}, file: file('c.yaml', 'http:\n  prot: 80\n') }));
    expect(e.message).toContain("'http.prot' is not a known key");
    expect(e.message).toContain('port');
    expect(e.path).toBe('http.prot');
  });

  it('names a bad value and what is allowed', () => {
    expect(failure(() => loadConfig({ env: { CCTV_PORT: '70000' } })).message).toContain("'http.port' must be <= 65535");
    expect(failure(() => loadConfig({ env: { CCTV_LOG_LEVEL: 'loud' } })).message).toMatch(/'log.level' must be one of "trace", .*"silent"/);
    const cam = failure(() => loadConfig({ env: {}, file: file('d.yaml', 'cameras:\n  - id: a\n    source: { kind: rtp, port: 5004, codec: VP8, payloadType: 96 }\n') }));
    expect(cam.message).toContain("'cameras[0].source.codec' must be one of \"H264\", \"H265\"");
    const kind = failure(() => loadConfig({ env: {}, file: file('e.yaml', 'cameras:\n  - id: a\n    source: { kind: usb }\n') }));
    expect(kind.message).toContain("'cameras[0].source.kind'");
  });

  it('names an unknown key inside a camera source of a given kind', () => {
    const e = failure(() => loadConfig({ env: {}, file: file('f.yaml', 'cameras:\n  - id: a\n    source: { kind: rtsp, url: "rtsp://h/x", fps: 5 }\n') }));
    expect(e.message).toContain("'cameras[0].source.fps' is not a known key (known: kind, url, transport, username, password)");
  });

  it('refuses an unknown CCTV_ variable by the key it would set', () => {
    expect(failure(() => loadConfig({ env: { CCTV_SFU__NOPE: '1' } })).message).toContain("'sfu.nope' is not a known key");
  });

  it('says which file does not parse', () => {
    const p = file('g.yaml', 'http: [\n');
    expect(failure(() => loadConfig({ env: {}, file: p })).message).toContain(`config file ${p} does not parse`);
    expect(failure(() => loadConfig({ env: {}, file: join(dir, 'missing.yaml') })).message).toContain('cannot read config file');
  });

  it('checks playout delay bounds against each other', () => {
    expect(failure(() => loadConfig({ env: { CCTV_SFU__PLAYOUT_DELAY__MIN_MS: '500', CCTV_SFU__PLAYOUT_DELAY__MAX_MS: '100' } })).message).toContain('minMs must be <= maxMs');
  });
});
