/**
 * A log a reorg removed whose transaction is mined again is recorded again, under a new event id
 * (docs/chain-ingestion.md, "Reorgs"). The folds key fills by event id: the generation recorded
 * again counts as a fill again, and its own removal undoes it.
 */
import { describe, expect, it } from 'vitest';
import * as D from '../../src/domain/decimal.ts';
import type { Envelope, LedgerEventOf } from '../../src/domain/events.ts';
import { LedgerView } from '../../projections/ledger.ts';
import type { Fill } from '../../projections/fill.ts';
import { History, OTHER_OWNER, OUR_OWNER, afterClearLog, clearV2Log, io, takeOrderV2Log, type TokenName } from '../support/orderbook-logs.ts';
import { config } from '../support/scenario.ts';

type Recorded = Envelope<LedgerEventOf<'OrderbookLogRecorded'>>;
const E17 = 10n ** 17n;

/** The read models as the service keeps them: positions, hedges, and trades by (log event id, party) as `trades` lists them. */
function ledger() {
  const history = new History();
  const trades = new Map<string, Fill>();
  const view = new LedgerView(config, { onFill: (f) => trades.set(`${f.logId}:${f.party}`, f), onReversal: (f) => trades.delete(`${f.logId}:${f.party}`) });
  history.allTokens().forEach((e) => view.apply(e));
  return {
    history,
    fold: <T extends Envelope>(...events: T[]): T[] => events.map((e) => (view.apply(e), e)),
    net: (symbol: string) => D.format(view.position(symbol).state.net),
    trades: () => [...trades.values()].map((f) => `${f.side} ${D.format(f.shares)} ${f.symbol} in block ${f.blockNumber}, log ${f.logId}`),
    totals: (symbol: string) => view.position(symbol).totals,
    hedges: () => [...view.hedges.values()].map((h) => `${h.side} ${D.format(h.quantity)} ${h.symbol}`),
  };
}

/** Our order gave `tenths`/10 tGME for 2 USDC a tenth (onchain SELL), in its own transaction at `block`. */
const ourSell = (history: History, tenths: bigint, block: bigint): Recorded =>
  history.log(takeOrderV2Log({ owner: OUR_OWNER, validInputs: [io('USDC')], validOutputs: [io('tGME')] }, { input: tenths * E17, output: tenths * 2_000_000n }), { tx: `take ${block}`, logIndex: 0, block });

/** A clear where bob (ours) buys `shares` of `token`, both logs in one transaction at `block`. */
function clearBuy(history: History, shares: bigint, block: bigint, token: TokenName = 'tAAPL'): Recorded[] {
  const E18 = 10n ** 18n;
  const usdc = shares * 20_000_000n;
  const place = (logIndex: number) => ({ tx: `clear ${block}`, logIndex, block });
  return [
    history.log(clearV2Log({ owner: OTHER_OWNER, validInputs: [io('USDC')], validOutputs: [io(token)] }, { owner: OUR_OWNER, validInputs: [io(token)], validOutputs: [io('USDC')] }), place(0)),
    history.log(afterClearLog({ aliceOutput: shares * E18, bobOutput: usdc, aliceInput: usdc, bobInput: shares * E18 }), place(1)),
  ];
}

describe('a log recorded again after a reorg removed it', () => {
  it('given Recorded, Removed, Recorded again: then its fill counts again (positions, trades, hedges); its removal undoes it; recorded a third time, it counts again', () => {
    const l = ledger();
    const [take] = l.fold(ourSell(l.history, 25n, 100n));
    expect(l.net('GME')).toBe('-2.5');
    expect(l.hedges()).toEqual(['BUY 2 GME']);

    const [removed] = l.fold(l.history.logRemoved(take!));
    expect(l.net('GME')).toBe('0');
    expect(l.trades()).toEqual([]);

    // Mined again a block later: a new event, its fill under the new event's id.
    const [again] = l.fold(l.history.logRecordedAgain(removed!, 101n));
    expect(again!.id).not.toBe(take!.id);
    expect(l.net('GME')).toBe('-2.5');
    expect(l.trades()).toEqual([`SELL 2.5 GME in block 101, log ${again!.id}`]);
    expect(l.totals('GME')).toMatchObject({ onchainSold: D.parse('2.5'), trades: 1 });

    // A second reorg drops it again: the removal names the generation recorded again, and undoes exactly it.
    const [removedAgain] = l.fold(l.history.logRemoved(again!));
    expect(removedAgain!.data.logId).toBe(again!.id);
    expect(removedAgain!.id).not.toBe(removed!.id);
    expect(l.net('GME')).toBe('0');
    expect(l.trades()).toEqual([]);
    expect(l.totals('GME')).toMatchObject({ onchainSold: D.ZERO, trades: 0 });

    // Back in its first block (the chain flipped back to that fork): a third generation, counted once more.
    const [third] = l.fold(l.history.logRecordedAgain(removedAgain!, 100n));
    expect(new Set([take!.id, removed!.id, again!.id, removedAgain!.id, third!.id]).size).toBe(5);
    expect(l.net('GME')).toBe('-2.5');
    expect(l.trades()).toEqual([`SELL 2.5 GME in block 100, log ${third!.id}`]);
  });

  it('given a clear (ClearV2 + AfterClear) removed and recorded again together: then the pair pairs again, and a removal of both undoes it', () => {
    const l = ledger();
    const clear = l.fold(...clearBuy(l.history, 3n, 200n));
    expect(l.net('AAPL')).toBe('3');
    const removals = l.fold(...clear.map((log) => l.history.logRemoved(log)));
    expect(l.net('AAPL')).toBe('0');

    const again = l.fold(...removals.map((removal) => l.history.logRecordedAgain(removal, 203n)));
    expect(l.net('AAPL')).toBe('3');
    expect(l.trades()).toEqual([`BUY 3 AAPL in block 203, log ${again[0]!.id}`]);

    l.fold(...again.map((log) => l.history.logRemoved(log)));
    expect(l.net('AAPL')).toBe('0');
    expect(l.trades()).toEqual([]);
  });

  it('given another fill between the generations: then positions are the sum of what is on chain', () => {
    const l = ledger();
    const [take] = l.fold(ourSell(l.history, 7n, 300n));
    const [removed] = l.fold(l.history.logRemoved(take!));
    l.fold(ourSell(l.history, 4n, 301n));
    l.fold(l.history.logRecordedAgain(removed!, 302n));
    expect(l.net('GME')).toBe('-1.1');
    expect(l.totals('GME')).toMatchObject({ onchainSold: D.parse('1.1'), trades: 2 });
  });
});
