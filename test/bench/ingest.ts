/**
 * Backfill benchmark: 10k orderbook logs on a local anvil, ingested into a fresh SQLite file,
 * against the raw eth_getLogs fetch of the same block range (one call, JSON parsed, nothing
 * else). More series tell where the time goes: a floor (the range fetched in pieces, each raw log
 * stringified and inserted into the store's table, no checks, no ids: less than any ingester
 * that keeps the logs must do), the scan alone (io-ts decoding, no store), ingestion into an
 * in-memory store (no disk), and ingestion by adaptive ranges: a chain this short lies within the
 * newest 256 blocks, which the scanner reads one by one by hash (docs/chain-ingestion.md), while
 * a backfill deeper than that reads by range. Node's and anvil's CPU time is shown per series:
 * both share this machine's cores. Run: `npm run bench:ingest`. Rounds alternate the series so a
 * busy neighbour skews them alike; medians are printed. Target: ingestion takes at most 1.5x the
 * raw fetch.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createTrader, deployDevnet, startAnvil } from '../../src/chain/devnet/index.ts';
import { IngesterService, type IngesterSettings } from '../../src/chain/ingester-service.ts';
import { LogScanner } from '../../src/chain/log-scanner.ts';
import { ChainRpc } from '../../src/chain/rpc.ts';
import { openDatabase } from '../../src/eventstore/sqlite-connection.ts';
import { openStore } from '../../src/eventstore/url.ts';
import { randomFills, reportOf } from '../support/chain-fixture.ts';
import { mulberry32 } from '../../src/seeded-random.ts';
import { testLog } from '../support/test-log.ts';

const LOGS = 10_000;
const PER_TX = 500;
const ROUNDS = 5;
const TARGET_RATIO = 1.5;

const FLOOR_PIECES = 4;

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** User + system CPU milliseconds of a process so far (Linux clock ticks are 10 ms). */
const cpuMsOf = (pid: number): number => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
};
const ownCpuMs = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

interface Sample {
  readonly ms: number;
  readonly nodeCpuMs: number;
  readonly anvilCpuMs: number;
}

const rate = (logs: number, ms: number): string => `${Math.round(logs / (ms / 1000)).toLocaleString('en-US')} logs/s`;

async function main(): Promise<void> {
  const anvil = await startAnvil();
  const dir = mkdtempSync(join(os.tmpdir(), 'bench-ingest-'));
  try {
    const deployment = await deployDevnet(anvil.rpcUrl);
    const trader = createTrader(anvil.rpcUrl, deployment);
    const random = mulberry32(1);
    process.stdout.write(`sending ${LOGS} fills in ${LOGS / PER_TX} transactions…\n`);
    for (let sent = 0; sent < LOGS; sent += PER_TX) await trader.takeMany(randomFills(random, PER_TX));
    const head = await anvil.request<string>('eth_blockNumber');
    const filter = { address: deployment.orderbook, fromBlock: `0x${deployment.deploymentBlock.toString(16)}`, toBlock: head };

    const getLogs = async (range = filter): Promise<unknown[]> => {
      const response = await fetch(anvil.rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_getLogs', params: [range] }) });
      return ((await response.json()) as { result: unknown[] }).result;
    };
    const rawFetch = async (): Promise<number> => (await getLogs()).length;
    const settings: IngesterSettings = {
      chainId: deployment.chainId,
      orderbook: deployment.orderbook.toLowerCase(),
      rpcUrls: [anvil.rpcUrl],
      deploymentBlock: deployment.deploymentBlock,
      confirmations: 0,
      pollIntervalMs: 1_000,
      concurrency: 4,
      maxBlockRange: 10_000,
      deadlineMs: 120_000,
    };
    let round = 0;
    const ingestInto = (url: () => string, overrides: Partial<IngesterSettings> = {}) => async (): Promise<number> => {
      const store = await openStore(url());
      try {
        return reportOf(await (await IngesterService.start(store, { ...settings, ...overrides }, testLog())).catchUp())?.appended ?? 0;
      } finally {
        await store.close();
      }
    };
    const timed = async (run: () => Promise<number>): Promise<Sample> => {
      const [cpu, anvilCpu, started] = [ownCpuMs(), cpuMsOf(anvil.pid), performance.now()];
      const logs = await run();
      if (logs !== LOGS) throw new Error(`expected ${LOGS} logs, got ${logs}`);
      return { ms: performance.now() - started, nodeCpuMs: ownCpuMs() - cpu, anvilCpuMs: cpuMsOf(anvil.pid) - anvilCpu };
    };

    // The floor: pieces asked for at once and stored in order as they arrive, one transaction each.
    const first = Number(deployment.deploymentBlock);
    const span = Math.ceil((Number(head) - first + 1) / FLOOR_PIECES);
    const pieces = Array.from({ length: FLOOR_PIECES }, (_, i) => ({ ...filter, fromBlock: `0x${(first + i * span).toString(16)}`, toBlock: `0x${Math.min(Number(head), first + (i + 1) * span - 1).toString(16)}` }));
    const storeFloor = async (): Promise<number> => {
      const db = openDatabase(join(dir, `floor-${++round}.db`), { label: 'floor', busyTimeoutMs: 5_000 });
      try {
        const insert = db.prepare('INSERT INTO events (event_id, stream, revision, type, data) VALUES (?, ?, ?, ?, ?)');
        let revision = 0;
        for (const answer of pieces.map((piece) => getLogs(piece))) {
          const logs = (await answer) as { transactionHash: string; logIndex: string }[];
          db.transaction(() => logs.forEach((log) => insert.run(`${log.transactionHash}:${log.logIndex}`, 'orderbook', revision++, 'OrderbookLogRecorded', JSON.stringify(log)))).immediate();
        }
        return revision;
      } finally {
        db.close();
      }
    };

    const fileUrl = () => `sqlite:${join(dir, `ledger-${++round}.db`)}`;
    const ingestFile = ingestInto(fileUrl);
    const ingestByRange = ingestInto(fileUrl, { lagHorizon: 0 });
    const ingestMemory = ingestInto(() => 'sqlite::memory:');
    const rpc = await ChainRpc.connect({ urls: [anvil.rpcUrl], chainId: deployment.chainId, deadlineMs: 120_000, log: testLog() });
    const scanOnly = async (): Promise<number> => {
      const scanner = new LogScanner(rpc, { chainId: deployment.chainId, orderbook: settings.orderbook, concurrency: settings.concurrency, maxBlockRange: settings.maxBlockRange, log: testLog() });
      let logs = 0;
      for await (const chunk of scanner.scan({ from: deployment.deploymentBlock, to: BigInt(head) })) logs += chunk.logs.length;
      return logs;
    };

    await timed(rawFetch); // warm-up: the node's caches, the JIT
    await timed(ingestFile);
    const runs = { fetch: rawFetch, floor: storeFloor, scan: scanOnly, file: ingestFile, memory: ingestMemory, ranges: ingestByRange };
    const series = Object.fromEntries(Object.keys(runs).map((k) => [k, [] as Sample[]])) as Record<keyof typeof runs, Sample[]>;
    for (let i = 0; i < ROUNDS; i++) for (const [name, run] of Object.entries(runs)) series[name as keyof typeof runs].push(await timed(run));
    const med = (name: keyof typeof runs, of: keyof Sample = 'ms') => median(series[name].map((s) => s[of]));
    const fetchMs = med('fetch');
    const ingestMs = med('file');
    const ratio = ingestMs / fetchMs;
    const line = (name: keyof typeof runs, label: string, note: string) => {
      const ms = med(name);
      const cpu = `cpu node ${med(name, 'nodeCpuMs').toFixed(0)} ms, anvil ${med(name, 'anvilCpuMs').toFixed(0)} ms`;
      return `${label.padEnd(24)}${ms.toFixed(0).padStart(6)} ms  ${rate(LOGS, ms).padStart(15)}  ${(ms / fetchMs).toFixed(2)}x  ${cpu.padEnd(30)}  ${note}`;
    };
    const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
    process.stdout.write(
      [
        `machine: ${os.availableParallelism()} cores (nproc), ${cpu}, node ${process.version}`,
        `${LOGS} logs in blocks ${filter.fromBlock}..${head}, median of ${ROUNDS} rounds`,
        line('fetch', 'raw eth_getLogs fetch', 'one call, JSON parsed'),
        line('floor', 'floor: fetch + store', `${FLOOR_PIECES} pieces at once, raw logs inserted as they arrive; no checks, no ids`),
        line('scan', 'scan only', `each block by hash (all are within the newest 256), ${settings.concurrency} in flight, io-ts decoded`),
        line('file', 'full ingestion', 'scan, ids, tokens, appends to a SQLite file, close'),
        line('memory', '  into sqlite::memory:', 'the same without the disk'),
        line('ranges', '  by adaptive ranges', 'the same as a backfill older than 256 blocks reads'),
        `ratio ingestion/fetch: ${ratio.toFixed(2)}x (target <= ${TARGET_RATIO}x: ${ratio <= TARGET_RATIO ? 'met' : 'MISSED'})`,
      ].join('\n') + '\n',
    );
  } finally {
    await anvil.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
