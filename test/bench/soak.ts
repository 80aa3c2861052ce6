/**
 * Soak: the real service (`hedge-ledger run --broker schwab`, every role, SQLite file) as a child
 * process against anvil and the Schwab simulator (test/support/e2e-stack.ts), under a steady trade
 * pace for a long time, looking for what grows with time: memory, handles, the store's files,
 * latency, CPU, warnings.
 *
 * Trades keep a timetable of one every PACE_MS (default 600 ms, 100 a minute: Schwab allows 120
 * order writes a minute and a trade causes at most one order): a random symbol and token, 0.05 to
 * 1.49 shares (some cross a whole share, some do not), mostly takes of our order, some clears with
 * us as bob, some takes of another owner's order. Every `--sample-s` seconds it records the
 * service's RSS and open fds (/proc/<pid>), its prom-client default metrics (heap used,
 * external memory, CPU seconds, active handles, event-loop lag) from /metrics, the SQLite file and
 * WAL sizes and the load average. At the end it waits for the ledger to settle, checks the e2e
 * invariants (every onchain log in the ledger once, one simulator order per command, each linked
 * and filled, every symbol |net| < 1), stops the service with SIGTERM (exit 0 expected) and prints
 * a table per 5-minute window, with the latency from a trade's block mined to the order placed at
 * the simulator for each command a trade caused directly, and the warn/error/fatal log lines by
 * message. Exit 1 when an invariant fails or the service did not exit 0.
 *
 * `--out <dir>` keeps samples.jsonl, latency.json, invariants.json and the service log there;
 * `--snapshots 5,40` also has the service write V8 heap snapshots at those minutes
 * (`--heapsnapshot-signal=SIGUSR2`; each pauses it for a second or two and leaves its RSS higher),
 * for `test/bench/heap-diff.ts`.
 *
 * Run: `npm run bench:soak [-- --minutes 45 --mode polling|websocket --out .bench/soak]`.
 */
import { parseArgs } from 'node:util';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeFunctionData, type Hex } from 'viem';
import * as D from '../../src/domain/decimal.ts';
import { logEventId } from '../../src/domain/ids.ts';
import { clearArgs, orderbookAbi, takeArgs } from '../../src/chain/devnet/index.ts';
import { lcg } from '../../src/seeded-random.ts';
import { E2eStack, EQUITY_TOKENS, OUR_OWNER, SYMBOLS, TAKER, fillOf, type ServiceProcess } from '../support/e2e-stack.ts';
import { machine, printTable } from './machine.ts';
import { minedSender } from './mined.ts';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '45' },
    mode: { type: 'string', default: 'polling' },
    pace: { type: 'string', default: '600' },
    'sample-s': { type: 'string', default: '30' },
    seed: { type: 'string', default: '4242' },
    out: { type: 'string' },
    snapshots: { type: 'string', default: '' },
  },
});
const MINUTES = Number(values.minutes);
const MODE = values.mode;
if (MODE !== 'polling' && MODE !== 'websocket') throw new Error(`--mode is polling or websocket, not ${MODE}`);
const PACE_MS = Number(values.pace);
const SAMPLE_MS = Number(values['sample-s']) * 1000;
const WINDOW_S = 300;
const OUT = values.out === undefined ? undefined : resolve(values.out);
const SNAPSHOT_AT_MIN = values.snapshots === '' ? [] : values.snapshots.split(',').map(Number);
if (SNAPSHOT_AT_MIN.length > 0 && OUT === undefined) throw new Error('--snapshots needs --out (the directory the service writes them to)');
if (OUT !== undefined) mkdirSync(OUT, { recursive: true });

/** The prom-client default metrics read from /metrics (unlabelled samples only). */
const METRICS = ['nodejs_heap_size_used_bytes', 'nodejs_heap_size_total_bytes', 'nodejs_external_memory_bytes', 'process_cpu_seconds_total',
  'nodejs_active_handles_total', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_eventloop_lag_max_seconds'] as const;
type MetricName = (typeof METRICS)[number];

interface Sample {
  readonly t: number;
  readonly rssKb: number;
  readonly fds: number;
  readonly dbBytes: number;
  readonly walBytes: number;
  readonly load1: number;
  readonly trades: number;
  readonly metrics: Partial<Record<MetricName, number>>;
}

function parseMetrics(body: string): Partial<Record<MetricName, number>> {
  const found: Partial<Record<MetricName, number>> = {};
  for (const line of body.split('\n')) {
    const [name, value] = line.split(' ');
    if ((METRICS as readonly string[]).includes(name ?? '') && value !== undefined) found[name as MetricName] = Number(value);
  }
  return found;
}

const fileSize = (path: string): number => (existsSync(path) ? statSync(path).size : 0);

async function sample(service: ServiceProcess, pid: number, storeFile: string, t: number, trades: number): Promise<Sample> {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  const fds = readdirSync(`/proc/${pid}/fd`).length;
  const metrics = parseMetrics((await service.fetch('/metrics')).body);
  return { t, rssKb, fds, dbBytes: fileSize(storeFile), walBytes: fileSize(`${storeFile}-wal`), load1: loadavg()[0]!, trades, metrics };
}

const percentile = (sorted: readonly number[], p: number): number | undefined => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
const mb = (bytes: number | undefined, digits = 0): string => (bytes === undefined ? '-' : (bytes / 1e6).toFixed(digits));

interface Position { symbol: string; net: string; pending: unknown; halted: boolean; trades: number }
interface Hedge { commandId: string; status: string }

async function main(): Promise<number> {
  console.log(machine());
  console.log(`bench:soak — ${MODE}, ${MINUTES} min, one trade every ${PACE_MS} ms, a sample every ${SAMPLE_MS / 1000} s (seed ${values.seed})`);
  const random = lcg(Number(values.seed));
  const nodeOptions = OUT === undefined ? {} : { NODE_OPTIONS: `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${OUT}` };
  const stack = await E2eStack.start({
    websocket: MODE === 'websocket',
    logLevel: 'info',
    env: { LEDGER_CHAIN_POLL_INTERVAL_MS: '1000', LEDGER_POLL_INTERVAL_MS: '200', ...nodeOptions },
  });
  const minedAt = new Map<string, number>();
  const samples: Sample[] = [];
  let ours = 0;
  let trades = 0;
  let failed = false;
  try {
    const service = await stack.spawn();
    await service.ready(60_000);
    const pid = service.pid!;
    const sendMined = minedSender(stack.anvil.rpcUrl, stack.deployment.chainId, stack.deployment.orderbook);

    /** Sends a transaction and stamps its logs with the time it was mined (as bench:e2e does). */
    const send = async (data: Hex): Promise<void> => {
      const { hash, receipt, mined } = await sendMined(data);
      for (const log of receipt.logs) minedAt.set(logEventId(stack.deployment.chainId, hash, log.logIndex), mined);
    };
    const trade = async (): Promise<void> => {
      const symbol = SYMBOLS[Math.floor(random() * SYMBOLS.length)]!;
      const tokens = EQUITY_TOKENS[symbol]!;
      const token = tokens[Math.floor(random() * tokens.length)]!;
      const shares = D.div(D.fromBigInt(BigInt(5 + Math.floor(random() * 145))), D.fromBigInt(100n));
      const side = random() < 0.5 ? 'sell' : 'buy';
      const roll = random();
      const mine = fillOf(OUR_OWNER, side, token, symbol, shares);
      if (roll < 0.75) {
        await send(encodeFunctionData({ abi: orderbookAbi, functionName: 'takeOrder', args: takeArgs(stack.deployment, mine) }));
        ours++;
      } else if (roll < 0.9) {
        const alice = { ...mine, owner: TAKER, side: side === 'sell' ? ('buy' as const) : ('sell' as const) };
        await send(encodeFunctionData({ abi: orderbookAbi, functionName: 'clear', args: clearArgs(stack.deployment, { alice, bob: mine }) }));
        ours++;
      } else {
        await send(encodeFunctionData({ abi: orderbookAbi, functionName: 'takeOrder', args: takeArgs(stack.deployment, { ...mine, owner: TAKER }) }));
      }
      trades++;
    };

    const started = Date.now();
    let trading = true;
    const snapshotsDue = [...SNAPSHOT_AT_MIN];
    const take = async (): Promise<void> => {
      const s = await sample(service, pid, stack.storeFile, Math.round((Date.now() - started) / 1000), trades);
      samples.push(s);
      if (OUT !== undefined) appendFileSync(join(OUT, 'samples.jsonl'), `${JSON.stringify(s)}\n`);
      console.log(`  t=${s.t}s RSS ${Math.round(s.rssKb / 1024)} MB, heap used ${mb(s.metrics.nodejs_heap_size_used_bytes, 1)} MB, ` +
        `fds ${s.fds}, WAL ${mb(s.walBytes)} MB, ${s.trades} trades, load ${s.load1.toFixed(2)}`);
      if (snapshotsDue[0] !== undefined && s.t >= snapshotsDue[0] * 60) {
        snapshotsDue.shift();
        process.kill(pid, 'SIGUSR2');
      }
    };
    const sampler = (async () => {
      while (trading) {
        await take().catch((error: unknown) => console.log(`  sample failed: ${(error as Error).message}`));
        await sleep(SAMPLE_MS - ((Date.now() - started) % SAMPLE_MS));
      }
    })();

    const end = started + MINUTES * 60_000;
    for (let i = 0; Date.now() < end && service.alive; i++) {
      const slot = started + i * PACE_MS;
      if (slot > Date.now()) await sleep(slot - Date.now());
      await trade();
    }
    trading = false;
    await sampler;
    if (!service.alive) throw new Error(`the service died:\n${service.logTail}`);

    // Settled: every fill of ours folded, nothing open, every symbol hedged.
    let positions: Position[] = [];
    let hedges: Hedge[] = [];
    const settleBy = Date.now() + 120_000;
    for (;;) {
      [positions, hedges] = await Promise.all([service.get<Position[]>('/positions'), service.get<Hedge[]>('/hedges')]);
      const open = hedges.some((h) => h.status !== 'filled' && h.status !== 'failed') || positions.some((p) => p.pending !== null);
      const unhedged = positions.some((p) => D.gte(D.abs(D.parse(p.net)), D.ONE));
      if ((positions.reduce((n, p) => n + p.trades, 0) >= ours && !open && !unhedged) || Date.now() > settleBy) break;
      await sleep(500);
    }
    await take();

    // The e2e invariants (test/integration/e2e.test.ts).
    const onchain = await stack.onchainLogIds();
    const ids = (await stack.events({ prefixes: ['orderbook-'] })).map((e) => e.id);
    const commands = await stack.commands();
    const orders = stack.sim.control.orders();
    const orderEvents = await stack.events({ prefixes: ['hedgeorder-'] });
    const linked = new Map<string, string[]>();
    for (const e of orderEvents) if (e.type === 'HedgeOrderPlaced') linked.set(e.data.commandId, [...(linked.get(e.data.commandId) ?? []), e.data.brokerOrderId]);
    const byId = new Map(orders.map((o) => [o.orderId, o]));
    const matched = commands.filter((c) => {
      const [orderId, ...more] = linked.get(c.commandId) ?? [];
      const order = orderId === undefined ? undefined : byId.get(orderId);
      return more.length === 0 && order !== undefined && `${order.instruction} ${order.quantity} ${order.symbol} ${order.status}` === `${c.side} ${c.quantity} ${c.symbol} FILLED`;
    });
    const invariants: [string, boolean, string][] = [
      ['every onchain log in the ledger once, in chain order', JSON.stringify(ids) === JSON.stringify(onchain), `${ids.length} recorded, ${new Set(ids).size} distinct, ${onchain.length} onchain`],
      ['one simulator order per hedge command', orders.length === commands.length && stack.sim.control.counters().ordersPlaced === commands.length, `${commands.length} commands, ${orders.length} orders`],
      ['each command linked to one order of its side, quantity and symbol, filled', matched.length === commands.length, `${matched.length} of ${commands.length}`],
      ['every fill of ours folded once', positions.reduce((n, p) => n + p.trades, 0) === ours, `${positions.reduce((n, p) => n + p.trades, 0)} folded, ${ours} sent`],
      ['every symbol |net| < 1, none halted', positions.every((p) => D.lt(D.abs(D.parse(p.net)), D.ONE) && !p.halted), positions.map((p) => `${p.symbol} ${p.net}`).join(', ')],
    ];

    // Latency: mined → order entered at the simulator, for each command a trade's log caused.
    const latencies: { t: number; ms: number }[] = [];
    for (const c of commands) {
      const mined = minedAt.get(c.causationId);
      const [orderId] = linked.get(c.commandId) ?? [];
      const order = orderId === undefined ? undefined : byId.get(orderId);
      if (mined !== undefined && order !== undefined) latencies.push({ t: (mined - started) / 1000, ms: Date.parse(order.enteredTime) - mined });
    }

    const exited = await service.stop('SIGTERM');
    invariants.push(['SIGTERM: the service exits 0', exited.code === 0, `${exited.code ?? exited.signal} in ${exited.ms} ms`]);

    // ---- report ----
    const rows: string[][] = [];
    let previous: Sample | undefined;
    for (let w = 0; w * WINDOW_S < (samples.at(-1)?.t ?? 0); w++) {
      const inWindow = samples.filter((s) => s.t > w * WINDOW_S && s.t <= (w + 1) * WINDOW_S);
      const last = inWindow.at(-1);
      if (last === undefined) continue;
      const heaps = inWindow.map((s) => s.metrics.nodejs_heap_size_used_bytes ?? NaN);
      const lat = latencies.filter((l) => l.t >= w * WINDOW_S && l.t < (w + 1) * WINDOW_S).map((l) => l.ms).sort((a, b) => a - b);
      const cpu = previous === undefined ? undefined : (100 * ((last.metrics.process_cpu_seconds_total ?? 0) - (previous.metrics.process_cpu_seconds_total ?? 0))) / (last.t - previous.t);
      rows.push([
        `${(w * WINDOW_S) / 60}–${((w + 1) * WINDOW_S) / 60} min`, `${Math.round(last.rssKb / 1024)}`, `${mb(Math.min(...heaps), 1)}–${mb(Math.max(...heaps), 1)}`,
        mb(last.metrics.nodejs_external_memory_bytes, 1), `${last.fds}`, `${last.metrics.nodejs_active_handles_total ?? '-'}`, mb(last.walBytes), mb(last.dbBytes, 1),
        cpu === undefined ? '-' : cpu.toFixed(1), `${Math.round(Math.max(...inWindow.map((s) => s.metrics.nodejs_eventloop_lag_max_seconds ?? 0)) * 1000)}`,
        `${lat.length}`, `${percentile(lat, 50) ?? '-'}`, `${percentile(lat, 99) ?? '-'}`, last.load1.toFixed(2),
      ]);
      previous = last;
    }
    console.log('');
    printTable(rows, ['window', 'RSS MB', 'heap used MB (min–max)', 'external MB', 'fds', 'handles', 'WAL MB', 'db MB', 'CPU %', 'max loop lag ms', 'commands', 'p50 ms', 'p99 ms', 'load1']);
    console.log(`\n${trades} trades (${ours} fills of ours), ${commands.length} hedge commands; latency (mined → order placed) of the ${latencies.length} commands a trade caused directly`);

    const counts = new Map<string, number>();
    for (const line of await stack.serviceLogs()) {
      if (line.level < 40) continue;
      const key = `${line.level >= 60 ? 'fatal' : line.level >= 50 ? 'error' : 'warn'} ${line.component ?? '-'}: ${line.msg}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    console.log(`\nwarn/error/fatal log lines: ${counts.size === 0 ? 'none' : ''}`);
    for (const [key, n] of counts) console.log(`  ${n}  ${key}`);
    console.log('\ninvariants:');
    for (const [what, ok, detail] of invariants) console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${what} (${detail})`);
    failed = invariants.some(([, ok]) => !ok);
    if (OUT !== undefined) {
      writeFileSync(join(OUT, 'latency.json'), JSON.stringify(latencies));
      writeFileSync(join(OUT, 'invariants.json'), JSON.stringify(invariants, null, 2));
    }
  } finally {
    if (OUT !== undefined) for (const f of readdirSync(stack.dir)) if (f.endsWith('.log')) copyFileSync(join(stack.dir, f), join(OUT, f));
    await stack.close();
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
