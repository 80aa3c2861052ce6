/**
 * Exactly one order per command, whatever the simulator throws at the executor: ambiguous
 * POSTs, timeouts after the commit, 201 without Location, 429 storms, 5xx, HTML and gzip
 * bodies, on placement, polling and reconciliation.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSchwabBroker } from '../../src/broker/schwab/index.ts';
import { testLog } from '../support/test-log.ts';
import * as D from '../../src/domain/decimal.ts';
import { AmbiguousPlacement, type Broker } from '../../src/broker/port.ts';
import { createSimClock, type Endpoint, type Fault, type FaultSchedule } from '../../src/broker/schwab-sim/index.ts';
import { Harness, type HarnessOptions } from '../support/executor-harness.ts';
import { OrderStepsStuck } from '../../src/services/executor.ts';
import { encodeEvent, streams } from '../../src/domain/events.ts';
import { NO_STREAM, type EventStore } from '../../src/eventstore/port.ts';
import { orderEventId } from '../../src/domain/ids.ts';
import { rewriteProxy } from '../support/rewrite-proxy.ts';

let harness: Harness;
afterEach(() => harness.close());

/** The command made exactly one order at Schwab and recorded it whole: Submitting, Placed naming that order, Filled. */
async function expectOneOrderFilled(commandId: string): Promise<Awaited<ReturnType<Harness['orderEvents']>>> {
  const [order, ...others] = harness.sim.control.orders();
  expect(others).toEqual([]);
  expect(harness.ordersPlaced()).toBe(1);
  const events = await harness.orderEvents(commandId);
  expect(events.map((e) => e.type)).toEqual(['HedgeOrderSubmitting', 'HedgeOrderPlaced', 'HedgeOrderFilled']);
  expect(events[1]?.data).toMatchObject({ brokerOrderId: order?.orderId });
  return events;
}

/** One BUY 3 GME through the executor under `faults`; checks it made exactly one order and recorded its exact fill. */
async function oneCommandUnder(faults: readonly [Endpoint, Fault, FaultSchedule?][], options: HarnessOptions = {}): Promise<void> {
  harness = await Harness.start(options);
  for (const [endpoint, fault, schedule] of faults) harness.sim.control.injectFault(endpoint, fault, schedule);
  const commandId = await harness.request('GME', 'BUY', 3n);
  await harness.executor().drainOpen();
  const events = await expectOneOrderFilled(commandId);
  const [order] = harness.sim.control.orders();
  const filled = events[2];
  if (filled?.type !== 'HedgeOrderFilled') throw new Error('expected a fill');
  expect([D.format(filled.data.filledQuantity), D.format(filled.data.averagePrice)]).toEqual(['3', '22.7299']);
  expect(order).toMatchObject({ filledQuantity: '3', averagePrice: '22.7299' });
}

describe('placement faults: one order per command', () => {
  const cases: [string, [Endpoint, Fault, FaultSchedule?][]][] = [
    ['the ambiguous POST (order created, connection dropped)', [['place', { kind: 'drop', applied: true }]]],
    ['a timeout after the commit', [['place', { kind: 'timeout', applied: true }]]],
    ['a timeout before the commit', [['place', { kind: 'timeout' }]]],
    ['a dropped connection before the commit', [['place', { kind: 'drop' }]]],
    ['201 without Location', [['place', { kind: 'noLocation' }]]],
    ['a 429 storm without Retry-After', [['place', { kind: 'status', status: 429 }, { times: 4 }]]],
    ['429 with Retry-After', [['place', { kind: 'status', status: 429, retryAfterSeconds: 1 }]]],
    ['500s', [['place', { kind: 'status', status: 500 }, { times: 3 }]]],
    ['503 after the commit', [['place', { kind: 'status', status: 503, applied: true }]]],
    ['a gzip-encoded 500 after the commit', [['place', { kind: 'gzip', applied: true }]]],
    ["the edge's HTML Access Denied page", [['place', { kind: 'html' }]]],
    [
      'an ambiguous POST, then a failing orders list while reconciling',
      [
        ['place', { kind: 'drop', applied: true }],
        ['listOrders', { kind: 'status', status: 500 }, { times: 2 }],
        ['listOrders', { kind: 'timeout' }],
        ['listOrders', { kind: 'html', status: 502 }],
      ],
    ],
    ['the account lookup failing first', [['accountNumbers', { kind: 'status', status: 503 }, { times: 2 }]]],
  ];
  it.each(cases)('%s', async (_name, faults) => oneCommandUnder(faults));

  it('the ambiguous POST with no skew allowed, the intent recorded mid-second (Schwab’s enteredTime has whole seconds)', async () => {
    const clock = createSimClock({ start: new Date('2025-09-10T14:00:00.500Z') }); // the executor's and Schwab's clocks agree exactly
    await oneCommandUnder([['place', { kind: 'drop', applied: true }]], { reconcileSkewMs: 0, sim: { clock } });
  });
});

describe('a POST Schwab acts on only after the client gave up (its order shows in the list late)', () => {
  // The harness's broker gives up on a request after 500 ms; Schwab enters this order 800 ms after it arrived.
  const late: Fault = { kind: 'timeout', appliedAfterMs: 800 };

  it('the executor asks the orders list again within the settle time, adopts the late order and places nothing more', async () => {
    harness = await Harness.start();
    harness.sim.control.injectFault('place', late);
    const commandId = await harness.request('GME', 'BUY', 3n);
    await harness.executor({ placementSettleMs: 2_000 }).drainOpen();
    await expectOneOrderFilled(commandId);
    expect(harness.requests('listOrders')).toBeGreaterThanOrEqual(2);
  });

  it('the settle time counts from when the client gave up, not from when it sent: a settle time no longer than the request timeout (the defaults: 10 s each) still waits', async () => {
    harness = await Harness.start(); // gives up after 500 ms
    harness.sim.control.injectFault('place', late);
    const commandId = await harness.request('GME', 'BUY', 3n);
    await harness.executor({ placementSettleMs: 500 }).drainOpen();
    await sleep(1_000);
    await expectOneOrderFilled(commandId);
  });

  it('a restart while the POST is in flight gives that POST the settle time too: it adopts the late order and places nothing more', async () => {
    harness = await Harness.start();
    harness.sim.control.injectFault('place', late);
    const commandId = await harness.request('GME', 'BUY', 3n);
    const stop = new AbortController();
    const first = harness.executor({ placementSettleMs: 2_000 }).drainOpen(stop.signal);
    await harness.until(() => harness.requests('place') === 1, 'the first POST at Schwab');
    stop.abort(); // the process stops with only Submitting recorded; its POST lands 800 ms after it arrived
    await first;
    expect((await harness.orderEvents(commandId)).map((e) => e.type)).toEqual(['HedgeOrderSubmitting']);
    await harness.executor({ placementSettleMs: 2_000 }).drainOpen();
    await sleep(1_000);
    await expectOneOrderFilled(commandId);
  });

  it('with no settle time the first empty list is believed and a second order is placed: the hazard the wait removes', async () => {
    harness = await Harness.start();
    harness.sim.control.injectFault('place', late);
    await harness.request('GME', 'BUY', 3n);
    await harness.executor({ placementSettleMs: 0 }).drainOpen();
    await sleep(1_000);
    expect(harness.ordersPlaced()).toBe(2);
  });
});

describe("this host's clock off Schwab's by more than the skew: the Date header widens the search", () => {
  it.each([
    ['ahead of', 5],
    ['behind', -5],
  ])('an ambiguous POST with the clock 5 min %s Schwab', async (_name, minutes) => {
    await oneCommandUnder([['place', { kind: 'drop', applied: true }]], { clockAheadOfSchwabMs: minutes * 60_000 });
  });

  it.each([
    ['ahead of', 5],
    ['behind', -5],
  ])('a restart whose first answer is the orders list, with the clock 5 min %s Schwab', async (_name, minutes) => {
    harness = await Harness.start({ clockAheadOfSchwabMs: minutes * 60_000 });
    harness.sim.control.injectFault('place', { kind: 'drop', applied: true });
    harness.sim.control.injectFault('listOrders', { kind: 'status', status: 503 }, { times: 1_000 });
    const commandId = await harness.request('GME', 'BUY', 3n);
    // The first executor records its intent and places; the answer is lost, it cannot reconcile, and it stops there (a crash).
    const stopped = new AbortController();
    const first = harness.executor().drainOpen(stopped.signal);
    await harness.until(() => harness.requests('listOrders') > 0, 'a failed reconciliation');
    stopped.abort();
    await first.catch(() => undefined);
    harness.sim.control.clearFaults();
    expect((await harness.orderEvents(commandId)).map((e) => e.type)).toEqual(['HedgeOrderSubmitting']);
    // A new process: a new adapter that has seen no answer yet.
    await harness.executor().drainOpen();
    await expectOneOrderFilled(commandId);
  });
});

/** An HTTP intermediary before the simulator that answers the first `times` orders lists itself: a 503 page stamped by its own clock, `aheadMs` off. */
async function intermediary(target: string, aheadMs: number, times = 1): Promise<{ readonly url: string; close(): Promise<void> }> {
  const upstream = new URL(target);
  let answered = 0;
  const server = createServer((req, res) => {
    if (answered < times && req.method === 'GET' && /\/orders\?/.test(req.url ?? '')) {
      answered++;
      res.writeHead(503, { 'Content-Type': 'text/html', Date: new Date(harness.now().getTime() + aheadMs).toUTCString() });
      return void res.end('<html><body>Service Unavailable</body></html>');
    }
    const forwarded = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    forwarded.on('error', () => res.destroy()); // the simulator dropped the connection: so does the intermediary
    req.pipe(forwarded);
  });
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, close: () => new Promise<void>((closed) => (server.closeAllConnections(), server.close(() => closed()))) };
}

it.each([
  ['a Date far off Schwab’s clock on one answer (an intermediary’s error page) never narrows reconciliation past our own order', {}, 1],
  // Its pages answer the orders list for longer than the settle time (the harness's 30 ms).
  ['nor do such pages narrow it when this host’s clock runs ahead of Schwab’s: the list Schwab answers after them, showing its own clock, is asked again with the wider window', { clockAheadOfSchwabMs: 5 * 60_000 }, 5],
] as const)('%s', async (_, options, pages) => {
  harness = await Harness.start(options);
  const proxy = await intermediary(harness.sim.baseUrl, 90 * 24 * 60 * 60_000, pages);
  try {
    harness.sim.control.injectFault('place', { kind: 'drop', applied: true });
    const commandId = await harness.request('GME', 'BUY', 3n);
    const settings = harness.settings();
    const broker = createSchwabBroker({ ...settings, app: { ...settings.app, baseUrl: proxy.url } }, { now: harness.now, log: testLog('broker') });
    await harness.executor({ broker }).drainOpen();
    await expectOneOrderFilled(commandId);
  } finally {
    await proxy.close();
  }
});

it('a broker that keeps failing for 5 min makes the executor say so (readiness reads it), and its next good answer clears that', async () => {
  harness = await Harness.start();
  harness.sim.control.injectFault('place', { kind: 'drop', applied: true });
  harness.sim.control.injectFault('listOrders', { kind: 'status', status: 503 }, { times: 1_000_000 });
  await harness.request('GME', 'BUY', 3n);
  const executor = harness.executor();
  const drained = executor.drainOpen(undefined, 'wait'); // as the service runs it
  await harness.until(() => harness.requests('listOrders') >= 3, 'reconciliation failing');
  expect(executor.failing()).toBeUndefined(); // minutes of 503s are the broker's to sort out
  harness.sim.clock.advance(5 * 60_000);
  await harness.until(() => executor.failing() !== undefined, 'the executor to say it is stuck');
  expect(executor.failing()).toMatch(/^order steps keep failing \(1 order\(s\)\), retrying: broker unavailable for 5(\.\d)? min: orders list answered HTTP 503/);
  harness.sim.control.clearFaults();
  await drained;
  expect(executor.failing()).toBeUndefined();
  expect(harness.ordersPlaced()).toBe(1);
});

it('run --once stops (rejects) once a command\'s steps have kept failing on the broker\'s side for 5 min, instead of waiting for ever', async () => {
  harness = await Harness.start();
  harness.sim.control.injectFault('place', { kind: 'drop', applied: true });
  harness.sim.control.injectFault('listOrders', { kind: 'status', status: 503 }, { times: 1_000_000 });
  const commandId = await harness.request('GME', 'BUY', 3n);
  const drained = harness.executor().drainOpen();
  drained.catch(() => undefined);
  await harness.until(() => harness.requests('listOrders') >= 3, 'reconciliation failing');
  harness.sim.clock.advance(5 * 60_000);
  await expect(drained).rejects.toThrow(OrderStepsStuck);
  await expect(drained).rejects.toThrow(/keep failing: broker unavailable for 5(\.\d)? min: orders list answered HTTP 503/);
  expect((await harness.orderEvents(commandId)).map((e) => e.type)).toEqual(['HedgeOrderSubmitting']); // the next run reconciles first
});

it('minutes spent waiting for a login are not the broker failing: after the login, a short outage does not flip readiness', async () => {
  harness = await Harness.start();
  harness.sim.control.injectFault('place', { kind: 'status', status: 503 }); // the run of failed steps begins
  await harness.request('GME', 'BUY', 3n);
  const executor = harness.executor({ backoffMs: { min: 400, max: 400 } });
  const drained = executor.drainOpen(undefined, 'wait');
  await harness.until(() => harness.requests('place') === 1, 'the ambiguous placement');
  harness.sim.control.revokeTokens(); // within the backoff: the reconciliation that follows needs a login
  await harness.until(() => harness.requests('token') === 1, 'the refused refresh');
  harness.sim.clock.advance(10 * 60_000); // nobody logs in for 10 minutes
  harness.sim.control.injectFault('listOrders', { kind: 'status', status: 503 }, { times: 1_000_000 });
  await harness.login();
  const outage = () => harness.sim.control.counters().responses['listOrders']?.['503'] ?? 0;
  await harness.until(() => outage() >= 3, 'reconciliation failing after the login');
  expect(executor.failing()).toBeUndefined(); // seconds of 503s are the broker's to sort out
  harness.sim.control.clearFaults();
  await drained;
  expect(harness.ordersPlaced()).toBe(1);
});

describe('polling faults: the order is polled to its fill, never placed again', () => {
  const cases: [string, Fault, FaultSchedule][] = [
    ['500s', { kind: 'status', status: 500 }, { times: 3 }],
    ['HTML pages', { kind: 'html', status: 502 }, { times: 2 }],
    ['gzip bodies', { kind: 'gzip' }, { times: 2 }],
    ['timeouts', { kind: 'timeout' }, { times: 2 }],
    ['dropped connections', { kind: 'drop' }, { times: 2 }],
    ['429s', { kind: 'status', status: 429 }, { times: 3 }],
    ['404s (an order not visible yet)', { kind: 'status', status: 404 }, { times: 2 }],
  ];
  it.each(cases)('%s', async (_name, fault, schedule) => oneCommandUnder([['getOrder', fault, schedule]]));
});

describe('reconciliation adopts only an order that can be this command’s', () => {
  /** Two orders at the broker: an earlier one, and the one the command placed itself. */
  async function expectItsOwnOrder(commandId: string): Promise<void> {
    const [earlier, placed] = harness.sim.control.orders();
    expect(harness.ordersPlaced()).toBe(2);
    expect((await harness.orderEvents(commandId))[1]?.data).toMatchObject({ brokerOrderId: placed?.orderId });
    expect(placed?.orderId).not.toBe(earlier?.orderId);
  }

  it('never adopts an order linked to an earlier command', async () => {
    harness = await Harness.start();
    const executor = harness.executor();
    await harness.request('GME', 'BUY', 1n);
    await executor.drainOpen();
    harness.sim.control.injectFault('place', { kind: 'drop' }); // not applied: this time no order exists
    const second = await harness.request('GME', 'BUY', 1n);
    await executor.drainOpen();
    await expectItsOwnOrder(second);
  });

  it('never adopts an identical order entered before the intent (minus the skew)', async () => {
    harness = await Harness.start();
    await harness.broker().place({ commandId: 'by hand', symbol: 'GME', side: 'BUY', quantity: 3n, referencePrice: null, intentAt: harness.now() });
    harness.sim.clock.advance(5 * 60_000);
    harness.sim.control.injectFault('place', { kind: 'drop' });
    const commandId = await harness.request('GME', 'BUY', 3n);
    await harness.executor().drainOpen();
    await expectItsOwnOrder(commandId);
  });
});

it('a 201 whose Location names an order another command is linked to is no order id: the order it created is found by reconciliation, and each command records its own fill', async () => {
  harness = await Harness.start();
  const first = await harness.request('GME', 'BUY', 1n);
  await harness.executor().drainOpen();
  const [earlier] = harness.sim.control.orders();
  // From now on every 201 points at the first command's order, which is as alike as it gets (BUY 1 GME, FILLED).
  const proxy = await rewriteProxy(harness.sim.port, (_endpoint, answer) =>
    answer.status === 201 ? { ...answer, headers: { ...answer.headers, location: answer.headers['location']!.replace(/\d+$/, earlier!.orderId) } } : answer,
  );
  try {
    const second = await harness.request('GME', 'BUY', 1n);
    const settings = harness.settings();
    const broker = createSchwabBroker({ ...settings, app: { ...settings.app, baseUrl: proxy.baseUrl } }, { now: harness.now, log: testLog('broker') });
    await harness.executor({ broker }).drainOpen();
    const [, created, ...others] = harness.sim.control.orders();
    expect(others).toEqual([]);
    const placed = async (commandId: string) => (await harness.orderEvents(commandId)).find((e) => e.type === 'HedgeOrderPlaced')?.data;
    expect(await placed(first)).toMatchObject({ brokerOrderId: earlier?.orderId });
    expect(await placed(second)).toMatchObject({ brokerOrderId: created?.orderId });
    expect((await harness.orderEvents(second)).map((e) => e.type)).toEqual(['HedgeOrderSubmitting', 'HedgeOrderPlaced', 'HedgeOrderFilled']);
  } finally {
    await proxy.close();
  }
});

it('another writer records Submitting and places the order just before this executor records its own: it re-reads the stream and adopts that order, placing none', async () => {
  harness = await Harness.start();
  const commandId = await harness.request('GME', 'BUY', 3n);
  const stream = streams.hedgeOrder(commandId);
  let raced = false;
  // Between this executor's read of the stream (no order event yet) and its first append: a process that dies after its POST.
  const store: EventStore = Object.assign(Object.create(harness.store) as EventStore, {
    append: async (name: string, events: Parameters<EventStore['append']>[1], expected: Parameters<EventStore['append']>[2]) => {
      if (name === stream && !raced) {
        raced = true;
        const at = harness.now();
        const submitting = { commandId, broker: 'schwab', symbol: 'GME', side: 'BUY' as const, quantity: D.fromBigInt(3n), at: at.toISOString() };
        await harness.store.append(stream, [encodeEvent(orderEventId(commandId, 0n), { type: 'HedgeOrderSubmitting', data: submitting })], NO_STREAM);
        await harness.broker().place({ commandId, symbol: 'GME', side: 'BUY', quantity: 3n, referencePrice: null, intentAt: at });
      }
      return harness.store.append(name, events, expected);
    },
  });
  await harness.executor({ store }).drainOpen();
  expect(raced).toBe(true);
  await expectOneOrderFilled(commandId);
});

it('another writer records Submitting just before this executor and its POST is still on its way: the re-read stream gives that POST the settle time, and its order is adopted', async () => {
  harness = await Harness.start();
  const commandId = await harness.request('GME', 'BUY', 3n);
  const stream = streams.hedgeOrder(commandId);
  let landed: Promise<unknown> | undefined;
  const store: EventStore = Object.assign(Object.create(harness.store) as EventStore, {
    append: async (name: string, events: Parameters<EventStore['append']>[1], expected: Parameters<EventStore['append']>[2]) => {
      if (name === stream && landed === undefined) {
        const at = harness.now();
        const submitting = { commandId, broker: 'schwab', symbol: 'GME', side: 'BUY' as const, quantity: D.fromBigInt(3n), at: at.toISOString() };
        await harness.store.append(stream, [encodeEvent(orderEventId(commandId, 0n), { type: 'HedgeOrderSubmitting', data: submitting })], NO_STREAM);
        // Its POST reaches Schwab 300 ms later (a slow network, a process paused a moment).
        landed = sleep(300).then(() => harness.broker().place({ commandId, symbol: 'GME', side: 'BUY', quantity: 3n, referencePrice: null, intentAt: at }));
      }
      return harness.store.append(name, events, expected);
    },
  });
  await harness.executor({ store, placementSettleMs: 1_000 }).drainOpen();
  await landed;
  await expectOneOrderFilled(commandId);
});

it('a symbol the broker refuses (400) fails the command at placement, with the reason', async () => {
  harness = await Harness.start();
  const commandId = await harness.request('NOPE', 'SELL', 2n);
  await harness.executor().drainOpen();
  expect(harness.ordersPlaced()).toBe(0);
  const outcome = await harness.outcome(commandId);
  expect(outcome?.data).toMatchObject({ reason: expect.stringMatching(/^rejected at placement: Invalid order; Symbol NOPE is not a valid symbol/), averagePrice: null });
  expect(outcome?.type === 'HedgeOrderFailed' && D.format(outcome.data.filledQuantity)).toBe('0'); // a refused order moves nothing
});

it('a 429 while polling is waited out for its Retry-After before the next poll', async () => {
  harness = await Harness.start();
  harness.sim.control.injectFault('getOrder', { kind: 'status', status: 429, retryAfterSeconds: 1 });
  await harness.request('GME', 'BUY', 1n);
  const drained = harness.executor().drainOpen();
  await harness.until(() => harness.requests('getOrder') === 1, 'the 429');
  const throttled = performance.now();
  await harness.until(() => harness.requests('getOrder') === 2, 'the next poll');
  expect(performance.now() - throttled).toBeGreaterThanOrEqual(950);
  await drained;
});

it('a 429 whose Retry-After says weeks (garbage) is not a reason to poll every millisecond: the next poll still waits', async () => {
  harness = await Harness.start();
  harness.sim.control.injectFault('getOrder', { kind: 'status', status: 429, retryAfterSeconds: 3_000_000 }, { times: 1_000_000 }); // 35 days
  await harness.request('GME', 'BUY', 1n);
  const stop = new AbortController();
  const drained = harness.executor().drainOpen(stop.signal, 'wait');
  await harness.until(() => harness.requests('getOrder') >= 1, 'the 429');
  await sleep(500);
  stop.abort();
  await drained;
  expect(harness.requests('getOrder')).toBe(1);
});

it('placements for one broker symbol run one at a time: an ambiguous one never adopts the order another command placed but has not recorded', async () => {
  harness = await Harness.start();
  const a = await harness.request('GME', 'BUY', 1n);
  const b = await harness.request('GME', 'BUY', 1n);
  const real = harness.broker();
  let aTries = 0;
  const broker: Broker = Object.assign(Object.create(real) as Broker, {
    place: async (intent: Parameters<Broker['place']>[0], signal?: AbortSignal) => {
      // A's first POST fails after 100 ms without creating anything; B's order exists at Schwab 300 ms before B records it.
      if (intent.commandId === a && aTries++ === 0) {
        await sleep(100);
        throw new AmbiguousPlacement('connection reset before the commit');
      }
      const placed = await real.place(intent, signal);
      if (intent.commandId === b) await sleep(300);
      return placed;
    },
  });
  await harness.executor({ broker }).drainOpen();
  const placedOrder = async (commandId: string) => (await harness.orderEvents(commandId)).find((e) => e.type === 'HedgeOrderPlaced')?.data;
  expect(harness.ordersPlaced()).toBe(2);
  expect(await placedOrder(a)).not.toEqual(await placedOrder(b));
});

it('an order event this version cannot read (a newer version wrote it, then a rollback) is retried with backoff and reported, never spun on against Schwab', async () => {
  harness = await Harness.start({ store: 'file' });
  harness.sim.control.setMarketOpen(false); // the order waits, queued: Placed is recorded, the outcome is not
  const commandId = await harness.request('GME', 'BUY', 2n);
  const first = new AbortController();
  const placing = harness.executor().drainOpen(first.signal);
  await harness.until(async () => (await harness.orderEvents(commandId)).length === 2, 'the order placed');
  first.abort();
  await placing;
  // A newer executor recorded something this one does not know after Placed.
  await harness.store.append(streams.hedgeOrder(commandId), [{ id: orderEventId(commandId, 2n), type: 'HedgeOrderAmended', data: { commandId, at: harness.now().toISOString() } }], 1n);
  harness.sim.control.setMarketOpen(true); // it fills: recording that is the executor's next write, after that event

  const polled = harness.requests('getOrder');
  const executor = harness.executor();
  const stop = new AbortController();
  const running = executor.drainOpen(stop.signal, 'wait'); // as the service runs it
  await sleep(1_000);
  const polls = harness.requests('getOrder') - polled;
  const failing = executor.failing();
  stop.abort();
  await running;
  expect(polls).toBeLessThan(10);
  expect(failing).toMatch(/^order steps keep failing \(1 order\(s\)\), retrying: corrupt event hedgeorder-.*@2 at type: unknown event type "HedgeOrderAmended"/);
  // run --once does not wait for ever: it stops with the problem.
  await expect(harness.executor().drainOpen()).rejects.toThrow(/^the order steps of command .* keep failing: corrupt event hedgeorder-.*@2/);
  expect(harness.ordersPlaced()).toBe(1);
  const stored: string[] = [];
  for await (const e of harness.store.readStream(streams.hedgeOrder(commandId))) stored.push(e.type);
  expect(stored).toEqual(['HedgeOrderSubmitting', 'HedgeOrderPlaced', 'HedgeOrderAmended']);
});
