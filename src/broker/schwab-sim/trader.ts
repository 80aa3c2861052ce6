/** Handlers for the OAuth and Trader API endpoints. They build replies; the server sends them. */
import type { IncomingHttpHeaders } from 'node:http';
import type { SimCore } from './core.ts';
import { foldPositions } from './positions.ts';
import type { Endpoint } from './model.ts';
import { accountJson, orderJson } from './order-json.ts';
import { emptyReply, jsonReply, schwabError, type Reply } from './reply.ts';
import { parseOrderQuery, parsePlaceOrder } from './requests.ts';

export interface ApiRequest {
  readonly url: URL;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** Path captures: account hash, then order id. */
  readonly params: readonly string[];
  readonly now: number;
}

type Handler = (core: SimCore, req: ApiRequest) => Reply;

/** 401 unless the request carries a live access token. */
const authorized =
  (handler: Handler): Handler =>
  (core, req) =>
    core.oauth.isAuthorized(req.headers.authorization, req.now)
      ? handler(core, req)
      : schwabError(401, 'Unauthorized', ['Access token is missing, invalid or expired']);

const forAccount =
  (handler: Handler): Handler =>
  (core, req) =>
    req.params[0] === core.account.hashValue ? handler(core, req) : schwabError(400, 'Invalid account hash');

/** Order writes (place, cancel) share the per-app limit; the 429 tells when to retry. */
const orderWrite =
  (handler: Handler): Handler =>
  (core, req) => {
    const hit = core.writeLimiter.tryHit(req.now);
    if (hit.ok) return handler(core, req);
    const reply = schwabError(429, 'Too many requests', ['Order write limit of 120 per minute exceeded']);
    return { ...reply, headers: { ...reply.headers, 'Retry-After': String(Math.ceil(hit.retryAfterMs / 1000)) } };
  };

const trader = (handler: Handler): Handler => authorized(forAccount(handler));

function orderIdOf(req: ApiRequest): number | undefined {
  const text = req.params[1] ?? '';
  return /^[1-9][0-9]{0,15}$/.test(text) ? Number(text) : undefined;
}

/** An unpriced symbol is a 400 with no order created (not a REJECTED order): the sim has no quote to fill it at. */
const place: Handler = (core, req) => {
  const parsed = parsePlaceOrder(req.body, (symbol) => core.book.priceOf(symbol) !== undefined);
  if (!parsed.ok) return schwabError(400, 'Invalid order', parsed.errors);
  const order = core.book.place(parsed.value, req.now);
  core.journal.orderPlaced(order.symbol);
  return emptyReply(201, { Location: `${core.baseUrl}/trader/v1/accounts/${core.account.hashValue}/orders/${order.orderId}` });
};

const getOrder: Handler = (core, req) => {
  const orderId = orderIdOf(req);
  const order = orderId === undefined ? undefined : core.book.get(orderId);
  return order === undefined ? schwabError(404, 'Order not found') : jsonReply(200, orderJson(order, core.account));
};

const listOrders: Handler = (core, req) => {
  const query = parseOrderQuery(req.url.searchParams, req.now);
  if (!query.ok) return schwabError(400, 'Invalid query', query.errors);
  return jsonReply(200, core.book.list(query.value).map((o) => orderJson(o, core.account)));
};

const cancel: Handler = (core, req) => {
  const orderId = orderIdOf(req);
  switch (orderId === undefined ? 'notFound' : core.book.cancel(orderId, req.now)) {
    case 'accepted':
      return emptyReply(200);
    case 'notFound':
      return schwabError(404, 'Order not found');
    case 'notCancelable':
      return schwabError(400, 'Order cannot be canceled', ['The order is already in a terminal state or pending cancel']);
  }
};

const positions: Handler = (core, req) => {
  const wanted = (req.url.searchParams.get('fields') ?? '').split(',').includes('positions');
  return jsonReply(200, accountJson(core.account, wanted ? foldPositions(core.book.fills()) : undefined, (s) => core.book.priceOf(s)));
};

export const HANDLERS: Readonly<Record<Endpoint, Handler>> = {
  authorize: (core, req) => core.oauth.authorize(req.url.searchParams, req.now),
  token: (core, req) => core.oauth.token(req.headers.authorization, req.headers['content-type'], req.body, req.now),
  accountNumbers: authorized((core) => jsonReply(200, [{ ...core.account }])),
  positions: trader(positions),
  place: trader(orderWrite(place)),
  getOrder: trader(getOrder),
  listOrders: trader(listOrders),
  cancel: trader(orderWrite(cancel)),
};
