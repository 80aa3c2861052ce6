/**
 * Restoring a backup, as a property (docs/operations.md, Backing up and restoring): for any
 * history of hedge commands over a few symbols, any backup point and any mix of broker
 * outcomes, restoring the backup and running the executor with LEDGER_RECONCILE_SINCE = the
 * backup's time ends with the broker holding the orders it held before (none placed again, no
 * placement even tried), each command linked to the same broker order id as before the restore
 * (none for one refused at placement), with the same outcome.
 * Without the setting, the store's marks refuse the restored copy whenever an order event was
 * recorded after the backup.
 *
 * The commands are appended as the accumulator decides them: a symbol's next command only after
 * the previous one's outcome, in the same order before and after the restore. Sides and
 * quantities come from small sets, so that many commands are alike and adoption must tell them apart.
 */
import { expect, it } from 'vitest';
import fc from 'fast-check';
import type { Side } from '../../src/domain/codecs.ts';
import type { EventStore } from '../../src/eventstore/port.ts';
import { LedgerRewound } from '../../src/services/executor.ts';
import { orderMarksFor } from '../../src/services/order-mark.ts';
import { Harness, appendCommand } from '../support/executor-harness.ts';
import { backUp, recordedOrders, restoreBackup, type RecordedOrder } from '../support/backups.ts';

/** What the broker does with a command's order; each one deterministic in the simulator. */
const OUTCOMES = [
  'filled',
  /** HTTP 400 on the POST: no order exists (after the restore the executor mark remembers the refusal). */
  'refused',
  /** The POST creates the order and the connection drops: the executor reconciles and adopts it. */
  'ambiguous',
  /** Accepted, then REJECTED. */
  'rejected',
  /** Never fills: cancelled by the executor at its deadline. */
  'cancelled',
] as const;
type Outcome = (typeof OUTCOMES)[number];

const DEADLINE_MS = 60_000;

const SYMBOLS = ['GME', 'AAPL', 'TSLA'] as const;
const PER_SYMBOL = 4;

interface Command {
  readonly symbol: string;
  /** The symbol's n-th decision: its command id is hedgeDecisionId(symbol, n), before and after the restore. */
  readonly sequence: number;
  readonly side: Side;
  readonly quantity: bigint;
  readonly outcome: Outcome;
  /** Sim time that passes before it is decided. */
  readonly gapMs: number;
}

/**
 * Up to 12 decisions over 1–3 symbols (at most 4 a symbol: any beyond are dropped), in decision
 * order, and the backup point: after that many of them. No `chain`, so that a failure shrinks well.
 */
const history = fc
  .record({
    decisions: fc.array(
      fc.record({
        symbol: fc.constantFrom(...SYMBOLS),
        side: fc.constantFrom<Side>('SELL', 'BUY'),
        quantity: fc.constantFrom(2n, 3n),
        outcome: fc.constantFrom(...OUTCOMES),
        gapMs: fc.constantFrom(0, 400, 1500),
      }),
      { minLength: 1, maxLength: SYMBOLS.length * PER_SYMBOL },
    ),
    backup: fc.nat(),
  })
  .map(({ decisions, backup }) => {
    const decided = new Map<string, number>();
    const commands = decisions.flatMap((d): Command[] => {
      const sequence = (decided.get(d.symbol) ?? 0) + 1;
      if (sequence > PER_SYMBOL) return [];
      decided.set(d.symbol, sequence);
      return [{ ...d, sequence }];
    });
    return { commands, backupAfter: backup % (commands.length + 1) };
  });

/** What the ledger must record of a command's order, by outcome (before the restore; after it, the same). */
const expectedOutcome = (outcome: Outcome): RecordedOrder['outcome'] => (outcome === 'filled' || outcome === 'ambiguous' ? 'HedgeOrderFilled' : 'HedgeOrderFailed');

/** A drain that never ends fails the property instead of the whole test. */
const DRAIN_LIMIT_MS = 10_000;

async function restoreHolds({ commands, backupAfter }: { commands: readonly Command[]; backupAfter: number }): Promise<void> {
  const h = await Harness.start({ store: 'file' });
  let restored: EventStore | undefined;
  try {
    h.sim.control.setCancelLatency(0);
    const marks = orderMarksFor(h.storeUrl);
    /** Arms the broker for the next order's outcome (before the restore only: after it, each command must find its own). */
    const arm = (c: Command) => {
      if (c.outcome === 'refused') h.sim.control.injectFault('place', { kind: 'status', status: 400 });
      if (c.outcome === 'ambiguous') h.sim.control.injectFault('place', { kind: 'drop', applied: true });
      if (c.outcome === 'rejected') h.sim.control.setScript({ kind: 'asyncReject', afterMs: 0 }, { next: 1 });
      if (c.outcome === 'cancelled') h.sim.control.setScript({ kind: 'stuck' }, { next: 1 });
    };
    /** As the accumulator decides: the symbol's next command, some time after the previous outcome. */
    const decide = (store: EventStore, c: Command): Promise<string> => {
      h.sim.clock.advance(c.gapMs);
      return appendCommand(store, c.symbol, c.sequence, c.side, c.quantity);
    };
    /** Drains an executor on `store`; a stuck order is cancelled once its deadline has passed on the sim clock. */
    const drain = async (store: EventStore, commandId: string, c: Command, reconcileSince?: Date) => {
      const drained = h.executor({ store, marks, reconcileSince, openOrderDeadlineMs: DEADLINE_MS }).drainOpen(AbortSignal.timeout(DRAIN_LIMIT_MS));
      if (c.outcome === 'cancelled' && store === h.store) {
        await h.until(async () => (await h.orderEvents(commandId)).some((e) => e.type === 'HedgeOrderPlaced'), 'the stuck order placed');
        h.sim.clock.advance(DEADLINE_MS + 1000);
      }
      await drained;
      h.sim.control.clearFaults();
      h.sim.control.setScript(null, { next: 1 });
    };

    const ids: string[] = [];
    let backup: { file: string; at: Date } | undefined;
    for (const [i, c] of commands.entries()) {
      if (i === backupAfter) backup = await backUp(h);
      arm(c);
      ids.push(await decide(h.store, c));
      await drain(h.store, ids[i]!, c);
    }
    backup ??= await backUp(h);
    const before = await recordedOrders(h.store, ids);
    expect(before.map((o) => o.outcome)).toEqual(commands.map((c) => expectedOutcome(c.outcome)));
    expect(before.map((o) => o.brokerOrderId === undefined)).toEqual(commands.map((c) => c.outcome === 'refused'));
    const placed = h.ordersPlaced();
    const posted = h.requests('place');

    restored = await restoreBackup(h, backup.file);
    const again = commands.slice(backupAfter);
    // Without LEDGER_RECONCILE_SINCE, the marks refuse the copy if it lacks an order event (every command after the backup recorded some).
    if (again.length > 0) await decide(restored, again[0]!);
    const plain = h.executor({ store: restored, marks }).drainOpen();
    if (again.length > 0) await expect(plain).rejects.toThrow(LedgerRewound);
    else expect(await plain).toBe(0);

    for (const [i, c] of again.entries()) {
      if (i > 0) await decide(restored, c);
      await drain(restored, ids[backupAfter + i]!, c, backup.at);
    }
    // Same links, same outcomes; one order per command that had one, and not even an attempt to place again.
    expect(await recordedOrders(restored, ids)).toEqual(before);
    expect(h.requests('place')).toBe(posted);
    expect(h.ordersPlaced()).toBe(placed);
    const linked = before.flatMap((o) => (o.brokerOrderId === undefined ? [] : [o.brokerOrderId]));
    expect(new Set(linked).size).toBe(linked.length);
    expect(linked.sort()).toEqual(h.sim.control.orders().map((o) => o.orderId).sort());
  } finally {
    await restored?.close();
    await h.close();
  }
}

// Each run starts from a fresh simulator and store, so a failure replays from the seed and path fast-check prints: fc.assert(…, { seed, path }).
it('restoring any backup with LEDGER_RECONCILE_SINCE = its time: every command gets back its own order and outcome, and nothing is placed again', async () => {
  await fc.assert(fc.asyncProperty(history, restoreHolds), { numRuns: 25 });
}, 120_000);
