/**
 * A property of the ingestion path under reorgs, on real (in-memory SQLite) stores: whatever a
 * chain does to our transactions — drops them, re-mines them into other blocks behind other logs
 * (so their logs move to other indexes: a clear's ClearV2 may land where its AfterClear was),
 * re-executes them with other amounts, mines them again later — the ledger, reconciled step by
 * step, folds to the positions of the current chain ingested from scratch, and to the model's.
 * Every event id is unique, and reconciling the same answer again writes nothing. Ingesters restart
 * between steps at random.
 *
 * REORG_PROPERTY_RUNS=<n> runs more chains (default 40).
 */
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { keccak256, stringToHex } from 'viem';
import * as D from '../../src/domain/decimal.ts';
import { tokensOfLog } from '../../src/chain/log-tokens.ts';
import type { RecordedLog } from '../../src/chain/rpc-log.ts';
import { openStore } from '../../src/eventstore/url.ts';
import type { EventStore } from '../../src/eventstore/port.ts';
import { mulberry32 } from '../../src/seeded-random.ts';
import { Ingester, type TokenResolver } from '../../src/services/ingester.ts';
import { History, OTHER_OWNER, OUR_OWNER, TOKEN, afterClearLog, clearV2Log, io, takeOrderV2Log, type OrderSpec, type RawLog } from '../support/orderbook-logs.ts';
import { config } from '../support/scenario.ts';
import { foldLedger } from '../../src/services/ledger-query.ts';

const RUNS = Number(process.env['REORG_PROPERTY_RUNS'] ?? 40);
const E17 = 10n ** 17n;

/** A transaction as the chain executes it: `version` changes when a reorg re-executes it with other amounts. */
interface Tx {
  readonly label: string;
  /** Ours (takes and clears count), or rejected: another owner's take or clear, a take of nothing. */
  readonly kind: 'take' | 'clears' | 'foreign' | 'foreignClears' | 'zero';
  readonly side: 'BUY' | 'SELL';
  readonly symbol: 'GME' | 'AAPL';
  /** Tenths of a share per fill; a 'clears' transaction has one clear (two logs) per entry. */
  readonly tenths: readonly bigint[];
}

interface Block {
  readonly number: bigint;
  readonly hash: `0x${string}`;
  readonly txs: readonly Tx[];
}

const equity = { GME: 'tGME', AAPL: 'tAAPL' } as const;

/** The logs a transaction emits, in order. */
function rawLogs(tx: Tx): RawLog[] {
  const token = equity[tx.symbol];
  const buys = tx.side === 'BUY';
  const ours: OrderSpec = { owner: OUR_OWNER, validInputs: [io(buys ? token : 'USDC')], validOutputs: [io(buys ? 'USDC' : token)] };
  if (tx.kind !== 'clears' && tx.kind !== 'foreignClears') {
    const order: OrderSpec = tx.kind === 'foreign' ? { ...ours, owner: OTHER_OWNER } : ours;
    const tenths = tx.kind === 'zero' ? 0n : tx.tenths[0]!;
    const [shares, usdc] = [tenths * E17, tenths * 2_000_000n];
    return [takeOrderV2Log(order, buys ? { input: usdc, output: shares } : { input: shares, output: usdc })];
  }
  const alice: OrderSpec = { owner: OTHER_OWNER, validInputs: ours.validOutputs, validOutputs: ours.validInputs };
  const bob: OrderSpec = tx.kind === 'clears' ? ours : { ...ours, owner: OTHER_OWNER };
  return tx.tenths.flatMap((tenths) => {
    const [shares, usdc] = [tenths * E17, tenths * 2_000_000n];
    // Bob (ours) receives the equity when buying: alice's output is bob's input.
    const change = buys ? { aliceOutput: shares, bobOutput: usdc, aliceInput: usdc, bobInput: shares } : { aliceOutput: usdc, bobOutput: shares, aliceInput: shares, bobInput: usdc };
    return [clearV2Log(alice, bob), afterClearLog(change)];
  });
}

/** A block's logs as eth_getLogs returns them: log indexes count from the block's first log. */
function logsOf(history: History, block: Block): RecordedLog[] {
  let logIndex = 0;
  return block.txs.flatMap((tx) => rawLogs(tx).map((raw) => ({ ...history.log(raw, { tx: tx.label, block: block.number, logIndex: logIndex++ }).data, blockHash: block.hash })));
}

/** Net shares per symbol of our fills on `chain` (zero nets left out): what the ledger must fold to. */
function modelNet(chain: readonly Block[]): Record<string, string> {
  const net = new Map<string, D.Decimal>();
  for (const tx of chain.flatMap((b) => b.txs)) {
    if (tx.kind !== 'take' && tx.kind !== 'clears') continue;
    for (const tenths of tx.tenths) {
      const shares = D.fromUnits(tenths, 1);
      net.set(tx.symbol, (tx.side === 'BUY' ? D.add : D.sub)(net.get(tx.symbol) ?? D.ZERO, shares));
    }
  }
  return Object.fromEntries([...net].map(([s, n]) => [s, D.format(n)]).filter(([, n]) => n !== '0').sort());
}

/** A chain that grows and reorganises at random (seeded), keeping dropped transactions in a mempool. */
class Chain {
  readonly blocks: Block[] = [];
  private readonly mempool: Tx[] = [];
  private forks = 0;
  private txs = 0;

  constructor(private readonly random: () => number) {}

  private pick = <T>(items: readonly T[]): T => items[Math.floor(this.random() * items.length)]!;
  private chance = (p: number): boolean => this.random() < p;

  private newTx(): Tx {
    const kind = this.pick(['take', 'take', 'clears', 'clears', 'foreign', 'foreignClears', 'zero'] as const);
    const clears = kind === 'clears' || kind === 'foreignClears' ? 1 + Math.floor(this.random() * 3) : 1;
    return {
      label: `tx ${this.txs++}`,
      kind,
      side: this.pick(['BUY', 'SELL'] as const),
      symbol: this.pick(['GME', 'AAPL'] as const),
      tenths: Array.from({ length: clears }, () => BigInt(1 + Math.floor(this.random() * 20))),
    };
  }

  /** The transaction executed again against other state: other amounts, same logs otherwise. */
  private reexecuted = (tx: Tx): Tx => ({ ...tx, tenths: tx.tenths.map((t) => t + 1n) });

  private block(number: bigint, txs: Tx[]): Block {
    return { number, hash: keccak256(stringToHex(`fork ${this.forks} block ${number}`)), txs };
  }

  /** Transactions for a new block: new ones, and maybe some of the mempool's (re-executed or not), in random order. */
  private fill(): Tx[] {
    const txs = Array.from({ length: Math.floor(this.random() * 3) }, () => this.newTx());
    while (this.mempool.length > 0 && this.chance(0.5)) {
      const tx = this.mempool.splice(Math.floor(this.random() * this.mempool.length), 1)[0]!;
      txs.push(this.chance(0.3) ? this.reexecuted(tx) : tx);
    }
    return txs.sort(() => this.random() - 0.5);
  }

  /** Appends `n` blocks; returns them. */
  grow(n: number): Block[] {
    const tip = this.blocks.at(-1)?.number ?? 99n;
    const added = Array.from({ length: n }, (_, i) => this.block(tip + 1n + BigInt(i), this.fill()));
    this.blocks.push(...added);
    return added;
  }

  /** Replaces the last `depth` blocks with `depth` or more new ones; returns the first replaced block's number. */
  reorg(depth: number): bigint {
    this.forks++;
    const replaced = this.blocks.splice(this.blocks.length - depth, depth);
    for (const tx of replaced.flatMap((b) => b.txs)) {
      if (this.chance(0.6)) this.mempool.push(tx); // back to the mempool, maybe re-mined below
    }
    const from = replaced[0]!.number;
    this.grow(depth + (this.chance(0.3) ? 1 : 0));
    return from;
  }
}

const tokens: TokenResolver = {
  resolve: async (wanted) => new Map([...wanted.keys()].map((a) => [a, { symbol: Object.entries(TOKEN).find(([, address]) => address === a)?.[0] ?? null, reason: null }])),
};

const stores: EventStore[] = [];
const memoryStore = async () => {
  const store = await openStore('sqlite::memory:');
  stores.push(store);
  return store;
};
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});
const ingesterOn = (store: EventStore) => new Ingester({ store, chainId: config.fills.chainId, orderbook: config.fills.orderbook, tokens, tokensOf: tokensOfLog });

/** What the ledger in `store` folds to: net per symbol (zero nets left out) and rejections by reason. */
async function ledgerOf(store: EventStore): Promise<{ net: Record<string, string>; rejected: Record<string, number> }> {
  const view = await foldLedger(store, config);
  const net = view.symbols().map((s) => [s, D.format(view.position(s).state.net)]).filter(([, n]) => n !== '0');
  return { net: Object.fromEntries(net.sort()), rejected: Object.fromEntries([...view.rejectedByReason].sort()) };
}

async function eventIds(store: EventStore, stream: string): Promise<string[]> {
  const ids: string[] = [];
  if ((await store.readLastEvent(stream)) === undefined) return ids;
  for await (const e of store.readStream(stream)) ids.push(e.id);
  return ids;
}

/** Grows and reorganises a chain from `seed`, reconciling the ledger at each step and checking it. */
async function ledgerFollowsChain(seed: number): Promise<void> {
  const history = new History();
  const chain = new Chain(mulberry32(seed));
  const random = mulberry32(seed ^ 0x5bd1e995);
  const store = await memoryStore();
  let ingester = ingesterOn(store);
  await ingester.appendCanonical(chain.grow(4).flatMap((b) => logsOf(history, b)));
  for (let step = 0; step < 8; step++) {
    if (random() < 0.3) ingester = ingesterOn(store); // a restart: the index rebuilt from the stream and the checkpoint
    if (random() < 0.4) {
      await ingester.appendCanonical(chain.grow(1 + Math.floor(random() * 2)).flatMap((b) => logsOf(history, b)));
    } else {
      const from = chain.reorg(1 + Math.floor(random() * Math.min(3, chain.blocks.length - 1)));
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
