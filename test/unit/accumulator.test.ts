import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as D from '../../src/domain/decimal.ts';
import { initialState, react, symbolState, type AccumulatorConfig, type AccumulatorState } from '../../projections/accumulator.ts';
import { streams, type Envelope } from '../../src/domain/events.ts';
import { uuidV5 } from '../../src/domain/ids.ts';
import { decodeOrderbookLog } from '../../src/domain/orderbook-abi.ts';
import { SnapshotError, deserializeState, serializeState } from '../../projections/accumulator-snapshot.ts';
import { Scenario, config, replay, show } from '../support/scenario.ts';
import { History, OTHER_OWNER, OUR_OWNER, afterClearLog, clearV2Log, io, takeOrderV2Log, type RawLog } from '../support/orderbook-logs.ts';
import type { Hex } from 'viem';

describe('accumulator: the acceptance scenarios of spec/accumulator.md', () => {
  it('1: oS 0.3, 0.5, 0.4 → BUY 1 after the third; net −0.2 after the fill', () => {
    const s = new Scenario();
    expect([s.oS('0.3'), s.oS('0.5'), s.oS('0.4')]).toEqual([[], [], ['BUY 1 GME']]);
    expect(s.net()).toBe('-1.2');
    s.brokerFills();
    expect(s.net()).toBe('-0.2');
  });

  it('2: oS 0.5 → no command; net −0.5', () => {
    const s = new Scenario();
    expect(s.oS('0.5')).toEqual([]);
    expect(s.net()).toBe('-0.5');
  });

  it('3: oB 1.5 → SELL 1; net 0.5 after the fill', () => {
    const s = new Scenario();
    expect(s.oB('1.5')).toEqual(['SELL 1 GME']);
    s.brokerFills();
    expect(s.net()).toBe('0.5');
  });

  it('4: oB 2.7 → SELL 2; net 0.7 after the fill', () => {
    const s = new Scenario();
    expect(s.oB('2.7')).toEqual(['SELL 2 GME']);
    s.brokerFills();
    expect(s.net()).toBe('0.7');
  });

  it('5: oS 0.25, oS 0.75 → BUY 1 (the threshold is >=); net 0 after the fill', () => {
    const s = new Scenario();
    expect([s.oS('0.25'), s.oS('0.75')]).toEqual([[], ['BUY 1 GME']]);
    s.brokerFills();
    expect(s.net()).toBe('0');
  });

  it('6: oS 0.7, 0.2, 0.1 → BUY 1; ten times oS 0.1 → BUY 1 on the tenth', () => {
    const a = new Scenario();
    expect([a.oS('0.7'), a.oS('0.2'), a.oS('0.1')]).toEqual([[], [], ['BUY 1 GME']]);
    const b = new Scenario();
    const steps = Array.from({ length: 10 }, () => b.oS('0.1'));
    expect(steps.slice(0, 9).flat()).toEqual([]);
    expect(steps[9]).toEqual(['BUY 1 GME']);
  });

  it('7: oS 0.8 then oB 1.5 → net +0.7, no command (netting, not two buckets)', () => {
    const s = new Scenario();
    expect([s.oS('0.8'), s.oB('1.5')]).toEqual([[], []]);
    expect(s.net()).toBe('0.7');
  });

  it('8: oB 0.3 then oS 1.5 → net −1.2 → BUY 1; −0.2 after the fill', () => {
    const s = new Scenario();
    expect([s.oB('0.3'), s.oS('1.5')]).toEqual([[], ['BUY 1 GME']]);
    expect(s.net()).toBe('-1.2');
    s.brokerFills();
    expect(s.net()).toBe('-0.2');
  });

  it('9: a pending command blocks the next; the fill re-arms it', () => {
    const s = new Scenario();
    expect(s.oS('1.2')).toEqual(['BUY 1 GME']);
    expect(s.oS('0.9')).toEqual([]);
    expect(s.brokerFills()).toEqual(['BUY 1 GME']);
    expect(s.net()).toBe('-1.1');
    s.brokerFills();
    expect(s.net()).toBe('-0.1');
  });

  it('10: a rejection clears pending and re-arms at once; net untouched', () => {
    const s = new Scenario();
    expect(s.oS('1.3')).toEqual(['BUY 1 GME']);
    expect(s.brokerFails()).toEqual(['BUY 1 GME']);
    expect(s.net()).toBe('-1.3');
    s.brokerFills();
    expect(s.net()).toBe('-0.3');
  });

  it('11: three rejections in a row → HedgingHalted; nothing more until resumed', () => {
    const s = new Scenario();
    expect(s.oS('1.3')).toEqual(['BUY 1 GME']);
    expect(s.brokerFails()).toEqual(['BUY 1 GME']);
    expect(s.brokerFails()).toEqual(['BUY 1 GME']);
    expect(s.brokerFails()).toEqual(['HALT GME']);
    expect(s.oS('2')).toEqual([]);
    expect(symbolState(s.state, 'GME').halted).toBe(true);
    expect(s.resume()).toEqual(['BUY 3 GME']);
    s.brokerFills();
    expect(s.net()).toBe('-0.3');
  });

  it('11b: a success resets the failure count', () => {
    const s = new Scenario();
    s.oS('5');
    s.brokerFails();
    s.brokerFails();
    s.brokerFills('GME', '1'); // a fill ends the streak even when partial
    expect(symbolState(s.state, 'GME').consecutiveFailures).toBe(0);
  });

  it('11c: a failure that kept a partial fill is still a failure (rule 4): three in a row halt, the fills still count', () => {
    const s = new Scenario();
    expect(s.oS('5.4')).toEqual(['BUY 5 GME']);
    expect(s.brokerFails('GME', 'CANCELED', '1')).toEqual(['BUY 4 GME']);
    expect(s.brokerFails('GME', 'EXPIRED', '1')).toEqual(['BUY 3 GME']);
    expect(s.brokerFails('GME', 'CANCELED', '1')).toEqual(['HALT GME']);
    expect(s.net()).toBe('-2.4');
  });

  it('an outcome of a command already closed (a repeated or late outcome) moves nothing, decides nothing, and leaves the next command pending', () => {
    const s = new Scenario();
    expect(s.oS('2.5')).toEqual(['BUY 2 GME']);
    const { commandId: first } = s.pending();
    s.brokerFills();
    expect(s.oS('1.5')).toEqual(['BUY 2 GME']);
    const { commandId: second } = s.pending();
    const late = (type: 'HedgeOrderFilled' | 'HedgeOrderFailed', data: Record<string, string | null>) =>
      s.fold(s.history.event(streams.hedgeOrder(first), type, uuidV5(`late ${type}`), { commandId: first, filledQuantity: '2', averagePrice: '20', at: '2025-09-08T15:00:00Z', ...data }));
    expect(late('HedgeOrderFilled', {})).toEqual([]);
    expect(late('HedgeOrderFailed', { reason: 'REJECTED' })).toEqual([]);
    expect(s.net()).toBe('-2');
    expect(symbolState(s.state, 'GME')).toMatchObject({ pending: { commandId: second }, consecutiveFailures: 0 });
  });

  it('11d: the halt replaces a command (rule 5): K failures that leave less than a share decide nothing; the fill that makes a share due halts', () => {
    const s = new Scenario();
    expect(s.oS('3.4')).toEqual(['BUY 3 GME']);
    expect(s.brokerFails('GME', 'EXPIRED', '1')).toEqual(['BUY 2 GME']);
    expect(s.brokerFails('GME', 'EXPIRED', '1')).toEqual(['BUY 1 GME']);
    expect(s.brokerFails('GME', 'EXPIRED', '1')).toEqual([]);
    expect(s.net()).toBe('-0.4');
    expect(symbolState(s.state, 'GME')).toMatchObject({ halted: false, consecutiveFailures: 3 });
    expect(s.oS('0.7')).toEqual(['HALT GME']);
  });

  it('12: the same stored event delivered twice applies once', () => {
    const s = new Scenario();
    s.oS('0.6');
    const again = s.fold(s.events[s.events.length - 1]!);
    expect(again).toEqual([]);
    expect(s.net()).toBe('-0.6');
  });

  it('13: replaying from scratch reproduces the state and every decision, with the same ids', () => {
    const s = new Scenario();
    s.oS('1.2'); s.oS('0.9'); s.brokerFills(); s.oB('3.5'); s.brokerFails(); s.brokerFills();
    const live = s.events.filter((e) => e.type === 'HedgeRequested').map((e) => e.id);
    const again = replay(s.events);
    expect(serializeState(again.state, config)).toBe(serializeState(s.state, config));
    // The replay decides exactly the recorded commands, under the same ids: appending them again writes nothing.
    expect(again.decisions.map((d) => (d.type === 'HedgeRequested' ? d.data.commandId : ''))).toEqual(live);
    const fromLogsOnly = replay(s.events.filter((e) => e.type !== 'HedgeRequested' && e.type !== 'HedgingHalted'));
    expect(fromLogsOnly.decisions).toEqual(again.decisions);
  });

  it('14: the fold applies logs in the order the store holds them (the ingester sorts; see test/integration/ingest.test.ts)', () => {
    const s = new Scenario();
    expect([s.oS('0.6'), s.oB('0.6'), s.oB('0.6')]).toEqual([[], [], []]);
    expect(s.net()).toBe('0.6');
  });

  it('a log removed by a reorg is undone: net, and the next decision, as if it never happened', () => {
    const s = new Scenario();
    s.oS('0.7');
    const orphan = s.events[s.events.length - 1]!;
    expect(s.oS('0.2')).toEqual([]);
    expect(s.fold(s.history.logRemoved(orphan as Parameters<typeof s.history.logRemoved>[0]))).toEqual([]);
    expect(s.net()).toBe('-0.2');
    expect(s.oS('0.9')).toEqual(['BUY 1 GME']);
  });

  it('a removed clear is undone once its removed AfterClear pairs with it', () => {
    const s = new Scenario();
    const clear = s.clearBuy('2.5', 'tAAPL');
    expect(s.net('AAPL')).toBe('2.5');
    s.brokerFills('AAPL');
    expect(s.net('AAPL')).toBe('0.5');
    clear.forEach((log) => s.fold(s.history.logRemoved(log)));
    expect(s.net('AAPL')).toBe('-2');
    expect(s.events.filter((e) => e.type === 'HedgeRequested').map((e) => e.type === 'HedgeRequested' && `${e.data.side} ${D.format(e.data.quantity)}`)).toEqual(['SELL 2', 'BUY 2']);
  });

  describe('transactions with clears that do not decode, recorded then removed by a reorg', () => {
    const E18 = 10n ** 18n;
    const weBuy = (token: 'tGME' | 'tAAPL' = 'tGME') => clearV2Log({ owner: OTHER_OWNER, validInputs: [io('USDC')], validOutputs: [io(token)] }, { owner: OUR_OWNER, validInputs: [io(token)], validOutputs: [io('USDC')] });
    const settles = (shares: bigint) => afterClearLog({ aliceOutput: shares * E18, bobOutput: shares * 20_000_000n, aliceInput: shares * 20_000_000n, bobInput: shares * E18 });
    const truncated = (raw: RawLog, chars: number): RawLog => ({ ...raw, data: raw.data.slice(0, chars) as Hex });
    /** Records the logs as one transaction, each stored as it is folded (a decision is read back before the next log); returns them. */
    const recordTx = (s: Scenario, tx: string, raws: readonly RawLog[]) =>
      raws.map((raw, logIndex) => {
        const log = s.history.log(raw, { tx, logIndex, block: 500n });
        s.fold(log);
        return log;
      });
    const removeAll = (s: Scenario, logs: ReturnType<typeof recordTx>) => logs.forEach((log) => s.fold(s.history.logRemoved(log)));

    it('its first AfterClear does not decode: the second clear counts with its own amounts, and removing the transaction undoes exactly that', () => {
      const s = new Scenario();
      const logs = recordTx(s, 'clears with a broken log', [weBuy('tGME'), truncated(settles(7n), 90), weBuy('tAAPL'), settles(2n)]);
      expect([s.net('GME'), s.net('AAPL')]).toEqual(['0', '2']);
      removeAll(s, logs);
      expect([s.net('GME'), s.net('AAPL')]).toEqual(['0', '0']);
    });

    it('it ends with an unreadable ClearV2: removing it undoes the fill of its readable clear', () => {
      const s = new Scenario();
      const logs = recordTx(s, 'ends with a broken clear', [weBuy(), settles(2n), truncated(weBuy(), 300)]);
      expect(s.net()).toBe('2');
      removeAll(s, logs);
      expect(s.net()).toBe('0');
    });

    it('it opens with an unreadable ClearV2 (its readable clear left unpaired): removing it undoes nothing', () => {
      const s = new Scenario();
      const logs = recordTx(s, 'opens with a broken clear', [truncated(weBuy(), 300), weBuy(), settles(2n)]);
      expect(s.net()).toBe('0');
      removeAll(s, logs);
      expect(s.net()).toBe('0');
    });
  });

  it('15: two oS 0.8 folded back to back → exactly one BUY 1; net −0.6 after it', () => {
    const s = new Scenario();
    expect([s.oS('0.8'), s.oS('0.8')]).toEqual([[], ['BUY 1 GME']]);
    s.brokerFills();
    expect(s.net()).toBe('-0.6');
  });

  it('16: BUY 3 fills 2 then expires → net moves by 2; the rest re-arms', () => {
    const s = new Scenario();
    expect(s.oS('3.4')).toEqual(['BUY 3 GME']);
    expect(s.brokerFails('GME', 'EXPIRED', '2')).toEqual(['BUY 1 GME']);
    expect(s.net()).toBe('-1.4');
  });

  it('17: GME0x, GMEs1 and tGME aggregate under GME', () => {
    const s = new Scenario();
    expect([s.oS('0.6', 'GME0x'), s.oS('0.3', 'GMEs1'), s.oS('0.2', 'tGME')]).toEqual([[], [], ['BUY 1 GME']]);
    expect(s.net()).toBe('-1.1');
  });

  it('18: WETH/tAAPL changes nothing and does not block later logs', () => {
    const s = new Scenario();
    const weth = s.fold(s.history.log(takeOrderV2Log({ owner: OUR_OWNER, validInputs: [io('WETH')], validOutputs: [io('tAAPL')] }, { input: 10n ** 18n, output: 10n ** 18n }), { tx: 'weth', logIndex: 0, block: 99n }));
    expect(weth).toEqual([]);
    expect(s.oS('1.5', 'tAAPL')).toEqual(['BUY 1 AAPL']);
    expect(s.net('AAPL')).toBe('-1.5');
  });

  it('a snapshot folded under another K (maxConsecutiveFailures) is refused: the halts in it are not that K\'s', () => {
    const s = new Scenario();
    s.oS('1.3');
    s.brokerFails();
    s.brokerFails();
    expect(s.brokerFails()).toEqual(['HALT GME']);
    const five: AccumulatorConfig = { ...config, maxConsecutiveFailures: 5 };
    expect(() => deserializeState(serializeState(s.state, config), five)).toThrow(SnapshotError);
    // Folded again under K = 5, the same facts do not halt: resuming the snapshot would have kept a halt that K never decided.
    const facts = s.events.filter((e) => e.type !== 'HedgeRequested' && e.type !== 'HedgingHalted');
    expect(symbolState(replay(facts, five).state, 'GME').halted).toBe(false);
  });

  it('a snapshot holding a symbol state no fold derives (a count that is no whole number >= 0, a pending command that is no decision) is refused, not resumed', () => {
    const s = new Scenario();
    s.oS('1.5');
    const text = serializeState(s.state, config);
    expect(text).toContain('"consecutiveFailures":0,"decisions":1');
    const spoilt = [
      text.replace('"decisions":1', '"decisions":1.5'), // the next decision would be number 2.5: no revision to append it at
      text.replace('"decisions":1', '"decisions":-1'),
      text.replace('"consecutiveFailures":0', '"consecutiveFailures":-7'), // would halt only after K + 7 failures
      text.replace('"quantity":"1"', '"quantity":"0.5"'),
      text.replace(/"commandId":"[^"]+"/, '"commandId":"not a command"'),
    ];
    for (const snapshot of spoilt) expect(() => deserializeState(snapshot, config), snapshot).toThrow(SnapshotError);
  });

  it('maps base tickers to broker symbols on the command', () => {
    const s = new Scenario({ ...config, brokerSymbols: { SPLG: 'SPYM' } });
    s.oS('2', 'tSPLG');
    const command = s.events.find((e) => e.type === 'HedgeRequested');
    expect(command?.type === 'HedgeRequested' && [command.data.symbol, command.data.brokerSymbol]).toEqual(['SPLG', 'SPYM']);
  });
});

// ---- properties over random histories ----

type Op = { kind: 'oS' | 'oB'; shares: string; token: 'tGME' | 'GME0x' | 'tAAPL' } | { kind: 'fill' | 'fail' | 'partial' | 'resume'; symbol: 'GME' | 'AAPL' };

const amount = fc.integer({ min: 1, max: 400 }).map((cents) => D.format(D.div(D.fromBigInt(BigInt(cents)), D.fromBigInt(100n))));
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constantFrom('oS' as const, 'oB' as const), shares: amount, token: fc.constantFrom('tGME' as const, 'GME0x' as const, 'tAAPL' as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constantFrom('fill' as const, 'fail' as const, 'partial' as const, 'resume' as const), symbol: fc.constantFrom('GME' as const, 'AAPL' as const) }) },
);

const symbolOf = (token: string) => (token === 'tAAPL' ? 'AAPL' : 'GME');

/**
 * Runs ops; broker ops apply only where a command is pending (resume only where halted).
 * `quietWhilePending` drops onchain fills of a symbol while its command is in flight.
 */
function run(ops: readonly Op[], check: (s: Scenario, op: Op, before: D.Decimal) => void = () => {}, quietWhilePending = false): Scenario {
  const s = new Scenario();
  for (const o of ops) {
    if ('token' in o) {
      if (quietWhilePending && symbolState(s.state, symbolOf(o.token)).pending) continue;
      s[o.kind](o.shares, o.token);
      continue;
    }
    const st = symbolState(s.state, o.symbol);
    const before = st.net;
    if (o.kind === 'resume' && st.halted) s.resume(o.symbol);
    if (st.pending === null) continue;
    if (o.kind === 'fill') s.brokerFills(o.symbol);
    if (o.kind === 'fail') s.brokerFails(o.symbol);
    if (o.kind === 'partial' && D.gte(st.pending.quantity, D.fromBigInt(2n))) s.brokerFails(o.symbol, 'EXPIRED', '1');
    check(s, o, before);
  }
  return s;
}

const cfg: AccumulatorConfig = config;

describe('accumulator: properties', () => {
  it('folding the same events twice gives the same state and the same commands', () => {
    fc.assert(fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const s = run(ops);
      const a = replay(s.events, cfg);
      const b = replay(s.events, cfg);
      expect(serializeState(a.state, cfg)).toBe(serializeState(b.state, cfg));
      expect(a.decisions.map(show)).toEqual(b.decisions.map(show));
      expect(serializeState(a.state, cfg)).toBe(serializeState(s.state, cfg));
    }), { numRuns: 60 });
  });

  it('splitting the log anywhere and resuming from a checkpointed snapshot gives the same result', () => {
    fc.assert(fc.property(fc.array(op, { maxLength: 60 }), fc.nat(), (ops, cut) => {
      const events = run(ops).events.filter((e) => e.type !== 'HedgeRequested' && e.type !== 'HedgingHalted');
      const at = events.length === 0 ? 0 : cut % (events.length + 1);
      const whole = replay(events, cfg);
      const head = replay(events.slice(0, at), cfg);
      let state = deserializeState(serializeState(head.state, cfg), cfg);
      const tail = [];
      for (const e of events.slice(at)) {
        const r = react(cfg, state, e);
        state = r.state;
        tail.push(...r.decisions);
      }
      expect(serializeState(state, cfg)).toBe(serializeState(whole.state, cfg));
      expect([...head.decisions, ...tail]).toEqual(whole.decisions);
    }), { numRuns: 60 });
  });

  it('never emits a command while one is pending for that symbol', () => {
    fc.assert(fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
      const s = run(ops);
      const open = new Set<string>();
      for (const e of s.events) {
        if (e.type === 'HedgeRequested') {
          expect(open.has(e.data.symbol)).toBe(false);
          open.add(e.data.symbol);
        }
        if (e.type === 'HedgeOrderFilled' || e.type === 'HedgeOrderFailed') {
          const command = s.events.find((c) => c.type === 'HedgeRequested' && c.data.commandId === e.data.commandId);
          if (command?.type === 'HedgeRequested') open.delete(command.data.symbol);
        }
      }
    }), { numRuns: 80 });
  });

  it('every broker fill shrinks |net| (exposure unchanged onchain while the order is in flight)', () => {
    fc.assert(fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
      run(ops, (s, o, before) => {
        if ((o.kind !== 'fill' && o.kind !== 'partial') || !('symbol' in o)) return;
        const after = symbolState(s.state, o.symbol).net;
        if (D.eq(after, before)) return; // a partial with nothing filled
        expect(D.lt(D.abs(after), D.abs(before))).toBe(true);
      }, true);
    }), { numRuns: 80 });
  });

  it('a broker fill moves net by exactly the filled quantity, in the direction of the command', () => {
    fc.assert(fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
      run(ops, (s, o, before) => {
        if (o.kind !== 'fill' || !('symbol' in o)) return;
        const command = [...s.events].reverse().find((e) => e.type === 'HedgeOrderFilled');
        const requested = s.events.find((e) => e.type === 'HedgeRequested' && command?.type === 'HedgeOrderFilled' && e.data.commandId === command.data.commandId);
        if (requested?.type !== 'HedgeRequested' || command?.type !== 'HedgeOrderFilled') throw new Error('fill without its command');
        const moved = D.sub(symbolState(s.state, o.symbol).net, before);
        expect(D.format(moved)).toBe(D.format(requested.data.side === 'BUY' ? command.data.filledQuantity : D.neg(command.data.filledQuantity)));
      });
    }), { numRuns: 60 });
  });

  it('commands always ask for floor(|net|) whole shares on the side that reduces |net|', () => {
    fc.assert(fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      let state = initialState;
      for (const event of run(ops).events) {
        const reaction = react(cfg, state, event);
        state = reaction.state;
        for (const d of reaction.decisions) {
          if (d.type !== 'HedgeRequested') continue;
          const net = symbolState(state, d.data.symbol).net; // deciding moves no exposure
          expect(D.gte(d.data.quantity, D.ONE)).toBe(true);
          expect(D.format(d.data.quantity)).toBe(D.format(D.floor(D.abs(net))));
          expect(d.data.side).toBe(D.lt(net, D.ZERO) ? 'BUY' : 'SELL');
        }
      }
    }), { numRuns: 40 });
  });
});

describe('accumulator: transactions holding unreadable clears', () => {
  const E18 = 10n ** 18n;
  type Equity = 'tGME' | 'tAAPL';
  /** One clear and its AfterClear; bob is ours, buying or selling `shares` at 20 USDC. */
  interface Pair { readonly equity: Equity; readonly buys: boolean; readonly shares: bigint; readonly badClear: number | null; readonly badAfter: number | null }
  /** Pairs adjacent (C A C A) or queued (C C A A); optionally a stray unreadable AfterClear first, and clears left open at the end. */
  interface Tx { readonly pairs: readonly Pair[]; readonly queued: boolean; readonly stray: number | null; readonly trailing: readonly (number | null)[] }
  type Role = { kind: 'pair'; bad: boolean } | { kind: 'extra' };

  /** Cut at a byte: a truncated log never decodes (checked). */
  const truncated = (raw: RawLog, cut: number): RawLog => {
    const bytes = (raw.data.length - 2) / 2;
    return { ...raw, data: raw.data.slice(0, 2 + 2 * (cut % bytes)) as Hex };
  };
  const clearOf = (p: Pick<Pair, 'equity' | 'buys'>): RawLog =>
    p.buys
      ? clearV2Log({ owner: OTHER_OWNER, validInputs: [io('USDC')], validOutputs: [io(p.equity)] }, { owner: OUR_OWNER, validInputs: [io(p.equity)], validOutputs: [io('USDC')] })
      : clearV2Log({ owner: OTHER_OWNER, validInputs: [io(p.equity)], validOutputs: [io('USDC')] }, { owner: OUR_OWNER, validInputs: [io('USDC')], validOutputs: [io(p.equity)] });
  const afterOf = (p: Pair): RawLog => {
    const shares = p.shares * E18;
    const usdc = p.shares * 20_000_000n;
    return p.buys
      ? afterClearLog({ aliceOutput: shares, bobOutput: usdc, aliceInput: usdc, bobInput: shares })
      : afterClearLog({ aliceOutput: usdc, bobOutput: shares, aliceInput: shares, bobInput: usdc });
  };
  const spoil = (raw: RawLog, cut: number | null): RawLog => (cut === null ? raw : truncated(raw, cut));

  const bad = fc.option(fc.nat(), { nil: null, freq: 3 });
  const pair: fc.Arbitrary<Pair> = fc.record({ equity: fc.constantFrom<Equity>('tGME', 'tAAPL'), buys: fc.boolean(), shares: fc.bigInt({ min: 1n, max: 5n }), badClear: bad, badAfter: bad });
  const tx: fc.Arbitrary<Tx> = fc.record({
    pairs: fc.array(pair, { minLength: 1, maxLength: 4 }),
    queued: fc.boolean(),
    stray: fc.option(fc.nat(), { nil: null, freq: 4 }),
    trailing: fc.array(fc.option(fc.nat(), { nil: null }), { maxLength: 2 }),
  });

  /** The transaction's logs in log order, each with its role: a pair's log (spoilt or not), or an extra (stray, left open). */
  function logsOf(t: Tx): { raw: RawLog; role: Role; pair: number | null }[] {
    const clears = t.pairs.map((p, i) => ({ raw: spoil(clearOf(p), p.badClear), role: { kind: 'pair', bad: p.badClear !== null || p.badAfter !== null } as Role, pair: i }));
    const afters = t.pairs.map((p, i) => ({ raw: spoil(afterOf(p), p.badAfter), role: { kind: 'pair', bad: p.badClear !== null || p.badAfter !== null } as Role, pair: i }));
    const body = t.queued ? [...clears, ...afters] : clears.flatMap((c, i) => [c, afters[i]!]);
    const stray = t.stray === null ? [] : [{ raw: truncated(afterOf(t.pairs[0]!), t.stray), role: { kind: 'extra' } as Role, pair: null }];
    const trailing = t.trailing.map((cut, i) => ({ raw: spoil(clearOf({ equity: 'tGME', buys: i % 2 === 0 }), cut), role: { kind: 'extra' } as Role, pair: null }));
    return [...stray, ...body, ...trailing];
  }

  const unreadable = (raw: RawLog): boolean => decodeOrderbookLog(raw.topics, raw.data).event === null;

  function build(txs: readonly Tx[]) {
    const h = new History();
    const tokens = h.allTokens();
    const recorded = txs.map((t, i) =>
      logsOf(t).map(({ raw, role }, logIndex) => ({ envelope: h.log(raw, { tx: `tx ${i}`, logIndex, block: 100n + BigInt(i) }), role, raw })),
    );
    return { h, tokens, recorded };
  }

  const fold = (events: readonly Envelope[], from?: AccumulatorState) => replay(events, cfg, from);

  const nets = (state: AccumulatorState) => ['GME', 'AAPL'].map((s) => D.format(symbolState(state, s).net));

  it('the fills are those of the same transactions without the unreadable logs and their partners', () => {
    fc.assert(
      fc.property(fc.array(tx, { minLength: 1, maxLength: 4 }), (txs) => {
        const { tokens, recorded } = build(txs);
        for (const t of txs) {
          for (const p of t.pairs) {
            if (p.badClear !== null) fc.pre(unreadable(spoil(clearOf(p), p.badClear)));
            if (p.badAfter !== null) fc.pre(unreadable(spoil(afterOf(p), p.badAfter)));
          }
          for (const { raw, role } of logsOf(t)) if (role.kind === 'extra' && raw.data.length < clearOf({ equity: 'tGME', buys: true }).data.length) fc.pre(unreadable(raw));
        }
        const all = recorded.flat();
        const clean = all.filter(({ role }) => role.kind === 'pair' && !role.bad);
        expect(fold([...tokens, ...all.map((l) => l.envelope)]).fills).toEqual(fold([...tokens, ...clean.map((l) => l.envelope)]).fills);
      }),
      { numRuns: 300 },
    );
  });

  it('a reorg removing the newest transactions, in chain order, returns net to what the older ones alone give; a snapshot at any event resumes the same', () => {
    fc.assert(
      fc.property(fc.array(tx, { minLength: 1, maxLength: 4 }), fc.nat(), fc.nat(), (txs, keepAt, snapAt) => {
        const { h, tokens, recorded } = build(txs);
        const keep = keepAt % (txs.length + 1);
        const logs = recorded.flat().map((l) => l.envelope);
        const removals = recorded.slice(keep).flat().map((l) => h.logRemoved(l.envelope));
        const events = [...tokens, ...logs, ...removals];
        const whole = fold(events);
        const older = fold([...tokens, ...recorded.slice(0, keep).flat().map((l) => l.envelope)]);
        expect(nets(whole.state)).toEqual(nets(older.state));
        // The removed transactions mined again in later blocks, at other log indexes (so other ids): net as before the reorg.
        const again = recorded.slice(keep).flatMap((logs, i) => logs.map(({ raw }, logIndex) => h.log(raw, { tx: `tx ${keep + i}`, logIndex: 10 + logIndex, block: 200n + BigInt(i) })));
        expect(nets(fold(again, whole.state).state)).toEqual(nets(fold([...tokens, ...logs]).state));

        const at = snapAt % (events.length + 1);
        const head = fold(events.slice(0, at));
        const resumed = fold(events.slice(at), deserializeState(serializeState(head.state, cfg), cfg));
        expect(serializeState(resumed.state, cfg)).toBe(serializeState(whole.state, cfg));
        expect([...head.fills, ...resumed.fills]).toEqual(whole.fills);
      }),
      { numRuns: 300 },
    );
  });
});
