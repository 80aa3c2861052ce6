/**
 * Restoring a backup with the real accumulator deciding the commands (docs/operations.md, "Where
 * adoption cannot help"). Before the restore, each fill of a symbol arrived after the previous
 * hedge's outcome, so each command covered the fills since; after it, every log since the backup
 * is ingested again before the first outcome is recorded again, and the symbol's second command
 * covers them all. Adoption matches symbol, side and quantity, so that command finds no order;
 * placed, it would hedge the shares of the orders it does not adopt twice. The executor holds it
 * instead, for an operator, while the broker lists orders of its symbol since the backup that no
 * command is linked to.
 */
import { afterEach, expect, it } from 'vitest';
import type { EventStore } from '../../src/eventstore/port.ts';
import { Ingester } from '../../src/services/ingester.ts';
import { tokensOfLog } from '../../src/chain/log-tokens.ts';
import { runOnce } from '../../src/services/run-once.ts';
import { hedgesJson } from '../../projections/queries.ts';
import { foldLedger } from '../../src/services/ledger-query.ts';
import { History, CHAIN_ID, ORDERBOOK, TOKEN, ourTake } from '../support/orderbook-logs.ts';
import { config } from '../support/scenario.ts';
import { Harness } from '../support/executor-harness.ts';
import { backUp, restoreBackup } from '../support/backups.ts';
import { capturedLog } from '../support/test-log.ts';
import type { RecordedLog } from '../../src/chain/rpc-log.ts';

let harness: Harness | undefined;
let restored: EventStore | undefined;
afterEach(async () => {
  await restored?.close();
  restored = undefined;
  await harness?.close();
});

const symbols = new Map<string, string>(Object.entries(TOKEN).map(([name, address]) => [address, name]));
const ingest = (store: EventStore, logs: readonly RecordedLog[]) =>
  new Ingester({
    store, chainId: CHAIN_ID, orderbook: ORDERBOOK, tokensOf: tokensOfLog,
    tokens: { resolve: async (tokens) => new Map([...tokens.keys()].map((a) => [a, { symbol: symbols.get(a) ?? null, reason: null }])) },
  }).ingest(logs);

const hedges = async (store: EventStore) => hedgesJson(await foldLedger(store, config)).map((h) => `${h.side} ${h.quantity}`);

it('a restore re-decides a symbol\'s second command over every fill since the backup: it matches no order, and is held for an operator rather than placed beside the orders it replaces', async () => {
  harness = await Harness.start({ store: 'file' });
  const h = harness;
  const history = new History();
  // Our order sells 1.4, 1.3, 1.3 and 1.3 tGME: each fill after the previous hedge's outcome.
  const fills = [14n, 13n, 13n, 13n].map((tenths, i) => ourTake(history, 'SELL', tenths, 'tGME', 100n + BigInt(i)) as unknown as RecordedLog);
  const backup = await backUp(h);
  const placedIds: string[] = [];
  for (const fill of fills) {
    await ingest(h.store, [fill]);
    await runOnce(h.store, config, h.broker(), { pollIntervalMs: 10, placementSettleMs: 30, now: h.now });
    placedIds.push(...hedgesJson(await foldLedger(h.store, config)).slice(-1).map((c) => c.brokerOrderId ?? ''));
  }
  expect(await hedges(h.store)).toEqual(['BUY 1', 'BUY 1', 'BUY 2', 'BUY 1']);
  expect(h.ordersPlaced()).toBe(4);

  // Restored: the chain's logs are ingested again, all before the first outcome is recorded again.
  restored = await restoreBackup(h, backup.file);
  await ingest(restored, fills);
  const afterRestore = runOnce(restored, config, h.broker(), { pollIntervalMs: 10, placementSettleMs: 30, now: h.now, reconcileSince: backup.at });
  // The first command is decided alike and adopts its order; the second covers the other 4.3 shares: BUY 4, which matches none.
  await expect(afterRestore).rejects.toThrow(`matches no broker order, but orders ${placedIds.slice(1).join(', ')} for GME entered since the backup are linked to no command`);
  expect(hedgesJson(await foldLedger(restored, config)).map((c) => `${c.side} ${c.quantity} ${c.status} ${c.brokerOrderId}`)).toEqual([`BUY 1 filled ${placedIds[0]}`, 'BUY 4 submitting null']);
  expect(h.ordersPlaced()).toBe(4); // nothing placed beside the three orders it does not know

  // The operator offsets those orders at the broker and unsets the setting: the command is placed.
  await runOnce(restored, config, h.broker(), { pollIntervalMs: 10, placementSettleMs: 30, now: h.now });
  expect(await hedges(restored)).toEqual(['BUY 1', 'BUY 4']);
  expect(h.ordersPlaced()).toBe(5);
});

it('the hold stays reported while another symbol\'s orders are worked: a successful broker call elsewhere does not clear it (no 503/200 flapping, one error line)', async () => {
  harness = await Harness.start();
  const h = harness;
  const since = h.now();
  // An order of GME entered since that time that no command is linked to (one the restored ledger forgot).
  const unknown = (await h.broker().place({ commandId: 'before-the-restore', symbol: 'GME', side: 'BUY', quantity: 3n, referencePrice: null, intentAt: since })).brokerOrderId;
  const { lines, log } = capturedLog('info');
  const reported: (string | undefined)[] = [];
  const stop = new AbortController();
  const following = h.executor({ log, reconcileSince: since, onOperatorProblem: (problem) => reported.push(problem) }).follow(stop.signal);
  await h.request('GME', 'BUY', 4n);
  await h.until(() => reported.length > 0, 'the hold reported');
  // Another symbol's order stays open: polled every 10 ms, each answer a successful broker call.
  h.sim.control.setScript({ kind: 'stuck' }, { next: 1 });
  await h.request('AAPL', 'BUY', 1n);
  await h.until(() => h.ordersPlaced() === 2, 'the AAPL order placed');
  await new Promise((resolve) => setTimeout(resolve, 300)); // many polls and hold retries (20 ms) worth
  stop.abort();
  await following;
  expect(h.ordersPlaced()).toBe(2); // GME held, AAPL placed
  expect(reported).toEqual([expect.stringContaining(`orders ${unknown} for GME entered since the backup are linked to no command`)]);
  expect(lines.filter((l) => String(l.msg).startsWith('broker needs an operator'))).toHaveLength(1);
  expect(lines.filter((l) => l.msg === 'broker answers again: resuming')).toHaveLength(0);
});
