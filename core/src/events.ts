import { EventEmitter } from 'node:events';

type EventMap = Record<string, unknown[]>;

/**
 * An EventEmitter typed by an event map, whose `safeEmit` cannot be broken by a listener that throws
 * (the error is reported on `listenererror` instead), after mediasoup's EnhancedEventEmitter.
 */
export class TypedEmitter<E extends EventMap> {
  readonly #ee = new EventEmitter({ captureRejections: false });
  #onListenerError: ((event: string, error: unknown) => void) | undefined;

  constructor() {
    this.#ee.setMaxListeners(Infinity);
  }

  /** Called with the event name and the error when a listener throws; defaults to ignoring it. */
  set onListenerError(fn: ((event: string, error: unknown) => void) | undefined) {
    this.#onListenerError = fn;
  }

  on<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    this.#ee.on(event, listener as (...args: unknown[]) => void);
    return this;
  }

  once<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    this.#ee.once(event, listener as (...args: unknown[]) => void);
    return this;
  }

  off<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    this.#ee.off(event, listener as (...args: unknown[]) => void);
    return this;
  }

  listenerCount<K extends keyof E & string>(event: K): number {
    return this.#ee.listenerCount(event);
  }

  /** Calls every listener; one that throws does not stop the others. Returns whether any listened. */
  safeEmit<K extends keyof E & string>(event: K, ...args: E[K]): boolean {
    const listeners = this.#ee.rawListeners(event) as Array<(...a: unknown[]) => void>;
    for (const l of listeners) {
      try {
        l.apply(this, args);
      } catch (error) {
        try {
          this.#onListenerError?.(event, error);
        } catch {
          // a broken error handler must not break the emitter either
        }
      }
    }
    // once() wrappers remove themselves when called through rawListeners' wrapper.
    return listeners.length > 0;
  }

  /** Drops every listener, so closures held by listeners do not pin memory after close. */
  removeAllListeners(): void {
    this.#ee.removeAllListeners();
  }
}
