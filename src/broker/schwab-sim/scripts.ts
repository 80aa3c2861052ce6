/**
 * Lifecycle scripts: how an order evolves once the market lets it work. A script compiles
 * to timed steps, with offsets in sim-clock ms from the order's activation (placement
 * while open, else the next open).
 */
import * as t from 'io-ts';
import type { Decimal } from '../../domain/decimal.ts';
import { NonNegativeInt, PositiveInt, PriceText, parsePrice, withOptional } from './codecs.ts';

export const Script = t.union([
  /** Fill everything at once at the symbol's price (the default). */
  t.type({ kind: t.literal('fill') }),
  /** Fill `first` shares now, the rest `afterMs` later (at `laterPrice`, else the price then). */
  withOptional({ kind: t.literal('partialThenFill'), first: PositiveInt, afterMs: NonNegativeInt }, { laterPrice: PriceText }),
  /** Fill `first` shares now; the rest stays WORKING until the close (16:00, or 13:00 on an early close) expires it. */
  t.type({ kind: t.literal('partialThenExpire'), first: PositiveInt }),
  /** Fill `first` shares now; the broker cancels the rest `afterMs` later. */
  t.type({ kind: t.literal('partialThenCancel'), first: PositiveInt, afterMs: NonNegativeInt }),
  /** WORKING, then REJECTED `afterMs` later. */
  withOptional({ kind: t.literal('asyncReject'), afterMs: NonNegativeInt }, { reason: t.string }),
  /** WORKING forever: never fills and, unlike real DAY orders, ignores the close. */
  t.type({ kind: t.literal('stuck') }),
  /** QUEUED for `afterMs` even though the market is open, then filled. */
  t.type({ kind: t.literal('queued'), afterMs: NonNegativeInt }),
  /** Reports `status` (default SOMETHING_NEW) for `afterMs`, then fills. */
  withOptional({ kind: t.literal('unknownStatus'), afterMs: NonNegativeInt }, { status: t.string }),
]);
export type Script = t.TypeOf<typeof Script>;

export const INSTANT_FILL: Script = { kind: 'fill' };

export type StepAction =
  | { readonly do: 'fill'; readonly quantity?: bigint; readonly price?: Decimal }
  | { readonly do: 'status'; readonly status: string }
  | { readonly do: 'reject'; readonly reason: string }
  | { readonly do: 'cancel' };

export type Step = StepAction & { readonly at: number };

export interface Plan {
  readonly steps: readonly Step[];
  /** A DAY order expires at the close; `stuck` opts out so it really stays open. */
  readonly expiresAtClose: boolean;
}

const expiring = (steps: Step[]): Plan => ({ steps, expiresAtClose: true });
const fillAll = (at: number, price?: string): Step =>
  price === undefined ? { at, do: 'fill' } : { at, do: 'fill', price: parsePrice(price) };

export function planOf(script: Script): Plan {
  switch (script.kind) {
    case 'fill':
      return expiring([fillAll(0)]);
    case 'partialThenFill':
      return expiring([{ at: 0, do: 'fill', quantity: BigInt(script.first) }, fillAll(script.afterMs, script.laterPrice)]);
    case 'partialThenExpire':
      return expiring([{ at: 0, do: 'fill', quantity: BigInt(script.first) }]);
    case 'partialThenCancel':
      return expiring([{ at: 0, do: 'fill', quantity: BigInt(script.first) }, { at: script.afterMs, do: 'cancel' }]);
    case 'asyncReject':
      return expiring([{ at: script.afterMs, do: 'reject', reason: script.reason ?? 'Order rejected by the simulator script' }]);
    case 'stuck':
      return { steps: [], expiresAtClose: false };
    case 'queued':
      return expiring([{ at: 0, do: 'status', status: 'QUEUED' }, fillAll(script.afterMs)]);
    case 'unknownStatus':
      return expiring([{ at: 0, do: 'status', status: script.status ?? 'SOMETHING_NEW' }, fillAll(script.afterMs)]);
  }
}
