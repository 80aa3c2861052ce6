/**
 * Reconciliation reads the orders list order by order: an order someone else placed that the
 * strict codec refuses must not make finding ours impossible, unless it could be ours.
 */
import { describe, expect, it } from 'vitest';
import type { Logger } from 'pino';
import { BrokerUnavailable, type HedgeOrderIntent } from '../../src/broker/port.ts';
import { fakeSchwabBroker } from '../support/fake-schwab.ts';
import { capturedLog } from '../support/test-log.ts';

const NOW = new Date('2025-09-10T14:01:00Z');
const intent: HedgeOrderIntent = { commandId: 'c', symbol: 'GME', side: 'BUY', quantity: 3n, referencePrice: null, intentAt: new Date('2025-09-10T14:00:00Z') };

/** A filled BUY MARKET order in the list; `legs` replaces its leg collection. */
const listed = (orderId: number, symbol: string, quantity: string, legs = `[{"instruction":"BUY","quantity":${quantity},"instrument":{"symbol":"${symbol}","assetType":"EQUITY"}}]`): string =>
  `{"orderId":${orderId},"status":"FILLED","orderType":"MARKET","enteredTime":"2025-09-10T14:00:05+0000","orderLegCollection":${legs},
    "orderActivityCollection":[{"activityType":"EXECUTION","executionLegs":[{"quantity":${quantity},"price":22.7299}]}]}`;

const OURS = listed(1004055538154, 'GME', '3.0');

const reconcile = (orders: readonly string[], log?: Logger): Promise<string | undefined> =>
  fakeSchwabBroker(() => ({ status: 200, body: `[${orders.join(',')}]` }), () => NOW, log).findPlaced(intent, new Set());

describe('findPlaced over an orders list holding an order the codec refuses', () => {
  it('skips it when it is in another symbol (half a share of AAPL bought by hand), and logs that without quoting it', async () => {
    const { lines, log } = capturedLog('warn');
    await expect(reconcile([listed(1004055538155, 'AAPL', '0.5'), OURS], log)).resolves.toBe('1004055538154');
    expect(lines).toMatchObject([{ msg: 'orders list: skipped an order of another symbol that does not decode', problem: 'order 0: at orderLegCollection.0.quantity: expected a whole, non-negative number of shares' }]);
    for (const value of ['AAPL', '0.5', '1004055538155', '22.7299']) expect(JSON.stringify(lines)).not.toContain(value);
  });

  it.each([
    ['in the intent’s symbol', listed(1004055538155, 'GME', '0.5')],
    ['without a readable symbol', listed(1004055538155, 'GME', '3.0', '[{"instruction":"BUY","quantity":3.0,"instrument":{"cusip":"36467W109"}}]')],
    ['not an order at all', '"?"'],
    // Found by the Schwab answers fuzz (seed 537315964): an empty leg list decoded, matched nothing, and the order was placed again.
    ['without any leg', listed(1004055538155, 'GME', '3.0', '[]')],
    ['with a blank symbol', listed(1004055538155, ' ', '3.0')],
  ])('keeps failing (the broker is unavailable, try later) when it may be ours: %s', async (_name, undecodable) => {
    const failed = reconcile([OURS, undecodable]);
    await expect(failed).rejects.toThrow(BrokerUnavailable);
    await expect(failed).rejects.toThrow(/^orders list: order 1: at /);
  });
});

describe('findPlaced on a new adapter whose first answer is the orders list', () => {
  it('searches again once that answer showed Schwab\'s clock 5 min behind ours, and finds our order', async () => {
    // Entered 5 s after the intent (14:00:00 ours), which is 13:55:05 on Schwab's clock.
    const ours = OURS.replace('2025-09-10T14:00:05+0000', '2025-09-10T13:55:05+0000');
    const broker = fakeSchwabBroker(() => ({ status: 200, body: `[${ours}]`, date: NOW.getTime() - 5 * 60_000 }), () => NOW);
    await expect(broker.findPlaced(intent, new Set())).resolves.toBe('1004055538154');
  });
});

describe('findPlaced over more orders than one answer holds (3000)', () => {
  const at = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, '+0000');
  const order = (orderId: number, enteredMs: number, instruction: string, quantity: number) =>
    JSON.parse(listed(orderId, 'GME', `${quantity}.0`).replace('2025-09-10T14:00:05+0000', at(enteredMs)).replace('"instruction":"BUY"', `"instruction":"${instruction}"`)) as { enteredTime: string };
  // A restore searching from 13:00: 3,500 hand trades (SELL 1, one a second), then ours at 14:00:05.
  const start = Date.parse('2025-09-10T13:00:10Z');
  const account = [...Array.from({ length: 3500 }, (_, i) => order(1004055530000 + i, start + i * 1000, 'SELL', 1)), order(1004055538154, Date.parse('2025-09-10T14:00:05Z'), 'BUY', 3)];

  it.each([
    ['newest first', -1],
    ['oldest first', 1],
  ])('finds ours whichever way the list is sorted: %s', async (_name, direction) => {
    const broker = fakeSchwabBroker((request) => {
      const from = Date.parse(request.query!['fromEnteredTime']!);
      const to = Date.parse(request.query!['toEnteredTime']!);
      const entered = (o: { enteredTime: string }) => Date.parse(o.enteredTime.replace('+0000', 'Z'));
      const page = account.filter((o) => entered(o) >= from && entered(o) <= to).sort((a, b) => direction * (entered(a) - entered(b)));
      return { status: 200, body: JSON.stringify(page.slice(0, Number(request.query!['maxResults']))) };
    }, () => NOW);
    await expect(broker.findPlaced({ ...intent, intentAt: new Date('2025-09-10T13:00:00Z') }, new Set())).resolves.toBe('1004055538154');
  });
});

describe('order ids beyond int64', () => {
  const garbled = OURS.replace('1004055538154', '10040555381541004055538154');

  it('an order whose id is more digits than an int64 holds is unreadable, not adopted (it would be polled for ever as 404 while the real order goes unseen)', async () => {
    const failed = reconcile([garbled]);
    await expect(failed).rejects.toThrow(BrokerUnavailable);
    await expect(failed).rejects.toThrow(/^orders list: order 0: at orderId: expected a positive int64 order id$/);
    await expect(reconcile([OURS])).resolves.toBe('1004055538154');
    await expect(reconcile([OURS.replace('1004055538154', '9223372036854775807')])).resolves.toBe('9223372036854775807');
    await expect(reconcile([OURS.replace('1004055538154', '9223372036854775808')])).rejects.toThrow(BrokerUnavailable);
  });

  it('a Location naming such an id is a placement without a usable Location (reconciled), not an order id', async () => {
    const location = (id: string) => `https://api.schwabapi.com/trader/v1/accounts/H/orders/${id}`;
    const place = (id: string) => fakeSchwabBroker(() => ({ status: 201, body: '', location: location(id) }), () => NOW).place(intent);
    await expect(place('1004055538154')).resolves.toEqual({ brokerOrderId: '1004055538154' });
    await expect(place('10040555381541004055538154')).rejects.toThrow(/without a usable Location/);
  });
});

describe('an order listed outside the window asked for', () => {
  it('like ours but entered before the window (1970): the answer cannot be trusted, so reconciliation retries rather than find nothing and place a second order', async () => {
    const queries: string[] = [];
    const odd = OURS.replace('2025-09-10T14:00:05+0000', '1970-01-01T00:00:00+0000');
    const broker = fakeSchwabBroker((request) => (queries.push(request.query?.['fromEnteredTime'] ?? ''), { status: 200, body: `[${odd}]` }), () => NOW);
    const failed = broker.findPlaced(intent, new Set());
    await expect(failed).rejects.toThrow(BrokerUnavailable);
    await expect(failed).rejects.toThrow(/^orders list: order 1004055538154 is a MARKET BUY 3 GME entered at 1970-01-01T00:00:00.000Z, before the window asked for \(from 2025-09-10T13:59:00.000Z\)/);
    expect(queries[0]).toBe('2025-09-10T13:59:00.000Z');
  });

  it('other orders before the window (another side, another quantity, one already linked) do not matter', async () => {
    const early = (o: string) => o.replace('2025-09-10T14:00:05+0000', '1970-01-01T00:00:00+0000');
    await expect(reconcile([early(listed(1004055538150, 'GME', '1.0')), early(listed(1004055538151, 'AAPL', '3.0')), OURS])).resolves.toBe('1004055538154');
    const broker = fakeSchwabBroker(() => ({ status: 200, body: `[${early(listed(1004055538150, 'GME', '3.0'))},${OURS}]` }), () => NOW);
    await expect(broker.findPlaced(intent, new Set(['1004055538150']))).resolves.toBe('1004055538154');
  });
});

describe('an answer that does not decode', () => {
  const intentOf = { ...intent, quantity: 3n };
  it.each([
    ['an empty body', '', /^order 1004055538154: bad JSON at offset 0: expected a value$/],
    ['a field of the wrong type', OURS.replace('"orderType":"MARKET"', '"orderType":7'), /^order 1004055538154: at orderType: expected string$/],
  ])('names what is wrong once, after the request (%s)', async (_name, body, message) => {
    const status = fakeSchwabBroker(() => ({ status: 200, body }), () => NOW).status('1004055538154', intentOf);
    await expect(status).rejects.toThrow(BrokerUnavailable);
    await expect(status).rejects.toThrow(message);
  });

  it('names the orders list once', async () => {
    await expect(reconcile(['{'])).rejects.toThrow(/^orders list: bad JSON at offset 2: expected a string$/);
  });
});
