/** The simulator's state, shared by the HTTP handlers and the control API. */
import { createHash } from 'node:crypto';
import type { SimClock } from './clock.ts';
import { FaultPlan } from './faults.ts';
import { Journal } from './journal.ts';
import type { AccountInfo } from './model.ts';
import { OAuthServer, type OAuthConfig } from './oauth.ts';
import { OrderBook } from './orders.ts';
import { SlidingWindowLimiter } from './rate-limit.ts';

/** Schwab allows 120 order writes (place, replace, cancel) a minute per app. */
export const ORDER_WRITES_PER_MINUTE = 120;

export interface SimCore {
  readonly clock: SimClock;
  readonly book: OrderBook;
  readonly oauth: OAuthServer;
  readonly faults: FaultPlan;
  readonly journal: Journal;
  readonly writeLimiter: SlidingWindowLimiter;
  readonly account: AccountInfo;
  /** Known once the server listens; Location headers are absolute. */
  baseUrl: string;
}

export interface CoreConfig extends OAuthConfig {
  readonly clock: SimClock;
  readonly accountNumber: string;
  readonly seed: number;
  readonly cancelLatencyMs: number;
}

export function createCore(config: CoreConfig): SimCore {
  return {
    clock: config.clock,
    book: new OrderBook(config.clock.now().getTime(), config.cancelLatencyMs),
    oauth: new OAuthServer(config),
    faults: new FaultPlan(config.seed),
    journal: new Journal(),
    writeLimiter: new SlidingWindowLimiter(ORDER_WRITES_PER_MINUTE, 60_000),
    account: {
      accountNumber: config.accountNumber,
      hashValue: createHash('sha256').update(config.accountNumber).digest('hex').toUpperCase(),
    },
    baseUrl: '',
  };
}

/**
 * Plays the order book up to the clock's now and returns it. A manual clock already
 * pushes every change; this catches up a wall-following clock before each use.
 */
export function syncToClock(core: SimCore): number {
  const now = core.clock.now().getTime();
  core.book.advanceTo(now);
  return now;
}
