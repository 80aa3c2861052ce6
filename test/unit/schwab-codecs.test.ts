/** Schwab's order JSON → what the executor records: tolerant of growth, strict on money, exact. */
import { describe, expect, it } from 'vitest';
import * as D from '../../src/domain/decimal.ts';
import { AccountNumbers, Order, OrderList, TokenResponse, UnexpectedAnswer, decodeBody } from '../../src/broker/schwab/codecs.ts';
import { executions, matchesIntent, orderBody, orderState } from '../../src/broker/schwab/orders.ts';
import type { HedgeOrderIntent } from '../../src/broker/port.ts';

/** The spec's real FILLED order, trimmed, as Schwab writes it. */
const FILLED = `{"session":"NORMAL","duration":"DAY","orderType":"MARKET","quantity":1.0,"filledQuantity":1.0,
 "remainingQuantity":0.0,"orderStrategyType":"SINGLE","orderId":1004055538153,"status":"FILLED",
 "enteredTime":"2025-08-29T17:15:17+0000","closeTime":"2025-08-29T17:15:18+0000",
 "orderLegCollection":[{"orderLegType":"EQUITY","legId":1,"instruction":"BUY","quantity":1.0,
   "instrument":{"assetType":"EQUITY","symbol":"GME"}}],
 "orderActivityCollection":[{"activityType":"EXECUTION","executionType":"FILL","quantity":1.0,
   "orderRemainingQuantity":0.0,"executionLegs":[{"legId":1,"quantity":1.0,"price":22.7299,
   "time":"2025-08-29T17:15:18+0000"}]}]}`;

interface Leg {
  quantity: string;
  price: string;
}

function order(status: string, quantity: string, legs: Leg[], extra = ''): string {
  const activities = legs.map((l) => `{"activityType":"EXECUTION","executionLegs":[{"legId":1,"quantity":${l.quantity},"price":${l.price},"time":"2025-09-10T14:00:01+0000"}]}`);
  return `{"orderId":1004055538154,"status":"${status}","orderType":"MARKET","enteredTime":"2025-09-10T14:00:00+0000",
    "orderLegCollection":[{"instruction":"SELL","quantity":${quantity},"instrument":{"symbol":"AAPL","assetType":"EQUITY"}}]
    ${legs.length > 0 ? `,"orderActivityCollection":[${activities.join(',')}]` : ''}${extra}}`;
}

const decode = (json: string) => decodeBody(Order, json, 'order');

const intent: HedgeOrderIntent = { commandId: 'c', symbol: 'GME', side: 'BUY', quantity: 1n, referencePrice: null, intentAt: new Date('2025-08-29T17:15:00Z') };

describe('order codec', () => {
  it('decodes the real FILLED order into an exact fill', () => {
    const decoded = decode(FILLED);
    expect(decoded).toMatchObject({ orderId: '1004055538153', status: 'FILLED', enteredTime: new Date('2025-08-29T17:15:17Z') });
    const state = orderState(decoded);
    expect(state.status).toBe('filled');
    if (state.status === 'filled') expect([D.format(state.filledQuantity), D.format(state.averagePrice)]).toEqual(['1', '22.7299']);
  });

  it('averages every execution leg of every activity exactly: Σ(price×qty)/Σqty', () => {
    const legs = [{ quantity: '3.0', price: '22.7299' }, { quantity: '2.0', price: '22.7301' }, { quantity: '1.0', price: '22.73' }];
    const { filled, averagePrice } = executions(decode(order('FILLED', '6.0', legs)));
    expect(D.format(filled)).toBe('6');
    // (68.1897 + 45.4602 + 22.73) / 6 = 136.3799 / 6 = 22.72998333…
    expect(D.format(D.round(averagePrice!, 4))).toBe('22.73');
    expect(D.format(averagePrice!)).toBe('22.729983333333333333');
  });

  it('keeps partial fills on CANCELED and EXPIRED, and reports none on REJECTED', () => {
    for (const status of ['CANCELED', 'EXPIRED']) {
      const state = orderState(decode(order(status, '5.0', [{ quantity: '2.0', price: '230.11' }], ',"statusDescription":"Order expired at the close"')));
      expect(state).toMatchObject({ status: 'failed', reason: `${status}: Order expired at the close` });
      if (state.status === 'failed') expect([D.format(state.filledQuantity), state.averagePrice && D.format(state.averagePrice)]).toEqual(['2', '230.11']);
    }
    expect(orderState(decode(order('REJECTED', '5.0', [])))).toMatchObject({ status: 'failed', reason: 'REJECTED', averagePrice: null });
  });

  it('treats unknown statuses as open', () => {
    expect(orderState(decode(order('SOMETHING_NEW', '5.0', [])))).toMatchObject({ status: 'open', brokerStatus: 'SOMETHING_NEW' });
    expect(orderState(decode(order('PENDING_ACKNOWLEDGEMENT', '5.0', [{ quantity: '1.0', price: '1' }])))).toMatchObject({ status: 'open' });
  });

  it('ends every terminal status, executions or not: an order Schwab will not cancel is never polled forever', () => {
    for (const status of ['FILLED', 'CANCELED', 'EXPIRED', 'REJECTED', 'REPLACED']) {
      for (const legs of [[], [{ quantity: '4.0', price: '1' }]]) expect(orderState(decode(order(status, '5.0', legs))).status).not.toBe('open');
    }
  });

  it('FILLED without every execution: every share counts as filled (none is hedged again), at an unknown price, for an operator', () => {
    const outcome = (legs: Leg[], filledQuantity?: string) => {
      const state = orderState(decode(order('FILLED', '5.0', legs, filledQuantity === undefined ? '' : `,"filledQuantity":${filledQuantity}`)));
      return { status: state.status, filled: D.format(state.filledQuantity), averagePrice: state.status === 'open' || state.averagePrice === null ? null : D.format(state.averagePrice), reason: state.status === 'failed' ? state.reason : null };
    };
    const unpriced = (executed: string) => ({ status: 'failed', filled: '5', averagePrice: null, reason: `FILLED, but Schwab lists executions for ${executed} of 5 shares, so their average price is unknown: check the order at Schwab` });
    const four = [{ quantity: '4.0', price: '1' }];
    expect(outcome([])).toEqual(unpriced('0'));
    expect(outcome([], '5.0')).toEqual(unpriced('0'));
    expect(outcome(four)).toEqual(unpriced('4'));
    expect(outcome(four, '3.0')).toEqual(unpriced('4'));
    expect(outcome([...four, { quantity: '1.0', price: '2' }], '0.0')).toEqual({ status: 'filled', filled: '5', averagePrice: '1.2', reason: null }); // executions for every share decide
    expect(() => decode(order('FILLED', '5.0', [], ',"filledQuantity":4.5'))).toThrow(/filledQuantity: expected a whole, non-negative number of shares/);
  });

  it('keeps the shares filledQuantity reports on CANCELED, EXPIRED and REJECTED without executions, at an unknown price', () => {
    for (const status of ['CANCELED', 'EXPIRED', 'REJECTED']) {
      const state = orderState(decode(order(status, '5.0', [], ',"filledQuantity":2.0')));
      expect(state).toMatchObject({ status: 'failed', reason: status, averagePrice: null });
      expect(D.format(state.filledQuantity)).toBe('2');
    }
  });

  it('believes no filledQuantity above the ordered shares: the executions decide, at their price', () => {
    for (const status of ['CANCELED', 'EXPIRED', 'WORKING']) {
      const state = orderState(decode(order(status, '5.0', [{ quantity: '2.0', price: '230.11' }], ',"filledQuantity":7.0')));
      expect(D.format(state.filledQuantity), status).toBe('2');
      if (state.status === 'failed') expect(state.averagePrice && D.format(state.averagePrice)).toBe('230.11');
    }
  });

  it('never counts more shares filled than ordered: executions above the order on CANCELED, EXPIRED, REJECTED or REPLACED count the ordered shares, at an unknown price', () => {
    for (const status of ['CANCELED', 'EXPIRED', 'REJECTED', 'REPLACED']) {
      const state = orderState(decode(order(status, '5.0', [{ quantity: '4.0', price: '230.11' }, { quantity: '3.0', price: '230.12' }])));
      expect(state).toMatchObject({ status: 'failed', averagePrice: null, reason: `${status}, but Schwab lists executions for 7 of 5 shares, so their average price is unknown: check the order at Schwab` });
      expect(D.format(state.filledQuantity)).toBe('5');
    }
  });

  it('ignores fields it does not know, anywhere', () => {
    const decoded = decode(order('WORKING', '1.0', [], ',"someNewField":{"nested":[1,2,3]},"tag":"API_TOS"'));
    expect(decoded.status).toBe('WORKING');
  });

  it('is strict on money: no strings, no fractions of a share, no zero or negative prices', () => {
    const bad: [string, RegExp][] = [
      [order('FILLED', '"1"', []), /orderLegCollection\.0\.quantity: expected a whole, non-negative number of shares as a JSON number/],
      [order('FILLED', '1.5', []), /quantity: expected a whole, non-negative number of shares/],
      [order('FILLED', '1.0', [{ quantity: '1.0', price: '"22.73"' }]), /price: expected a positive price as a JSON number/],
      [order('FILLED', '1.0', [{ quantity: '1.0', price: '0.0' }]), /price: expected a positive price/],
      [order('FILLED', '1.0', [{ quantity: '1.0', price: '1e-30' }]), /at most 18 decimals/],
      ['<HTML><TITLE>Access Denied</TITLE></HTML>', /order: bad JSON at offset 0/],
    ];
    for (const [json, message] of bad) expect(() => decode(json)).toThrow(message);
    expect(() => decode('{}')).toThrow(UnexpectedAnswer);
  });

  it('reads lists and token answers', () => {
    expect(decodeBody(OrderList, `[${FILLED},${order('WORKING', '2.5', [])}]`, 'orders')).toHaveLength(2); // each order is decoded on its own
    const tokens = decodeBody(TokenResponse, '{"expires_in":1800,"token_type":"Bearer","scope":"api","refresh_token":"r","access_token":"a","id_token":"i"}', 'token');
    expect(tokens).toMatchObject({ expires_in: 1800, token_type: 'Bearer', refresh_token: 'r', access_token: 'a' });
  });

  it('refuses an account list with an empty account number or hash: the hash is cached and goes into every path (/accounts//orders answers 404 for ever)', () => {
    expect(decodeBody(AccountNumbers, '[{"accountNumber":"12345678","hashValue":"ABC"}]', 'accountNumbers')).toHaveLength(1);
    expect(() => decodeBody(AccountNumbers, '[{"accountNumber":"12345678","hashValue":""}]', 'accountNumbers')).toThrow(/^accountNumbers: at 0\.hashValue: expected a non-empty string$/);
    expect(() => decodeBody(AccountNumbers, '[{"accountNumber":" ","hashValue":"ABC"}]', 'accountNumbers')).toThrow(/^accountNumbers: at 0\.accountNumber: expected a non-empty string$/);
  });

  it('refuses a token answer with an empty token: saved, an empty refresh token would end the login at the next refresh', () => {
    const answer = (access: string, refresh: string) => `{"expires_in":1800,"token_type":"Bearer","scope":"api","refresh_token":"${refresh}","access_token":"${access}","id_token":"i"}`;
    expect(() => decodeBody(TokenResponse, answer('a', ''), 'token response')).toThrow(/^token response: at refresh_token: expected a non-empty string$/);
    expect(() => decodeBody(TokenResponse, answer('', 'r'), 'token response')).toThrow(/^token response: at access_token: expected a non-empty string$/);
  });

  it('names what is wrong in an answer without quoting its values (they may be tokens)', () => {
    const odd = '{"expires_in":1800,"token_type":"Bearer","scope":"api","refresh_token":"secret-refresh","access_token":["secret-access"],"id_token":"i"}';
    expect(() => decodeBody(TokenResponse, odd, 'token')).toThrow(/^token: at access_token: expected string$/);
  });
});

describe('reconciliation match', () => {
  const filled = decode(FILLED);

  it('matches symbol, side, quantity, MARKET, and entry after the intent minus skew', () => {
    expect(matchesIntent(filled, intent, new Date('2025-08-29T17:14:00Z'))).toBe(true);
    expect(matchesIntent(filled, intent, new Date('2025-08-29T17:15:18Z'))).toBe(false);
    // An order of two legs (a pair traded by hand) is not our single-leg order, though its first leg is alike.
    const twoLegs = decode(FILLED.replace('"instrument":{"assetType":"EQUITY","symbol":"GME"}}]', '"instrument":{"assetType":"EQUITY","symbol":"GME"}},{"orderLegType":"EQUITY","legId":2,"instruction":"SELL","quantity":1.0,"instrument":{"assetType":"EQUITY","symbol":"AMC"}}]'));
    expect(twoLegs.orderLegCollection).toHaveLength(2);
    expect(matchesIntent(twoLegs, intent, new Date('2025-08-29T17:14:00Z'))).toBe(false);
    expect(matchesIntent(filled, { ...intent, side: 'SELL' }, new Date(0))).toBe(false);
    expect(matchesIntent(filled, { ...intent, quantity: 2n }, new Date(0))).toBe(false);
    expect(matchesIntent(filled, { ...intent, symbol: 'GMEW' }, new Date(0))).toBe(false);
    expect(matchesIntent({ ...filled, orderType: 'LIMIT' }, intent, new Date(0))).toBe(false);
  });

  it('places exactly the intent, whole shares written as a JSON integer', () => {
    expect(JSON.parse(orderBody({ ...intent, quantity: 12n }))).toEqual({
      orderType: 'MARKET',
      session: 'NORMAL',
      duration: 'DAY',
      orderStrategyType: 'SINGLE',
      orderLegCollection: [{ instruction: 'BUY', quantity: 12, instrument: { symbol: 'GME', assetType: 'EQUITY' } }],
    });
  });
});

describe('Schwab times', () => {
  const enteredTime = (text: string): Date => decode(FILLED.replace('"enteredTime":"2025-08-29T17:15:17+0000"', `"enteredTime":${JSON.stringify(text)}`)).enteredTime;

  /** Runs `body` with the process in another time zone (Node re-reads TZ when it is assigned). */
  function inTimeZone<T>(zone: string, body: () => T): T {
    const before = process.env['TZ'];
    process.env['TZ'] = zone;
    try {
      return body();
    } finally {
      if (before === undefined) delete process.env['TZ'];
      else process.env['TZ'] = before;
    }
  }

  it.each([
    ['2025-08-29T17:15:17+0000', '2025-08-29T17:15:17.000Z'],
    ['2025-08-29T17:15:17.123+0000', '2025-08-29T17:15:17.123Z'],
    ['2025-08-29T17:15:17.123456+0000', '2025-08-29T17:15:17.123Z'],
    ['2025-08-29T13:15:17-0400', '2025-08-29T17:15:17.000Z'],
    ['2025-08-29T17:15:17+00:00', '2025-08-29T17:15:17.000Z'],
    ['2025-08-29T17:15:17Z', '2025-08-29T17:15:17.000Z'],
    // Schwab writes UTC: a time without a zone is UTC too, never the host's local time.
    ['2025-08-29T17:15:17', '2025-08-29T17:15:17.000Z'],
    ['2025-08-29T17:15:17.500', '2025-08-29T17:15:17.500Z'],
  ])('reads %s as %s whatever the host’s time zone', (text, iso) => {
    for (const zone of ['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Tokyo']) expect([zone, inTimeZone(zone, () => enteredTime(text)).toISOString()]).toEqual([zone, iso]);
  });

  it('refuses what is not an ISO time rather than guess a zone for it', () => {
    for (const text of ['Aug 29 2025 17:15:17', '2025-08-29', '2025-08-29T17:15:17 +0000', '1756487717000', ''])
      expect(() => inTimeZone('Europe/Berlin', () => enteredTime(text)), text).toThrow(/enteredTime/);
  });

  it('refuses a date the calendar does not have instead of rolling it into the next month', () => {
    for (const text of ['2025-02-29T17:15:17+0000', '2025-02-30T17:15:17+0000', '2025-04-31T17:15:17Z', '2025-08-29T25:15:17+0000', '2025-08-29T17:61:17'])
      expect(() => enteredTime(text), text).toThrow(/enteredTime/);
    expect(enteredTime('2024-02-29T17:15:17+0000').toISOString()).toBe('2024-02-29T17:15:17.000Z');
  });

  it('a zone-less entry time one second after the intent still matches it on a host east of UTC (else the order would be placed twice)', () => {
    const order = inTimeZone('Europe/Berlin', () => decode(FILLED.replace('"enteredTime":"2025-08-29T17:15:17+0000"', '"enteredTime":"2025-08-29T17:15:01"')));
    expect(matchesIntent(order, intent, new Date('2025-08-29T17:15:00Z'))).toBe(true);
  });
});
