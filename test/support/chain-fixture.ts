/**
 * A devnet for the chain-ingestion suites: anvil with the test orderbook, fills of our orders
 * sent as real transactions, what those fills must fold to, and what a store holds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Hex } from 'viem';
import { createTrader, deployDevnet, startAnvil, type Anvil, type ClearFill, type DevnetDeployment, type DevTokenName, type Fill, type Trader } from '../../src/chain/devnet/index.ts';
import { isNothingYet, nothingYetText, type StepOutcome, type StepReport } from '../../src/chain/follower.ts';
import type { IngesterSettings } from '../../src/chain/ingester-service.ts';
import * as D from '../../src/domain/decimal.ts';
import { decodeEvent, streams } from '../../src/domain/events.ts';
import { logEventId } from '../../src/domain/ids.ts';
import { baseTicker } from '../../src/domain/symbols.ts';
import type { EventStore } from '../../src/eventstore/port.ts';
import { foldLedger } from '../../src/services/ledger-query.ts';
import { mulberry32 } from '../../src/seeded-random.ts';
import type { AccumulatorConfig } from '../../projections/accumulator.ts';

export const OURS: Hex = '0x1111111111111111111111111111111111111111';
const THEIRS: Hex = '0x2222222222222222222222222222222222222222';
const E15 = 10n ** 15n;



export interface Devnet {
  readonly anvil: Anvil;
  readonly deployment: DevnetDeployment;
  readonly trader: Trader;
  readonly stream: string;
  readonly fold: AccumulatorConfig;
  /** Ingester settings against `rpcUrl` (default anvil): confirmations 0, fast polls, small ranges. */
  settings(overrides?: Partial<IngesterSettings>): IngesterSettings;
  /** A fresh SQLite file store URL in a directory removed by `stop`. */
  storeUrl(): string;
  stop(): Promise<void>;
}

export async function startDevnet(): Promise<Devnet> {
  const anvil = await startAnvil();
  const dir = mkdtempSync(join(tmpdir(), 'ledger-chain-'));
  let stores = 0;
  try {
    const deployment = await deployDevnet(anvil.rpcUrl);
    const orderbook = deployment.orderbook.toLowerCase();
    return {
      anvil,
      deployment,
      trader: createTrader(anvil.rpcUrl, deployment),
      stream: streams.orderbook(deployment.chainId, orderbook),
      fold: { fills: { chainId: deployment.chainId, orderbook, owners: new Set([OURS]) }, maxConsecutiveFailures: 3, brokerSymbols: {} },
      settings: (overrides = {}) => ({
        chainId: deployment.chainId,
        orderbook,
        rpcUrls: [anvil.rpcUrl],
        deploymentBlock: deployment.deploymentBlock,
        confirmations: 0,
        pollIntervalMs: 50,
        concurrency: 4,
        maxBlockRange: 64,
        deadlineMs: 10_000,
        random: mulberry32(7),
        ...overrides,
      }),
      storeUrl: () => `sqlite:${join(dir, `ledger-${++stores}.db`)}`,
      stop: async () => {
        await anvil.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await anvil.stop();
    throw error;
  }
}

const EQUITIES: readonly DevTokenName[] = ['tGME', 'GME0x', 'GMEs1', 'tAAPL', 'AAPL0x', 'tSPLG', 'BrokenToken'];

/** Fills of ours and others', hedgeable or not (WETH quotes, BrokenToken), with amounts drawn from `random`. */
export function randomFills(random: () => number, count: number): Fill[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  return Array.from({ length: count }, () => ({
    owner: random() < 0.7 ? OURS : THEIRS,
    side: random() < 0.5 ? 'sell' : 'buy',
    equityToken: pick(EQUITIES),
    shares: BigInt(1 + Math.floor(random() * 3_000)) * E15,
    usdc: BigInt(1 + Math.floor(random() * 90_000_000)),
    ...(random() < 0.1 && { quoteToken: 'WETH' as const }),
  }));
}

/** A clear where alice (ours) and bob (theirs) trade `shares` of an equity. */
export const clearOf = (equityToken: DevTokenName, shares: bigint, aliceSide: 'sell' | 'buy'): ClearFill => ({
  alice: { owner: OURS, side: aliceSide, equityToken, shares, usdc: 25_000_000n },
  bob: { owner: THEIRS, side: aliceSide === 'sell' ? 'buy' : 'sell', equityToken, shares, usdc: 25_000_000n },
});

export const partiesOf = (clears: readonly ClearFill[]): Fill[] => clears.flatMap((c) => [c.alice, c.bob]);

/** What the fold must say: net shares per base ticker over our hedgeable fills (zero nets left out). */
export function expectedNet(fills: readonly Fill[]): Record<string, string> {
  const net = new Map<string, D.Decimal>();
  for (const fill of fills) {
    const ticker = baseTicker(fill.equityToken);
    if (fill.owner !== OURS || (fill.quoteToken ?? 'USDC') !== 'USDC' || ticker === null) continue;
    const shares = D.fromUnits(fill.shares, 18);
    const before = net.get(ticker) ?? D.ZERO;
    net.set(ticker, fill.side === 'buy' ? D.add(before, shares) : D.sub(before, shares));
  }
  return nonZero([...net].map(([symbol, n]) => [symbol, D.format(n)]));
}

/** Net per symbol of a fold of the whole store (zero nets left out). */
export async function storedNet(store: EventStore, fold: AccumulatorConfig): Promise<Record<string, string>> {
  const view = await foldLedger(store, fold);
  return nonZero(view.symbols().map((s) => [s, D.format(view.position(s).state.net)]));
}

const nonZero = (entries: [string, string][]): Record<string, string> => Object.fromEntries(entries.filter(([, n]) => n !== '0').sort());

export interface StoredEntry {
  readonly type: string;
  /** The log's id: the event id of a recorded log, `logId` of a removal. */
  readonly logId: string;
  readonly block: bigint;
  readonly logIndex: bigint;
  readonly transactionHash: string;
}

/** The orderbook stream as (type, log id, place), in stream order. */
export async function storedLogs(store: EventStore, stream: string): Promise<StoredEntry[]> {
  const out: StoredEntry[] = [];
  if ((await store.readLastEvent(stream)) === undefined) return out;
  for await (const recorded of store.readStream(stream)) {
    const event = decodeEvent(recorded);
    if (event._tag === 'Left') throw event.left;
    const e = event.right;
    if (e.type !== 'OrderbookLogRecorded' && e.type !== 'OrderbookLogRemoved') throw new Error(`unexpected ${e.type}`);
    const logId = e.type === 'OrderbookLogRemoved' ? e.data.logId : e.id;
    out.push({ type: e.type, logId, block: e.data.blockNumber, logIndex: e.data.logIndex, transactionHash: e.data.transactionHash });
  }
  return out;
}

/** The recorded logs' ids in stream order (what "each log exactly once, in chain order" compares). */
export const recordedIds = (entries: readonly StoredEntry[]): string[] => entries.filter((e) => e.type === 'OrderbookLogRecorded').map((e) => e.logId);

/** The orderbook's logs as the node has them now, in chain order: the canonical answer. */
export async function chainLogIds(devnet: Devnet): Promise<string[]> {
  const logs = await devnet.anvil.request<{ transactionHash: string; logIndex: string }[]>('eth_getLogs', [
    { address: devnet.deployment.orderbook, fromBlock: `0x${devnet.deployment.deploymentBlock.toString(16)}`, toBlock: 'latest' },
  ]);
  return logs.map((l) => logEventId(devnet.deployment.chainId, l.transactionHash, Number(l.logIndex)));
}

/** A step's outcome on a devnet past the deployment block and the depth: a report, or null when there was nothing new. */
export function reportOf(outcome: StepOutcome): StepReport | null {
  if (isNothingYet(outcome)) throw new Error(`expected a step over the chain, got: ${nothingYetText(outcome)}`);
  return outcome;
}

/** Mines `n` empty blocks (cheap for small n; anvil slows down for thousands). */
export const mineEmpty = (devnet: Devnet, n: number): Promise<unknown> => devnet.anvil.request('anvil_mine', [`0x${n.toString(16)}`]);

/**
 * The store, except that its `n`-th append dies: before writing (a stop between appends) or
 * after writing (a crash after the append, before the ingester learns it succeeded).
 */
export function dyingStore(store: EventStore, n: number, when: 'before' | 'after'): EventStore {
  let appends = 0;
  return {
    append: async (stream, events, expected) => {
      appends++;
      if (appends === n && when === 'before') throw new Error(`stopped before append ${n}`);
      const result = await store.append(stream, events, expected);
      if (appends === n && when === 'after') throw new Error(`crashed after append ${n}`);
      return result;
    },
    readStream: (stream, options) => store.readStream(stream, options),
    readLastEvent: (stream) => store.readLastEvent(stream),
    readAll: (options) => store.readAll(options),
    subscribe: (options) => store.subscribe(options),
    headPosition: () => store.headPosition(),
    readCheckpoint: (name) => store.readCheckpoint(name),
    saveCheckpoint: (name, checkpoint) => store.saveCheckpoint(name, checkpoint),
    close: () => store.close(),
  };
}
