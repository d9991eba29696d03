/**
 * core's Supervisor as camera-node relies on it: capped exponential backoff, reset by markHealthy(),
 * and a stop() that does not leave processes behind.
 */
import type { ChildProcess } from 'node:child_process';
import { Supervisor, createLogger, liveChildCount, type ExitInfo } from '@cctv/core';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { LogCapture, Resources, waitFor } from './testing/helpers.js';

const res = new Resources();
const logs = new LogCapture();
beforeAll(() => logs.install());
afterEach(() => res.closeAll());
afterAll(() => LogCapture.restore());

/** The `retryInMs` of every "exited, restarting" record of supervisor `name`, in order. */
function retryDelays(name: string, fromLine = 0): number[] {
  return logs.lines
    .slice(fromLine)
    .map((l) => JSON.parse(l) as { msg?: string; retryInMs?: number })
    .filter((r) => r.msg === `${name}: exited, restarting`)
    .map((r) => r.retryInMs!);
}

describe('Supervisor', () => {
  test('restart delays double from initialDelayMs, never exceed maxDelayMs, and markHealthy() resets them', async () => {
    const name = 'backoff';
    const spawns: number[] = [];
    const exits: Array<{ at: number; info: ExitInfo }> = [];
    const sup = new Supervisor({
      name,
      logger: createLogger('test:supervisor'),
      initialDelayMs: 20,
      maxDelayMs: 160,
      // Exits at once, every time: a camera that refuses every connection.
      launch: () => [{ command: 'false', args: [] }],
    });
    res.add(sup, (s) => s.close());
    sup.on('spawn', () => spawns.push(Date.now()));
    sup.on('exit', (info) => exits.push({ at: Date.now(), info }));
    sup.start();

    await waitFor('seven restarts', () => sup.restarts >= 7, 10_000);
    expect(retryDelays(name).slice(0, 7)).toEqual([20, 40, 80, 160, 160, 160, 160]);
    expect(exits.every((e) => e.info.code === 1)).toBe(true);
    // Each respawn came no sooner than the delay announced before it (a few ms of clock granularity aside).
    const delays = retryDelays(name);
    for (let i = 0; i + 1 < spawns.length && i < delays.length; i++) {
      expect(spawns[i + 1]! - exits[i]!.at).toBeGreaterThanOrEqual(delays[i]! - 5);
    }

    // The source delivered: its next failure is retried quickly again, then backs off anew.
    const mark = logs.lines.length;
    sup.markHealthy();
    await waitFor('three more restarts', () => retryDelays(name, mark).length >= 3, 10_000);
    expect(retryDelays(name, mark).slice(0, 3)).toEqual([20, 40, 80]);

    await sup.close();
    expect(sup.pids).toEqual([]);
    const settled = sup.restarts;
    // Closed means closed: no timer revives it.
    await new Promise((r) => setTimeout(r, 250));
    expect(sup.restarts).toBe(settled);
  });

  test('a launch that throws is reported as an exit with its message, and retried', async () => {
    // Regression: the error was only logged, so a camera whose executable was missing showed
    // "no video for N s" instead of what to install.
    const exits: ExitInfo[] = [];
    const sup = new Supervisor({
      name: 'no-exe',
      logger: createLogger('test:supervisor'),
      initialDelayMs: 20,
      maxDelayMs: 40,
      secrets: ['hunter2'],
      launch: () => {
        throw new Error('tool not found (token hunter2); install it with: apt-get install tool');
      },
    });
    res.add(sup, (s) => s.close());
    sup.on('exit', (info) => exits.push(info));
    sup.start();
    await waitFor('three reported failures', () => exits.length >= 3, 5000);
    expect(exits[0]!.stderr).toEqual(['tool not found (token ***); install it with: apt-get install tool']);
    expect(sup.lastExit?.stderr[0]).toContain('apt-get install tool');
    expect(sup.pids).toEqual([]);
  });

  test('stop() ends a process that reads our pipe by closing it, without waiting for SIGKILL', async () => {
    // Regression: ffmpeg fed raw frames on stdin (the timecode test camera) sits in read() and ignores
    // SIGTERM until its next frame, so every stop waited the 2 s grace and ended in SIGKILL.
    let proc: ChildProcess | undefined;
    const before = liveChildCount();
    const sup = new Supervisor({
      name: 'reader',
      logger: createLogger('test:supervisor'),
      initialDelayMs: 20,
      maxDelayMs: 40,
      // Ignores SIGTERM, as a blocked reader effectively does, and ends at end of input.
      launch: () => [{ command: 'sh', args: ['-c', 'trap "" TERM; echo reader-ready >&2; exec cat > /dev/null'], stdinPipe: true }],
      onSpawn: (procs) => {
        proc = procs[0];
      },
    });
    res.add(sup, (s) => s.close());
    sup.start();
    // Its stderr is logged at trace level: once this line is there, the trap is set.
    await waitFor('the reader to run', () => proc?.pid && logs.lines.some((l) => l.includes('reader-ready')));
    await sup.stop();
    expect(proc!.signalCode).toBeNull();
    expect(proc!.exitCode).toBe(0);
    expect(liveChildCount()).toBe(before);
  });
});
