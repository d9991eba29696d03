/**
 * `node --import ./tsxRegister.mjs child.ts`: runs a TypeScript child of a test with the root's tsx and
 * the workspace aliases of vitest.config.ts.
 */
import { register } from 'node:module';
import 'tsx';

register('./aliasHooks.mjs', import.meta.url);
