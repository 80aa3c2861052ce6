/**
 * The Schwab adapter of the broker port. Schwab has no client order id, so a placement that
 * did not clearly succeed or clearly fail is AmbiguousPlacement, and the executor reconciles
 * through the orders list before placing again. Only a 400 is a definite refusal.
 */
import { AmbiguousPlacement, BrokerNeedsOperator, BrokerUnavailable, OrderRejected, type Broker, type BrokerOrderState, type HedgeOrderIntent } from '../port.ts';
import type * as t from 'io-ts';
import * as E from 'fp-ts/lib/Either.js';
import type { Logger } from '../../log.ts';
import { Order, OrderList, UnexpectedAnswer, decodeBody, decodeJson, isOrderId } from './codecs.ts';
import { TransportError, type HttpAnswer } from './http.ts';
import { ClockOffset } from './clock-offset.ts';
import { matchesIntent, mayBeFor, orderBody, orderState } from './orders.ts';
import type { TraderApi, TraderRequest } from './trader-api.ts';
import type { WriteBudget } from './write-budget.ts';

/** The orders list reaches at most 60 days back; stay a minute inside it. */
const LIST_WINDOW_MS = 60 * 24 * 60 * 60_000 - 60_000;
/** The orders list answers at most this many orders (Schwab's default maxResults, asked for explicitly). */
const LIST_PAGE = 3000;
const SECOND_MS = 1000;

export interface SchwabBrokerOptions {
  readonly api: Pick<TraderApi, 'account'>;
  readonly budget: WriteBudget;
  readonly now: () => Date;
  /** Reconciliation accepts orders entered this long before the intent was recorded (clock skew). */
  readonly reconcileSkewMs: number;
  readonly log: Logger;
}

/**
 * The earliest entry time an order of the intent can show. Schwab's enteredTime has whole
 * seconds, so an order entered in the intent's own second shows that second's start: the
 * bound is rounded down, which keeps any skew (0 included) from missing our own order.
 */
const enteredNoEarlierThan = (intentAt: Date, skewMs: number): Date => new Date(Math.floor((intentAt.getTime() - skewMs) / 1000) * 1000);

const orderIdFromLocation = (location: string | null): string | undefined => {
  const digits = /\/orders\/(\d+)$/.exec(location ?? '')?.[1];
  return digits !== undefined && isOrderId(digits) ? digits : undefined;
};

/** Schwab's `{message, errors}` when the body is that, else nothing: bodies are opaque. */
function refusal(answer: HttpAnswer): string {
  try {
    const { message, errors } = JSON.parse(answer.body) as { message?: unknown; errors?: unknown };
    const details = Array.isArray(errors) ? errors.filter((e) => typeof e === 'string' && e !== message) : [];
    return [typeof message === 'string' ? message : `HTTP ${answer.status}`, ...details].join('; ');
  } catch {
    return `HTTP ${answer.status}`;
  }
}

const describe = (what: string, answer: HttpAnswer): string => `${what} answered HTTP ${answer.status} (correlId ${answer.correlId ?? 'none'})`;

/** Operator problems pass through; anything else about a read is worth another try later. */
function transient(e: unknown, what: string): Error {
  if (e instanceof BrokerNeedsOperator || e instanceof BrokerUnavailable) return e;
  return new BrokerUnavailable(`${what}: ${(e as Error).message}`, undefined, { cause: e });
}

/** What one search of the orders list found, or why its answer cannot be believed when it found nothing. */
interface Search {
  readonly found: string | undefined;
  readonly untrusted?: BrokerUnavailable;
}

const accepted = (search: Search): string | undefined => {
  if (search.untrusted !== undefined) throw search.untrusted;
  return search.found;
};

/** Oldest entered first; orders entered within one second by their ids. */
const byEntry = (a: Order, b: Order): number => a.enteredTime.getTime() - b.enteredTime.getTime() || (BigInt(a.orderId) < BigInt(b.orderId) ? -1 : 1);

export class SchwabBroker implements Broker {
  readonly name = 'schwab';

  private readonly clock: ClockOffset;

  constructor(private readonly options: SchwabBrokerOptions) {
    this.clock = new ClockOffset(options.now, options.log);
  }

  async place(intent: HedgeOrderIntent, signal?: AbortSignal): Promise<{ brokerOrderId: string }> {
    const answer = await this.options.budget.write(() =>
      this.options.api.account({ method: 'POST', path: '/orders', body: orderBody(intent) }).catch((e: unknown) => {
        // Only a request that got no answer may have created the order; anything else failed before it.
        throw e instanceof TransportError ? new AmbiguousPlacement(`place: ${e.message}`, undefined, { cause: e }) : transient(e, 'place');
      }), signal);
    this.clock.observe(answer.date);
    const brokerOrderId = answer.status === 201 ? orderIdFromLocation(answer.location) : undefined;
    if (brokerOrderId !== undefined) return { brokerOrderId };
    if (answer.status === 400) throw new OrderRejected(refusal(answer));
    const missing = answer.status === 201 ? ' without a usable Location' : '';
    throw new AmbiguousPlacement(`${describe('place', answer)}${missing}`, answer.retryAfterMs);
  }

  async status(brokerOrderId: string, intent: HedgeOrderIntent): Promise<BrokerOrderState> {
    const what = `order ${brokerOrderId}`;
    const order = await this.read(Order, { method: 'GET', path: `/orders/${brokerOrderId}` }, what);
    // An answer about another order, or unlike the one placed for the intent, is no outcome of this command's: ask again.
    if (order.orderId !== brokerOrderId) throw new BrokerUnavailable(`${what}: the answer describes order ${order.orderId}`);
    if (!matchesIntent(order, intent, new Date(0))) throw new BrokerUnavailable(`${what}: the answer is not a MARKET order for ${intent.side} ${intent.quantity} ${intent.symbol}, as placed`);
    return orderState(order);
  }

  async findPlaced(intent: HedgeOrderIntent, linked: ReadonlySet<string>): Promise<string | undefined> {
    const { earlierMs, laterMs } = this.clock;
    const found = await this.search(intent, linked);
    // The window followed the last Date seen, which may not be Schwab's: none yet (a new process, whose first answer
    // is this very list), or an intermediary's error page stamped by its own clock. When the list's own answer shows
    // a wider one, the search may have missed our order: it is asked again.
    return accepted(this.clock.earlierMs > earlierMs || this.clock.laterMs > laterMs ? await this.search(intent, linked) : found);
  }

  async unlinkedOrders(symbol: string, since: Date, linked: ReadonlySet<string>): Promise<string[]> {
    const { orders, notBefore } = await this.ordersSince(since, symbol);
    const unlinked = orders.filter((o) => !linked.has(o.orderId) && o.enteredTime.getTime() >= notBefore.getTime() && o.orderLegCollection.some((leg) => leg.instrument.symbol === symbol));
    return unlinked.sort(byEntry).map((o) => o.orderId);
  }

  /**
   * Every order entered since `since` (on Schwab's clock, minus skew) up to now, and that bound. An order that does
   * not decode is skipped if it cannot be `symbol`'s, else the list fails as BrokerUnavailable (listedOrder).
   */
  private async ordersSince(since: Date, symbol: string): Promise<{ orders: Order[]; notBefore: Date }> {
    const now = this.options.now().getTime();
    const { earlierMs, laterMs } = this.clock;
    const notBefore = enteredNoEarlierThan(new Date(since.getTime() - earlierMs), this.options.reconcileSkewMs);
    // Schwab's 60 days count on its clock, but only the side that widens is taken: a Date far ahead that is not its
    // clock (an intermediary's page) would move the window past the intent, find nothing and place again.
    const orders = await this.ordersEntered(Math.max(notBefore.getTime(), now - earlierMs - LIST_WINDOW_MS), now + laterMs + this.options.reconcileSkewMs, symbol);
    return { orders, notBefore };
  }

  private async search(intent: HedgeOrderIntent, linked: ReadonlySet<string>): Promise<Search> {
    const { orders, notBefore } = await this.ordersSince(intent.intentAt, intent.symbol);
    // The earliest candidate: a later identical order is more likely someone else's.
    const candidates = orders.filter((o) => !linked.has(o.orderId) && matchesIntent(o, intent, notBefore));
    const found = candidates.sort(byEntry)[0]?.orderId;
    // The list was asked for orders entered since notBefore: one like the intent's shown as entered earlier
    // contradicts the question (a garbled entry time). Ignored, it could be our own order, placed again.
    const early = orders.find((o) => !linked.has(o.orderId) && matchesIntent(o, intent, new Date(0)) && o.enteredTime.getTime() < notBefore.getTime());
    if (found !== undefined || early === undefined) return { found };
    return {
      found,
      untrusted: new BrokerUnavailable(
        `orders list: order ${early.orderId} is a MARKET ${intent.side} ${intent.quantity} ${intent.symbol} entered at ${early.enteredTime.toISOString()}, ` +
          `before the window asked for (from ${notBefore.toISOString()}): reconciliation cannot trust this answer`,
      ),
    };
  }

  /**
   * Every order entered in [from, to]. One answer holds at most LIST_PAGE orders, and which ones a
   * full answer left out depends on how Schwab sorts the list: a full answer's window is split in
   * two halves, each asked for in turn, down to one second. The halves share their seam, so an
   * order entered exactly there is seen unless Schwab excluded both bounds (twice, at worst).
   */
  private async ordersEntered(from: number, to: number, symbol: string): Promise<Order[]> {
    const query = { fromEnteredTime: new Date(from).toISOString(), toEnteredTime: new Date(to).toISOString(), maxResults: String(LIST_PAGE) };
    const listed = await this.read(OrderList, { method: 'GET', path: '/orders', query }, 'orders list');
    const page = listed.flatMap((element, index) => this.listedOrder(element, index, symbol));
    if (listed.length < LIST_PAGE) return page;
    if (to - from < SECOND_MS) throw new BrokerUnavailable(`orders list: more than ${LIST_PAGE} orders entered within one second; reconciliation cannot see them all`);
    const middle = from + Math.floor((to - from) / 2);
    return [...(await this.ordersEntered(from, middle, symbol)), ...(await this.ordersEntered(middle, to, symbol))];
  }

  async cancel(brokerOrderId: string, signal?: AbortSignal): Promise<void> {
    const answer = await this.options.budget.write(() => this.send({ method: 'DELETE', path: `/orders/${brokerOrderId}` }, `cancel ${brokerOrderId}`), signal);
    if (answer.status === 200) return;
    if (answer.status === 400) {
      // Already terminal or being cancelled: not an error, the next poll says which outcome.
      this.options.log.info({ brokerOrderId, correlId: answer.correlId }, 'cancel refused (HTTP 400): the order is already terminal or being cancelled');
      return;
    }
    throw new BrokerUnavailable(describe(`cancel ${brokerOrderId}`, answer), answer.retryAfterMs);
  }

  /**
   * One order of the list. An order we cannot read (a fractional trade by hand, a new asset type)
   * is skipped only if it cannot be the intent's; otherwise reconciliation must not guess.
   */
  private listedOrder(element: unknown, index: number, symbol: string): Order[] {
    const order = decodeJson(Order, element, `order ${index}`);
    if (E.isRight(order)) return [order.right];
    if (mayBeFor(element, symbol)) throw transient(order.left, 'orders list');
    this.options.log.warn({ problem: order.left.message }, 'orders list: skipped an order of another symbol that does not decode');
    return [];
  }

  /** A GET whose 200 body decodes with `codec`; anything else is worth another try later. */
  private async read<A>(codec: t.Decoder<unknown, A>, request: TraderRequest, what: string): Promise<A> {
    const answer = await this.send(request, what);
    if (answer.status !== 200) throw new BrokerUnavailable(describe(what, answer), answer.retryAfterMs);
    try {
      return decodeBody(codec, answer.body, what);
    } catch (e) {
      // Its message starts with `what` already ("order 1004055538153: at orderId: …"): said once.
      throw e instanceof UnexpectedAnswer ? new BrokerUnavailable(e.message, undefined, { cause: e }) : transient(e, what);
    }
  }

  private async send(request: TraderRequest, what: string): Promise<HttpAnswer> {
    let answer: HttpAnswer;
    try {
      answer = await this.options.api.account(request);
    } catch (e) {
      throw transient(e, what);
    }
    this.clock.observe(answer.date);
    return answer;
  }
}
