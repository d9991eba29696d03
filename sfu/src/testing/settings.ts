import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigSchema, type Config, type ConfigInput } from '@cctv/core';

type SfuInput = NonNullable<ConfigInput['sfu']>;

/** The `sfu` config section for tests: loopback ICE on 127.0.0.1 only, plus what the test overrides. */
export function testSettings(overrides: SfuInput = {}): Config['sfu'] {
  return ConfigSchema.parse({
    sfu: {
      ...overrides,
      ice: { loopback: true, hostAddresses: ['127.0.0.1'], ...overrides.ice },
    },
  }).sfu;
}

/** A fresh folder for the SFU's runtime files; `remove()` deletes it. */
export function tempDataDir(): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), 'cctv-sfu-test-'));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}
