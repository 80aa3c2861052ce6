/**
 * A model of a chain for the reorg properties (ingest-reorg-property, follow-reorg-property): seeded
 * transactions of every kind the fold meets (our takes and clears, other owners', takes of nothing,
 * undecodable clears, clears mixed with takes, queued clears), blocks that grow and reorganise (drops,
 * re-mines behind other logs, re-executions with other amounts, dropped transactions mined again later),
 * and what a ledger folds to.
 */
import { afterEach } from 'vitest';
import { keccak256, stringToHex } from 'viem';
import * as D from '../../src/domain/decimal.ts';
import type { RecordedLog } from '../../src/chain/rpc-log.ts';
import type { EventStore } from '../../src/eventstore/port.ts';
import { openStore } from '../../src/eventstore/url.ts';
import { tokensOfLog } from '../../src/chain/log-tokens.ts';
import { foldLedger } from '../../src/services/ledger-query.ts';
import { Ingester, type IngesterOptions, type TokenResolver } from '../../src/services/ingester.ts';
import { History, OTHER_OWNER, OUR_OWNER, TOKEN, afterClearLog, clearV2Log, io, takeOrderV2Log, type OrderSpec, type RawLog } from './orderbook-logs.ts';
import { config } from './scenario.ts';

const E17 = 10n ** 17n;

/** A transaction as the chain executes it; a reorg may re-execute it with other amounts. */
export interface Tx {
  readonly label: string;
  readonly kind: 'take' | 'clears' | 'foreign' | 'foreignClears' | 'zero' | 'badClear' | 'mixed' | 'queued';
  readonly side: 'BUY' | 'SELL';
  readonly symbol: 'GME' | 'AAPL';
  readonly tenths: readonly bigint[];
}

export interface Block {
  readonly number: bigint;
  readonly hash: `0x${string}`;
  readonly txs: readonly Tx[];
}

const equity = { GME: 'tGME', AAPL: 'tAAPL' } as const;

/** The logs a transaction emits, in order. */
export function rawLogs(tx: Tx): RawLog[] {
  const token = equity[tx.symbol];
  const buys = tx.side === 'BUY';
  const ours: OrderSpec = { owner: OUR_OWNER, validInputs: [io(buys ? token : 'USDC')], validOutputs: [io(buys ? 'USDC' : token)] };
  if (tx.kind === 'take' || tx.kind === 'foreign' || tx.kind === 'zero') {
    const order: OrderSpec = tx.kind === 'foreign' ? { ...ours, owner: OTHER_OWNER } : ours;
    const tenths = tx.kind === 'zero' ? 0n : tx.tenths[0]!;
    const [shares, usdc] = [tenths * E17, tenths * 2_000_000n];
    return [takeOrderV2Log(order, buys ? { input: usdc, output: shares } : { input: shares, output: usdc })];
  }
  const alice: OrderSpec = { owner: OTHER_OWNER, validInputs: ours.validOutputs, validOutputs: ours.validInputs };
  const bob: OrderSpec = tx.kind === 'foreignClears' ? { ...ours, owner: OTHER_OWNER } : ours;
  if (tx.kind === 'queued') {
    // Every ClearV2 first, then their AfterClears (a contract clearing several orders before settling).
    const pairs = tx.tenths.map((tenths) => {
      const [shares, usdc] = [tenths * E17, tenths * 2_000_000n];
      const change = buys ? { aliceOutput: shares, bobOutput: usdc, aliceInput: usdc, bobInput: shares } : { aliceOutput: usdc, bobOutput: shares, aliceInput: shares, bobInput: usdc };
      return [clearV2Log(alice, bob), afterClearLog(change)] as const;
    });
    return [...pairs.map(([c]) => c), ...pairs.map(([, a]) => a)];
  }
  return tx.tenths.flatMap((tenths, i) => {
    const [shares, usdc] = [tenths * E17, tenths * 2_000_000n];
    const change = buys ? { aliceOutput: shares, bobOutput: usdc, aliceInput: usdc, bobInput: shares } : { aliceOutput: usdc, bobOutput: shares, aliceInput: shares, bobInput: usdc };
    const clear = clearV2Log(alice, bob);
    // A clear whose ClearV2 data does not decode (first clear of a badClear transaction).
    const broken = tx.kind === 'badClear' && i === 0 ? { topics: clear.topics, data: `0x${'ab'.repeat(40)}` as const } : clear;
    // A mixed transaction takes our order after each clear.
    const after = tx.kind === 'mixed' ? [takeOrderV2Log(ours, buys ? { input: usdc, output: shares } : { input: shares, output: usdc })] : [];
    return [broken, afterClearLog(change), ...after];
  });
}

/** A block's logs as eth_getLogs returns them: log indexes count from the block's first log. */
export function logsOf(history: History, block: Block): RecordedLog[] {
  let logIndex = 0;
  return block.txs.flatMap((tx) => rawLogs(tx).map((raw) => ({ ...history.log(raw, { tx: tx.label, block: block.number, logIndex: logIndex++ }).data, blockHash: block.hash })));
}

/** What the simulated node serves. */
export interface Blocks {
  readonly blocks: readonly Block[];
  readonly tip: bigint;
}

/** A chain that grows and reorganises at random (seeded), keeping dropped transactions in a mempool. */
export class Chain implements Blocks {
  readonly blocks: Block[] = [];
  private readonly mempool: Tx[] = [];
  private forks = 0;
  private txs = 0;

  constructor(private readonly random: () => number) {}

  private pick = <T>(items: readonly T[]): T => items[Math.floor(this.random() * items.length)]!;
  private chance = (p: number): boolean => this.random() < p;

  get tip(): bigint {
    return this.blocks.at(-1)!.number;
  }

  private newTx(): Tx {
    const kind = this.pick(['take', 'take', 'clears', 'clears', 'foreign', 'foreignClears', 'zero', 'badClear', 'mixed', 'queued'] as const);
    const clears = kind === 'take' || kind === 'foreign' || kind === 'zero' ? 1 : 1 + Math.floor(this.random() * 3);
    return {
      label: `tx ${this.txs++}`,
      kind,
      side: this.pick(['BUY', 'SELL'] as const),
      symbol: this.pick(['GME', 'AAPL'] as const),
      tenths: Array.from({ length: clears }, () => BigInt(1 + Math.floor(this.random() * 20))),
    };
  }

  private reexecuted = (tx: Tx): Tx => ({ ...tx, tenths: tx.tenths.map((t) => t + 1n) });

  private block(number: bigint, txs: Tx[]): Block {
    return { number, hash: keccak256(stringToHex(`fork ${this.forks} block ${number}`)), txs };
  }

  private fill(): Tx[] {
    const txs = Array.from({ length: Math.floor(this.random() * 3) }, () => this.newTx());
    while (this.mempool.length > 0 && this.chance(0.5)) {
      const tx = this.mempool.splice(Math.floor(this.random() * this.mempool.length), 1)[0]!;
      txs.push(this.chance(0.3) ? this.reexecuted(tx) : tx);
    }
    return txs.sort(() => this.random() - 0.5);
  }

  grow(n: number): void {
    const tip = this.blocks.at(-1)?.number ?? 99n;
    this.blocks.push(...Array.from({ length: n }, (_, i) => this.block(tip + 1n + BigInt(i), this.fill())));
  }

  /** Replaces the last `depth` blocks with `length` new ones (fewer: the chain got shorter). */
  reorg(depth: number, length: number): void {
    this.forks++;
    const replaced = this.blocks.splice(this.blocks.length - depth, depth);
    for (const tx of replaced.flatMap((b) => b.txs)) if (this.chance(0.6)) this.mempool.push(tx);
    this.grow(length);
  }
}


/** Net shares per symbol of our fills on `chain` (zero nets left out): what the ledger must fold to. */
export function modelNet(chain: readonly Block[]): Record<string, string> {
  const net = new Map<string, D.Decimal>();
  const add = (tx: Tx, tenths: bigint) => net.set(tx.symbol, (tx.side === 'BUY' ? D.add : D.sub)(net.get(tx.symbol) ?? D.ZERO, D.fromUnits(tenths, 1)));
  for (const tx of chain.flatMap((b) => b.txs)) {
    if (tx.kind === 'foreign' || tx.kind === 'foreignClears' || tx.kind === 'zero') continue;
    tx.tenths.forEach((tenths, i) => {
      if (tx.kind !== 'badClear' || i > 0) add(tx, tenths); // a badClear's first clear does not decode
      if (tx.kind === 'mixed') add(tx, tenths); // and the take of our order after it
    });
  }
  return Object.fromEntries([...net].map(([s, n]) => [s, D.format(n)]).filter(([, n]) => n !== '0').sort());
}

/** Every TOKEN under its own name. */
export const tokens: TokenResolver = {
  resolve: async (wanted) => new Map([...wanted.keys()].map((a) => [a, { symbol: Object.entries(TOKEN).find(([, address]) => address === a)?.[0] ?? null, reason: null }])),
};

/** What the ledger in `store` folds to: net per symbol (zero nets left out) and rejections by reason. */
export async function ledgerOf(store: EventStore): Promise<{ net: Record<string, string>; rejected: Record<string, number> }> {
  const view = await foldLedger(store, config);
  const net = view.symbols().map((s) => [s, D.format(view.position(s).state.net)]).filter(([, n]) => n !== '0');
  return { net: Object.fromEntries(net.sort()), rejected: Object.fromEntries([...view.rejectedByReason].sort()) };
}

/** The stream's event ids, in order. */
export async function eventIds(store: EventStore, stream: string): Promise<string[]> {
  const ids: string[] = [];
  if ((await store.readLastEvent(stream)) === undefined) return ids;
  for await (const e of store.readStream(stream)) ids.push(e.id);
  return ids;
}

/** An ingester of the scenario's orderbook on `store`, with the index and batch knobs given. */
export const ingesterOn = (store: EventStore, knobs: Pick<IngesterOptions, 'batchSize' | 'recentLogs'> = {}): Ingester =>
  new Ingester({ store, chainId: config.fills.chainId, orderbook: config.fills.orderbook, tokens, tokensOf: tokensOfLog, ...knobs });

/** Opens in-memory SQLite stores, each closed after the test that opened it. */
export function memoryStores(): () => Promise<EventStore> {
  const open: EventStore[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
  });
  return async () => {
    const store = await openStore('sqlite::memory:');
    open.push(store);
    return store;
  };
}
