/**
 * Restoring an older copy of a SQLite store: the chain is ingested again and the accumulator
 * derives the same commands again (same ids), but the orders the executor placed after the
 * backup are forgotten by the ledger, not by Schwab. LEDGER_RECONCILE_SINCE (the backup's time)
 * makes the executor adopt those orders instead of placing them again.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeEvent, streams } from '../../src/domain/events.ts';
import { hedgeDecisionId } from '../../src/domain/ids.ts';
import { NO_STREAM, type EventStore, type RecordedEvent } from '../../src/eventstore/port.ts';
import { Harness, appendCommand as appendHedgeCommand } from '../support/executor-harness.ts';
import { backUp, recordedOrders, restoreBackup } from '../support/backups.ts';
import { ROOT } from '../support/cli.ts';
import { spawnTsx, succeeded, type Spawned } from '../support/executor-process.ts';
import { createSimClock } from '../../src/broker/schwab-sim/index.ts';
import { LedgerRewound } from '../../src/services/executor.ts';
import { orderMarksFor } from '../../src/services/order-mark.ts';
import { decodedEvents } from '../support/store-fixtures.ts';
import { capturedLog, testLog } from '../support/test-log.ts';

let harness: Harness | undefined;
const stores: EventStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  await harness?.close();
});

/** The command the accumulator derives for a symbol's n-th decision: the same before and after the restore. */
const appendCommand = (store: EventStore, symbol: string, sequence: number): Promise<string> => appendHedgeCommand(store, symbol, sequence, 'SELL', 2n);

/** Something in the store before the backup. */
const seed = (h: Harness) =>
  h.store.append(streams.hedgeControl('X'), [encodeEvent(hedgeDecisionId('x', 1), { type: 'HedgingResumed', data: { symbol: 'X', reason: 'before the backup', at: '2025-01-01T00:00:00Z' } })], NO_STREAM);

/** Puts the backup in place of the harness's store; closed after the test. */
async function restore(h: Harness, backup: string): Promise<EventStore> {
  const restored = await restoreBackup(h, backup);
  stores.push(restored);
  return restored;
}

it('without LEDGER_RECONCILE_SINCE, a restore places every hedge decided after the backup a second time (why the setting exists)', async () => {
  harness = await Harness.start({ store: 'file' });
  const h = harness;
  await seed(h);
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
  await seed(h);
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

/** A file-store harness with something in it, its marks, and a backup taken now. */
async function backedUp() {
  harness = await Harness.start({ store: 'file' });
  await seed(harness);
  return { h: harness, marks: orderMarksFor(harness.storeUrl), backup: await backUp(harness) };
}

it('a command refused at placement (HTTP 400) after the backup is refused again from the marks, and the next alike command adopts its own order', async () => {
  const { h, marks, backup } = await backedUp();
  // After the backup: GME's first hedge refused at placement (no order exists), the accumulator re-arms, and its second, alike, fills.
  h.sim.control.injectFault('place', { kind: 'status', status: 400 });
  const before = [await appendCommand(h.store, 'GME', 1)];
  await h.executor({ marks }).drainOpen();
  before.push(await appendCommand(h.store, 'GME', 2));
  await h.executor({ marks }).drainOpen();
  const original = await recordedOrders(h.store, before);
  expect(original).toEqual([{ brokerOrderId: undefined, outcome: 'HedgeOrderFailed' }, { brokerOrderId: expect.any(String), outcome: 'HedgeOrderFilled' }]);
  expect(h.ordersPlaced()).toBe(1);

  // Restored, the first must fail again (else the accumulator would not derive the second): adopting the second's order was wrong.
  const restored = await restore(h, backup.file);
  for (const sequence of [1, 2]) {
    await appendCommand(restored, 'GME', sequence);
    await h.executor({ store: restored, marks, reconcileSince: backup.at }).drainOpen();
  }
  expect(await recordedOrders(restored, before)).toEqual(original);
  expect(h.ordersPlaced()).toBe(1);
});

it('with more orders entered since the backup than one orders list answers (3000), each restored command still adopts its own', async () => {
  harness = await Harness.start({ store: 'file' });
  const h = harness;
  h.sim.control.setMarketOpen(true);
  await seed(h);
  const backup = await backUp(h);
  const gme = await appendCommand(h.store, 'GME', 1);
  await h.executor().drainOpen();
  const original = await recordedOrders(h.store, [gme]);
  // The account's trading after the hedge (other symbols, other strategies): 3000 orders, newer than it.
  const body = JSON.stringify({ orderType: 'MARKET', session: 'NORMAL', duration: 'DAY', orderStrategyType: 'SINGLE', orderLegCollection: [{ instruction: 'BUY', quantity: 1, instrument: { symbol: 'AAPL', assetType: 'EQUITY' } }] });
  let token = '';
  for (let i = 0; i < 3000; i++) {
    if (i % 100 === 0) {
      h.sim.clock.advance(60_000); // within the simulator's 120 order writes a minute
      token = h.sim.control.issueTokens().access_token;
    }
    const res = await fetch(`${h.sim.baseUrl}/trader/v1/accounts/${h.sim.account.hashValue}/orders`, { method: 'POST', body, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' } });
    expect(res.status).toBe(201);
  }
  expect(h.ordersPlaced()).toBe(3001);

  const restored = await restore(h, backup.file);
  await appendCommand(restored, 'GME', 1);
  await h.executor({ store: restored, reconcileSince: backup.at }).drainOpen();
  expect(h.ordersPlaced()).toBe(3001);
  expect(await recordedOrders(restored, [gme])).toEqual(original);
}, 60_000);

it('an executor given the store\'s marks refuses a restored copy that lacks the order events it recorded, naming a safe LEDGER_RECONCILE_SINCE, and places nothing', async () => {
  harness = await Harness.start({ store: 'file' });
  const h = harness;
  const marks = orderMarksFor(h.storeUrl);
  await appendCommand(h.store, 'GME', 1);
  await h.executor({ marks }).drainOpen();
  const newestInBackup = ((await decodedEvents(h.store.readStream(streams.hedgeOrder(hedgeDecisionId('GME', 1))))).at(-1)!.data as { at: string }).at;
  const backup = await backUp(h);
  await appendCommand(h.store, 'AAPL', 1);
  await h.executor({ marks }).drainOpen();
  expect(h.ordersPlaced()).toBe(2);

  const restored = await restore(h, backup.file);
  await appendCommand(restored, 'AAPL', 1);
  const refused = h.executor({ store: restored, marks }).drainOpen();
  await expect(refused).rejects.toThrow(LedgerRewound);
  await expect(refused).rejects.toThrow(`Set LEDGER_RECONCILE_SINCE to the time the backup was taken (if that is not known, ${newestInBackup}, the newest order event this copy holds, is safe)`);
  expect(h.ordersPlaced()).toBe(2);

  // Given the suggested time, it adopts; the mark then names an event the store holds, and a plain start works again.
  await h.executor({ store: restored, marks, reconcileSince: new Date(newestInBackup) }).drainOpen();
  expect(h.ordersPlaced()).toBe(2);
  await appendCommand(restored, 'AAPL', 2);
  await h.executor({ store: restored, marks }).drainOpen();
  expect(h.ordersPlaced()).toBe(3);
});

it('refuses a copy that lacks only the newest order event, a Submitting whose POST reached Schwab: without the refusal the command would be placed again', async () => {
  harness = await Harness.start({ store: 'file' });
  const h = harness;
  const marks = orderMarksFor(h.storeUrl);
  await appendCommand(h.store, 'GME', 1);
  const backup = await backUp(h); // the command, and none of its order events
  h.sim.control.injectFault('place', { kind: 'timeout', applied: true }); // the order is entered, the answer never comes
  const stop = new AbortController();
  const placing = h.executor({ marks }).drainOpen(stop.signal);
  await h.until(() => h.ordersPlaced() === 1, 'the POST to reach Schwab');
  stop.abort(); // the process stops: Submitting (revision 0) is the newest order event it recorded
  await placing;
  expect((await marks!(testLog()).read())?.revision).toBe('0');
  h.sim.control.clearFaults();

  const restored = await restore(h, backup.file);
  await expect(h.executor({ store: restored, marks }).drainOpen()).rejects.toThrow(LedgerRewound);
  expect(h.ordersPlaced()).toBe(1);
});

it('refuses a LEDGER_RECONCILE_SINCE later than the marked order event the copy lacks (the backup is older than that), and places nothing', async () => {
  const { h, marks, backup } = await backedUp();
  await appendCommand(h.store, 'GME', 1);
  await h.executor({ marks }).drainOpen();
  expect(h.ordersPlaced()).toBe(1);
  const markedAt = Date.parse((await marks!(testLog()).read())!.at);
  h.sim.clock.advance(10 * 60_000);

  const restored = await restore(h, backup.file);
  await appendCommand(restored, 'GME', 1);
  // Minutes after the order: a local time typed as UTC east of Greenwich, or the backup file's time when it was copied later.
  const late = h.executor({ store: restored, marks, reconcileSince: new Date(markedAt + 5 * 60_000) }).drainOpen();
  await expect(late).rejects.toThrow(LedgerRewound);
  await expect(late).rejects.toThrow(/LEDGER_RECONCILE_SINCE=\S+ is later/);
  expect(h.ordersPlaced()).toBe(1);

  await h.executor({ store: restored, marks, reconcileSince: backup.at }).drainOpen();
  expect(h.ordersPlaced()).toBe(1);
});

it('the store\'s first executor, or one on the unrestored store, starts without a word from the marks', async () => {
  harness = await Harness.start({ store: 'file' });
  const h = harness;
  const marks = orderMarksFor(h.storeUrl);
  expect(marks).toBeDefined();
  for (const sequence of [1, 2]) {
    await appendCommand(h.store, 'GME', sequence);
    await h.executor({ marks }).drainOpen();
  }
  expect(h.ordersPlaced()).toBe(2);
  expect(orderMarksFor('sqlite::memory:')).toBeUndefined();
});

it('with many symbols at once, every mark is written, and the last names the newest order event in the store', async () => {
  harness = await Harness.start({ store: 'file' });
  const h = harness;
  const { lines, log } = capturedLog('warn');
  const symbols = ['GME', 'AAPL', 'TSLA', 'NVDA', 'MSFT', 'SPY'];
  for (const symbol of symbols) await appendCommand(h.store, symbol, 1);
  const marks = orderMarksFor(h.storeUrl);
  await h.executor({ marks, log }).drainOpen(); // six workers record Submitting, Placed and Filled side by side
  expect(h.ordersPlaced()).toBe(symbols.length);
  expect(lines.filter((l) => l.msg.includes('executor mark'))).toEqual([]);
  let newest: RecordedEvent | undefined;
  for await (const recorded of h.store.readAll({ prefixes: ['hedgeorder-'] })) newest = recorded;
  expect(await marks!(log).read()).toMatchObject({ commandId: newest!.stream.slice('hedgeorder-'.length), revision: String(newest!.revision) });
});

const cli = (args: string[], env: Record<string, string>): Spawned => spawnTsx('src/cli/main.ts', args, env);

describe('hedge-ledger run --once --broker schwab on a restored store', () => {
  it('stops before placing anything, then, given the backup time, adopts the orders placed after the backup', async () => {
    harness = await Harness.start({ store: 'file', clock: 'wall', sim: { clock: createSimClock({ start: new Date(), followWallClock: true }) } });
    const h = harness;
    h.sim.control.setMarketOpen(true);
    const env = h.cliEnv();
    await succeeded(cli(['ingest-file', join(ROOT, 'docs/example/logs.jsonl'), '--tokens', join(ROOT, 'docs/example/tokens.json')], env));
    const backup = await backUp(h);
    expect(JSON.parse(await succeeded(cli(['run', '--once', '--broker', 'schwab', '--json'], env)))).toMatchObject({ ordersCompleted: 2 });
    expect(h.ordersPlaced()).toBe(2);

    await restore(h, backup.file);
    const refused = await cli(['run', '--once', '--broker', 'schwab'], env).exited;
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/hedge-ledger run: this store lacks order event \d+ of command \S+, which its executor recorded at .*: it is an older copy \(a restored backup\) or another ledger\. .*Set LEDGER_RECONCILE_SINCE to the time the backup was taken/);
    expect(h.ordersPlaced()).toBe(2);

    const since = { ...env, LEDGER_RECONCILE_SINCE: `${backup.at.toISOString().slice(0, 19)}Z` };
    expect(JSON.parse(await succeeded(cli(['run', '--once', '--broker', 'schwab', '--json'], since)))).toMatchObject({ ordersCompleted: 2 });
    expect(h.ordersPlaced()).toBe(2);
    const hedges = JSON.parse(await succeeded(cli(['hedges', '--json'], env))) as { status: string; brokerOrderId: string }[];
    expect(hedges.map((x) => x.status)).toEqual(['filled', 'filled']);
    expect(hedges.map((x) => x.brokerOrderId).sort()).toEqual(h.sim.control.orders().map((o) => o.orderId).sort());
  });
});

describe('hedge-ledger run --once --broker paper on a restored store', () => {
  it('places nothing twice, so it needs no LEDGER_RECONCILE_SINCE (docs/operations.md)', async () => {
    harness = await Harness.start({ store: 'file' });
    const h = harness;
    const env = h.cliEnv();
    await succeeded(cli(['ingest-file', join(ROOT, 'docs/example/logs.jsonl'), '--tokens', join(ROOT, 'docs/example/tokens.json')], env));
    const backup = await backUp(h);
    expect(JSON.parse(await succeeded(cli(['run', '--once', '--broker', 'paper', '--json'], env)))).toMatchObject({ ordersCompleted: 2 });

    await restore(h, backup.file);
    const again = await cli(['run', '--once', '--broker', 'paper', '--json'], env).exited;
    expect(again.stderr).not.toMatch(/this store lacks order event/);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ ordersCompleted: 2 });
  });
});
