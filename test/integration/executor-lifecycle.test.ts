/**
 * Order lifecycles on the simulator's clock: partial fills and exact average prices, broker
 * cancels and expiries that keep partial fills, rejects, unknown statuses, the market closed,
 * the open-order deadline, token expiry mid-run, re-auth, and the order-write budget.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as D from '../../src/domain/decimal.ts';
import { createSimClock, type Script } from '../../src/broker/schwab-sim/index.ts';
import { ReauthRequired } from '../../src/broker/port.ts';
import type { Envelope } from '../../src/domain/events.ts';
import { Harness, type HarnessOptions } from '../support/executor-harness.ts';
import { fakeSchwabBroker } from '../support/fake-schwab.ts';
import type { TraderRequest } from '../../src/broker/schwab/trader-api.ts';
import { EncryptedTokenFile, SchwabBroker, createSchwabBroker, oauthClient } from '../../src/broker/schwab/index.ts';
import { TraderApi } from '../../src/broker/schwab/trader-api.ts';
import { TokenManager } from '../../src/broker/schwab/tokens.ts';
import { WriteBudget } from '../../src/broker/schwab/write-budget.ts';
import { capturedLog, testLog } from '../support/test-log.ts';

const MINUTE = 60_000;
let harness: Harness;
/** The command the last lifecycle() placed. */
let commandId: string;
afterEach(() => harness.close());

/** Exact decimals of an outcome event, as the fold and `hedges` will see them. */
function described(outcome: Envelope | undefined) {
  if (outcome?.type === 'HedgeOrderFilled') return { type: 'filled', filled: D.format(outcome.data.filledQuantity), averagePrice: D.format(outcome.data.averagePrice) };
  if (outcome?.type === 'HedgeOrderFailed') return { type: 'failed', filled: D.format(outcome.data.filledQuantity), averagePrice: outcome.data.averagePrice && D.format(outcome.data.averagePrice), reason: outcome.data.reason };
  throw new Error(`no outcome: ${outcome?.type}`);
}

/**
 * Places one command under `script`, waits until the executor has polled it a few times,
 * runs `meanwhile` (move the clock…), and returns the recorded outcome.
 */
async function lifecycle(script: Script | null, quantity: bigint, meanwhile: () => Promise<void> | void, options: HarnessOptions = {}, deadlineMs = 24 * 60 * MINUTE) {
  harness = await Harness.start(options);
  if (script !== null) harness.sim.control.setScript(script, { next: 1 });
  commandId = await harness.request('GME', 'BUY', quantity);
  const drained = harness.executor({ openOrderDeadlineMs: deadlineMs }).drainOpen();
  await harness.until(() => harness.requests('getOrder') >= 3, 'a few polls');
  await meanwhile();
  await drained;
  expect(harness.ordersPlaced()).toBe(1);
  return described(await harness.outcome(commandId));
}

describe('partial fills and exact average prices', () => {
  it('partial then filled at another price: Σ(price×qty)/Σqty, exact', async () => {
    const outcome = await lifecycle({ kind: 'partialThenFill', first: 2, afterMs: MINUTE, laterPrice: '22.7305' }, 5n, () => harness.sim.clock.advance(MINUTE));
    // (2 × 22.7299 + 3 × 22.7305) / 5 = 113.6513 / 5
    expect(outcome).toEqual({ type: 'filled', filled: '5', averagePrice: '22.73026' });
    expect(D.format(D.round(D.parse(outcome.averagePrice!), 4))).toBe('22.7303');
    expect(harness.sim.control.orders()[0]?.averagePrice).toBe('22.73026');
  });

  it('an average that does not terminate is exact to 18 digits and to 4 decimals', async () => {
    const outcome = await lifecycle({ kind: 'partialThenFill', first: 1, afterMs: MINUTE, laterPrice: '22.73' }, 3n, () => harness.sim.clock.advance(MINUTE));
    // (22.7299 + 2 × 22.73) / 3 = 68.1899 / 3 = 22.72996666…
    expect(outcome).toMatchObject({ filled: '3', averagePrice: '22.729966666666666667' });
    expect(D.format(D.round(D.parse(outcome.averagePrice!), 4))).toBe('22.73');
  });

  it('expired at the close keeps its partial fill', async () => {
    const outcome = await lifecycle({ kind: 'partialThenExpire', first: 2 }, 5n, () => harness.sim.clock.set(new Date('2025-09-10T20:00:00Z')));
    expect(outcome).toEqual({ type: 'failed', filled: '2', averagePrice: '22.7299', reason: 'EXPIRED' });
  });

  it('cancelled by the broker keeps its partial fill', async () => {
    const outcome = await lifecycle({ kind: 'partialThenCancel', first: 1, afterMs: 1000 }, 4n, () => harness.sim.clock.advance(1000));
    expect(outcome).toEqual({ type: 'failed', filled: '1', averagePrice: '22.7299', reason: 'CANCELED' });
  });

  it('rejected after it was accepted: failed with the reason and nothing filled', async () => {
    const outcome = await lifecycle({ kind: 'asyncReject', afterMs: 1000, reason: 'Insufficient buying power' }, 2n, () => harness.sim.clock.advance(1000));
    expect(outcome).toEqual({ type: 'failed', filled: '0', averagePrice: null, reason: 'REJECTED: Insufficient buying power' });
  });
});

it('an unknown status string is an open order: polled, never a crash, then filled', async () => {
  const outcome = await lifecycle({ kind: 'unknownStatus', afterMs: MINUTE, status: 'AWAITING_SOMETHING_NEW' }, 1n, async () => {
    await harness.until(() => harness.requests('getOrder') >= 6, 'more polls of the unknown status');
    harness.sim.clock.advance(MINUTE);
  });
  expect(outcome).toEqual({ type: 'filled', filled: '1', averagePrice: '22.7299' });
});

describe('market closed', () => {
  it('the order waits (QUEUED) and fills at the open without being placed again', async () => {
    const early = { sim: { clock: createSimClock({ start: new Date('2025-09-10T12:00:00Z') }) } }; // 08:00 New York
    const outcome = await lifecycle(null, 2n, async () => {
      expect(harness.sim.control.orders()[0]?.status).toBe('QUEUED');
      harness.sim.clock.advance(60 * MINUTE); // 09:00: still closed, an hour past any deadline of wall time
      await harness.until(() => harness.requests('getOrder') >= 8, 'polls while queued');
      harness.sim.clock.set(new Date('2025-09-10T13:30:00Z'));
    }, early, 15 * MINUTE);
    expect(outcome).toEqual({ type: 'filled', filled: '2', averagePrice: '22.7299' });
    expect(harness.requests('place')).toBe(1);
    expect(harness.requests('cancel')).toBe(0);
    expect(harness.sim.control.orders()[0]?.executions[0]?.time).toBe('2025-09-10T13:30:00.000Z');
  });

  it('queued over a weekend, it fills at Monday’s open', async () => {
    const friday = { sim: { clock: createSimClock({ start: new Date('2025-09-12T21:00:00Z') }) } }; // Friday 17:00 New York
    const outcome = await lifecycle(null, 1n, () => harness.sim.clock.set(new Date('2025-09-15T13:31:00Z')), friday, 15 * MINUTE);
    expect(outcome).toMatchObject({ type: 'filled', filled: '1' });
    expect(harness.requests('cancel')).toBe(0);
  });
});

it('the deadline counts regular hours only, across a weekend that ends daylight saving time', async () => {
  // Friday 2025-10-31 15:55 EDT; Monday 2025-11-03 opens at 09:30 EST = 14:30Z, not 13:30Z.
  const friday = { sim: { clock: createSimClock({ start: new Date('2025-10-31T19:55:00Z') }) } };
  const outcome = await lifecycle({ kind: 'stuck' }, 1n, async () => {
    harness.sim.clock.set(new Date('2025-11-03T14:39:00Z')); // 5 min on Friday + 9 on Monday: inside 15 min
    const polls = harness.requests('getOrder');
    await harness.until(() => harness.requests('getOrder') >= polls + 5, 'polls on Monday morning');
    expect(harness.requests('cancel')).toBe(0);
    harness.sim.clock.set(new Date('2025-11-03T14:41:00Z')); // 5 + 11 min: past it
    await harness.until(() => harness.requests('cancel') === 1, 'the cancel');
    harness.sim.clock.advance(2000);
  }, friday, 15 * MINUTE);
  expect(outcome).toMatchObject({ type: 'failed', reason: expect.stringContaining('open 16 min of trading time, past the 15 min deadline') });
});

it('an order placed the evening before Thanksgiving is not cancelled on the holiday: its deadline starts at Friday’s open', async () => {
  const wednesday = { sim: { clock: createSimClock({ start: new Date('2025-11-26T22:00:00Z') }) } }; // 17:00 EST
  const outcome = await lifecycle({ kind: 'stuck' }, 1n, async () => {
    harness.sim.clock.set(new Date('2025-11-27T20:00:00Z')); // Thanksgiving, 15:00 EST
    let polls = harness.requests('getOrder');
    await harness.until(() => harness.requests('getOrder') >= polls + 5, 'polls on Thanksgiving');
    expect(harness.requests('cancel')).toBe(0);
    expect(harness.sim.control.orders()[0]?.status).toBe('QUEUED');
    harness.sim.clock.set(new Date('2025-11-28T14:44:00Z')); // Friday 09:44 EST: 14 min of trading time
    polls = harness.requests('getOrder');
    await harness.until(() => harness.requests('getOrder') >= polls + 5, 'polls on Friday morning');
    expect(harness.requests('cancel')).toBe(0);
    harness.sim.clock.set(new Date('2025-11-28T14:46:00Z')); // 16 min: past it
    await harness.until(() => harness.requests('cancel') === 1, 'the cancel');
    harness.sim.clock.advance(2000);
  }, wednesday, 15 * MINUTE);
  expect(outcome).toMatchObject({ type: 'failed', reason: expect.stringContaining('open 16 min of trading time, past the 15 min deadline') });
});

it('an order stuck open past the deadline is cancelled, recorded and reported', async () => {
  const outcome = await lifecycle({ kind: 'stuck' }, 3n, async () => {
    harness.sim.clock.advance(6 * MINUTE);
    await harness.until(() => harness.requests('cancel') === 1, 'the cancel');
    harness.sim.clock.advance(2000); // the simulator's cancel latency
  }, {}, 5 * MINUTE);
  expect(outcome).toEqual({
    type: 'failed',
    filled: '0',
    averagePrice: null,
    reason: 'CANCELED (cancelled by the executor: open 6 min of trading time, past the 5 min deadline (broker status WORKING, 0 filled))',
  });
  expect(harness.requests('cancel')).toBe(1);
  expect((await harness.orderEvents(commandId)).map((e) => e.type)).toEqual(['HedgeOrderSubmitting', 'HedgeOrderPlaced', 'HedgeOrderCancelRequested', 'HedgeOrderFailed']);
});

it('a cancel refused because Schwab has just filled the order, its executions not listed yet, ends the command', async () => {
  harness = await Harness.start();
  const order = (status: string, filled: string) =>
    `{"orderId":1004055538153,"status":"${status}","orderType":"MARKET","quantity":3.0,"filledQuantity":${filled},"enteredTime":"2025-09-10T14:00:00+0000",
      "orderLegCollection":[{"instruction":"BUY","quantity":3.0,"instrument":{"symbol":"GME","assetType":"EQUITY"}}]}`;
  let state = order('WORKING', '0.0');
  let polls = 0;
  const schwab = (request: TraderRequest) => {
    if (request.method === 'POST') return { status: 201, body: '', location: 'https://api.schwabapi.com/trader/v1/accounts/H/orders/1004055538153' };
    if (request.method === 'GET') {
      polls++;
      return { status: 200, body: state };
    }
    state = order('FILLED', '3.0'); // the fill won the race: the DELETE is refused, the order is terminal
    return { status: 400, body: '{"message":"Order is not cancelable"}' };
  };
  commandId = await harness.request('GME', 'BUY', 3n);
  const drained = harness.executor({ broker: fakeSchwabBroker(schwab, harness.now), openOrderDeadlineMs: 5 * MINUTE }).drainOpen(AbortSignal.timeout(5_000));
  await harness.until(() => polls >= 2, 'a few polls');
  harness.sim.clock.advance(6 * MINUTE);
  await drained;
  expect(described(await harness.outcome(commandId))).toEqual({
    type: 'failed',
    filled: '3',
    averagePrice: null,
    reason: 'FILLED, but Schwab lists executions for 0 of 3 shares, so their average price is unknown: check the order at Schwab (cancelled by the executor: open 6 min of trading time, past the 5 min deadline (broker status WORKING, 0 filled))',
  });
  expect((await harness.orderEvents(commandId)).map((e) => e.type)).toEqual(['HedgeOrderSubmitting', 'HedgeOrderPlaced', 'HedgeOrderCancelRequested', 'HedgeOrderFailed']);
});

describe('token expiry mid-run', () => {
  it.each([
    ['refreshed ahead of expiry on our clock', 'sim'],
    ['refreshed once after a 401 when our clock disagrees', 'wall'],
  ] as const)('%s', async (_name, clock) => {
    const outcome = await lifecycle({ kind: 'unknownStatus', afterMs: 40 * MINUTE }, 1n, async () => {
      harness.sim.clock.advance(31 * MINUTE); // the access token (30 min) has expired
      await harness.until(() => harness.requests('token') === 1, 'the refresh');
      const polled = harness.requests('getOrder');
      await harness.until(() => harness.requests('getOrder') >= polled + 3, 'polls with the new token');
      harness.sim.clock.advance(10 * MINUTE);
    }, { clock });
    expect(outcome).toMatchObject({ type: 'filled', filled: '1' });
    expect(harness.requests('token')).toBe(1);
    expect(harness.sim.control.counters().responses['getOrder']?.['401'] ?? 0).toBe(clock === 'wall' ? 1 : 0);
  });
});

describe('re-auth required', () => {
  it('run --once stops with what to do; nothing is placed', async () => {
    harness = await Harness.start();
    harness.sim.control.revokeTokens();
    await harness.request('GME', 'SELL', 1n);
    const drained = harness.executor().drainOpen();
    await expect(drained).rejects.toThrow(ReauthRequired);
    await expect(drained).rejects.toThrow(/Schwab refused the refresh token \(HTTP 400 unsupported_token_type\): log in again with `hedge-ledger auth login`/);
    expect(harness.ordersPlaced()).toBe(0);
  });

  it('the service says once what it needs, and why: the problem it reports does not change while it waits', async () => {
    harness = await Harness.start();
    harness.sim.control.revokeTokens();
    const { lines, log } = capturedLog('error');
    const reported: (string | undefined)[] = [];
    const stop = new AbortController();
    const following = harness.executor({ log, onOperatorProblem: (problem) => reported.push(problem) }).follow(stop.signal);
    await harness.request('GME', 'SELL', 1n);
    await harness.until(() => harness.requests('token') === 1, 'the refused refresh');
    await new Promise((resolve) => setTimeout(resolve, 200)); // many retries' worth
    stop.abort();
    await following;
    expect(lines.filter((l) => l.msg.startsWith('broker needs an operator'))).toHaveLength(1);
    expect(reported).toEqual([expect.stringMatching(/^Schwab refused the refresh token \(HTTP 400 unsupported_token_type\): log in again/)]);
  });

  it('a login older than 7 days needs a human, without asking Schwab', async () => {
    harness = await Harness.start();
    harness.sim.clock.advance(7 * 24 * 60 * MINUTE + MINUTE);
    await harness.request('GME', 'SELL', 1n);
    await expect(harness.executor().drainOpen()).rejects.toThrow(/the Schwab login expired at .* \(refresh tokens last 7 days\)/);
    expect(harness.requests('token')).toBe(0);
  });

  it('a token file that cannot be read (a directory in its place) needs a human: run --once stops, nothing is placed', async () => {
    harness = await Harness.start();
    await harness.request('GME', 'SELL', 1n);
    const tokens = new EncryptedTokenFile(harness.dir, harness.key);
    const executor = harness.executor({ broker: createSchwabBroker({ ...harness.settings(), tokens }, { now: harness.now, log: testLog('broker') }) });
    // Retried as if Schwab were down, it would go on until this signal stops it.
    await expect(executor.drainOpen(AbortSignal.timeout(2_000))).rejects.toThrow(/cannot read the token file .* \(EISDIR\)/);
    expect(harness.ordersPlaced()).toBe(0);
  });

  it('the service keeps running, places nothing, and resumes once someone logs in', async () => {
    harness = await Harness.start();
    harness.sim.control.revokeTokens();
    const stop = new AbortController();
    const reported: (string | undefined)[] = [];
    const following = harness.executor({ onOperatorProblem: (problem) => reported.push(problem) }).follow(stop.signal);
    commandId = await harness.request('GME', 'SELL', 2n);
    await harness.until(() => harness.requests('token') === 1, 'the refused refresh');
    await new Promise((resolve) => setTimeout(resolve, 200)); // many retries' worth
    expect(harness.ordersPlaced()).toBe(0);
    expect(harness.requests('token')).toBe(1); // the refused refresh token is not tried again
    expect(reported.length).toBeGreaterThan(0); // what /health/ready reports
    for (const problem of reported) expect(problem).toMatch(/log in again with `hedge-ledger auth login`/);
    const before = reported.length;
    await harness.login();
    await harness.until(async () => (await harness.outcome(commandId)) !== undefined, 'the fill after the login');
    expect(reported.slice(before)).toEqual([undefined]); // answered again: ready
    stop.abort();
    await following;
    expect(described(await harness.outcome(commandId))).toMatchObject({ type: 'filled', filled: '2' });
    expect(harness.ordersPlaced()).toBe(1);
  });
});

it('keeps to 120 order writes a minute: the 121st waits for the window, no 429', async () => {
  harness = await Harness.start();
  const symbols = ['GME', 'AAPL', 'TSLA', 'NVDA', 'MSFT'];
  for (let i = 0; i < 130; i++) await harness.request(symbols[i % symbols.length]!, 'BUY', 1n);
  const drained = harness.executor({ pollIntervalMs: 50 }).drainOpen();
  await harness.until(() => harness.ordersPlaced() === 120, '120 orders');
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(harness.ordersPlaced()).toBe(120);
  harness.sim.clock.advance(MINUTE);
  await drained;
  expect(harness.ordersPlaced()).toBe(130);
  expect(harness.sim.control.counters().responses['place']).toEqual({ 201: 130 });
});

it('counts a write until its answer came: when the minute’s first POST reached Schwab late, the 121st waits until that one has left Schwab’s window, no 429', async () => {
  harness = await Harness.start();
  const { app, tokens: file, requestTimeoutMs } = harness.settings();
  const log = testLog('broker');
  const tokens = new TokenManager({ file, oauth: oauthClient(harness.settings(), { now: harness.now, log }), now: harness.now, log });
  const trader = new TraderApi({ baseUrl: app.baseUrl, tokens, timeoutMs: requestTimeoutMs, log });
  let late = true;
  // The first POST takes 1 s (of Schwab's clock) to reach Schwab; the others arrive at once.
  const api = {
    account: (request: TraderRequest) => {
      if (request.method === 'POST' && late) {
        late = false;
        harness.sim.clock.advance(1_000);
      }
      return trader.account(request);
    },
  };
  const broker = new SchwabBroker({ api, budget: new WriteBudget(harness.now), now: harness.now, reconcileSkewMs: 60_000, log });
  const intent = { commandId: 'c', symbol: 'GME', side: 'BUY' as const, quantity: 1n, referencePrice: null, intentAt: harness.now() };
  for (let i = 0; i < 120; i++) await broker.place(intent);
  harness.sim.clock.advance(MINUTE - 1_000); // a minute after the first POST was sent, 59 s after Schwab received it
  const next = broker.place(intent);
  next.catch(() => undefined);
  await new Promise((resolve) => setTimeout(resolve, 500));
  expect(harness.requests('place')).toBe(120);
  harness.sim.clock.advance(1_000);
  await next;
  expect(harness.sim.control.counters().responses['place']).toEqual({ 201: 121 });
});
