/** What the orderbook's logs mean for our order: fills and the reasons other logs yield none. */
import type { Decimal } from '../src/domain/decimal.ts';
import type { Side } from '../src/domain/codecs.ts';

/** One fill of one of our orders, from our order's point of view. */
export interface Fill {
  /** Id of the log that carries the fill (ClearV2 for clears, TakeOrderV2 for takes). */
  readonly logId: string;
  /** Distinguishes the two fills of one clear when alice and bob are both ours. */
  readonly party: 'alice' | 'bob' | 'take';
  readonly chainId: number;
  readonly transactionHash: string;
  readonly blockNumber: bigint;
  readonly logIndex: number;
  readonly owner: string;
  /** Base ticker (GME for tGME, GME0x, GMEs1); the broker symbol map is not applied here. */
  readonly symbol: string;
  /** The token's own symbol (tGME). */
  readonly tokenSymbol: string;
  /** BUY: our order received equity; SELL: it gave equity. */
  readonly side: Side;
  readonly shares: Decimal;
  readonly usdc: Decimal;
  /** usdc / shares, exact to 18 fractional digits (half-even). */
  readonly price: Decimal;
}

export type RejectionReason =
  | 'not_ours'
  | 'not_hedgeable'
  | 'zero_amount'
  | 'bad_io_index'
  | 'unpaired_clear'
  | 'unpaired_after_clear'
  | 'unknown_token'
  | 'malformed_log'
  | 'unknown_event'
  | 'nonsensical_price'
  | 'corrupt_event';

/** A log (or stored event) that yields no fill, and why. Recorded, never blocking. */
export interface Rejection {
  readonly eventId: string;
  readonly transactionHash: string | null;
  readonly blockNumber: bigint | null;
  readonly logIndex: number | null;
  readonly reason: RejectionReason;
  readonly detail: string;
}
