/**
 * Executor throughput against the Schwab simulator over HTTP: 1,000 hedge commands appended
 * to the store as fast as it takes them, executed by `ExecutorService.follow` with the Schwab
 * adapter (instant fills). Reports commands/s and the latency from a command's append to its
 * `Placed` append (p50/p99): as a burst on the default SQLite file store and, to show what
 * the file's fsyncs cost, on an in-memory one; then at a steady 50 commands/s, where the
 * latency is the executor's own rather than time spent queued. Run: `npm run bench:executor`.
 *
 * Schwab allows 120 order writes a minute; at that pace 1,000 orders take 8⅓ minutes
 * whatever the executor does. The simulator's clock therefore runs SPEEDUP times faster
 * than the wall (the adapter's budget follows the same clock), so the figures measure the
 * executor, the adapter and the store, not the rate limit. Access tokens still expire every
 * 30 simulated minutes, so refreshes happen during the run.
 */
import os from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import * as D from '../../src/domain/decimal.ts';
import { encodeEvent, streams } from '../../src/domain/events.ts';
import { hedgeDecisionId } from '../../src/domain/ids.ts';
import { NO_STREAM, type EventStore } from '../../src/eventstore/port.ts';
import { openStore } from '../../src/eventstore/url.ts';
import { DEFAULT_PRICES, startSchwabSim, type SchwabSim } from '../../src/broker/schwab-sim/index.ts';
import { EncryptedTokenFile, createSchwabBroker } from '../../src/broker/schwab/index.ts';
import { ExecutorService } from '../../src/services/executor.ts';
import { orderMarksFor } from '../../src/services/order-mark.ts';
import { storedTokens } from '../support/executor-harness.ts';

const COMMANDS = 1_000;
const SPEEDUP = 600;
const APP = { appKey: 'bench-key', appSecret: 'bench-secret', callbackUrl: 'https://127.0.0.1' };

/** Wall times (performance.now) per command id. */
interface Timings {
  readonly appended: Map<string, number>;
  readonly placed: Map<string, number>;
  readonly done: Map<string, number>;
}

/** The store, noting when each command's Placed and terminal events were appended. */
function timed(store: EventStore, t: Timings): EventStore {
  return new Proxy(store, {
    get(target, key, receiver) {
      if (key !== 'append') return Reflect.get(target, key, receiver) as unknown;
      return async (...args: Parameters<EventStore['append']>) => {
        const result = await target.append(...args);
        const [stream, [event]] = args;
        const commandId = stream.slice('hedgeorder-'.length);
        if (event?.type === 'HedgeOrderPlaced') t.placed.set(commandId, performance.now());
        if (event?.type === 'HedgeOrderFilled' || event?.type === 'HedgeOrderFailed') t.done.set(commandId, performance.now());
        return result;
      };
    },
  });
}

/** Moves the simulator's clock SPEEDUP× the wall time that really passed (a busy loop fires timers late). */
function fastClock(sim: SchwabSim): () => void {
  let wall = performance.now();
  const ticker = setInterval(() => {
    const elapsed = performance.now() - wall;
    wall += elapsed;
    sim.clock.advance(elapsed * SPEEDUP);
  }, 5);
  return () => clearInterval(ticker);
}

/** Commands round-robin over the priced symbols, as the accumulator appends them: a burst, or `perSecond`. */
async function appendCommands(store: EventStore, t: Timings, perSecond?: number): Promise<void> {
  const symbols = Object.keys(DEFAULT_PRICES);
  const started = performance.now();
  for (let i = 0; i < COMMANDS; i++) {
    if (perSecond !== undefined) await new Promise((resolve) => setTimeout(resolve, started + (i * 1000) / perSecond - performance.now()));
    const symbol = symbols[i % symbols.length]!;
    const sequence = Math.floor(i / symbols.length) + 1;
    const commandId = hedgeDecisionId(symbol, sequence);
    const data = { commandId, sequence, symbol, brokerSymbol: symbol, side: i % 2 === 0 ? 'BUY' : 'SELL', quantity: D.fromBigInt(BigInt(1 + (i % 50))), referencePrice: null, causationId: commandId } as const;
    await store.append(streams.hedgeCommands(symbol), [encodeEvent(commandId, { type: 'HedgeRequested', data })], sequence === 1 ? NO_STREAM : BigInt(sequence - 2));
    t.appended.set(commandId, performance.now());
  }
}

function report(name: string, sim: SchwabSim, t: Timings, started: number): void {
  const ms = (x: number) => `${x.toFixed(0)} ms`;
  const rate = (until: number) => `${(COMMANDS / ((until - started) / 1000)).toFixed(0)} commands/s`;
  const latencies = [...t.appended].map(([id, at]) => t.placed.get(id)! - at).sort((a, b) => a - b);
  const percentile = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!;
  const [lastAppended, lastPlaced, lastDone] = [t.appended, t.placed, t.done].map((m) => Math.max(...m.values())) as [number, number, number];
  const counters = sim.control.counters();
  console.log(`\n== ${name}`);
  console.log(`commands appended in ${ms(lastAppended - started)}; orders at the simulator: ${counters.ordersPlaced}; token refreshes: ${counters.requests['token'] ?? 0}; 429s: ${counters.responses['place']?.['429'] ?? 0}`);
  console.log(`placed: ${rate(lastPlaced)} (first append → last Placed: ${ms(lastPlaced - started)}); filled: ${rate(lastDone)}`);
  console.log(`latency, command appended → Placed appended: p50 ${ms(percentile(50))}, p99 ${ms(percentile(99))}, max ${ms(latencies.at(-1)!)}`);
  if (counters.ordersPlaced !== COMMANDS) throw new Error(`expected ${COMMANDS} orders at the simulator, found ${counters.ordersPlaced}`);
}

async function bench(name: string, storeUrl: (dir: string) => string, perSecond?: number): Promise<void> {
  const dir = mkdtempSync(join(os.tmpdir(), 'bench-executor-'));
  const sim = await startSchwabSim(APP);
  const stopClock = fastClock(sim);
  const url = storeUrl(dir);
  const store = await openStore(url);
  const timings: Timings = { appended: new Map(), placed: new Map(), done: new Map() };
  try {
    const tokens = new EncryptedTokenFile(join(dir, 'tokens.json'), randomBytes(32));
    await tokens.save(storedTokens(sim.control.issueTokens(), sim.clock.now()));
    const now = () => sim.clock.now();
    const log = pino({ level: 'info' }, pino.destination('/dev/null'));
    const broker = createSchwabBroker({ app: { ...APP, baseUrl: sim.baseUrl }, tokens, requestTimeoutMs: 10_000, reconcileSkewMs: 60_000 }, { now, log });
    const stop = new AbortController();
    // As `run` configures it: a file store gets the order mark beside it (a write per order event).
    const following = new ExecutorService({ store: timed(store, timings), broker, log, now, pollIntervalMs: 200, marks: orderMarksFor(url) }).follow(stop.signal);
    const started = performance.now();
    await appendCommands(store, timings, perSecond);
    while (timings.done.size < COMMANDS) await new Promise((resolve) => setTimeout(resolve, 20));
    stop.abort();
    await following;
    report(name, sim, timings, started);
  } finally {
    stopClock();
    await store.close();
    await sim.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const cpus = os.cpus();
console.log(`machine: ${os.availableParallelism()} cores (nproc), ${cpus[0]?.model ?? 'unknown CPU'}, node ${process.version}, ${os.platform()} ${os.release()}, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.log(`setup: ${COMMANDS} commands, the simulator over HTTP on loopback (same process), sim clock ×${SPEEDUP}, instant fills, executor follow mode`);
const file = (dir: string) => `sqlite:${join(dir, 'ledger.db')}`;
await bench('burst of 1,000 commands, SQLite file (the default; synchronous=FULL)', file);
await bench('burst of 1,000 commands, SQLite in memory (no fsync)', () => 'sqlite::memory:');
await bench('1,000 commands at a steady 50/s, SQLite file', file, 50);
