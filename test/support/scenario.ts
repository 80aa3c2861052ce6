/**
 * Given/when/then for the accumulator in the spec's vocabulary: `oS x` (our order gave x
 * shares onchain), `oB x` (it received x), broker outcomes, operator resumes. Every step is a
 * stored event folded through `react`; decisions are appended to the history as the service
 * would append them, so the history can be replayed from scratch.
 */
import * as D from '../../src/domain/decimal.ts';
import { encodeEvent, streams, type Envelope, type LedgerEventOf } from '../../src/domain/events.ts';
import { hedgeDecisionId, uuidV5 } from '../../src/domain/ids.ts';
import { initialState, react, symbolState, type AccumulatorConfig, type AccumulatorState, type Decision } from '../../projections/accumulator.ts';
import type { Fill } from '../../projections/fill.ts';
import { History, OTHER_OWNER, OUR_OWNER, ORDERBOOK, CHAIN_ID, afterClearLog, clearV2Log, io, takeOrderV2Log, type OrderSpec, type TokenName } from './orderbook-logs.ts';

export const config: AccumulatorConfig = {
  fills: { chainId: CHAIN_ID, orderbook: ORDERBOOK, owners: new Set([OUR_OWNER]) },
  maxConsecutiveFailures: 3,
  brokerSymbols: {},
};

const AT = '2025-09-08T14:00:00Z';
const shareUnits = (x: string): bigint => D.parse(x).units; // 18 decimals, like the equities
const usdcUnits = (x: string): bigint => D.parse(x).units / 10n ** 12n;

/** "BUY 1 GME", "HALT GME": decisions as the spec writes them. */
export const show = (d: Decision): string => (d.type === 'HedgeRequested' ? `${d.data.side} ${D.format(d.data.quantity)} ${d.data.symbol}` : `HALT ${d.data.symbol}`);

export class Scenario {
  readonly history = new History();
  readonly events: Envelope[] = [];
  state: AccumulatorState = initialState;
  private block = 100n;

  constructor(readonly cfg: AccumulatorConfig = config) {
    this.history.allTokens().forEach((e) => this.fold(e));
  }

  /** Folds one stored event, appends its decisions to the history, returns them as text. */
  fold(event: Envelope): string[] {
    this.events.push(event);
    const reaction = react(this.cfg, this.state, event);
    this.state = reaction.state;
    for (const d of reaction.decisions) {
      // As the service does: append the decision, then fold it when the store delivers it back.
      const stored = encodeEvent(hedgeDecisionId(d.data.symbol, d.data.sequence), d);
      const readBack = this.history.event(streams.hedgeCommands(d.data.symbol), stored.type, stored.id, stored.data);
      this.events.push(readBack);
      this.state = react(this.cfg, this.state, readBack).state;
    }
    return reaction.decisions.map(show);
  }

  /** Our order gave `shares` of `token` for USDC (onchain SELL). */
  oS(shares: string, token: TokenName = 'tGME', price = '20'): string[] {
    const usdc = D.format(D.mul(D.parse(shares), D.parse(price)));
    const log = takeOrderV2Log({ owner: OUR_OWNER, validInputs: [io('USDC')], validOutputs: [io(token)] }, { input: shareUnits(shares), output: usdcUnits(usdc) });
    return this.fold(this.history.log(log, { tx: `tx ${this.block}`, logIndex: 0, block: this.block++ }));
  }

  /** Our order received `shares` of `token` for USDC (onchain BUY). */
  oB(shares: string, token: TokenName = 'tGME', price = '20'): string[] {
    const usdc = D.format(D.mul(D.parse(shares), D.parse(price)));
    const log = takeOrderV2Log({ owner: OUR_OWNER, validInputs: [io(token)], validOutputs: [io('USDC')] }, { input: usdcUnits(usdc), output: shareUnits(shares) });
    return this.fold(this.history.log(log, { tx: `tx ${this.block}`, logIndex: 0, block: this.block++ }));
  }

  /** A clear in one transaction where bob is ours and receives `shares` of `token` for USDC; returns its two logs. */
  clearBuy(shares: string, token: TokenName = 'tGME', price = '20'): Envelope<LedgerEventOf<'OrderbookLogRecorded'>>[] {
    const usdc = usdcUnits(D.format(D.mul(D.parse(shares), D.parse(price))));
    const alice: OrderSpec = { owner: OTHER_OWNER, validInputs: [io('USDC')], validOutputs: [io(token)] };
    const bob: OrderSpec = { owner: OUR_OWNER, validInputs: [io(token)], validOutputs: [io('USDC')] };
    const place = (logIndex: number) => ({ tx: `clear ${this.block}`, logIndex, block: this.block });
    const logs = [
      this.history.log(clearV2Log(alice, bob), place(0)),
      this.history.log(afterClearLog({ aliceOutput: shareUnits(shares), bobOutput: usdc, aliceInput: usdc, bobInput: shareUnits(shares) }), place(1)),
    ];
    this.block++;
    logs.forEach((l) => this.fold(l));
    return logs;
  }

  pending(symbol = 'GME') {
    const p = symbolState(this.state, symbol).pending;
    if (!p) throw new Error(`no command pending for ${symbol}`);
    return p;
  }

  /** The broker fills the pending command (fully, or `quantity` shares). */
  brokerFills(symbol = 'GME', quantity?: string): string[] {
    const { commandId, quantity: q } = this.pending(symbol);
    const filledQuantity = quantity === undefined ? q : D.parse(quantity);
    return this.outcome(commandId, 'HedgeOrderFilled', { commandId, filledQuantity: D.format(filledQuantity), averagePrice: '20', at: AT });
  }

  /** A terminal failure (rejected, expired…), keeping `filled` shares. */
  brokerFails(symbol = 'GME', reason = 'REJECTED', filled = '0'): string[] {
    const { commandId } = this.pending(symbol);
    return this.outcome(commandId, 'HedgeOrderFailed', { commandId, reason, filledQuantity: filled, averagePrice: filled === '0' ? null : '20', at: AT });
  }

  resume(symbol = 'GME'): string[] {
    return this.fold(this.history.event(streams.hedgeControl(symbol), 'HedgingResumed', uuidV5(`resume:${symbol}:${this.events.length}`), { symbol, reason: 'operator', at: AT }));
  }

  net(symbol = 'GME'): string {
    return D.format(symbolState(this.state, symbol).net);
  }

  private outcome(commandId: string, type: 'HedgeOrderFilled' | 'HedgeOrderFailed', data: Record<string, string | null>): string[] {
    return this.fold(this.history.event(streams.hedgeOrder(commandId), type, uuidV5(`${type}:${commandId}`), data));
  }
}

/** Folds a history (from scratch, or on from a state); returns the final state, and every decision and fill in order. */
export function replay(events: readonly Envelope[], cfg: AccumulatorConfig = config, from: AccumulatorState = initialState): { state: AccumulatorState; decisions: Decision[]; fills: Fill[] } {
  let state = from;
  const decisions: Decision[] = [];
  const fills: Fill[] = [];
  for (const e of events) {
    const r = react(cfg, state, e);
    state = r.state;
    decisions.push(...r.decisions);
    fills.push(...r.fills);
  }
  return { state, decisions, fills };
}
