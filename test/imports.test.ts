import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The import rules of docs/architecture.md: every workspace may import core; core imports none of them;
 * camera-node, sfu and recorder never import signaling or each other (they talk over the bus, HTTP and
 * RTP, so each can run on another machine); signaling may import the roles to start them in one process;
 * web imports nothing server-side. Packages are entered only through their one door (`@cctv/x`).
 */
const ROOT = resolve(import.meta.dirname, '..');
const ALLOWED: Record<string, string[]> = {
  core: [],
  'camera-node': ['core'],
  sfu: ['core'],
  recorder: ['core'],
  signaling: ['core', 'camera-node', 'sfu', 'recorder'],
  web: [],
};

function files(dir: string): string[] {
  let out: string[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const e of entries) {
    if (e === 'node_modules' || e === 'dist') continue;
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out = out.concat(files(p));
    else if (/\.(ts|tsx|mts|js|mjs)$/.test(e)) out.push(p);
  }
  return out;
}

const SPEC = /(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|import\s+['"]([^'"]+)['"]/g;

function specifiers(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(SPEC)].map((m) => m[1] ?? m[2] ?? m[3]!).filter(Boolean);
}

/** Every rule broken in the tree, as `file: specifier (why)`. */
function violations(root = ROOT): string[] {
  const out: string[] = [];
  for (const [ws, allowed] of Object.entries(ALLOWED)) {
    const wsDir = join(root, ws);
    for (const f of files(join(wsDir, 'src'))) {
      for (const spec of specifiers(f)) {
        const rel = relative(root, f);
        const pkg = /^@cctv\/([a-z-]+)(\/.*)?$/.exec(spec);
        if (pkg) {
          if (pkg[2]) out.push(`${rel}: ${spec} (enter a package only by its door, '@cctv/${pkg[1]}')`);
          if (pkg[1] !== ws && !allowed.includes(pkg[1]!)) out.push(`${rel}: ${spec} (${ws} may not import ${pkg[1]})`);
          continue;
        }
        if (spec.startsWith('.')) {
          // Tests and their support files may share test helpers across folders; shipped code may not.
          const testOnly = /\.test\.ts$/.test(f) || f.includes(`${sep}testing${sep}`);
          const target = resolve(join(f, '..'), spec);
          if (!target.startsWith(wsDir + sep) && !(testOnly && /(\/testing\/|\/test\/support\/)/.test(target))) out.push(`${rel}: ${spec} (reaches outside ${ws}/)`);
          continue;
        }
        if (ws === 'web' && (spec.startsWith('node:') || ['express', 'ws', 'werift', 'pino', 'postgres', 'redis'].includes(spec.split('/')[0]!))) {
          out.push(`${rel}: ${spec} (web imports nothing server-side)`);
        }
      }
    }
  }
  return out;
}

describe('import rules', () => {
  it('holds for every workspace', () => {
    expect(violations()).toEqual([]);
  });

  it('catches a role importing another role, a deep import and a relative escape', async () => {
    const { mkdtempSync, mkdirSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const root = mkdtempSync(join(tmpdir(), 'cctv-imports-'));
    try {
      mkdirSync(join(root, 'sfu', 'src'), { recursive: true });
      writeFileSync(join(root, 'sfu', 'src', 'a.ts'), "import { x } from '@cctv/camera-node';\nimport { y } from '@cctv/core/src/log.js';\nimport { z } from '../../signaling/src/app.js';\n");
      mkdirSync(join(root, 'web', 'src'), { recursive: true });
      writeFileSync(join(root, 'web', 'src', 'b.ts'), "import fs from 'node:fs';\n");
      const v = violations(root);
      expect(v).toHaveLength(4);
      expect(v.join('\n')).toMatch(/sfu may not import camera-node/);
      expect(v.join('\n')).toMatch(/only by its door/);
      expect(v.join('\n')).toMatch(/reaches outside sfu/);
      expect(v.join('\n')).toMatch(/web imports nothing server-side/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('declares every @cctv import as a dependency', () => {
    const missing: string[] = [];
    for (const ws of Object.keys(ALLOWED)) {
      let pkg: { dependencies?: Record<string, string> };
      try {
        pkg = JSON.parse(readFileSync(join(ROOT, ws, 'package.json'), 'utf8'));
      } catch {
        continue;
      }
      const used = new Set(files(join(ROOT, ws, 'src')).flatMap(specifiers).filter((s) => s.startsWith('@cctv/') && s !== `@cctv/${ws}`));
      for (const u of used) if (!pkg.dependencies?.[u]) missing.push(`${ws}/package.json lacks ${u}`);
    }
    expect(missing).toEqual([]);
  });
});
