import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls `cond` every 20 ms until it holds; throws after `timeoutMs` (a bound on the wait, not an
 * assertion about speed) with `describe()` saying what was seen.
 */
export async function waitFor(cond: () => boolean, timeoutMs: number, describe?: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms${describe ? `: ${describe()}` : ''}`);
    await sleep(20);
  }
}

/** Rejects with a message naming `what` when `p` has not settled within `ms`. */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs cleanups in reverse order of registration, all of them even when some throw. */
export class Cleanup {
  readonly #fns: Array<() => unknown> = [];

  add(fn: () => unknown): void {
    this.#fns.push(fn);
  }

  async run(): Promise<void> {
    const errors: unknown[] = [];
    while (this.#fns.length) {
      const fn = this.#fns.pop()!;
      try {
        await fn();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length) throw new AggregateError(errors, 'cleanup failed');
  }
}
