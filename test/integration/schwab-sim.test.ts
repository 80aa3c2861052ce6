/** The Schwab simulator over real HTTP (global fetch), as the adapter will see it. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as D from '../../src/domain/decimal.ts';
import { createSimClock, startSchwabSim, type Fault, type SchwabSim } from '../../src/broker/schwab-sim/index.ts';
import { isMarketOpen, nextCloseAfter, nextOpenAfter } from '../../src/broker/schwab-sim/market-hours.ts';
import { OrderBook } from '../../src/broker/schwab-sim/orders.ts';
import { until } from '../support/until.ts';

const APP = { appKey: 'test-key', appSecret: 'test-secret', callbackUrl: 'https://127.0.0.1:8182/callback' };
const BASIC = `Basic ${Buffer.from(`${APP.appKey}:${APP.appSecret}`).toString('base64')}`;
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const DAY = 24 * 60 * MINUTE;

interface ExecutionLegJson {
  legId: number;
  quantity: number;
  price: number;
  time: string;
}
interface OrderJson {
  orderId: number;
  status: string;
  quantity: number;
  filledQuantity: number;
  remainingQuantity: number;
  cancelable: boolean;
  enteredTime: string;
  closeTime?: string;
  orderLegCollection: { legId: number; instruction: string; quantity: number; instrument: { symbol: string; assetType: string } }[];
  orderActivityCollection?: { activityType: string; executionType: string; quantity: number; orderRemainingQuantity: number; executionLegs: ExecutionLegJson[] }[];
}
interface TokenJson {
  expires_in: number;
  token_type: string;
  scope: string;
  access_token: string;
  refresh_token: string;
  id_token: string;
}
interface Init {
  method?: string;
  body?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

let sim: SchwabSim;
let accessToken: string;

beforeEach(async () => {
  sim = await startSchwabSim(APP);
  accessToken = sim.control.issueTokens().access_token;
});
afterEach(async () => {
  await sim.stop();
});

const api = (path: string, init: Init = {}): Promise<Response> =>
  fetch(`${sim.baseUrl}${path}`, { ...init, headers: { Authorization: `Bearer ${accessToken}`, ...init.headers } });
const ordersPath = (): string => `/trader/v1/accounts/${sim.account.hashValue}/orders`;

function orderBody(symbol = 'GME', quantity: number = 1, instruction = 'BUY'): Record<string, unknown> {
  return {
    orderType: 'MARKET',
    session: 'NORMAL',
    duration: 'DAY',
    orderStrategyType: 'SINGLE',
    orderLegCollection: [{ instruction, quantity, instrument: { symbol, assetType: 'EQUITY' } }],
  };
}

const post = (body: unknown, init: Init = {}): Promise<Response> =>
  api(ordersPath(), { ...init, method: 'POST', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } });

/** Places an order, expects 201, returns its id. */
async function place(symbol = 'GME', quantity = 1, instruction = 'BUY'): Promise<string> {
  const res = await post(orderBody(symbol, quantity, instruction));
  expect(res.status).toBe(201);
  const location = res.headers.get('location') ?? '';
  expect(location).toMatch(new RegExp(`^${sim.baseUrl}${ordersPath()}/\\d{13}$`));
  return location.split('/').pop() ?? '';
}

async function getOrder(orderId: string): Promise<OrderJson> {
  const res = await api(`${ordersPath()}/${orderId}`);
  expect(res.status).toBe(200);
  return (await res.json()) as OrderJson;
}

const listQuery = (from: Date, to: Date, extra = ''): string =>
  `${ordersPath()}?fromEnteredTime=${from.toISOString()}&toEnteredTime=${to.toISOString()}${extra}`;

async function listOrders(extra = ''): Promise<OrderJson[]> {
  const now = sim.clock.now().getTime();
  const res = await api(listQuery(new Date(now - DAY), new Date(now + DAY), extra));
  expect(res.status).toBe(200);
  return (await res.json()) as OrderJson[];
}

const legsOf = (o: OrderJson): ExecutionLegJson[] => (o.orderActivityCollection ?? []).flatMap((a) => a.executionLegs);

/** Σ(price×qty)/Σqty over the execution legs, exact (doubles read back through their text). */
function averagePrice(o: OrderJson): string {
  const legs = legsOf(o);
  const cost = D.sum(legs.map((l) => D.mul(D.parse(String(l.price)), D.parse(String(l.quantity)))));
  return D.format(D.div(cost, D.sum(legs.map((l) => D.parse(String(l.quantity))))));
}

function tokenRequest(form: Record<string, string>, authorization = BASIC): Promise<Response> {
  return fetch(`${sim.baseUrl}/v1/oauth/token`, {
    method: 'POST',
    headers: { Authorization: authorization, 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString(),
  });
}

async function authorizeCode(redirectUri = APP.callbackUrl): Promise<Response> {
  const query = new URLSearchParams({ client_id: APP.appKey, redirect_uri: redirectUri, response_type: 'code' });
  return fetch(`${sim.baseUrl}/v1/oauth/authorize?${query}`, { redirect: 'manual' });
}

/** The full browser flow: authorize, read the code off the callback, exchange it. */
async function login(): Promise<TokenJson> {
  const redirect = await authorizeCode();
  const code = new URL(redirect.headers.get('location') ?? '').searchParams.get('code') ?? '';
  const res = await tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: APP.callbackUrl });
  expect(res.status).toBe(200);
  return (await res.json()) as TokenJson;
}

describe('market hours (America/New_York, via Intl)', () => {
  it('is open 09:30–16:00 on weekdays only, across DST changes', () => {
    expect(isMarketOpen(Date.parse('2025-09-10T13:29:59Z'))).toBe(false);
    expect(isMarketOpen(Date.parse('2025-09-10T13:30:00Z'))).toBe(true);
    expect(isMarketOpen(Date.parse('2025-09-10T19:59:59Z'))).toBe(true);
    expect(isMarketOpen(Date.parse('2025-09-10T20:00:00Z'))).toBe(false);
    expect(isMarketOpen(Date.parse('2025-09-13T15:00:00Z'))).toBe(false); // Saturday
    expect(new Date(nextOpenAfter(Date.parse('2025-09-12T21:00:00Z'))).toISOString()).toBe('2025-09-15T13:30:00.000Z');
    expect(new Date(nextOpenAfter(Date.parse('2025-11-01T12:00:00Z'))).toISOString()).toBe('2025-11-03T14:30:00.000Z'); // EST
    expect(new Date(nextOpenAfter(Date.parse('2025-03-08T12:00:00Z'))).toISOString()).toBe('2025-03-10T13:30:00.000Z'); // EDT
    expect(new Date(nextCloseAfter(Date.parse('2025-09-10T14:00:00Z'))).toISOString()).toBe('2025-09-10T20:00:00.000Z');
  });
});

describe('SimClock', () => {
  it('is manual by default and can follow the wall clock (for the CLI)', async () => {
    const manual = createSimClock();
    const seen: string[] = [];
    manual.onChange((now) => seen.push(now.toISOString()));
    manual.advance(MINUTE);
    expect(seen).toEqual(['2025-09-10T14:01:00.000Z']);
    expect(() => manual.advance(-1)).toThrow(RangeError);

    const start = new Date('2025-09-10T14:00:00Z');
    const wall = createSimClock({ start, followWallClock: true });
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(wall.now().getTime() - start.getTime()).toBeGreaterThanOrEqual(25);
    wall.set(start);
    wall.advance(DAY);
    expect(wall.now().getTime() - start.getTime()).toBeGreaterThanOrEqual(DAY);
  });
});

describe('OrderBook (no HTTP)', () => {
  it('plays opens, fills and closes in time order over a long jump', () => {
    const friday = Date.parse('2025-09-12T21:00:00Z'); // 17:00 New York
    const book = new OrderBook(friday, 1000);
    book.setPrice('GME', D.parse('20'));
    book.setScript({ kind: 'partialThenFill', first: 1, afterMs: 10 * MINUTE }, { next: 1 });
    book.setScript({ kind: 'partialThenExpire', first: 1 }, { next: 1 });
    const filled = book.place({ symbol: 'GME', instruction: 'BUY', quantity: 2n }, friday);
    const expired = book.place({ symbol: 'GME', instruction: 'SELL', quantity: 2n }, friday);
    book.advanceTo(Date.parse('2025-09-17T12:00:00Z')); // the next Wednesday, before the open
    expect(filled).toMatchObject({ status: 'FILLED', closedAt: Date.parse('2025-09-15T13:40:00Z') });
    expect(expired).toMatchObject({ status: 'EXPIRED', filled: 1n, closedAt: Date.parse('2025-09-15T20:00:00Z') });
    expect(filled.executions.map((e) => e.at)).toEqual([Date.parse('2025-09-15T13:30:00Z'), Date.parse('2025-09-15T13:40:00Z')]);
  });
});

describe('OAuth', () => {
  it('runs the authorization-code flow end to end', async () => {
    const redirect = await authorizeCode();
    expect(redirect.status).toBe(302);
    const location = redirect.headers.get('location') ?? '';
    expect(location).toMatch(/^https:\/\/127\.0\.0\.1:8182\/callback\?code=C0\.[\w.-]+%40&session=[0-9a-f-]{36}$/);
    const code = new URL(location).searchParams.get('code') ?? '';
    expect(code.endsWith('@')).toBe(true);

    const res = await tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: APP.callbackUrl });
    expect(res.status).toBe(200);
    const tokens = (await res.json()) as TokenJson;
    expect(tokens).toMatchObject({ expires_in: 1800, token_type: 'Bearer', scope: 'api' });
    expect(tokens.id_token.split('.')).toHaveLength(3);
    accessToken = tokens.access_token;
    expect((await api('/trader/v1/accounts/accountNumbers')).status).toBe(200);

    const reused = await tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: APP.callbackUrl });
    expect(reused.status).toBe(400);
    expect(await reused.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('requires the exact callback and a fresh code', async () => {
    expect((await authorizeCode('https://127.0.0.1:8182/callback/')).status).toBe(400);
    const redirect = await authorizeCode();
    const code = new URL(redirect.headers.get('location') ?? '').searchParams.get('code') ?? '';
    sim.clock.advance(31 * SECOND);
    const late = await tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: APP.callbackUrl });
    expect(late.status).toBe(400);
    expect(await late.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('answers 401 invalid_client to bad app credentials', async () => {
    const res = await tokenRequest({ grant_type: 'refresh_token', refresh_token: 'x' }, `Basic ${Buffer.from('test-key:wrong').toString('base64')}`);
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: 'invalid_client', error_description: 'Unauthorized' });
  });

  it('expires access after 30 min and refresh 7 days after the original login', async () => {
    const tokens = await login();
    accessToken = tokens.access_token;
    sim.clock.advance(31 * MINUTE);
    expect((await api('/trader/v1/accounts/accountNumbers')).status).toBe(401);

    const refreshed = await tokenRequest({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
    expect(refreshed.status).toBe(200);
    const next = (await refreshed.json()) as TokenJson;
    expect(next.refresh_token).toBe(tokens.refresh_token);
    accessToken = next.access_token;
    expect((await api('/trader/v1/accounts/accountNumbers')).status).toBe(200);

    sim.clock.advance(7 * DAY - 32 * MINUTE); // 1 min before the refresh token dies
    expect((await tokenRequest({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token })).status).toBe(200);
    sim.clock.advance(MINUTE);
    const dead = await tokenRequest({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
    expect(dead.status).toBe(400);
    const body = (await dead.json()) as { error: string; error_description: string };
    expect(body.error).toBe('unsupported_token_type');
    expect(body.error_description).toMatch(/^400 Bad Request: "\{"error_description":"Exception while authenticating refresh token .*","error":"refresh_token_authentication_error"\}"$/);
  });

  it('revokes every token on request', async () => {
    const tokens = await login();
    accessToken = tokens.access_token;
    sim.control.revokeTokens();
    expect((await api('/trader/v1/accounts/accountNumbers')).status).toBe(401);
    expect((await tokenRequest({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token })).status).toBe(400);
  });
});

describe('orders', () => {
  it('answers 201 with an empty body and an absolute Location, then reports the fill like Schwab', async () => {
    const res = await post(orderBody('GME', 1));
    expect(res.status).toBe(201);
    expect(await res.text()).toBe('');
    expect(res.headers.get('schwab-client-correlid')).toMatch(/^[0-9a-f-]{36}$/);
    const orderId = (res.headers.get('location') ?? '').split('/').pop() ?? '';

    const got = await api(`${ordersPath()}/${orderId}`);
    const text = await got.text();
    expect(got.headers.get('schwab-client-correlid')).toBeTruthy();
    expect(text).toContain('"quantity":1.0');
    expect(text).toContain('"price":22.7299');
    const order = JSON.parse(text) as OrderJson;
    expect(order).toMatchObject({
      orderId: Number(orderId),
      status: 'FILLED',
      quantity: 1,
      filledQuantity: 1,
      remainingQuantity: 0,
      enteredTime: '2025-09-10T14:00:00+0000',
      closeTime: '2025-09-10T14:00:00+0000',
      orderLegCollection: [{ legId: 1, instruction: 'BUY', quantity: 1, instrument: { symbol: 'GME', assetType: 'EQUITY' } }],
      orderActivityCollection: [
        { activityType: 'EXECUTION', executionType: 'FILL', quantity: 1, orderRemainingQuantity: 0, executionLegs: [{ legId: 1, quantity: 1, price: 22.7299, time: '2025-09-10T14:00:00+0000' }] },
      ],
    });
  });

  it('makes a new order on every POST', async () => {
    const first = await place('GME', 2);
    const second = await place('GME', 2);
    expect(first).not.toBe(second);
    expect(await listOrders()).toHaveLength(2);
    expect(sim.control.counters()).toMatchObject({ ordersPlaced: 2, ordersPlacedBySymbol: { GME: 2 } });
  });

  it.each([
    ['a fractional quantity', orderBody('GME', 1.5)],
    ['a zero quantity', orderBody('GME', 0)],
    ['an unknown symbol', orderBody('NOPE', 1)],
    ['SELL_SHORT', orderBody('GME', 1, 'SELL_SHORT')],
    ['a LIMIT order', { ...orderBody(), orderType: 'LIMIT' }],
    ['a GTC order', { ...orderBody(), duration: 'GOOD_TILL_CANCEL' }],
    ['two legs', { ...orderBody(), orderLegCollection: [1, 2].map(() => (orderBody().orderLegCollection as unknown[])[0]) }],
  ])('refuses %s with a 400 and creates nothing', async (_name, body) => {
    const res = await post(body);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errors: string[] }).errors.length).toBeGreaterThan(0);
    expect(sim.control.counters().ordersPlaced).toBe(0);
  });

  it('refuses malformed JSON, unknown ids, other accounts and missing tokens', async () => {
    const bad = await api(ordersPath(), { method: 'POST', body: '{"orderType":', headers: { 'Content-Type': 'application/json' } });
    expect(bad.status).toBe(400);
    expect((await api(`${ordersPath()}/1004055538999`)).status).toBe(404);
    expect((await api('/trader/v1/accounts/NOTMYHASH/orders/1')).status).toBe(400);
    const anonymous = await fetch(`${sim.baseUrl}${ordersPath()}/1`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('schwab-client-correlid')).toBeTruthy();
  });

  it('lists orders only with both times, from at most 60 days back', async () => {
    const a = await place('GME', 1);
    sim.clock.advance(SECOND);
    const b = await place('AAPL', 1);
    const now = sim.clock.now().getTime();
    const from = new Date(now - DAY).toISOString();
    const to = new Date(now + DAY).toISOString();
    expect((await api(`${ordersPath()}?toEnteredTime=${to}`)).status).toBe(400);
    expect((await api(`${ordersPath()}?fromEnteredTime=${from}`)).status).toBe(400);
    expect((await api(`${ordersPath()}?fromEnteredTime=yesterday&toEnteredTime=${to}`)).status).toBe(400);
    expect((await api(`${ordersPath()}?fromEnteredTime=2025-02-30T00:00:00.000Z&toEnteredTime=${to}`)).status).toBe(400);
    expect((await api(listQuery(new Date(now - 61 * DAY), new Date(now)))).status).toBe(400);
    expect((await api(listQuery(new Date(now - 59 * DAY), new Date(now)))).status).toBe(200);

    expect((await listOrders()).map((o) => String(o.orderId))).toEqual([b, a]); // newest first
    expect(await listOrders('&maxResults=1')).toHaveLength(1);
    expect(await listOrders('&status=FILLED')).toHaveLength(2);
    expect(await listOrders('&status=WORKING')).toHaveLength(0);
    expect((await api(listQuery(new Date(now - DAY), new Date(now), '&status=BOGUS'))).status).toBe(400);
    const before = await api(listQuery(new Date(now - DAY), new Date(now - 2 * SECOND)));
    expect(await before.json()).toEqual([]);
  });

  it('reports positions from fills: long, short and the average price', async () => {
    await place('GME', 3, 'BUY');
    sim.control.setPrice('GME', '25');
    await place('GME', 1, 'BUY');
    await place('AAPL', 2, 'SELL');
    const res = await api(`/trader/v1/accounts/${sim.account.hashValue}?fields=positions`);
    const account = (await res.json()) as { securitiesAccount: { positions: { longQuantity: number; shortQuantity: number; averagePrice: number; instrument: { symbol: string } }[] } };
    expect(account.securitiesAccount.positions).toMatchObject([
      { instrument: { symbol: 'AAPL' }, longQuantity: 0, shortQuantity: 2, averagePrice: 230.11 },
      { instrument: { symbol: 'GME' }, longQuantity: 4, shortQuantity: 0, averagePrice: 23.297425 },
    ]);
    const bare = (await (await api(`/trader/v1/accounts/${sim.account.hashValue}`)).json()) as { securitiesAccount: object };
    expect(bare.securitiesAccount).not.toHaveProperty('positions');
  });
});

describe('lifecycle scripts', () => {
  it('partial then fill: two executions at different prices, a real weighted average', async () => {
    sim.control.setScript({ kind: 'partialThenFill', first: 2, afterMs: 5 * SECOND });
    const id = await place('GME', 3);
    expect(await getOrder(id)).toMatchObject({ status: 'WORKING', filledQuantity: 2, remainingQuantity: 1 });
    sim.control.setPrice('GME', '23.1');
    sim.clock.advance(5 * SECOND);
    const order = await getOrder(id);
    expect(order).toMatchObject({ status: 'FILLED', filledQuantity: 3, closeTime: '2025-09-10T14:00:05+0000' });
    expect(order.orderActivityCollection?.map((a) => [a.quantity, a.orderRemainingQuantity])).toEqual([[2, 1], [1, 0]]);
    expect(legsOf(order).map((l) => l.price)).toEqual([22.7299, 23.1]);
    expect(averagePrice(order)).toBe('22.853266666666666667');
    expect(sim.control.orders()[0]?.averagePrice).toBe('22.853266666666666667');
  });

  it('partial then expire: WORKING until the 16:00 close, EXPIRED keeping the partial fill', async () => {
    sim.control.setScript({ kind: 'partialThenExpire', first: 2 });
    const id = await place('GME', 5);
    sim.clock.set(new Date('2025-09-10T19:59:59Z'));
    accessToken = sim.control.issueTokens().access_token;
    expect(await getOrder(id)).toMatchObject({ status: 'WORKING', filledQuantity: 2 });
    sim.clock.advance(SECOND);
    expect(await getOrder(id)).toMatchObject({ status: 'EXPIRED', filledQuantity: 2, remainingQuantity: 3, closeTime: '2025-09-10T20:00:00+0000' });
  });

  it('partial then cancel: the broker cancels the rest, CANCELED keeps the fill', async () => {
    sim.control.setScript({ kind: 'partialThenCancel', first: 1, afterMs: 2 * SECOND });
    const id = await place('GME', 4);
    sim.clock.advance(2 * SECOND);
    expect(await getOrder(id)).toMatchObject({ status: 'CANCELED', filledQuantity: 1, remainingQuantity: 3 });
  });

  it('async reject: WORKING, then REJECTED', async () => {
    sim.control.setScript({ kind: 'asyncReject', afterMs: 3 * SECOND, reason: 'No shares to borrow' });
    const id = await place('GME', 1);
    expect((await getOrder(id)).status).toBe('WORKING');
    sim.clock.advance(3 * SECOND);
    expect(await getOrder(id)).toMatchObject({ status: 'REJECTED', filledQuantity: 0, statusDescription: 'No shares to borrow' });
  });

  it('stuck: WORKING forever, even across closes', async () => {
    sim.control.setScript({ kind: 'stuck' });
    const id = await place('GME', 1);
    sim.clock.advance(3 * DAY);
    accessToken = sim.control.issueTokens().access_token;
    expect(await getOrder(id)).toMatchObject({ status: 'WORKING', filledQuantity: 0 });
  });

  it('queued: QUEUED for a while although the market is open, then filled', async () => {
    sim.control.setScript({ kind: 'queued', afterMs: 10 * SECOND });
    const id = await place('GME', 1);
    expect((await getOrder(id)).status).toBe('QUEUED');
    sim.clock.advance(10 * SECOND);
    expect((await getOrder(id)).status).toBe('FILLED');
  });

  it('unknown status: reports SOMETHING_NEW for a while, then fills', async () => {
    sim.control.setScript({ kind: 'unknownStatus', afterMs: 10 * SECOND });
    const id = await place('GME', 1);
    expect((await getOrder(id)).status).toBe('SOMETHING_NEW');
    expect(await listOrders('&status=FILLED')).toHaveLength(0);
    sim.clock.advance(10 * SECOND);
    expect((await getOrder(id)).status).toBe('FILLED');
  });

  it('targets the next N orders first, then the symbol, then the default', async () => {
    sim.control.setScript({ kind: 'stuck' }, { next: 1 });
    sim.control.setScript({ kind: 'asyncReject', afterMs: MINUTE }, { symbol: 'AAPL' });
    const stuck = await place('AAPL', 1);
    const rejecting = await place('AAPL', 1);
    const filled = await place('GME', 1);
    sim.clock.advance(MINUTE);
    expect((await getOrder(stuck)).status).toBe('WORKING');
    expect((await getOrder(rejecting)).status).toBe('REJECTED');
    expect((await getOrder(filled)).status).toBe('FILLED');
  });
});

describe('market hours over HTTP', () => {
  it('queues an order placed while closed and fills it at the open, at the then price', async () => {
    sim.clock.set(new Date('2025-09-12T21:00:00Z')); // Friday 17:00 New York
    accessToken = sim.control.issueTokens().access_token;
    const id = await place('GME', 2);
    expect(await getOrder(id)).toMatchObject({ status: 'QUEUED', filledQuantity: 0 });
    sim.control.setPrice('GME', '24.5');
    sim.clock.set(new Date('2025-09-15T13:29:59Z'));
    accessToken = sim.control.issueTokens().access_token;
    expect((await getOrder(id)).status).toBe('QUEUED');
    sim.clock.advance(SECOND); // Monday 09:30
    const order = await getOrder(id);
    expect(order).toMatchObject({ status: 'FILLED', filledQuantity: 2, closeTime: '2025-09-15T13:30:00+0000' });
    expect(legsOf(order)).toEqual([expect.objectContaining({ price: 24.5, time: '2025-09-15T13:30:00+0000' })]);
    expect(sim.control.counters().ordersPlaced).toBe(1);
  });

  it('expires an order still unfilled at 16:00', async () => {
    sim.control.setScript({ kind: 'unknownStatus', status: 'WORKING', afterMs: 10 * 60 * MINUTE });
    const id = await place('GME', 1);
    sim.clock.advance(6 * 60 * MINUTE); // 16:00
    accessToken = sim.control.issueTokens().access_token;
    expect(await getOrder(id)).toMatchObject({ status: 'EXPIRED', filledQuantity: 0 });
  });

  it('09:30:00.000 is open and 16:00:00.000 is closed, to the millisecond, in EST as in EDT', async () => {
    for (const [lastMs, close, beforeOpen] of [
      ['2025-09-10T19:59:59.999Z', '2025-09-10T20:00:00.000Z', '2025-09-11T13:29:59.999Z'], // EDT
      ['2025-11-04T20:59:59.999Z', '2025-11-04T21:00:00.000Z', '2025-11-05T14:29:59.999Z'], // EST
    ] as const) {
      sim.clock.set(new Date(lastMs));
      accessToken = sim.control.issueTokens().access_token;
      sim.control.setScript({ kind: 'partialThenExpire', first: 1 }, { next: 1 });
      const expiring = await place('GME', 2);
      expect(await getOrder(expiring)).toMatchObject({ status: 'WORKING', filledQuantity: 1 });
      sim.clock.set(new Date(close));
      const queued = await place('GME', 1);
      expect(await getOrder(expiring)).toMatchObject({ status: 'EXPIRED', filledQuantity: 1, closeTime: close.replace('.000Z', '+0000') });
      expect((await getOrder(queued)).status).toBe('QUEUED');
      sim.clock.set(new Date(beforeOpen));
      accessToken = sim.control.issueTokens().access_token;
      expect((await getOrder(queued)).status).toBe('QUEUED');
      sim.clock.advance(1);
      expect(await getOrder(queued)).toMatchObject({ status: 'FILLED', closeTime: new Date(Date.parse(beforeOpen) + 1).toISOString().replace('.000Z', '+0000') });
    }
  });

  it('on Thanksgiving an order queues until Friday’s 09:30; on Friday a working order expires at the 13:00 early close', async () => {
    sim.clock.set(new Date('2025-11-27T15:00:00Z')); // Thursday 10:00 EST, Thanksgiving
    accessToken = sim.control.issueTokens().access_token;
    const queued = await place('GME', 1);
    sim.clock.set(new Date('2025-11-28T14:29:59Z'));
    accessToken = sim.control.issueTokens().access_token;
    expect((await getOrder(queued)).status).toBe('QUEUED');
    sim.clock.advance(SECOND); // Friday 09:30 EST
    expect(await getOrder(queued)).toMatchObject({ status: 'FILLED', closeTime: '2025-11-28T14:30:00+0000' });

    sim.clock.set(new Date('2025-11-28T17:59:59Z')); // 12:59:59 EST
    accessToken = sim.control.issueTokens().access_token;
    sim.control.setScript({ kind: 'partialThenExpire', first: 1 }, { next: 1 });
    const expiring = await place('GME', 2);
    sim.clock.advance(SECOND);
    expect(await getOrder(expiring)).toMatchObject({ status: 'EXPIRED', filledQuantity: 1, closeTime: '2025-11-28T18:00:00+0000' });
  });

  it('can pin the market closed or open regardless of the clock', async () => {
    sim.control.setMarketOpen(false);
    const id = await place('GME', 1);
    expect((await getOrder(id)).status).toBe('QUEUED');
    sim.control.setMarketOpen(null);
    expect((await getOrder(id)).status).toBe('FILLED');
  });
});

describe('cancel', () => {
  it('passes PENDING_CANCEL then CANCELED; a second cancel is refused', async () => {
    sim.control.setScript({ kind: 'stuck' });
    const id = await place('GME', 1);
    const res = await api(`${ordersPath()}/${id}`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
    expect(await getOrder(id)).toMatchObject({ status: 'PENDING_CANCEL', cancelable: false });
    expect((await api(`${ordersPath()}/${id}`, { method: 'DELETE' })).status).toBe(400);
    sim.clock.advance(SECOND);
    expect(await getOrder(id)).toMatchObject({ status: 'CANCELED', closeTime: '2025-09-10T14:00:01+0000' });
  });

  it('loses the race to a fill due before the cancel completes', async () => {
    sim.control.setScript({ kind: 'partialThenFill', first: 1, afterMs: 500 });
    const id = await place('GME', 2);
    expect((await api(`${ordersPath()}/${id}`, { method: 'DELETE' })).status).toBe(200);
    expect((await getOrder(id)).status).toBe('PENDING_CANCEL');
    sim.clock.advance(SECOND);
    expect(await getOrder(id)).toMatchObject({ status: 'FILLED', filledQuantity: 2 });
  });

  it('refuses terminal orders (400) and unknown ones (404)', async () => {
    const id = await place('GME', 1);
    expect((await api(`${ordersPath()}/${id}`, { method: 'DELETE' })).status).toBe(400);
    expect((await api(`${ordersPath()}/1004055538999`, { method: 'DELETE' })).status).toBe(404);
  });
});

describe('faults', () => {
  it.each([401, 500, 503])('answers %i once, then normally', async (status) => {
    sim.control.injectFault('accountNumbers', { kind: 'status', status });
    const faulted = await api('/trader/v1/accounts/accountNumbers');
    expect(faulted.status).toBe(status);
    expect(faulted.headers.get('schwab-client-correlid')).toBeTruthy();
    expect((await api('/trader/v1/accounts/accountNumbers')).status).toBe(200);
  });

  it('answers 429 with and without Retry-After', async () => {
    sim.control.injectFault('getOrder', { kind: 'status', status: 429, retryAfterSeconds: 7 });
    sim.control.injectFault('getOrder', { kind: 'status', status: 429 });
    const first = await api(`${ordersPath()}/1`);
    const second = await api(`${ordersPath()}/1`);
    expect([first.status, first.headers.get('retry-after')]).toEqual([429, '7']);
    expect([second.status, second.headers.get('retry-after')]).toEqual([429, null]);
  });

  it('answers an HTML Access Denied page and a gzip-encoded error', async () => {
    sim.control.injectFault('listOrders', { kind: 'html' });
    sim.control.injectFault('listOrders', { kind: 'gzip', status: 503 });
    const html = await api(listQuery(new Date(0), new Date()));
    expect(html.status).toBe(403);
    expect(html.headers.get('content-type')).toBe('text/html');
    expect(await html.text()).toContain('<TITLE>Access Denied</TITLE>');
    const gzip = await api(listQuery(new Date(0), new Date()));
    expect([gzip.status, gzip.headers.get('content-encoding')]).toEqual([503, 'gzip']);
    expect(await gzip.json()).toMatchObject({ message: expect.stringContaining('gzip') });
  });

  it('faults the token endpoint too', async () => {
    sim.control.injectFault('token', { kind: 'status', status: 503 });
    expect((await tokenRequest({ grant_type: 'refresh_token', refresh_token: 'x' })).status).toBe(503);
  });

  it('holds a timed-out request open until the client gives up, and stop() is still prompt', async () => {
    sim.control.injectFault('getOrder', { kind: 'timeout' }, { times: 2 });
    await expect(api(`${ordersPath()}/1`, { signal: AbortSignal.timeout(100) })).rejects.toThrow();
    const held = api(`${ordersPath()}/1`).then(
      () => 'answered',
      () => 'failed',
    );
    await until(() => sim.control.requests().filter((r) => r.status === 'timeout').length === 2, 'both timed-out requests', 1_000, 5);
    const started = performance.now();
    await sim.stop();
    expect(performance.now() - started).toBeLessThan(500);
    expect(await held).toBe('failed');
  });

  it('a timeout after the order was created still leaves the order', async () => {
    sim.control.injectFault('place', { kind: 'timeout', applied: true });
    await expect(post(orderBody(), { signal: AbortSignal.timeout(100) })).rejects.toThrow();
    expect(await listOrders()).toHaveLength(1);
  });

  it('answers 201 without Location while creating the order', async () => {
    sim.control.injectFault('place', { kind: 'noLocation' });
    const res = await post(orderBody('GME', 3));
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBeNull();
    expect((await listOrders()).map((o) => o.orderLegCollection[0]?.quantity)).toEqual([3]);
    expect(sim.control.counters().ordersPlaced).toBe(1);
  });

  it('the ambiguous POST: the order is created, the client sees a socket error', async () => {
    sim.control.injectFault('place', { kind: 'drop', applied: true });
    await expect(post(orderBody())).rejects.toThrow(TypeError);
    expect(await listOrders()).toHaveLength(1);
    expect(sim.control.requests().find((r) => r.endpoint === 'place')).toMatchObject({ status: 'dropped', fault: 'drop' });
  });

  it('a dropped connection before processing creates nothing', async () => {
    sim.control.injectFault('place', { kind: 'drop' });
    await expect(post(orderBody())).rejects.toThrow(TypeError);
    expect(await listOrders()).toHaveLength(0);
  });

  it('draws probabilistic faults from a seeded PRNG, reproducibly', async () => {
    const fault: Fault = { kind: 'status', status: 500 };
    const run = async (): Promise<number[]> => {
      sim.control.injectFault('accountNumbers', fault, { probability: 0.5 });
      const statuses: number[] = [];
      for (let i = 0; i < 16; i++) statuses.push((await api('/trader/v1/accounts/accountNumbers')).status);
      return statuses;
    };
    const first = await run();
    expect(first).toContain(500);
    expect(first).toContain(200);
    await sim.stop();
    sim = await startSchwabSim(APP);
    accessToken = sim.control.issueTokens().access_token;
    expect(await run()).toEqual(first);
    sim.control.clearFaults();
    expect((await api('/trader/v1/accounts/accountNumbers')).status).toBe(200);
  });
});

describe('order write limit', () => {
  it('answers 429 to the 121st order write in a minute of sim time', async () => {
    for (let i = 0; i < 120; i++) expect((await post(orderBody())).status).toBe(201);
    const limited = await post(orderBody());
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('60');
    expect(sim.control.counters().ordersPlaced).toBe(120);
    sim.clock.advance(MINUTE);
    expect((await post(orderBody())).status).toBe(201);
  });
});

describe('counters, request log and the HTTP control API', () => {
  it('counts orders, requests per endpoint and per status, and logs each request', async () => {
    await place('GME', 1);
    await place('AAPL', 1);
    await api(`${ordersPath()}/1`);
    expect(sim.control.counters()).toEqual({
      ordersPlaced: 2,
      ordersPlacedBySymbol: { GME: 1, AAPL: 1 },
      requests: { place: 2, getOrder: 1 },
      responses: { place: { 201: 2 }, getOrder: { 404: 1 } },
    });
    expect(sim.control.requests().map((r) => [r.method, r.path.split('?')[0], r.status, r.time])).toEqual([
      ['POST', ordersPath(), 201, '2025-09-10T14:00:00.000Z'],
      ['POST', ordersPath(), 201, '2025-09-10T14:00:00.000Z'],
      ['GET', `${ordersPath()}/1`, 404, '2025-09-10T14:00:00.000Z'],
    ]);
  });

  it('is drivable from another process over /__control', async () => {
    const control = (path: string, body?: unknown, method = 'POST'): Promise<Response> =>
      fetch(`${sim.baseUrl}/__control/${path}`, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    expect((await control('price', { symbol: 'GME', price: '30.1234' })).status).toBe(200);
    expect((await control('price', { symbol: 'GME', price: '30.12345' })).status).toBe(400);
    expect((await control('script', { script: { kind: 'partialThenFill', first: 1, afterMs: 1000, laterPrice: '31' }, next: 1 })).status).toBe(200);
    expect((await control('script', { script: { kind: 'nonsense' } })).status).toBe(400);
    expect((await control('fault', { endpoint: 'getOrder', fault: { kind: 'status', status: 503 }, times: 1 })).status).toBe(200);
    const tokens = (await (await control('tokens')).json()) as TokenJson;
    accessToken = tokens.access_token;

    const id = await place('GME', 2);
    expect((await api(`${ordersPath()}/${id}`)).status).toBe(503);
    expect(await (await control('clock', { advanceMs: 1000 })).json()).toEqual({ now: '2025-09-10T14:00:01.000Z', marketOpen: true });
    const orders = (await (await control('orders', undefined, 'GET')).json()) as { status: string; averagePrice: string }[];
    expect(orders).toMatchObject([{ status: 'FILLED', averagePrice: '30.5617' }]);
    const counters = (await (await control('counters', undefined, 'GET')).json()) as { ordersPlaced: number };
    expect(counters.ordersPlaced).toBe(1);
    expect((await control('market', { open: false })).status).toBe(200);
    expect(await (await control('clock', undefined, 'GET')).json()).toMatchObject({ marketOpen: false });
    expect((await control('revoke')).status).toBe(200);
    expect((await api(`${ordersPath()}/${id}`)).status).toBe(401);
    expect((await control('nowhere')).status).toBe(404);
  });
});
