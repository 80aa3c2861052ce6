/** The broker port: what the executor needs from Schwab, the paper broker, or anything else. */
import type { Decimal } from '../domain/decimal.ts';
import type { Side } from '../domain/codecs.ts';

export interface HedgeOrderIntent {
  readonly commandId: string;
  /** The symbol at the broker (after the symbol map). */
  readonly symbol: string;
  readonly side: Side;
  /** Whole shares. */
  readonly quantity: bigint;
  /** Last onchain price when the command was decided; the paper broker fills at it. */
  readonly referencePrice: Decimal | null;
  /** When `Submitting` was recorded; reconciliation looks for orders entered after it, minus a skew. */
  readonly intentAt: Date;
}

export type BrokerOrderState =
  | { readonly status: 'open'; readonly brokerStatus: string; readonly filledQuantity: Decimal }
  | { readonly status: 'filled'; readonly filledQuantity: Decimal; readonly averagePrice: Decimal }
  | { readonly status: 'failed'; readonly reason: string; readonly filledQuantity: Decimal; readonly averagePrice: Decimal | null };

/** Transient trouble (timeout, reset, 5xx, 429, an unreadable answer): try again later, no sooner than `retryAfterMs`. */
export class BrokerUnavailable extends Error {
  override readonly name: string = 'BrokerUnavailable';
  constructor(message: string, readonly retryAfterMs?: number, options?: ErrorOptions) {
    super(message, options);
  }
}

/** The order may or may not exist at the broker (timeout, reset, 5xx, 429, 201 without Location): reconcile before placing again. */
export class AmbiguousPlacement extends BrokerUnavailable {
  override readonly name = 'AmbiguousPlacement';
}

/** Nothing more can happen at the broker until a human acts (the message says what to do): stop placing, keep running. */
export class BrokerNeedsOperator extends Error {
  override readonly name: string = 'BrokerNeedsOperator';
}

/** The login is over (refresh token expired or revoked, or no login yet): a human must log in again. */
export class ReauthRequired extends BrokerNeedsOperator {
  override readonly name = 'ReauthRequired';
}

export interface Broker {
  readonly name: string;
  /**
   * Places one market order for the intent. Throws AmbiguousPlacement when the outcome is unknown.
   * `signal` ends a wait for the broker's rate limit (a shutdown): the call rejects before any request.
   */
  place(intent: HedgeOrderIntent, signal?: AbortSignal): Promise<{ readonly brokerOrderId: string }>;
  /** The intent travels along so stateless brokers (paper) can answer after a restart. */
  status(brokerOrderId: string, intent: HedgeOrderIntent): Promise<BrokerOrderState>;
  /** An order placed for this intent (same symbol, side, quantity, market, entered after the intent minus skew), not one of `linked`. */
  findPlaced(intent: HedgeOrderIntent, linked: ReadonlySet<string>): Promise<string | undefined>;
  /**
   * The orders for `symbol` entered since `since` (minus skew), any side or quantity, that none of `linked` names.
   * After a restore these are orders the restored ledger does not know: it must not place beside them unasked.
   */
  unlinkedOrders(symbol: string, since: Date, linked: ReadonlySet<string>): Promise<string[]>;
  /** Asks the broker to cancel; an order already terminal or being cancelled is not an error. `signal` as for `place`. */
  cancel(brokerOrderId: string, signal?: AbortSignal): Promise<void>;
}

/** The broker definitely refused the order (bad symbol, fractional quantity, account restrictions): no order exists. */
export class OrderRejected extends Error {
  override readonly name = 'OrderRejected';
}
