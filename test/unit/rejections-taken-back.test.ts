/**
 * A rejected log that a reorg removes is taken back like a fill: the removal replays it, and the
 * rejections its record yielded leave the tally (`rejectedByReason`) and the lists (`rejected`,
 * GET /rejected), which hear of it through `onRejectionWithdrawn`. A rejection of a log the chain
 * still has stays, whatever the removals around it.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Hex } from 'viem';
import type { Envelope, LedgerEventOf } from '../../src/domain/events.ts';
import { LedgerView } from '../../projections/ledger.ts';
import type { Rejection } from '../../projections/fill.ts';
import { rejectionKey } from '../../projections/queries.ts';
import { History, OTHER_OWNER, OUR_OWNER, afterClearLog, clearV2Log, io, takeOrderV2Log, type OrderSpec, type RawLog } from '../support/orderbook-logs.ts';
import { config } from '../support/scenario.ts';

type Recorded = Envelope<LedgerEventOf<'OrderbookLogRecorded'>>;
const E18 = 10n ** 18n;

const theirs: OrderSpec = { owner: OTHER_OWNER, validInputs: [io('USDC')], validOutputs: [io('tGME')] };
const theirMirror: OrderSpec = { owner: OTHER_OWNER, validInputs: [io('tGME')], validOutputs: [io('USDC')] };
const ourSeller: OrderSpec = { owner: OUR_OWNER, validInputs: [io('USDC')], validOutputs: [io('tGME')] };
const ourBuyer: OrderSpec = { owner: OUR_OWNER, validInputs: [io('tGME')], validOutputs: [io('USDC')] };

/** Logs as an orderbook emits them; bob's side of a clear is the second order. */
const raw = {
  /** A take of `order`: the taker gave one share for 20 USDC (our seller: a fill). */
  take: (order: OrderSpec): RawLog => takeOrderV2Log(order, { input: E18, output: 20_000_000n }),
  zeroTake: (): RawLog => takeOrderV2Log(ourSeller, { input: 0n, output: 0n }),
  clear: (alice: OrderSpec, bob: OrderSpec): RawLog => clearV2Log(alice, bob),
  /** Bob (ours, a buyer) takes one share for 20 USDC; alice is theirs. */
  ourClear: (): RawLog => clearV2Log(theirs, ourBuyer),
  badIoClear: (): RawLog => clearV2Log(theirs, ourBuyer, { bobInputIOIndex: 3n }),
  after: (): RawLog => afterClearLog({ aliceOutput: E18, bobOutput: 20_000_000n, aliceInput: 20_000_000n, bobInput: E18 }),
  unreadable: (log: RawLog, chars: number): RawLog => ({ ...log, data: log.data.slice(0, chars) as Hex }),
};

/** The read models as the service keeps them, and the rejected list as `rejected` prints it (the fold's, then the clears awaiting their AfterClear). */
function ledger() {
  const history = new History();
  const listed: Rejection[] = [];
  const withdrawn: Rejection[] = [];
  const view = new LedgerView(config, {
    onRejection: (r) => listed.push(r),
    onRejectionWithdrawn: (r) => {
      withdrawn.push(r);
      const at = listed.findIndex((l) => rejectionKey(l) === rejectionKey(r));
      if (at >= 0) listed.splice(at, 1);
    },
  });
  history.allTokens().forEach((e) => view.apply(e));
  let block = 100n;
  const show = (r: Rejection) => `${r.reason} ${r.eventId}`;
  return {
    history,
    view,
    fold: <T extends Envelope>(...events: T[]): T[] => events.map((e) => (view.apply(e), e)),
    /** Records the logs as one transaction in a block of its own. */
    tx: (...logs: RawLog[]): Recorded[] => {
      const at = block++;
      return logs.map((log, logIndex) => {
        const recorded = history.log(log, { tx: `tx ${at}`, logIndex, block: at });
        view.apply(recorded);
        return recorded;
      });
    },
    /** Removes the logs, in the order given (a reorg removes in chain order). */
    remove: (...logs: Recorded[]) => logs.map((log) => (view.apply(history.logRemoved(log)), log)),
    counts: () => Object.fromEntries(view.rejectedByReason),
    listed: () => [...listed, ...view.awaitingAfterClear()].map(show),
    withdrawn: () => withdrawn.map(show),
  };
}

describe('a rejected log a reorg removes', () => {
  it('given a take of a foreign order (not_ours): when a reorg removes it, then it leaves the tally and the list, the listener told once; recorded again, it counts once', () => {
    const l = ledger();
    const [take] = l.tx(raw.take(theirs));
    expect(l.counts()).toEqual({ not_ours: 1 });

    const [removal] = l.fold(l.history.logRemoved(take!));
    expect(l.counts()).toEqual({});
    expect(l.listed()).toEqual([]);
    expect(l.withdrawn()).toEqual([`not_ours ${take!.id}`]);

    // Mined again a block later: a new event, rejected under its own id, once.
    const [again] = l.fold(l.history.logRecordedAgain(removal!, 101n));
    expect(l.counts()).toEqual({ not_ours: 1 });
    expect(l.listed()).toEqual([`not_ours ${again!.id}`]);

    l.remove(again!);
    expect(l.counts()).toEqual({});
    expect(l.listed()).toEqual([]);
  });

  it('given a log of another contract (not_ours) and a zero-amount take of ours (zero_amount): when a reorg removes them, then both are withdrawn', () => {
    const l = ledger();
    const other = l.history.log(raw.take(ourSeller), { tx: 'elsewhere', logIndex: 0, block: 99n, address: '0x9999999999999999999999999999999999999999' });
    l.fold(other);
    const [zero] = l.tx(raw.zeroTake());
    expect(l.counts()).toEqual({ not_ours: 1, zero_amount: 1 });
    l.remove(other, zero!);
    expect(l.counts()).toEqual({});
    expect(l.withdrawn()).toEqual([`not_ours ${other.id}`, `zero_amount ${zero!.id}`]);
  });

  it('given a clear whose parties are both foreign: when a reorg removes its ClearV2, then its AfterClear, then its not_ours is withdrawn once, at the AfterClear\'s removal', () => {
    const l = ledger();
    const [clear, after] = l.tx(raw.clear(theirs, theirMirror), raw.after());
    expect(l.counts()).toEqual({ not_ours: 1 });

    l.remove(clear!);
    expect(l.counts()).toEqual({ not_ours: 1 }); // the replayed ClearV2 waits for its removed AfterClear
    expect(l.listed()).toEqual([`not_ours ${clear!.id}`]);
    l.remove(after!);
    expect(l.counts()).toEqual({});
    expect(l.withdrawn()).toEqual([`not_ours ${clear!.id}`]);
    expect(l.listed()).toEqual([]);
  });

  it('given a clear of ours with a bad IO index, and one whose AfterClear does not decode: when a reorg removes them, then every rejection of theirs is withdrawn', () => {
    const l = ledger();
    const logs = l.tx(raw.badIoClear(), raw.after(), raw.ourClear(), raw.unreadable(raw.after(), 90));
    expect(l.counts()).toEqual({ bad_io_index: 1, unpaired_clear: 1, malformed_log: 1 });
    l.remove(...logs);
    expect(l.counts()).toEqual({});
    expect(l.listed()).toEqual([]);
    expect(l.withdrawn()).toEqual([`bad_io_index ${logs[0]!.id}`, `unpaired_clear ${logs[2]!.id}`, `malformed_log ${logs[3]!.id}`]);
  });

  it('given fills beside a rejected log: when a reorg removes the fills, then no rejection is withdrawn; when it removes the rejected log, then exactly its own is', () => {
    const l = ledger();
    const [foreign] = l.tx(raw.take(theirs));
    const [fill] = l.tx(raw.take(ourSeller));
    const clear = l.tx(raw.ourClear(), raw.after());
    expect(l.view.position('GME').totals.trades).toBe(2);
    l.remove(fill!, ...clear);
    expect(l.view.position('GME').totals.trades).toBe(0);
    expect(l.counts()).toEqual({ not_ours: 1 });
    expect(l.withdrawn()).toEqual([]);
    l.remove(foreign!);
    expect(l.counts()).toEqual({});
    expect(l.withdrawn()).toEqual([`not_ours ${foreign!.id}`]);
  });
});

describe('an unpaired clear and the removals around it', () => {
  it('given a ClearV2 of ours that no AfterClear followed, closed as unpaired by the next transaction: when the reorg removes both, then both rejections are withdrawn', () => {
    const l = ledger();
    const [lone] = l.tx(raw.ourClear());
    const [next] = l.tx(raw.take(theirs));
    expect(l.counts()).toEqual({ unpaired_clear: 1, not_ours: 1 });
    l.remove(lone!, next!);
    expect(l.counts()).toEqual({});
    expect(l.withdrawn()).toEqual([`unpaired_clear ${lone!.id}`, `not_ours ${next!.id}`]);
  });

  it('given the same: when the reorg removes only the transaction that closed it, then the clear, still on chain, stays rejected', () => {
    const l = ledger();
    const [lone] = l.tx(raw.ourClear());
    const [next] = l.tx(raw.take(theirs));
    l.remove(next!);
    expect(l.counts()).toEqual({ unpaired_clear: 1 });
    expect(l.listed()).toEqual([`unpaired_clear ${lone!.id}`]);
    expect(l.withdrawn()).toEqual([`not_ours ${next!.id}`]);
  });

  it('given a ClearV2 closed unpaired by a log the reorg keeps (only lower blocks removed, the chain got shorter): when the ledger records its next log, then the removed clear\'s unpaired_clear is withdrawn', () => {
    const l = ledger();
    const [lone] = l.tx(raw.ourClear());
    l.tx(raw.take(ourSeller));
    l.remove(lone!);
    // Its removal may yet be followed by its removed AfterClear: nothing to withdraw until a log says the removals are over.
    expect(l.counts()).toEqual({ unpaired_clear: 1 });
    const [canonical] = l.tx(raw.take(theirs));
    expect(l.counts()).toEqual({ not_ours: 1 });
    expect(l.listed()).toEqual([`not_ours ${canonical!.id}`]);
  });

  it('given a ClearV2 awaiting its AfterClear at the ledger\'s end (listed, not counted): when the reorg removes it, then it is no longer listed, and no later log counts it', () => {
    const l = ledger();
    const [lone] = l.tx(raw.ourClear());
    expect(l.listed()).toEqual([`unpaired_clear ${lone!.id}`]);
    l.remove(lone!);
    expect(l.listed()).toEqual([]);
    l.tx(raw.take(ourSeller));
    expect(l.counts()).toEqual({});
    expect(l.withdrawn()).toEqual([]);
  });

  it('given an unreadable ClearV2 awaiting its AfterClear (malformed_log, counted): when the reorg removes it, then malformed_log is withdrawn', () => {
    const l = ledger();
    const [broken] = l.tx(raw.unreadable(raw.ourClear(), 300));
    expect(l.counts()).toEqual({ malformed_log: 1 });
    l.remove(broken!);
    expect(l.counts()).toEqual({});
    expect(l.withdrawn()).toEqual([`malformed_log ${broken!.id}`]);
  });

  it('given a ClearV2 awaiting its AfterClear when an earlier log is removed: then it still awaits, and the next transaction counts it unpaired once', () => {
    const l = ledger();
    const [earlier] = l.tx(raw.take(theirs));
    const [lone] = l.tx(raw.ourClear());
    l.remove(earlier!);
    expect(l.counts()).toEqual({});
    expect(l.listed()).toEqual([`unpaired_clear ${lone!.id}`]);
    l.tx(raw.take(ourSeller));
    expect(l.counts()).toEqual({ unpaired_clear: 1 });
    expect(l.withdrawn()).toEqual([`not_ours ${earlier!.id}`]);
  });
});

// ---- properties ----

/** A transaction's logs in order, each a kind that yields a fill or a known rejection. */
const kinds = {
  fill: () => [raw.take(ourSeller)],
  foreignTake: () => [raw.take(theirs)],
  zeroTake: () => [raw.zeroTake()],
  ourClear: () => [raw.ourClear(), raw.after()],
  foreignClear: () => [raw.clear(theirs, theirMirror), raw.after()],
  badIoClear: () => [raw.badIoClear(), raw.after()],
  loneClear: () => [raw.ourClear()],
  loneAfterClear: () => [raw.after()],
  unreadableClear: () => [raw.unreadable(raw.ourClear(), 300), raw.after()],
  unreadableAfterClear: () => [raw.ourClear(), raw.unreadable(raw.after(), 90)],
  unreadableLoneClear: () => [raw.unreadable(raw.ourClear(), 300)],
} satisfies Record<string, () => RawLog[]>;
type Kind = keyof typeof kinds;

const transaction = fc.array(fc.constantFrom(...(Object.keys(kinds) as Kind[])), { minLength: 1, maxLength: 3 }).map((ks) => ks.flatMap((k) => kinds[k]()));

/** The rejected list `rejected` prints at the end of a fold of `events`, as a sorted multiset; and whether every withdrawal named one of `removed`. */
function rejectedList(events: readonly Envelope[], removed: ReadonlySet<string> = new Set(), show = (r: Rejection) => rejectionKey(r)) {
  const listed: Rejection[] = [];
  const strays: string[] = [];
  const view = new LedgerView(config, {
    onRejection: (r) => listed.push(r),
    onRejectionWithdrawn: (r) => {
      if (!removed.has(r.eventId)) strays.push(rejectionKey(r));
      listed.splice(listed.findIndex((l) => rejectionKey(l) === rejectionKey(r)), 1);
    },
  });
  events.forEach((e) => view.apply(e));
  const all = [...listed, ...view.awaitingAfterClear()];
  const byReason: Record<string, number> = {};
  for (const r of all) byReason[r.reason] = (byReason[r.reason] ?? 0) + 1;
  return { list: all.map(show).sort(), byReason, strays, counted: Object.fromEntries(view.rejectedByReason) };
}

describe('rejections taken back: properties', () => {
  it('a reorg removing the newest transactions (in chain order) leaves the rejected list that the older transactions alone give', () => {
    fc.assert(
      fc.property(fc.array(transaction, { minLength: 1, maxLength: 6 }), fc.nat(), (txs, keepAt) => {
        const h = new History();
        const tokens = h.allTokens();
        const recorded = txs.map((logs, i) => logs.map((log, logIndex) => h.log(log, { tx: `tx ${i}`, logIndex, block: 100n + BigInt(i) })));
        const keep = keepAt % (txs.length + 1);
        const removed = recorded.slice(keep).flat();
        const whole = rejectedList([...tokens, ...recorded.flat(), ...removed.map((log) => h.logRemoved(log))], new Set(removed.map((l) => l.id)), (r) => `${r.reason} ${r.eventId}`);
        // The older transactions' last clears left open are counted in the whole ledger (the removed ones closed them), awaiting in the older one: listed alike.
        const older = rejectedList([...tokens, ...recorded.slice(0, keep).flat()], new Set(), (r) => `${r.reason} ${r.eventId}`);
        expect(whole.strays).toEqual([]);
        expect(whole.list).toEqual(older.list);
        expect(whole.byReason).toEqual(older.byReason);
      }),
      { numRuns: 300 },
    );
  });

  it('any transactions removed (in chain order), some mined again, and the chain going on: the rejections counted and listed are those of the logs never removed', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ logs: transaction, removed: fc.boolean(), minedAgain: fc.boolean() }), { minLength: 1, maxLength: 6 }), (txs) => {
        const h = new History();
        const tokens = h.allTokens();
        const recorded = txs.map(({ logs }, i) => logs.map((log, logIndex) => h.log(log, { tx: `tx ${i}`, logIndex, block: 100n + BigInt(i) })));
        const removed = recorded.filter((_, i) => txs[i]!.removed);
        const removals = removed.map((logs) => logs.map((log) => h.logRemoved(log)));
        // Some mined again in later blocks (recorded again, under new ids), then the chain's next log.
        const again = removals.flatMap((logs, i) => (txs[recorded.indexOf(removed[i]!)]!.minedAgain ? logs.map((removal) => h.logRecordedAgain(removal, 200n + BigInt(i))) : []));
        const next = h.log(raw.take(theirs), { tx: 'next', logIndex: 0, block: 300n });
        const kept = recorded.filter((_, i) => !txs[i]!.removed).flat();

        const whole = rejectedList([...tokens, ...recorded.flat(), ...removals.flat(), ...again, next], new Set(removed.flat().map((l) => l.id)));
        const onChain = rejectedList([...tokens, ...kept, ...again, next]);
        expect(whole.strays).toEqual([]);
        expect(whole.list).toEqual(onChain.list);
        expect(whole.counted).toEqual(onChain.counted);
      }),
      { numRuns: 300 },
    );
  });
});
