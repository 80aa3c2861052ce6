/** The order-write budget (120 a minute, on the broker's clock) and the executor's timing rules. */
import { describe, expect, it } from 'vitest';
import { WriteBudget } from '../../src/broker/schwab/write-budget.ts';
import { tradingMsBetween } from '../../src/broker/market-hours.ts';
import { jittered } from '../../src/services/executor-worker.ts';
import { backoffDelay } from '../../src/backoff.ts';

const MINUTE = 60_000;
const at = (iso: string): number => Date.parse(iso);
const settled = async (p: Promise<unknown>): Promise<boolean> => Promise.race([p.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 30))]);

describe('WriteBudget', () => {
  it('lets 120 writes through per minute of the broker’s clock; the 121st waits for the window', async () => {
    let now = at('2025-09-10T14:00:00Z');
    const budget = new WriteBudget(() => new Date(now));
    for (let i = 0; i < 120; i++) await budget.take();
    const next = budget.take();
    expect(await settled(next)).toBe(false);
    now += MINUTE - 1;
    expect(await settled(next)).toBe(false);
    now += 1;
    await next;
  });

  it('after a 429 every writer waits Retry-After, or a pause that doubles with each 429 in a row', async () => {
    const budget = new WriteBudget(() => new Date());
    const timed = async () => {
      const started = performance.now();
      await budget.take();
      return performance.now() - started;
    };
    budget.answered(429, 300);
    expect(await timed()).toBeGreaterThanOrEqual(290);
    budget.answered(429, undefined);
    expect(await timed()).toBeGreaterThanOrEqual(90);
    budget.answered(429, undefined);
    expect(await timed()).toBeGreaterThanOrEqual(190);
    budget.answered(201, undefined); // a write went through: the next 429 starts over at 100 ms, not 400
    budget.answered(429, undefined);
    expect(await timed()).toBeLessThan(300);
  });
});

describe('open-order deadline: only regular trading hours count', () => {
  it('counts 09:30–16:00 New York on weekdays', () => {
    expect(tradingMsBetween(at('2025-09-10T14:00:00Z'), at('2025-09-10T14:06:00Z'))).toBe(6 * MINUTE);
    expect(tradingMsBetween(at('2025-09-10T12:00:00Z'), at('2025-09-10T13:45:00Z'))).toBe(15 * MINUTE); // queued from 08:00
    expect(tradingMsBetween(at('2025-09-12T19:50:00Z'), at('2025-09-15T13:40:00Z'))).toBe(20 * MINUTE); // Friday's last 10 min, Monday's first 10
    expect(tradingMsBetween(at('2025-09-13T12:00:00Z'), at('2025-09-14T23:00:00Z'))).toBe(0); // a weekend
  });
});

describe('retry timing', () => {
  it('backs off exponentially with jitter, capped, never under Retry-After', () => {
    for (let attempt = 0; attempt < 12; attempt++) {
      const cap = Math.min(1000, 10 * 2 ** attempt);
      const delay = backoffDelay(attempt, { min: 10, max: 1000 });
      expect(delay).toBeGreaterThanOrEqual(cap / 2);
      expect(delay).toBeLessThanOrEqual(cap);
    }
    expect(backoffDelay(0, { min: 10, max: 1000 }, 5000)).toBe(5000);
  });

  it('spreads polls ±20%', () => {
    const seen = Array.from({ length: 200 }, () => jittered(1000));
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(800);
    expect(Math.max(...seen)).toBeLessThanOrEqual(1200);
    expect(new Set(seen).size).toBeGreaterThan(100);
  });
});
