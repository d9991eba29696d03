import client from 'prom-client';

/**
 * The process's Prometheus registry. Every module registers its metrics here, once, by name;
 * `/metrics` on each process serves `registry.metrics()`.
 */
export const registry = new client.Registry();
let defaultsCollected = false;

/** Adds process metrics (CPU, memory, event loop lag, handles) once per process. */
export function collectDefaultMetrics(): void {
  if (defaultsCollected) return;
  defaultsCollected = true;
  client.collectDefaultMetrics({ register: registry, prefix: 'cctv_process_' });
}

function existing<T>(name: string): T | undefined {
  return registry.getSingleMetric(name) as T | undefined;
}

/** A counter registered once by name; a second call with the same name returns the first. */
export function counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []): client.Counter<L> {
  return existing<client.Counter<L>>(name) ?? new client.Counter<L>({ name, help, labelNames, registers: [registry] });
}

/** A gauge registered once by name; `collect` runs at every scrape. */
export function gauge<L extends string>(
  name: string,
  help: string,
  labelNames: readonly L[] = [],
  collect?: (this: client.Gauge<L>) => void | Promise<void>,
): client.Gauge<L> {
  return (
    existing<client.Gauge<L>>(name) ??
    new client.Gauge<L>({ name, help, labelNames, registers: [registry], ...(collect ? { collect } : {}) })
  );
}

/** A histogram registered once by name. `buckets` in the metric's unit. */
export function histogram<L extends string>(
  name: string,
  help: string,
  labelNames: readonly L[] = [],
  buckets?: number[],
): client.Histogram<L> {
  return (
    existing<client.Histogram<L>>(name) ??
    new client.Histogram<L>({ name, help, labelNames, registers: [registry], ...(buckets ? { buckets } : {}) })
  );
}

/** The text exposition format served at `/metrics`. */
export async function metricsText(): Promise<{ contentType: string; body: string }> {
  return { contentType: registry.contentType, body: await registry.metrics() };
}
