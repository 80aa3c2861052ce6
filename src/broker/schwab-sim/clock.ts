/**
 * The simulator's clock. Manual by default so tests are deterministic: time moves only
 * through set()/advance(). With `followWallClock` it also ticks with real time (for the CLI).
 */
export interface SimClock {
  now(): Date;
  set(date: Date): void;
  /** Moves time forward by `ms` (>= 0). */
  advance(ms: number): void;
  /** Called after every set()/advance(); returns the unsubscribe function. */
  onChange(listener: (now: Date) => void): () => void;
}

export interface SimClockOptions {
  readonly start?: Date;
  readonly followWallClock?: boolean;
}

/** Wednesday 2025-09-10 10:00 America/New_York (EDT): a weekday with the market open. */
export const DEFAULT_SIM_START = new Date('2025-09-10T14:00:00.000Z');

function checkedMs(date: Date): number {
  const ms = date.getTime();
  if (Number.isNaN(ms)) throw new RangeError('invalid date');
  return ms;
}

export function createSimClock(options: SimClockOptions = {}): SimClock {
  let base = checkedMs(options.start ?? DEFAULT_SIM_START);
  let wallAtBase = Date.now();
  const listeners = new Set<(now: Date) => void>();
  const nowMs = (): number => (options.followWallClock ? base + (Date.now() - wallAtBase) : base);
  const moveTo = (ms: number): void => {
    base = ms;
    wallAtBase = Date.now();
    for (const listener of listeners) listener(new Date(ms));
  };
  return {
    now: () => new Date(nowMs()),
    set: (date) => moveTo(checkedMs(date)),
    advance(ms) {
      if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`cannot advance the clock by ${ms} ms`);
      moveTo(nowMs() + ms);
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
