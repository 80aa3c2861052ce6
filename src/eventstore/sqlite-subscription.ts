/**
 * Catch-up subscriptions over the SQLite store: history, then live, one event per `next()`.
 *
 * When caught up, a subscription sleeps until an append through any store instance on the same
 * file in this process signals it (no polling delay), or until a backoff timer fires to pick up
 * appends by other processes (min doubling to max, reset whenever events arrive).
 */
import { setImmediate as yieldToIo } from 'node:timers/promises';
import type { RecordedEvent, Subscription } from './port.ts';
import { DONE, PageCursor, type PageSource } from './sqlite-pages.ts';

// ---- appends signalled within this process, keyed by resolved file path (or per in-memory store) ----

const listeners = new Map<string, Set<() => void>>();

function listen(key: string, wake: () => void): () => void {
  const set = listeners.get(key) ?? new Set();
  listeners.set(key, set.add(wake));
  return () => {
    set.delete(wake);
    if (set.size === 0 && listeners.get(key) === set) listeners.delete(key);
  };
}

export function signalAppend(key: string): void {
  listeners.get(key)?.forEach((wake) => wake());
}

// ---- the subscription ----

export interface SubscriptionOptions {
  readonly key: string;
  readonly pageSize: number;
  readonly pollMs: { readonly min: number; readonly max: number };
  readonly onClose: (subscription: SqliteSubscription) => void;
}

export class SqliteSubscription implements Subscription, AsyncIterableIterator<RecordedEvent> {
  private readonly cursor = new PageCursor();
  private closed = false;
  private delay: number;
  private wake: (() => void) | undefined;
  /** Overlapping next() calls run one after another, each getting the following event. */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly source: PageSource,
    private readonly options: SubscriptionOptions,
  ) {
    this.delay = options.pollMs.min;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<RecordedEvent, undefined>> {
    const result = this.tail.then(() => this.step());
    this.tail = result.catch(() => undefined);
    return result;
  }

  async return(): Promise<IteratorResult<RecordedEvent, undefined>> {
    await this.close();
    return DONE;
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.cursor.load([]);
      this.wake?.();
      this.options.onClose(this);
    }
    return Promise.resolve();
  }

  private async step(): Promise<IteratorResult<RecordedEvent, undefined>> {
    while (!this.closed) {
      const event = this.cursor.next();
      if (event !== undefined) return { value: event, done: false };
      if (this.cursor.pageDone()) await yieldToIo(); // between the pages of a catch-up (see PageCursor)
      if (!this.closed && !this.fill()) await this.sleep();
    }
    return DONE;
  }

  /** Reads the next page; a failure ends the subscription (callers resubscribe from their checkpoint). */
  private fill(): boolean {
    let rows: number;
    try {
      rows = this.cursor.load(this.source(this.options.pageSize));
    } catch (error) {
      void this.close();
      throw error;
    }
    if (rows > 0) this.delay = this.options.pollMs.min;
    return rows > 0;
  }

  private sleep(): Promise<void> {
    const { key, pollMs } = this.options;
    const ms = this.delay;
    this.delay = Math.min(ms * 2, pollMs.max);
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        unlisten();
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      const unlisten = listen(key, done);
      this.wake = done;
    });
  }
}
