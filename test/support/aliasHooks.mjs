/**
 * Module resolve hook for child processes of tests: `@cctv/*` resolves to the workspaces' TypeScript
 * sources (as vitest's alias does), so a child runs the same code as the test, not a possibly stale dist/.
 * Loaded by `tsxRegister.mjs`; tsx then compiles the .ts files.
 */
const ALIASES = {
  '@cctv/core': new URL('../../core/src/index.ts', import.meta.url).href,
  '@cctv/camera-node': new URL('../../camera-node/src/index.ts', import.meta.url).href,
  '@cctv/sfu': new URL('../../sfu/src/index.ts', import.meta.url).href,
  '@cctv/recorder': new URL('../../recorder/src/index.ts', import.meta.url).href,
  '@cctv/signaling': new URL('../../signaling/src/index.ts', import.meta.url).href,
};

export async function resolve(specifier, context, next) {
  const url = ALIASES[specifier];
  if (url) return { url, format: 'module', shortCircuit: true };
  return next(specifier, context);
}
