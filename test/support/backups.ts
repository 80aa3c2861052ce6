/**
 * Backing up and restoring a Harness's SQLite file store as docs/operations.md says, and what
 * the ledger records of each command's order (to compare before and after a restore).
 */
import { copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { streams } from '../../src/domain/events.ts';
import type { EventStore } from '../../src/eventstore/port.ts';
import { openStore } from '../../src/eventstore/url.ts';
import type { Harness } from './executor-harness.ts';
import { decodedEvents } from './store-fixtures.ts';

/** Backs up the harness's store (VACUUM INTO); returns the backup's path and time. */
export async function backUp(h: Harness): Promise<{ file: string; at: Date }> {
  const at = h.now();
  const file = join(h.dir, 'backup.db');
  const raw = new Database(join(h.dir, 'ledger.db'));
  raw.exec(`VACUUM INTO '${file}'`);
  raw.close();
  return { file, at };
}

/** Stops the harness's store, puts the backup in place (no WAL left over) and opens it again: the caller closes it. */
export async function restoreBackup(h: Harness, backup: string): Promise<EventStore> {
  await h.store.close();
  const file = join(h.dir, 'ledger.db');
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${file}${suffix}`, { force: true });
  copyFileSync(backup, file);
  return openStore(h.storeUrl);
}

export interface RecordedOrder {
  /** The broker order id its Placed event links the command to; undefined without one. */
  readonly brokerOrderId: unknown;
  readonly outcome: 'HedgeOrderFilled' | 'HedgeOrderFailed' | undefined;
}

/** What the ledger records of each command's order: its Placed event's broker order id, and its outcome. */
export async function recordedOrders(store: EventStore, commandIds: readonly string[]): Promise<RecordedOrder[]> {
  return Promise.all(commandIds.map(async (id) => {
    const events = await decodedEvents(store.readStream(streams.hedgeOrder(id)));
    const placed = events.find((e) => e.type === 'HedgeOrderPlaced');
    const outcome = events.find((e) => e.type === 'HedgeOrderFilled' || e.type === 'HedgeOrderFailed');
    return { brokerOrderId: placed?.data.brokerOrderId, outcome: outcome?.type as RecordedOrder['outcome'] };
  }));
}
