/** Per-call retry: exponential backoff with full jitter, under an overall deadline that fails loudly. */
import { setTimeout as sleep } from 'node:timers/promises';

export interface Backoff {
  /** Give up (DeadlineExceeded) rather than wait past this long since the first attempt. */
  readonly deadlineMs: number;
  readonly baseMs: number;
  readonly maxMs: number;
  /** In [0, 1); seeded in tests. */
  readonly random: () => number;
}

export const backoff = (deadlineMs: number, random: () => number = Math.random): Backoff => ({ deadlineMs, baseMs: 100, maxMs: 5_000, random });

/** The last error is described in the message, not attached: a transport's error may carry the endpoint's URL, and its key. */
export class DeadlineExceeded extends Error {
  override readonly name = 'DeadlineExceeded';
  constructor(what: string, attempts: number, elapsedMs: number, why: string) {
    super(`${what}: still failing after ${attempts} attempts in ${(elapsedMs / 1000).toFixed(1)} s (deadline): ${why}`);
  }
}

const firstLine = (e: unknown): string => (e instanceof Error ? e.message.split('\n')[0]! : String(e));

/** Full jitter (AWS): uniform in [0, min(max, base·2^attempt)), so retrying clients spread out. */
const retryDelay = (b: Backoff, attempt: number): number => b.random() * Math.min(b.maxMs, b.baseMs * 2 ** attempt);

export interface RetryOptions {
  readonly backoff: Backoff;
  readonly retryable: (error: unknown) => boolean;
  readonly onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  /** One line on what went wrong, for the deadline error; default the message's first line. */
  readonly describe?: (error: unknown) => string;
  readonly signal?: AbortSignal | undefined;
}

/** Node fires a timer set longer than this after 1 ms: a deadline of weeks must not end every call at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The deadline passed while an attempt was still waiting for its answer. */
class OutOfTime extends Error {
  override readonly name = 'OutOfTime';
}

/**
 * One attempt, given up after `ms` or when `signal` aborts: its signal aborts, and it is not
 * awaited any further (not every transport heeds a signal: viem's websocket does not).
 */
async function attemptWithin<T>(op: (signal: AbortSignal) => Promise<T>, ms: number, signal: AbortSignal | undefined): Promise<T> {
  const attempt = new AbortController();
  const given = new Promise<never>((_, reject) => attempt.signal.addEventListener('abort', () => reject(attempt.signal.reason as Error), { once: true }));
  // A listener removed after the attempt, not AbortSignal.any: on Node 20 every any() stays attached to the long-lived signal.
  const stop = () => attempt.abort(signal?.reason);
  signal?.addEventListener('abort', stop, { once: true });
  const timer = setTimeout(() => attempt.abort(new OutOfTime()), Math.min(ms, MAX_TIMER_MS));
  try {
    return await Promise.race([op(attempt.signal), given]);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', stop);
  }
}

/**
 * Runs `op` until it succeeds, fails with a non-retryable error, or the deadline would pass. An
 * attempt gets only the time left: one may try several fallback endpoints, each with its own timeout.
 */
export async function retrying<T>(what: string, op: (signal: AbortSignal) => Promise<T>, options: RetryOptions): Promise<T> {
  const started = performance.now();
  const describe = options.describe ?? firstLine;
  let previous: unknown;
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted(); // a stopped caller sends nothing more
    try {
      return await attemptWithin(op, options.backoff.deadlineMs - (performance.now() - started), options.signal);
    } catch (error) {
      options.signal?.throwIfAborted();
      const elapsed = performance.now() - started;
      if (error instanceof OutOfTime) throw new DeadlineExceeded(what, attempt, elapsed, `no answer by the deadline${previous === undefined ? '' : ` (the attempt before: ${describe(previous)})`}`);
      if (!options.retryable(error)) throw error;
      previous = error;
      const delay = retryDelay(options.backoff, attempt - 1);
      if (elapsed + delay > options.backoff.deadlineMs) throw new DeadlineExceeded(what, attempt, elapsed, describe(error));
      options.onRetry?.(error, attempt, delay);
      await sleep(delay, undefined, { signal: options.signal });
    }
  }
}
