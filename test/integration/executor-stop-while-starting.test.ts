/**
 * Found by the e2e crash test under CPU load: a SIGTERM while the service was still starting.
 * The execute role starts its executor only once the executor lock is taken, and the executor
 * first catches up on the order streams; a stop that lands before it has subscribed (while it
 * takes the lock, or while it catches up) must still stop it. It used to be missed: the
 * executor listened for an abort that had already happened, followed the store for ever, and
 * the service hung until its shutdown bound and exited 1.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { Harness } from '../support/executor-harness.ts';

/** Whether `following` ends within `ms` (a follow that missed its stop never does). */
async function stopsWithin(following: Promise<void>, ms: number): Promise<'stopped' | 'still following'> {
  following.catch(() => undefined); // still following when the harness closes the store: that failure is not this test's
  return Promise.race([following.then(() => 'stopped' as const), sleep(ms).then(() => 'still following' as const)]);
}

describe('an executor told to stop before it has subscribed', () => {
  let harness: Harness;
  afterEach(() => harness.close());

  it('told to stop while it catches up (a SIGTERM as the service starts): it stops, and places nothing', async () => {
    harness = await Harness.start();
    harness.sim.control.setMarketOpen(true);
    const commandId = await harness.request('GME', 'BUY', 1n);
    const stop = new AbortController();
    const following = harness.executor().follow(stop.signal);
    stop.abort(); // follow() is reading the order streams: it has not subscribed yet
    expect(await stopsWithin(following, 2_000)).toBe('stopped');
    expect(harness.requests('place')).toBe(0);
    expect(await harness.orderEvents(commandId)).toEqual([]);
  });

  it('started with a signal already aborted (the stop came while the executor lock was being taken): it returns', async () => {
    harness = await Harness.start();
    await harness.request('GME', 'BUY', 1n);
    expect(await stopsWithin(harness.executor().follow(AbortSignal.abort()), 2_000)).toBe('stopped');
    expect(harness.requests('place')).toBe(0);
  });
});
