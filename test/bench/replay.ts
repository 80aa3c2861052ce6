/**
 * `npm run bench:replay`: replay speed on this machine (a script, not a test).
 *
 * Generates a SQLite ledger of ~1M events with a realistic mix: ClearV2+AfterClear pairs and
 * TakeOrderV2 across 20 symbols (some on foreign orders), token metadata, and the hedge
 * commands and paper outcomes the accumulator and executor would have written (decided by the
 * real fold while generating). Then, in the same run: the raw read of the same events (the
 * store's readAll, no fold) and `replay` (decode + every projection), alternating, best of
 * BENCH_RUNS runs each (default 3). Prints events/s for both, their ratio, and peak RSS; the CPU
 * time of each run and the load average too, since other processes on a small machine can stretch
 * wall time. Usage: tsx test/bench/replay.ts [events] (default 1,000,000).
 */
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parse, type Decimal } from '../../src/domain/decimal.ts';
import { LEDGER_PREFIXES, decodeEvent, encodeEvent, streams, type LedgerEvent } from '../../src/domain/events.ts';
import { hedgeDecisionId, logEventId, orderEventId, uuidV5 } from '../../src/domain/ids.ts';
import { NO_STREAM, type EventStore, type ExpectedRevision, type From, type NewEvent, type RecordedEvent } from '../../src/eventstore/port.ts';
import { openStore } from '../../src/eventstore/url.ts';
import { lcg } from '../../src/seeded-random.ts';
import { foldLedger } from '../../src/services/ledger-query.ts';
import { stateHash } from '../../src/services/state-hash.ts';
import { initialState, react, type AccumulatorConfig, type AccumulatorState } from '../../projections/accumulator.ts';
import { afterClearLog, clearV2Log, takeOrderV2Log, OTHER_OWNER, OUR_OWNER, ORDERBOOK, CHAIN_ID, txHash, type IoSpec, type RawLog } from '../support/orderbook-logs.ts';
import { machine, peakRssMb, printTable } from './machine.ts';

const TARGET = Number(process.argv[2] ?? 1_000_000);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);
const DIR = join(process.cwd(), '.bench');
const FILE = join(DIR, `replay-${TARGET}.db`);
const SYMBOLS = Array.from({ length: 20 }, (_, i) => `S${String.fromCharCode(65 + i)}`);
const USDC: `0x${string}` = '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913';
const tokenOf = (i: number): `0x${string}` => `0xa0000000000000000000000000000000000000${(i + 16).toString(16).padStart(2, '0')}`;
const config: AccumulatorConfig = { fills: { chainId: CHAIN_ID, orderbook: ORDERBOOK, owners: new Set([OUR_OWNER]) }, maxConsecutiveFailures: 3, brokerSymbols: {} };

const io = (token: `0x${string}`, decimals: number): IoSpec => ({ token, decimals, vaultId: 1n });

/** A small library of encoded logs per symbol, reused with fresh positions (encoding is not what we measure). */
function templates(symbol: number): RawLog[][] {
  const eq = io(tokenOf(symbol), 18);
  const usd = io(USDC, 6);
  const tenths = (n: bigint) => (n * 10n ** 18n) / 10n;
  return [1n, 2n, 3n, 5n, 7n].flatMap((n) => [
    [takeOrderV2Log({ owner: OUR_OWNER, validInputs: [usd], validOutputs: [eq] }, { input: tenths(n), output: n * 2_000_000n })],
    [takeOrderV2Log({ owner: OUR_OWNER, validInputs: [eq], validOutputs: [usd] }, { input: n * 2_000_000n, output: tenths(n) })],
    [takeOrderV2Log({ owner: OTHER_OWNER, validInputs: [eq], validOutputs: [usd] }, { input: n * 2_000_000n, output: tenths(n) })],
    [
      clearV2Log({ owner: OTHER_OWNER, validInputs: [eq], validOutputs: [usd] }, { owner: OUR_OWNER, validInputs: [usd], validOutputs: [eq] }),
      afterClearLog({ aliceOutput: n * 2_000_000n, bobOutput: tenths(n), aliceInput: tenths(n), bobInput: n * 2_000_000n }),
    ],
  ]);
}

class Generator {
  private state: AccumulatorState = initialState;
  private readonly revisions = new Map<string, ExpectedRevision>();
  private pendingBatch: NewEvent[] = [];
  private lastPosition: From = 'start';
  private block = 1_000_000n;
  written = 0;

  constructor(private readonly store: EventStore) {}

  private async append(stream: string, events: NewEvent[]): Promise<void> {
    const result = await this.store.append(stream, events, this.revisions.get(stream) ?? NO_STREAM);
    this.revisions.set(stream, result.nextRevision);
    this.written += events.length;
  }

  async tokens(): Promise<void> {
    const events = [USDC, ...SYMBOLS.map((_, i) => tokenOf(i))].map((address, i) =>
      encodeEvent(uuidV5(`token:${CHAIN_ID}:${address}`), { type: 'TokenMetadataRecorded', data: { chainId: CHAIN_ID, address, symbol: i === 0 ? 'USDC' : `t${SYMBOLS[i - 1]}`, reason: null } }),
    );
    await this.append(streams.tokens(CHAIN_ID), events);
    for await (const e of this.store.readAll({ prefixes: ['token-'] })) this.fold(e);
  }

  /** One transaction's logs; folded as the accumulator would, its decisions and paper outcomes appended after. */
  async transaction(logs: RawLog[]): Promise<void> {
    const hash = txHash(`bench ${this.block}`);
    const events = logs.map((raw, logIndex) => {
      const data = { chainId: CHAIN_ID, address: ORDERBOOK, blockNumber: this.block, blockHash: hash, transactionHash: hash, transactionIndex: 0n, logIndex: BigInt(logIndex), topics: [...raw.topics], data: raw.data } as const;
      return encodeEvent(logEventId(CHAIN_ID, hash, logIndex), { type: 'OrderbookLogRecorded', data: { ...data, topics: [...data.topics] } });
    });
    this.block++;
    this.pendingBatch.push(...events);
    if (this.pendingBatch.length >= 500) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.pendingBatch.length === 0) return;
    const batch = this.pendingBatch;
    this.pendingBatch = [];
    await this.append(streams.orderbook(CHAIN_ID, ORDERBOOK), batch);
    const decisions = [];
    for await (const e of this.store.readAll({ from: this.lastPosition, prefixes: LEDGER_PREFIXES })) decisions.push(...this.fold(e));
    for (const d of decisions) await this.hedge(d);
  }

  private fold(recorded: RecordedEvent): readonly LedgerEvent[] {
    this.lastPosition = recorded.position;
    const decoded = decodeEvent(recorded);
    if (decoded._tag === 'Left') throw decoded.left;
    const r = react(config, this.state, decoded.right);
    this.state = r.state;
    return r.decisions;
  }

  /** Appends a decision and, for commands, the paper broker's outcome at the reference price. */
  private async hedge(d: LedgerEvent): Promise<void> {
    if (d.type !== 'HedgeRequested' && d.type !== 'HedgingHalted') return;
    await this.append(streams.hedgeCommands(d.data.symbol), [encodeEvent(hedgeDecisionId(d.data.symbol, d.data.sequence), d)]);
    if (d.type !== 'HedgeRequested') return;
    const { commandId, quantity, side, brokerSymbol } = d.data;
    const at = '2025-09-08T14:00:00.000Z';
    const price: Decimal = d.data.referencePrice ?? parse('20');
    const outcome: LedgerEvent[] = [
      { type: 'HedgeOrderSubmitting', data: { commandId, broker: 'paper', symbol: brokerSymbol, side, quantity, at } },
      { type: 'HedgeOrderPlaced', data: { commandId, brokerOrderId: `paper-${commandId}`, at } },
      { type: 'HedgeOrderFilled', data: { commandId, filledQuantity: quantity, averagePrice: price, at } },
    ];
    await this.append(streams.hedgeOrder(commandId), outcome.map((e, i) => encodeEvent(orderEventId(commandId, BigInt(i)), e)));
    for await (const e of this.store.readAll({ from: this.lastPosition, prefixes: LEDGER_PREFIXES })) this.fold(e);
  }
}

async function generate(): Promise<void> {
  if (existsSync(FILE)) return console.log(`reusing ${FILE}`);
  mkdirSync(DIR, { recursive: true });
  const store = await openStore(`sqlite:${FILE}.tmp`);
  const gen = new Generator(store);
  const random = lcg(42); // seeded: every run benchmarks the same ledger
  const library = SYMBOLS.map((_, i) => templates(i));
  const started = performance.now();
  await gen.tokens();
  while (gen.written < TARGET) {
    const lib = library[Math.floor(random() * library.length)]!;
    await gen.transaction(lib[Math.floor(random() * lib.length)]!);
    if (gen.written % 50_000 < 2) process.stderr.write(`\rgenerating ${gen.written}/${TARGET}`);
  }
  await gen.flush();
  await store.close();
  renameSync(`${FILE}.tmp`, FILE);
  console.log(`\ngenerated ${gen.written} events in ${((performance.now() - started) / 1000).toFixed(1)}s → ${FILE}`);
}

async function rawRead(store: EventStore): Promise<number> {
  let n = 0;
  for await (const _ of store.readAll({ prefixes: LEDGER_PREFIXES })) n++;
  return n;
}

/** Wall and CPU (user + system, all threads) seconds of one phase. */
async function timed<T>(work: () => Promise<T>): Promise<{ result: T; seconds: number; cpu: number }> {
  const cpu = process.cpuUsage();
  const t = performance.now();
  const result = await work();
  const used = process.cpuUsage(cpu);
  return { result, seconds: (performance.now() - t) / 1000, cpu: (used.user + used.system) / 1e6 };
}

const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');

async function main(): Promise<void> {
  await generate();
  const store = await openStore(`sqlite:${FILE}`);
  const rows: { phase: string; events: number; seconds: number; cpu: number }[] = [];
  const loadBefore = load();
  let hash = '';
  for (let run = 0; run < RUNS; run++) {
    const raw = await timed(() => rawRead(store));
    rows.push({ phase: `raw readAll (run ${run + 1})`, events: raw.result, seconds: raw.seconds, cpu: raw.cpu });
    const replay = await timed(() => foldLedger(store, config));
    rows.push({ phase: `replay (run ${run + 1})`, events: replay.result.events, seconds: replay.seconds, cpu: replay.cpu });
    hash = stateHash(replay.result);
  }
  await store.close();
  const of = (prefix: string) => rows.filter((r) => r.phase.startsWith(prefix));
  const best = (prefix: string) => Math.max(...of(prefix).map((r) => r.events / r.seconds));
  const bestCpu = (prefix: string) => Math.max(...of(prefix).map((r) => r.events / r.cpu));
  printTable(
    rows.map((r) => [r.phase, r.events, r.seconds.toFixed(2), r.cpu.toFixed(2), Math.round(r.events / r.seconds)]),
    ['phase', 'events', 'seconds', 'cpu s', 'events/s'],
  );
  console.log(`replay/raw: ${((100 * best('replay')) / best('raw')).toFixed(0)}% (by CPU time: ${((100 * bestCpu('replay')) / bestCpu('raw')).toFixed(0)}%)   peak RSS: ${peakRssMb()} MB   state hash: ${hash}`);
  console.log(`${machine()}; load average ${loadBefore} before, ${load()} after`);
}

await main();
