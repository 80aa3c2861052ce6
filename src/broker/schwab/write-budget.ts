/**
 * Schwab's order-write limit (place, replace, cancel: 120 a minute per app), kept on our
 * side so we wait instead of collecting 429s. The window runs on the injected clock (the
 * broker's minute; a simulator's clock may run faster than the wall), re-checked in short
 * naps. A 429 pauses every writer for Retry-After, a real duration, or else for an interval
 * that doubles with each 429 in a row.
 */
import { setTimeout as sleep } from 'node:timers/promises';

const ORDER_WRITES_PER_MINUTE = 120;
const WINDOW_MS = 60_000;
const MAX_NAP_MS = 250;
const FIRST_THROTTLE_MS = 100;
const MAX_THROTTLE_MS = 30_000;

export class WriteBudget {
  private readonly writes: number[] = [];
  /** Wall-clock ms before which nobody writes (after a 429). */
  private pausedUntil = 0;
  private throttlesInARow = 0;

  constructor(private readonly now: () => Date) {}

  /** Resolves when one more write fits, and counts it; rejects (AbortError) if `signal` aborts first. */
  async take(signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const paused = this.pausedUntil - Date.now();
      const wait = paused > 0 ? paused : this.reserve(this.now().getTime());
      if (wait <= 0) return;
      await sleep(Math.min(wait, MAX_NAP_MS), undefined, { signal });
    }
  }

  /** How the broker answered a write: a 429 pauses every writer, anything else ends a run of them. */
  answered(status: number, retryAfterMs: number | undefined): void {
    if (status !== 429) {
      this.throttlesInARow = 0;
      return;
    }
    const pause = retryAfterMs ?? Math.min(MAX_THROTTLE_MS, FIRST_THROTTLE_MS * 2 ** this.throttlesInARow);
    this.throttlesInARow++;
    this.pausedUntil = Math.max(this.pausedUntil, Date.now() + pause);
  }

  /** Counts a write at `at` and returns 0, or returns how long to wait first. */
  private reserve(at: number): number {
    while (this.writes.length > 0 && this.writes[0]! <= at - WINDOW_MS) this.writes.shift();
    if (this.writes.length >= ORDER_WRITES_PER_MINUTE) return this.writes[0]! + WINDOW_MS - at;
    this.writes.push(at);
    return 0;
  }
}
