/**
 * Read models folded alongside the accumulator: positions, hedges, and tallies of trades and
 * rejected logs. Deterministic and I/O-free; state is O(symbols + commands), never O(events):
 * individual trades and rejections are streamed to whoever asks (see `onFill`/`onRejection`), and so is a
 * reorg taking one back (`onReversal`/`onRejectionWithdrawn`): a list of them keeps what the chain still has.
 */
import * as D from '../src/domain/decimal.ts';
import type { Side } from '../src/domain/codecs.ts';
import { decodeEvent, type Envelope } from '../src/domain/events.ts';
import type { CorruptEvent } from '../src/eventstore/errors.ts';
import type { RecordedEvent } from '../src/eventstore/port.ts';
import { alreadyFolded, initialState, isDecision, react, symbolState, symbolsIn, type AccumulatorConfig, type AccumulatorState, type Decision, type SymbolState } from './accumulator.ts';
import { isOrderEvent } from './hedge-orders.ts';
import type { Fill, Rejection, RejectionReason } from './fill.ts';
import { awaitingAfterClear } from './fills.ts';

export type HedgeStatus = 'requested' | 'submitting' | 'placed' | 'filled' | 'failed';

export interface HedgeView {
  readonly commandId: string;
  readonly sequence: number;
  readonly symbol: string;
  readonly brokerSymbol: string;
  readonly side: Side;
  readonly quantity: D.Decimal;
  status: HedgeStatus;
  filledQuantity: D.Decimal;
  averagePrice: D.Decimal | null;
  brokerOrderId: string | null;
  reason: string | null;
}

export interface PositionTotals {
  onchainBought: D.Decimal;
  onchainSold: D.Decimal;
  brokerBought: D.Decimal;
  brokerSold: D.Decimal;
  trades: number;
  haltReason: string | null;
}

export interface LedgerViewListener {
  onFill?(fill: Fill): void;
  /** A fill undone because a reorg removed its log. */
  onReversal?(fill: Fill): void;
  onRejection?(rejection: Rejection): void;
  /** A rejection taken back because a reorg removed its log. */
  onRejectionWithdrawn?(rejection: Rejection): void;
  /** A decision the fold derives, as the accumulator service appends it. */
  onDecision?(decision: Decision): void;
  /** A decision the ledger records, as it is folded (after the event it derives from). */
  onRecordedDecision?(decision: Envelope<Decision>): void;
}

export class LedgerView {
  accumulator: AccumulatorState = initialState;
  readonly totals = new Map<string, PositionTotals>();
  /** In emission order. */
  readonly hedges = new Map<string, HedgeView>();
  readonly rejectedByReason = new Map<RejectionReason, number>();
  events = 0;

  constructor(
    private readonly config: AccumulatorConfig,
    private readonly listener: LedgerViewListener = {},
  ) {}

  apply(event: Envelope): void {
    if (alreadyFolded(this.accumulator, event)) return; // its outcome too was applied already
    if (this.listener.onRecordedDecision && isDecision(event)) this.listener.onRecordedDecision(event);
    const reaction = react(this.config, this.accumulator, event);
    this.accumulator = reaction.state;
    this.events++;
    // Loops, not forEach with arrow functions: four closures per event add up over a replay.
    for (const f of reaction.fills) this.addFill(f);
    for (const f of reaction.reversals) this.undoFill(f);
    for (const r of reaction.rejections) this.addRejection(r);
    for (const r of reaction.withdrawnRejections) this.withdrawRejection(r);
    for (const d of reaction.decisions) this.addDecision(d);
    this.applyOutcome(event);
  }

  /**
   * Decodes and applies a stored event. One that fails its codec is counted as a `corrupt_event`
   * rejection, never blocking the fold, and returned for the caller to report.
   */
  applyStored(recorded: RecordedEvent): CorruptEvent | null {
    const decoded = decodeEvent(recorded);
    if (decoded._tag === 'Right') {
      this.apply(decoded.right);
      return null;
    }
    this.events++;
    this.addRejection({ eventId: recorded.id, transactionHash: null, blockNumber: null, logIndex: null, reason: 'corrupt_event', detail: decoded.left.message });
    return decoded.left;
  }

  /** ClearV2s of the ledger's last transaction so far that no AfterClear has followed yet: not rejected by the fold (yet). */
  awaitingAfterClear(): Rejection[] {
    return awaitingAfterClear(this.accumulator.extractor);
  }

  symbols(): string[] {
    return [...new Set([...symbolsIn(this.accumulator.symbols), ...this.totals.keys()])].sort();
  }

  position(symbol: string): { symbol: string; state: SymbolState; totals: PositionTotals } {
    return { symbol, state: symbolState(this.accumulator, symbol), totals: this.totalsOf(symbol) };
  }

  private totalsOf(symbol: string): PositionTotals {
    let t = this.totals.get(symbol);
    if (!t) {
      t = { onchainBought: D.ZERO, onchainSold: D.ZERO, brokerBought: D.ZERO, brokerSold: D.ZERO, trades: 0, haltReason: null };
      this.totals.set(symbol, t);
    }
    return t;
  }

  private addFill(fill: Fill): void {
    const t = this.totalsOf(fill.symbol);
    if (fill.side === 'BUY') t.onchainBought = D.add(t.onchainBought, fill.shares);
    else t.onchainSold = D.add(t.onchainSold, fill.shares);
    t.trades++;
    this.listener.onFill?.(fill);
  }

  private undoFill(fill: Fill): void {
    const t = this.totalsOf(fill.symbol);
    if (fill.side === 'BUY') t.onchainBought = D.sub(t.onchainBought, fill.shares);
    else t.onchainSold = D.sub(t.onchainSold, fill.shares);
    t.trades--;
    this.listener.onReversal?.(fill);
  }

  private addRejection(rejection: Rejection): void {
    this.rejectedByReason.set(rejection.reason, (this.rejectedByReason.get(rejection.reason) ?? 0) + 1);
    this.listener.onRejection?.(rejection);
  }

  /**
   * A reason whose last rejection is withdrawn leaves the tally, as if never met. The count never goes
   * below zero: a replay can take back what the log's record never yielded only for streams our ingester
   * does not write (docs/accumulator.md, "Reorgs").
   */
  private withdrawRejection(rejection: Rejection): void {
    const left = (this.rejectedByReason.get(rejection.reason) ?? 0) - 1;
    if (left > 0) this.rejectedByReason.set(rejection.reason, left);
    else this.rejectedByReason.delete(rejection.reason);
    this.listener.onRejectionWithdrawn?.(rejection);
  }

  private addDecision(decision: Decision): void {
    this.listener.onDecision?.(decision);
    if (decision.type === 'HedgingHalted') {
      this.totalsOf(decision.data.symbol).haltReason = decision.data.reason;
      return;
    }
    const { commandId, sequence, symbol, brokerSymbol, side, quantity } = decision.data;
    this.hedges.set(commandId, { commandId, sequence, symbol, brokerSymbol, side, quantity, status: 'requested', filledQuantity: D.ZERO, averagePrice: null, brokerOrderId: null, reason: null });
  }

  private applyOutcome(event: Envelope): void {
    if (event.type === 'HedgingResumed') this.totalsOf(event.data.symbol).haltReason = null;
    if (!isOrderEvent(event)) return;
    const hedge = this.hedges.get(event.data.commandId);
    if (!hedge || hedge.status === 'filled' || hedge.status === 'failed') return;
    switch (event.type) {
      case 'HedgeOrderSubmitting':
        hedge.status = 'submitting';
        break;
      case 'HedgeOrderPlaced':
        hedge.status = 'placed';
        hedge.brokerOrderId = event.data.brokerOrderId;
        break;
      case 'HedgeOrderFilled':
      case 'HedgeOrderFailed':
        hedge.status = event.type === 'HedgeOrderFilled' ? 'filled' : 'failed';
        hedge.filledQuantity = event.data.filledQuantity;
        hedge.averagePrice = event.data.averagePrice;
        hedge.reason = event.type === 'HedgeOrderFailed' ? event.data.reason : null;
        this.addBrokerFill(hedge);
        break;
    }
  }

  private addBrokerFill(hedge: HedgeView): void {
    const t = this.totalsOf(hedge.symbol);
    if (hedge.side === 'BUY') t.brokerBought = D.add(t.brokerBought, hedge.filledQuantity);
    else t.brokerSold = D.add(t.brokerSold, hedge.filledQuantity);
  }
}
