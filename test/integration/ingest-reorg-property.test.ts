/**
 * A property of the ingestion path under reorgs, on real (in-memory SQLite) stores: whatever a
 * chain does to our transactions — drops them, re-mines them into other blocks behind other logs
 * (so their logs move to other indexes: a clear's ClearV2 may land where its AfterClear was),
 * re-executes them with other amounts, mines them again later — the ledger, reconciled step by
 * step, folds to the positions and rejection counts of the current chain ingested from scratch, and
 * to the model's positions (the chain and its transactions: test/support/reorg-chain.ts).
 * Every event id is unique, and reconciling the same answer again writes nothing. Ingesters restart
 * between steps at random.
 *
 * REORG_PROPERTY_RUNS=<n> runs more chains (default 40).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mulberry32 } from '../../src/seeded-random.ts';
import { History } from '../support/orderbook-logs.ts';
import { Chain, eventIds, ingesterOn, ledgerOf, logsOf, memoryStores, modelNet } from '../support/reorg-chain.ts';

const RUNS = Number(process.env['REORG_PROPERTY_RUNS'] ?? 40);

const memoryStore = memoryStores();

/** Grows and reorganises a chain from `seed`, reconciling the ledger at each step and checking it. */
async function ledgerFollowsChain(seed: number): Promise<void> {
  const history = new History();
  const chain = new Chain(mulberry32(seed));
  const random = mulberry32(seed ^ 0x5bd1e995);
  const store = await memoryStore();
  let ingester = ingesterOn(store);
  chain.grow(4);
  await ingester.appendCanonical(chain.blocks.flatMap((b) => logsOf(history, b)));
  for (let step = 0; step < 8; step++) {
    if (random() < 0.3) ingester = ingesterOn(store); // a restart: the index rebuilt from the stream and the checkpoint
    if (random() < 0.4) {
      const added = 1 + Math.floor(random() * 2);
      chain.grow(added);
      await ingester.appendCanonical(chain.blocks.slice(-added).flatMap((b) => logsOf(history, b)));
    } else {
      const depth = 1 + Math.floor(random() * Math.min(3, chain.blocks.length - 1));
      const from = chain.blocks.at(-depth)!.number;
      chain.reorg(depth, depth + (random() < 0.3 ? 1 : 0));
      const range = { from, to: chain.blocks.at(-1)!.number };
      const canonical = chain.blocks.filter((b) => b.number >= from).flatMap((b) => logsOf(history, b));
      await ingester.reconcile(range, canonical);
      // The same answer again (another ingester, or a retry) writes nothing.
      expect(await ingesterOn(store).reconcile(range, canonical), `seed ${seed}, step ${step}: a repeat`).toMatchObject({ appended: 0, removed: 0 });
    }
    const fresh = await memoryStore();
    await ingesterOn(fresh).appendCanonical(chain.blocks.flatMap((b) => logsOf(history, b)));
    const ledger = await ledgerOf(store);
    expect(ledger, `seed ${seed}, step ${step}: the ledger against the chain ingested from scratch`).toEqual(await ledgerOf(fresh));
    expect(ledger.net, `seed ${seed}, step ${step}: the ledger against the model`).toEqual(modelNet(chain.blocks));
    const ids = await eventIds(store, ingester.stream);
    expect(new Set(ids).size, `seed ${seed}, step ${step}: unique event ids`).toBe(ids.length);
  }
}

describe('the ingestion path under reorgs (property)', () => {
  it('for any chain of drops, re-mines at other indexes, re-executions and re-sends, the ledger folds to the current chain\'s positions', async () => {
    await fc.assert(fc.asyncProperty(fc.integer({ min: 0, max: 2 ** 31 - 1 }), ledgerFollowsChain), { numRuns: RUNS });
  }, 120_000);
});
