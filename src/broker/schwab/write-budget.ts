/**
 * Schwab's order-write limit (place, replace, cancel: 120 a minute per app), kept on our
 * side so we wait instead of collecting 429s. The window runs on the injected clock (the
 * broker's minute; a simulator's clock may run faster than the wall), re-checked in short
 * naps. A write counts from when it is sent until its request ends, and from then on: Schwab
 * received it at some point in between, so a minute that starts at the send could end before
 * Schwab's does. A 429 pauses every writer for Retry-After, a real duration, or else for an
 * interval that doubles with each 429 in a row.
 */
import { setTimeout as sleep } from 'node:timers/promises';

const ORDER_WRITES_PER_MINUTE = 120;
const WINDOW_MS = 60_000;
const MAX_NAP_MS = 250;
const FIRST_THROTTLE_MS = 100;
const MAX_THROTTLE_MS = 30_000;

/** One write the budget counts, at `at` on the broker's clock. */
interface Write {
  at: number;
}

/** What the budget reads of a write's answer. */
interface WriteAnswer {
  readonly status: number;
  readonly retryAfterMs: number | undefined;
}

export class WriteBudget {
  private writes: Write[] = [];
  /** Wall-clock ms before which nobody writes (after a 429). */
  private pausedUntil = 0;
  private throttlesInARow = 0;

  constructor(private readonly now: () => Date) {}

  /**
   * Sends one write once it fits (rejects with an AbortError if `signal` aborts first), counts it until its request
   * ends, and notes its answer.
   */
  async write<A extends WriteAnswer>(request: () => Promise<A>, signal?: AbortSignal): Promise<A> {
    const write = await this.take(signal);
    let answer: A;
    try {
      answer = await request();
    } finally {
      this.ended(write);
    }
    this.answered(answer.status, answer.retryAfterMs);
    return answer;
  }

  /** Resolves when one more write fits, and counts it (`write` sends one within the budget); rejects (AbortError) if `signal` aborts first. */
  async take(signal?: AbortSignal): Promise<Write> {
    for (;;) {
      signal?.throwIfAborted();
      const paused = this.pausedUntil - Date.now();
      const reserved = paused > 0 ? paused : this.reserve(this.now().getTime());
      if (typeof reserved !== 'number') return reserved;
      await sleep(Math.min(reserved, MAX_NAP_MS), undefined, { signal });
    }
  }

  /** The write's request has ended, answered or not: it counts from now. */
  private ended(write: Write): void {
    write.at = Math.max(write.at, this.now().getTime());
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

  /** Counts a write at `at` and returns it, or returns how long to wait first. */
  private reserve(at: number): Write | number {
    this.writes = this.writes.filter((w) => w.at > at - WINDOW_MS);
    if (this.writes.length >= ORDER_WRITES_PER_MINUTE) return Math.min(...this.writes.map((w) => w.at)) + WINDOW_MS - at;
    const write = { at };
    this.writes.push(write);
    return write;
  }
}
