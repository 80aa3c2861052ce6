/**
 * Found by the e2e crash test: a SIGTERM while Schwab rate-limits order writes. After a 429 with
 * Retry-After every writer waits; a worker waiting there must stop at once when the service
 * stops (its intent is recorded, nothing was sent), not hold the shutdown past its bound.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { WriteBudget } from '../../src/broker/schwab/write-budget.ts';
import { Harness } from '../support/executor-harness.ts';

describe('stopping while the broker rate-limits order writes', () => {
  let harness: Harness | undefined;
  afterEach(async () => harness?.close());

  it('a wait for the write budget ends when its signal aborts', async () => {
    const budget = new WriteBudget(() => new Date());
    budget.answered(429, 60_000);
    const stop = new AbortController();
    const waiting = budget.take(stop.signal);
    setTimeout(() => stop.abort(), 50);
    const started = performance.now();
    await expect(waiting).rejects.toThrow(/aborted/i);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('the executor stops within a second while a worker waits out a 60 s Retry-After, and the next one places the order once', async () => {
    harness = await Harness.start();
    harness.sim.control.setMarketOpen(true);
    harness.sim.control.injectFault('place', { kind: 'status', status: 429, retryAfterSeconds: 60 });
    const stop = new AbortController();
    const lines: string[] = [];
    const log = pino({ level: 'info' }, new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    }));
    const following = harness.executor({ backoffMs: { min: 5, max: 40 }, log }).follow(stop.signal);
    const gme = await harness.request('GME', 'BUY', 1n);
    // The executor has read the 429 (and paused every writer), not just the simulator sent it.
    await harness.until(() => lines.some((l) => l.includes('placement outcome unknown')), 'the 429, read by the executor');
    // Another symbol's worker records its intent, then waits for the budget the 429 paused.
    const aapl = await harness.request('AAPL', 'SELL', 2n);
    await harness.until(async () => (await harness!.orderEvents(aapl)).length === 1, "AAPL's intent");
    await new Promise((resolve) => setTimeout(resolve, 100));

    const started = performance.now();
    stop.abort();
    await following;
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(harness.requests('place')).toBe(1);
    expect((await harness.orderEvents(aapl)).map((e) => e.type)).toEqual(['HedgeOrderSubmitting']);

    // A new process (a fresh budget) reconciles both intents and places each order once.
    const next = new AbortController();
    const resumed = harness.executor().follow(next.signal);
    await harness.until(async () => (await harness!.outcome(gme)) !== undefined && (await harness!.outcome(aapl)) !== undefined, 'both hedges filled');
    next.abort();
    await resumed;
    expect(harness.sim.control.orders().map((o) => `${o.instruction} ${o.quantity} ${o.symbol} ${o.status}`).sort()).toEqual(['BUY 1 GME FILLED', 'SELL 2 AAPL FILLED']);
  });
});
