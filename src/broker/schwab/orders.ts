/** Orders in Schwab's JSON and what they mean to the executor: pure functions, exact decimals. */
import * as D from '../../domain/decimal.ts';
import * as E from 'fp-ts/lib/Either.js';
import type { BrokerOrderState, HedgeOrderIntent } from '../port.ts';
import { OrderSymbols, type Order } from './codecs.ts';
import { JsonNumber, stringifyJson } from './json-text.ts';

/** Terminal without a complete fill; CANCELED and EXPIRED keep whatever filled before. */
const TERMINAL_FAILURES: ReadonlySet<string> = new Set(['CANCELED', 'REJECTED', 'EXPIRED', 'REPLACED']);

/** A single-leg MARKET/NORMAL/DAY equity order, with the whole-share quantity written exactly. */
export function orderBody(intent: HedgeOrderIntent): string {
  return stringifyJson({
    orderType: 'MARKET',
    session: 'NORMAL',
    duration: 'DAY',
    orderStrategyType: 'SINGLE',
    orderLegCollection: [{ instruction: intent.side, quantity: new JsonNumber(intent.quantity.toString()), instrument: { symbol: intent.symbol, assetType: 'EQUITY' } }],
  });
}

/** Shares filled and their average price (null when unknown). */
interface Filled {
  readonly filled: D.Decimal;
  readonly averagePrice: D.Decimal | null;
}

/** Shares filled, and Σ(price×qty)/Σqty over every execution leg of every activity (null before any fill). */
export function executions(order: Order): Filled {
  const legs = (order.orderActivityCollection ?? []).flatMap((a) => a.executionLegs ?? []);
  const filled = D.sum(legs.map((l) => l.quantity));
  if (D.isZero(filled)) return { filled, averagePrice: null };
  const cost = D.sum(legs.map((l) => D.mul(l.price, l.quantity)));
  return { filled, averagePrice: D.div(cost, filled) };
}

const ordered = (order: Order): D.Decimal => D.sum(order.orderLegCollection.map((l) => l.quantity));

/**
 * Shares filled and their average price, for an order that is not FILLED. The executions decide,
 * unless Schwab's filledQuantity counts more shares without contradicting them (at least the
 * executed, at most the ordered): executions can be missing. Then the price of those shares is
 * unknown (null), never guessed. Executions above the ordered quantity contradict the order: as for
 * FILLED, the ordered shares count (none is hedged again, net never overshoots) at an unknown
 * price, and `contradiction` says why for an operator.
 */
function filledShares(order: Order): Filled & { readonly contradiction?: string } {
  const executed = executions(order);
  const all = ordered(order);
  if (D.lt(all, executed.filled)) return { filled: all, averagePrice: null, contradiction: unpriced(order, executed.filled, all) };
  const reported = order.filledQuantity;
  const credible = reported !== undefined && D.lt(executed.filled, reported) && D.gte(all, reported);
  return credible ? { filled: reported, averagePrice: null } : executed;
}

function failureReason(order: Order): string {
  return order.statusDescription === undefined ? order.status : `${order.status}: ${order.statusDescription}`;
}

/**
 * FILLED is terminal and says every ordered share filled. It is a fill when the executions give
 * their price; otherwise a failure that still counts every share, so none is hedged again, at an
 * unknown price for an operator to check (HedgeOrderFilled needs the price).
 */
function filledOrder(order: Order): BrokerOrderState {
  const all = ordered(order);
  const executed = executions(order);
  if (executed.averagePrice !== null && D.eq(executed.filled, all)) return { status: 'filled', filledQuantity: all, averagePrice: executed.averagePrice };
  return { status: 'failed', reason: unpriced(order, executed.filled, all), filledQuantity: all, averagePrice: null };
}

const unpriced = (order: Order, executed: D.Decimal, all: D.Decimal): string =>
  `${failureReason(order)}, but Schwab lists executions for ${D.format(executed)} of ${D.format(all)} shares, so their average price is unknown: check the order at Schwab`;

/** Every terminal status is an outcome; any status we do not know is an open order. */
export function orderState(order: Order): BrokerOrderState {
  if (order.status === 'FILLED') return filledOrder(order);
  const { filled, averagePrice, contradiction } = filledShares(order);
  if (TERMINAL_FAILURES.has(order.status)) return { status: 'failed', reason: contradiction ?? failureReason(order), filledQuantity: filled, averagePrice };
  return { status: 'open', brokerStatus: order.status, filledQuantity: filled };
}

/** Same symbol, side, quantity, a MARKET order, entered no earlier than `notBefore`. */
export function matchesIntent(order: Order, intent: HedgeOrderIntent, notBefore: Date): boolean {
  const [leg, ...others] = order.orderLegCollection;
  return (
    leg !== undefined &&
    others.length === 0 &&
    order.orderType === 'MARKET' &&
    leg.instrument.symbol === intent.symbol &&
    leg.instruction === intent.side &&
    D.eq(leg.quantity, D.fromBigInt(intent.quantity)) &&
    order.enteredTime.getTime() >= notBefore.getTime()
  );
}

/** Whether an order we could not decode may be the intent's: a leg in its symbol, or legs whose symbols we cannot read. */
export function mayBeFor(undecoded: unknown, symbol: string): boolean {
  const legs = OrderSymbols.decode(undecoded);
  return E.isLeft(legs) || legs.right.orderLegCollection.some((l) => l.instrument.symbol === symbol);
}
