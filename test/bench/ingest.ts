/**
 * Backfill benchmark: 10k orderbook logs on a local anvil, ingested into a fresh SQLite file,
 * against the raw eth_getLogs fetch of the same block range (one call, JSON parsed, nothing
 * else). Two more series tell where the time goes: the scan alone (adaptive ranges, io-ts
 * decoding, no store) and ingestion into an in-memory store (no disk). Run: `npm run
 * bench:ingest`. Rounds alternate the series so a busy neighbour skews them alike; medians are
 * printed. Target: ingestion takes at most 1.5x the raw fetch.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createTrader, deployDevnet, startAnvil } from '../../src/chain/devnet/index.ts';
import { IngesterService, type IngesterSettings } from '../../src/chain/ingester-service.ts';
import { LogScanner } from '../../src/chain/log-scanner.ts';
import { ChainRpc } from '../../src/chain/rpc.ts';
import { openStore } from '../../src/eventstore/url.ts';
import { randomFills } from '../support/chain-fixture.ts';
import { mulberry32 } from '../../src/seeded-random.ts';
import { testLog } from '../support/test-log.ts';

const LOGS = 10_000;
const PER_TX = 500;
const ROUNDS = 5;
const TARGET_RATIO = 1.5;

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
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

    const rawFetch = async (): Promise<number> => {
      const response = await fetch(anvil.rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_getLogs', params: [filter] }) });
      const { result } = (await response.json()) as { result: unknown[] };
      return result.length;
    };
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
    const ingestInto = (url: () => string) => async (): Promise<number> => {
      const store = await openStore(url());
      try {
        return (await (await IngesterService.start(store, settings, testLog())).catchUp())?.appended ?? 0;
      } finally {
        await store.close();
      }
    };
    const timed = async (run: () => Promise<number>) => {
      const started = performance.now();
      const logs = await run();
      if (logs !== LOGS) throw new Error(`expected ${LOGS} logs, got ${logs}`);
      return performance.now() - started;
    };

    const ingestFile = ingestInto(() => `sqlite:${join(dir, `ledger-${++round}.db`)}`);
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
    const series = { fetch: [] as number[], scan: [] as number[], file: [] as number[], memory: [] as number[] };
    for (let i = 0; i < ROUNDS; i++) {
      series.fetch.push(await timed(rawFetch));
      series.scan.push(await timed(scanOnly));
      series.file.push(await timed(ingestFile));
      series.memory.push(await timed(ingestMemory));
    }
    const [fetchMs, scanMs, ingestMs, memoryMs] = [median(series.fetch), median(series.scan), median(series.file), median(series.memory)];
    const ratio = ingestMs / fetchMs;
    const line = (label: string, ms: number, note: string) => `${label.padEnd(24)}${ms.toFixed(0).padStart(6)} ms  ${rate(LOGS, ms).padStart(15)}  ${note}`;
    const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
    process.stdout.write(
      [
        `machine: ${os.availableParallelism()} cores (nproc), ${cpu}, node ${process.version}`,
        `${LOGS} logs in blocks ${filter.fromBlock}..${head}, median of ${ROUNDS} rounds`,
        line('raw eth_getLogs fetch', fetchMs, 'one call, JSON parsed'),
        line('scan only', scanMs, `adaptive ranges, ${settings.concurrency} in flight, io-ts decoded (${(scanMs / fetchMs).toFixed(2)}x)`),
        line('full ingestion', ingestMs, 'scan, ids, tokens, appends to a SQLite file'),
        line('  into sqlite::memory:', memoryMs, `the same without the disk (${(memoryMs / fetchMs).toFixed(2)}x)`),
        `ratio ingestion/fetch: ${ratio.toFixed(2)}x (target <= ${TARGET_RATIO}x: ${ratio <= TARGET_RATIO ? 'met' : 'MISSED'})`,
      ].join('\n') + '\n',
    );
  } finally {
    await anvil.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
