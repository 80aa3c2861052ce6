/**
 * End-to-end latency: from a fill of our order being mined on anvil to the accumulator's
 * `HedgeRequested` being appended, and to the hedge order being placed at the Schwab simulator,
 * with the real service as a child process (`hedge-ledger run --broker schwab`, SQLite store):
 * once with the ingester polling over HTTP (LEDGER_CHAIN_POLL_INTERVAL_MS, default 1000) and
 * once with anvil's WebSocket endpoint, where a `newHeads` subscription wakes it at each block.
 *
 * Every trade is a whole-share fill of our order, alternating buy and sell per symbol, sent only
 * once that symbol's previous hedge has filled: each trade causes exactly one command (its
 * `causationId` is the trade's log), so every latency is one command's. Schwab allows 120
 * order writes a minute, so trades keep a timetable of one every PACE_MS: 500 trades take ~4.5
 * minutes per mode, whatever the service does. The timetable ignores the service's poll clock,
 * so trades arrive at every phase of its poll cycle.
 *
 * What is measured, all on this process's wall clock (the simulator runs in this process):
 * - mined: when anvil answered eth_sendRawTransaction (automine mines the block first), or
 *   when the receipt became readable if it was not yet;
 * - appended: this process subscribes to the service's SQLite file (polling every 1–4 ms) and
 *   stamps each event as it is delivered — the log's `OrderbookLogRecorded` and the command's
 *   `HedgeRequested`; production code is not touched;
 * - placed: the simulator's `enteredTime` of the order the command's `HedgeOrderPlaced` names.
 *
 * Run: `npm run bench:e2e [-- --trades 500 --modes polling,websocket]`.
 */
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeFunctionData } from 'viem';
import * as D from '../../src/domain/decimal.ts';
import { decodeEvent } from '../../src/domain/events.ts';
import { logEventId } from '../../src/domain/ids.ts';
import { SqliteEventStore } from '../../src/eventstore/sqlite.ts';
import { orderbookAbi, takeArgs, type DevTokenName } from '../../src/chain/devnet/index.ts';
import { E2eStack, EQUITY_TOKENS, OUR_OWNER, SYMBOLS, fillOf } from '../support/e2e-stack.ts';
import { until } from '../support/until.ts';
import { machine, peakRssMb, printTable } from './machine.ts';
import { minedSender } from './mined.ts';

const { values } = parseArgs({ options: { trades: { type: 'string', default: '500' }, modes: { type: 'string', default: 'polling,websocket' } } });
const TRADES = Number(values.trades);
const MODES = values.modes.split(',') as ('polling' | 'websocket')[];
/** One trade (so one order write) per PACE_MS: 111 a minute, under Schwab's 120. */
const PACE_MS = 540;
/** Never closer than this, even after a late trade: 120 a minute at most. */
const MIN_GAP_MS = 500;
/** Trades first, not measured: every token once (its metadata is read once), connections warm up. */
const WARMUP = SYMBOLS.length * Math.max(...SYMBOLS.map((s) => EQUITY_TOKENS[s]!.length));
const CHAIN_POLL_MS = 1000;
const ORDER_POLL_MS = 200;

interface Trade {
  readonly symbol: string;
  readonly logId: string;
  readonly mined: number;
  readonly measured: boolean;
}

interface Sample {
  readonly appended: number;
  readonly requested: number;
  readonly placed: number;
}

/** What the bench process sees in the service's store, stamped on delivery. */
class StoreWatch {
  readonly logAppended = new Map<string, number>();
  /** causationId → command */
  readonly requested = new Map<string, { commandId: string; symbol: string; at: number }>();
  readonly placed = new Map<string, string>();
  readonly filled = new Set<string>();
  private readonly store: SqliteEventStore;
  private readonly done: Promise<void>;
  private readonly subscription;

  constructor(file: string) {
    this.store = new SqliteEventStore(file, { pollMs: { min: 1, max: 4 } });
    this.subscription = this.store.subscribe({ from: 'start', prefixes: ['orderbook-', 'hedgecmd-', 'hedgeorder-'] });
    this.done = this.run();
  }

  private async run(): Promise<void> {
    for await (const recorded of this.subscription) {
      const at = Date.now();
      const decoded = decodeEvent(recorded);
      if (decoded._tag === 'Left') throw decoded.left;
      const e = decoded.right;
      if (e.type === 'OrderbookLogRecorded') this.logAppended.set(e.id, at);
      else if (e.type === 'HedgeRequested') this.requested.set(e.data.causationId, { commandId: e.data.commandId, symbol: e.data.symbol, at });
      else if (e.type === 'HedgeOrderPlaced') this.placed.set(e.data.commandId, e.data.brokerOrderId);
      else if (e.type === 'HedgeOrderFilled' || e.type === 'HedgeOrderFailed') this.filled.add(e.data.commandId);
    }
  }

  async close(): Promise<void> {
    await this.subscription.close();
    await this.done;
    await this.store.close();
  }
}

let late = 0;

async function runMode(mode: 'polling' | 'websocket'): Promise<Sample[]> {
  late = 0;
  const stack = await E2eStack.start({
    websocket: mode === 'websocket',
    logLevel: 'warn',
    env: { LEDGER_CHAIN_POLL_INTERVAL_MS: String(CHAIN_POLL_MS), LEDGER_POLL_INTERVAL_MS: String(ORDER_POLL_MS) },
  });
  let watch: StoreWatch | undefined;
  try {
    const service = await stack.spawn();
    await service.ready();
    watch = new StoreWatch(stack.storeFile);
    const sendMined = minedSender(stack.anvil.rpcUrl, stack.deployment.chainId, stack.deployment.orderbook);

    const send = async (token: DevTokenName, symbol: string, side: 'buy' | 'sell'): Promise<{ logId: string; mined: number }> => {
      const fill = fillOf(OUR_OWNER, side, token, symbol, D.ONE);
      const { hash, receipt, mined } = await sendMined(encodeFunctionData({ abi: orderbookAbi, functionName: 'takeOrder', args: takeArgs(stack.deployment, fill) }));
      const [log] = receipt.logs;
      if (log === undefined) throw new Error(`trade ${hash} logged nothing`);
      return { logId: logEventId(stack.deployment.chainId, hash, log.logIndex), mined };
    };

    // Trades keep a timetable (one slot every PACE_MS, round robin over the symbols) that knows
    // nothing of the service's poll clock, so their arrival is spread over its poll cycle. A
    // symbol whose last hedge has not filled by its slot is waited for (counted as late).
    const slotOf = (i: number) => {
      const symbol = SYMBOLS[i % SYMBOLS.length]!;
      const tokens = EQUITY_TOKENS[symbol]!;
      return { symbol, token: tokens[Math.floor(i / SYMBOLS.length) % tokens.length]! };
    };
    const warmup = WARMUP;
    const total = warmup + TRADES;
    const side = new Map<string, 'buy' | 'sell'>();
    const lastOf = new Map<string, Trade>();
    const trades: Trade[] = [];
    let lastSent = 0;
    const idle = (symbol: string): boolean => {
      const last = lastOf.get(symbol);
      if (last === undefined) return true;
      const command = watch!.requested.get(last.logId);
      return command !== undefined && watch!.filled.has(command.commandId);
    };
    const stuck = (error: Error): never => {
      throw new Error(`${error.message}; the service is ${service.alive ? 'running' : 'gone'}; its log (level warn and up) ends with:\n${service.logTail}`);
    };
    const start = Date.now();
    for (let i = 0; i < total; i++) {
      const { symbol, token } = slotOf(i);
      const slot = start + i * PACE_MS;
      if (slot > Date.now()) await sleep(slot - Date.now());
      if (!idle(symbol)) {
        if (i >= warmup) late++;
        await until(() => idle(symbol), `the hedge of ${symbol}'s last trade to fill`, 30_000, 2).catch(stuck);
      }
      const gap = lastSent + MIN_GAP_MS - Date.now();
      if (gap > 0) await sleep(gap);
      lastSent = Date.now();
      const s = side.get(symbol) === 'buy' ? 'sell' : 'buy';
      side.set(symbol, s);
      const sent = await send(token, symbol, s);
      const trade = { symbol, ...sent, measured: i >= warmup };
      trades.push(trade);
      lastOf.set(symbol, trade);
      if ((i + 1) % 100 === 0) process.stdout.write(`  ${mode}: ${i + 1}/${total} trades\n`);
    }
    await until(() => SYMBOLS.every(idle), 'the last hedges to fill', 30_000, 5).catch(stuck);

    const orders = new Map(stack.sim.control.orders().map((o) => [o.orderId, Date.parse(o.enteredTime)]));
    const samples: Sample[] = [];
    for (const t of trades.filter((t) => t.measured)) {
      const command = watch.requested.get(t.logId);
      const orderId = command && watch.placed.get(command.commandId);
      const entered = orderId === undefined ? undefined : orders.get(orderId);
      const appended = watch.logAppended.get(t.logId);
      if (command === undefined || entered === undefined || appended === undefined) throw new Error(`trade ${t.logId} (${t.symbol}) has no command, order or log event`);
      samples.push({ appended: appended - t.mined, requested: command.at - t.mined, placed: entered - t.mined });
    }
    if (watch.requested.size !== trades.length) throw new Error(`${watch.requested.size} commands for ${trades.length} trades: some trade did not cause exactly one command`);
    const exited = await service.stop('SIGTERM');
    if (exited.code !== 0) throw new Error(`the service exited with ${exited.code ?? exited.signal}:\n${service.logTail}`);
    return samples;
  } finally {
    await watch?.close();
    await stack.close(process.env['BENCH_KEEP'] === '1');
  }
}

const percentile = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

function summarize(values: readonly number[]): string[] {
  const sorted = [...values].sort((a, b) => a - b);
  return [percentile(sorted, 50), percentile(sorted, 99), sorted.at(-1)!].map((v) => `${v}`);
}

async function main(): Promise<void> {
  console.log(machine());
  console.log(`bench:e2e — ${TRADES} measured trades per mode (after ${WARMUP} warm-up trades), one every ${PACE_MS} ms; ` +
    `chain poll ${CHAIN_POLL_MS} ms, order poll ${ORDER_POLL_MS} ms, confirmations 0, SQLite store, Schwab simulator; latencies in ms from the block being mined`);
  const rows: string[][] = [];
  for (const mode of MODES) {
    const started = Date.now();
    const samples = await runMode(mode);
    console.log(`  ${mode}: ${samples.length} trades in ${((Date.now() - started) / 1000).toFixed(0)} s (${late} waited past their slot for the symbol's previous hedge)`);
    rows.push(
      [mode, 'log appended', `${samples.length}`, ...summarize(samples.map((s) => s.appended))],
      [mode, 'HedgeRequested appended', `${samples.length}`, ...summarize(samples.map((s) => s.requested))],
      [mode, 'order placed at the simulator', `${samples.length}`, ...summarize(samples.map((s) => s.placed))],
    );
  }
  console.log('');
  printTable(rows, ['mode', 'mined →', 'trades', 'p50 ms', 'p99 ms', 'max ms']);
  console.log(`\npeak RSS of the bench process (anvil and the service are separate processes): ${peakRssMb()} MB`);
}

await main();
