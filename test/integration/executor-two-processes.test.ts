/**
 * Two executors at once (real processes) on one SQLite file and the Schwab simulator over HTTP.
 * operations.md forbids it ("one writer per role"): a second executor that reconciles while the
 * first one's POST is in flight can place a second order. On a SQLite file the executor lock
 * refuses the second one (test/integration/executor-lock.test.ts), so here the first is
 * `run --roles execute --broker schwab` and the second the same role without the lock, as on
 * EventStoreDB, where there is no file to lock. What these tests hold is narrower: whatever the second writer does, a worker appends
 * only at the revision its own decision was based on, so the ledger never records a second
 * Placed or a second outcome for one command, and a worker never places after another writer
 * has linked an order to its command.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { createSimClock } from '../../src/broker/schwab-sim/index.ts';
import { Harness } from '../support/executor-harness.ts';
import type { ServiceProcess } from '../support/e2e-stack.ts';
import { spawnRoles, spawnUnlockedExecutor } from '../support/role-process.ts';

let harness: Harness;
const running: ServiceProcess[] = [];
afterEach(async () => {
  await Promise.allSettled(running.splice(0).map((p) => p.stop('SIGKILL')));
  await harness.close();
});

/** `hedge-ledger run --roles execute --broker schwab` with this Schwab request timeout; the second one without the executor lock. */
async function executorProcess(name: 'first' | 'second', requestTimeoutMs: number, extra: Record<string, string> = {}): Promise<ServiceProcess> {
  const env = { SCHWAB_REQUEST_TIMEOUT_MS: String(requestTimeoutMs), ...extra };
  const service = await (name === 'first' ? spawnRoles(harness, name, 'execute', env) : spawnUnlockedExecutor(harness, name, env));
  running.push(service);
  return service;
}

const types = async (commandId: string): Promise<string[]> => (await harness.orderEvents(commandId)).map((e) => e.type.replace('HedgeOrder', ''));

describe('two executors at once', () => {
  it('both polling one order: its fill is recorded once, not again on top of the other’s', async () => {
    // The simulator's own (manual) clock: the order stays QUEUED until the test moves it.
    harness = await Harness.start({ store: 'file', clock: 'wall' });
    harness.sim.control.setScript({ kind: 'queued', afterMs: 60_000 }, { next: 1 });
    const commandId = await harness.request('GME', 'BUY', 2n);
    const first = await executorProcess('first', 2_000);
    await harness.until(async () => (await types(commandId)).includes('Placed'), 'the first executor to place the order', 20_000);
    const second = await executorProcess('second', 2_000);
    const polls = harness.requests('getOrder');
    await harness.until(() => harness.requests('getOrder') > polls + 10, 'both executors to poll the order');

    // Whichever polls next waits until its request times out; meanwhile the order fills and the other records it.
    harness.sim.control.injectFault('getOrder', { kind: 'timeout' });
    await harness.until(() => harness.sim.control.requests().some((r) => r.status === 'timeout'), 'a poll to hang');
    harness.sim.clock.advance(60_000);
    await harness.until(async () => (await types(commandId)).includes('Filled'), 'the fill to be recorded');
    await sleep(4_000); // the hung poll times out (2 s), is retried and sees FILLED too

    expect(first.alive && second.alive).toBe(true);
    expect(await types(commandId)).toEqual(['Submitting', 'Placed', 'Filled']);
    expect(harness.ordersPlaced()).toBe(1);
  });

  it('one POST hangs and the other executor adopts its order: the first does not place a second one when it gives up', async () => {
    harness = await Harness.start({ store: 'file', clock: 'wall', sim: { clock: createSimClock({ start: new Date(), followWallClock: true }) } });
    harness.sim.control.setMarketOpen(true);
    // The order is created, the answer never comes: the first executor waits out its 6 s timeout.
    harness.sim.control.injectFault('place', { kind: 'timeout', applied: true });
    // Its settle time (500 ms) ends within the wait below: a first executor that reconciled rather than re-read its stream would place again in it.
    const first = await executorProcess('first', 6_000, { LEDGER_PLACEMENT_SETTLE_MS: '500' });
    const commandId = await harness.request('GME', 'BUY', 2n);
    await harness.until(() => harness.ordersPlaced() === 1, 'the first executor’s POST to reach the broker');

    // A second executor (a rolling update started first, an operator's second `run`) reconciles, adopts and fills it.
    const second = await executorProcess('second', 6_000);
    await harness.until(async () => (await types(commandId)).includes('Filled'), 'the second executor to adopt and fill the order');
    expect(await second.logged('reconciled: adopting the order already placed', 1_000), second.logTail).toBe(true);
    const [order] = harness.sim.control.orders();
    expect((await harness.orderEvents(commandId))[1]?.data).toMatchObject({ brokerOrderId: order?.orderId });

    // The first one's POST times out: it must find the order already linked to its command, not place another.
    expect(await first.logged('placement outcome unknown', 15_000), first.logTail).toBe(true);
    await sleep(2_000);
    expect(first.alive && second.alive).toBe(true);
    expect(harness.ordersPlaced()).toBe(1);
    expect(await types(commandId)).toEqual(['Submitting', 'Placed', 'Filled']);
  });
});
