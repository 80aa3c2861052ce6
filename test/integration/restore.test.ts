/**
 * Restoring an older copy of a SQLite store: the chain is ingested again and the accumulator
 * derives the same commands again (same ids), but the orders the executor placed after the
 * backup are forgotten by the ledger, not by Schwab. LEDGER_RECONCILE_SINCE (the backup's time)
 * makes the executor adopt those orders instead of placing them again.
 */
import { copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, expect, it } from 'vitest';
import * as D from '../../src/domain/decimal.ts';
import { encodeEvent, streams } from '../../src/domain/events.ts';
import { hedgeDecisionId } from '../../src/domain/ids.ts';
import { NO_STREAM, type EventStore } from '../../src/eventstore/port.ts';
import { openStore } from '../../src/eventstore/url.ts';
import { Harness } from '../support/executor-harness.ts';
import { decodedEvents } from '../support/store-fixtures.ts';

let harness: Harness | undefined;
const stores: EventStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  await harness?.close();
});

/** The command the accumulator derives for a symbol's n-th decision: the same before and after the restore. */
async function appendCommand(store: EventStore, symbol: string, sequence: number): Promise<string> {
  const commandId = hedgeDecisionId(symbol, sequence);
  const data = { commandId, sequence, symbol, brokerSymbol: symbol, side: 'SELL' as const, quantity: D.fromBigInt(2n), referencePrice: null, causationId: commandId };
  await store.append(streams.hedgeCommands(symbol), [encodeEvent(commandId, { type: 'HedgeRequested', data })], sequence === 1 ? NO_STREAM : BigInt(sequence - 2));
  return commandId;
}

/** Backs up the harness's store as docs/operations.md says (VACUUM INTO); returns the backup's path and time. */
async function backUp(h: Harness): Promise<{ file: string; at: Date }> {
  await h.store.append(streams.hedgeControl('X'), [encodeEvent(hedgeDecisionId('x', 1), { type: 'HedgingResumed', data: { symbol: 'X', reason: 'before the backup', at: '2025-01-01T00:00:00Z' } })], NO_STREAM);
  const at = h.now();
  const file = join(h.dir, 'backup.db');
  const raw = new Database(join(h.dir, 'ledger.db'));
  raw.exec(`VACUUM INTO '${file}'`);
  raw.close();
  return { file, at };
}

/** Stops the store, puts the backup in place (no WAL left over) and opens it again. */
async function restore(h: Harness, backup: string): Promise<EventStore> {
  await h.store.close();
  const file = join(h.dir, 'ledger.db');
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${file}${suffix}`, { force: true });
  copyFileSync(backup, file);
  const restored = await openStore(h.storeUrl);
  stores.push(restored);
  return restored;
}

/** What the ledger records of each command's order: its Placed event's broker order id, and its outcome. */
async function recordedOrders(store: EventStore, commandIds: readonly string[]): Promise<{ brokerOrderId: unknown; outcome: string | undefined }[]> {
  return Promise.all(commandIds.map(async (id) => {
    const events = await decodedEvents(store.readStream(streams.hedgeOrder(id)));
    const placed = events.find((e) => e.type === 'HedgeOrderPlaced');
    return { brokerOrderId: placed?.data.brokerOrderId, outcome: events.find((e) => e.type === 'HedgeOrderFilled' || e.type === 'HedgeOrderFailed')?.type };
  }));
}

it('without LEDGER_RECONCILE_SINCE, a restore places every hedge decided after the backup a second time (why the setting exists)', async () => {
  harness = await Harness.start({ store: 'file' });
  const h = harness;
  const backup = await backUp(h);
  await appendCommand(h.store, 'GME', 1);
  await h.executor().drainOpen();
  expect(h.ordersPlaced()).toBe(1);

  const restored = await restore(h, backup.file);
  await appendCommand(restored, 'GME', 1); // ingested again from the chain and decided again: the same command
  await h.executor({ store: restored }).drainOpen();
  expect(h.ordersPlaced()).toBe(2);
});

it('with LEDGER_RECONCILE_SINCE at the backup time, each restored command adopts its own order, in decision order, and nothing is placed again', async () => {
  harness = await Harness.start({ store: 'file' });
  const h = harness;
  const backup = await backUp(h);
  // After the backup: two GME decisions (the second after the first's outcome) and one AAPL, each filled at Schwab.
  const before: string[] = [];
  for (const [symbol, sequence] of [['GME', 1], ['GME', 2], ['AAPL', 1]] as const) {
    before.push(await appendCommand(h.store, symbol, sequence));
    await h.executor().drainOpen();
  }
  expect(h.ordersPlaced()).toBe(3);
  const original = await recordedOrders(h.store, before);
  expect(new Set(original.map((o) => o.brokerOrderId)).size).toBe(3);
  expect(original.map((o) => o.outcome)).toEqual(['HedgeOrderFilled', 'HedgeOrderFilled', 'HedgeOrderFilled']);

  const restored = await restore(h, backup.file);
  const executor = () => h.executor({ store: restored, reconcileSince: backup.at });
  for (const [symbol, sequence] of [['GME', 1], ['GME', 2], ['AAPL', 1]] as const) {
    await appendCommand(restored, symbol, sequence);
    await executor().drainOpen();
  }

  expect(h.ordersPlaced()).toBe(3);
  expect(await recordedOrders(restored, before)).toEqual(original);
});
