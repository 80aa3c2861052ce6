/**
 * Backfill against a real anvil node: a few thousand logs across many blocks, ingested through
 * an honest RPC, a flaky one, a crash, a restart and a racing second ingester. Every time the
 * stream must hold each log once, in chain order, and fold to the positions the fills imply.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as E from 'fp-ts/lib/Either.js';
import { pino } from 'pino';
import { MethodNotFoundRpcError } from 'viem';
import type { Fill } from '../../src/chain/devnet/index.ts';
import { IngesterService, type IngesterSettings } from '../../src/chain/ingester-service.ts';
import { ChainIdMismatch, ChainRpc, RpcRefused, nodeError } from '../../src/chain/rpc.ts';
import { DeadlineExceeded } from '../../src/chain/retry.ts';
import { decodeEvent, streams } from '../../src/domain/events.ts';
import { openStore, withStore } from '../../src/eventstore/url.ts';
import type { EventStore } from '../../src/eventstore/port.ts';
import { StoreUnavailable } from '../../src/eventstore/errors.ts';
import { foldLedger } from '../../src/services/ledger-query.ts';
import { chainLogIds, clearOf, dyingStore, expectedNet, mineEmpty, partiesOf, randomFills, recordedIds, reportOf, startDevnet, storedLogs, storedNet, type Devnet } from '../support/chain-fixture.ts';
import { mulberry32 } from '../../src/seeded-random.ts';
import { capturedLog, testLog } from '../support/test-log.ts';
import { RpcErrorAnswer, startRpcProxy, type JsonRpcCall, type RpcProxy } from '../support/chain-proxy.ts';
import { runCli } from '../support/cli.ts';
import { until } from '../support/until.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const E18 = 10n ** 18n;

describe('chain backfill', () => {
  let devnet: Devnet;
  let canonical: string[];
  let expected: Record<string, string>;
  const proxies: RpcProxy[] = [];

  beforeAll(async () => {
    devnet = await startDevnet();
    const random = mulberry32(42);
    const fills: Fill[] = [];
    for (let i = 0; i < 30; i++) {
      const batch = randomFills(random, 100);
      await devnet.trader.takeMany(batch);
      fills.push(...batch);
      await mineEmpty(devnet, 1 + Math.floor(random() * 15));
    }
    const clears = [clearOf('tGME', 2n * E18, 'sell'), clearOf('AAPL0x', E18, 'buy'), clearOf('GMEs1', E18 / 2n, 'sell')];
    await devnet.trader.clearMany(clears);
    fills.push(...partiesOf(clears));
    canonical = await chainLogIds(devnet);
    expected = expectedNet(fills);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(proxies.map((p) => p.close()));
    await devnet?.stop();
  });

  const proxy = async (seed: number, faults: RpcProxy['faults']) => {
    const started = await startRpcProxy(devnet.anvil.rpcUrl, seed, faults);
    proxies.push(started);
    return started;
  };

  /** One `catchUp` on the store at `url` (optionally wrapped), closing it afterwards. */
  const backfill = (url: string, settings: IngesterSettings = devnet.settings(), wrap: (s: EventStore) => EventStore = (s) => s) =>
    withStore(url, async (store) => reportOf(await (await IngesterService.start(wrap(store), settings, testLog())).catchUp()));

  /** The stream holds every canonical log once, in chain order, and folds to the fills' positions. */
  const expectComplete = (url: string) =>
    withStore(url, async (store) => {
      expect(recordedIds(await storedLogs(store, devnet.stream))).toEqual(canonical);
      expect(await storedNet(store, devnet.fold)).toEqual(expected);
    });

  it('ingests a few thousand logs across many blocks once, in chain order, token metadata first', async () => {
    expect(canonical.length).toBe(3_006);
    const url = devnet.storeUrl();
    const progress: bigint[] = [];
    const store = await openStore(url);
    const report = await (await IngesterService.start(store, devnet.settings({ maxBlockRange: 25 }), testLog())).catchUp((p) => progress.push(p.done));
    expect(report).toMatchObject({ appended: 3_006, removed: 0, reorg: false });
    expect(progress.length).toBeGreaterThan(5); // many eth_getLogs ranges, reported in order
    expect([...progress].sort((a, b) => (a < b ? -1 : 1))).toEqual(progress);

    const symbols = new Map<string, { symbol: string | null; reason: string | null }>();
    for await (const e of store.readStream(streams.tokens(devnet.deployment.chainId))) {
      const decoded = decodeEvent(e);
      if (decoded._tag === 'Right' && decoded.right.type === 'TokenMetadataRecorded') symbols.set(decoded.right.data.address, decoded.right.data);
    }
    const { tokens } = devnet.deployment;
    expect(symbols.get(tokens.tGME.address.toLowerCase())).toMatchObject({ symbol: 'tGME', reason: null });
    expect(symbols.get(tokens.BrokenToken.address.toLowerCase())).toMatchObject({ symbol: null, reason: 'symbol() reverted: BrokenToken: no symbol' });
    // Every token was recorded before a log needed it: the only unknown token is the one whose symbol() reverts.
    const unknown = new Set<string>();
    await foldLedger(store, devnet.fold, { listener: { onRejection: (r) => r.reason === 'unknown_token' && unknown.add(r.detail.match(/token (0x[0-9a-f]{40})/)![1]!) } });
    expect([...unknown]).toEqual([tokens.BrokenToken.address.toLowerCase()]);
    await store.close();

    await expectComplete(url);
    expect(await backfill(url)).toBeNull(); // up to date: nothing new
  });

  it('reports the confirmed head, the ingested block, the logs appended and the RPC retries to its gauges', async () => {
    const seen = { logs: 0, head: 0, ingested: [] as number[], retried: [] as string[] };
    const gauges = {
      logsIngested: { inc: (n: number) => void (seen.logs += n) },
      chainHead: { set: (n: number) => void (seen.head = n) },
      ingestedBlock: { set: (n: number) => void seen.ingested.push(n) },
      errors: { inc: ({ component, kind }: { component: string; kind: string }) => void seen.retried.push(`${component}:${kind}`) },
    };
    const flaky = await proxy(9, { error500: 0.2 });
    const store = await openStore('sqlite::memory:');
    const service = await IngesterService.start(store, devnet.settings({ rpcUrls: [flaky.url] }), testLog(), undefined, gauges);
    const report = reportOf(await service.catchUp());
    expect(flaky.injected.get('error500')).toBeGreaterThan(0);
    expect(seen.retried.length).toBe(flaky.injected.get('error500'));
    expect(new Set(seen.retried)).toEqual(new Set(['rpc:HttpRequestError']));
    expect(seen.logs).toBe(canonical.length);
    expect(seen.head).toBe(Number(report!.to));
    expect(seen.ingested.at(-1)).toBe(seen.head);
    expect([...seen.ingested].sort((a, b) => a - b)).toEqual(seen.ingested);
    expect(await service.catchUp()).toBeNull();
    expect(seen.ingested.at(-1)).toBe(seen.head);
    // An idle step reads the head once and trusts it for the newest block it holds: one block read, no logs.
    flaky.faults = {};
    const before = new Map(flaky.calls);
    expect(await service.catchUp()).toBeNull();
    const made = (method: string) => (flaky.calls.get(method) ?? 0) - (before.get(method) ?? 0);
    expect([made('eth_blockNumber'), made('eth_getBlockByNumber'), made('eth_getLogs')]).toEqual([1, 1, 0]);
    await store.close();
  });

  it('an RPC that fails, drops, delays and refuses wide ranges (seeded): the same stream', async () => {
    const flaky = await proxy(3, { error500: 0.15, drop: 0.05, delay: 0.2, delayMs: 30, maxLogRange: 40 });
    const url = devnet.storeUrl();
    // Ranges up to the last 40 blocks, which are read by hash.
    await backfill(url, devnet.settings({ rpcUrls: [flaky.url], maxBlockRange: 500, lagHorizon: 40 }));
    await expectComplete(url);
    for (const fault of ['error500', 'drop', 'delay', 'rangeRefused']) expect(flaky.injected.get(fault), fault).toBeGreaterThan(0);
  });

  it('a wide range the provider refuses is fetched in pieces, never more than `concurrency` calls at once', async () => {
    const narrow = await proxy(5, { delay: 1, delayMs: 20, maxLogRange: 25 });
    const url = devnet.storeUrl();
    await backfill(url, devnet.settings({ rpcUrls: [narrow.url], maxBlockRange: 400, concurrency: 3, lagHorizon: 40 }));
    await expectComplete(url);
    expect(narrow.injected.get('rangeRefused')).toBeGreaterThan(0);
    expect(narrow.peakLogCalls()).toBe(3);
  });

  it.each([
    ['Ankr', { code: -32000, message: 'maximum [from, to] blocks distance: 25' }],
    ['the public Base RPC (proxyd)', { code: -32020, message: 'backend response too large' }],
  ] as const)('a wide range refused in the words of %s (%o) is fetched in pieces, not asked again whole up to the deadline', async (_, error) => {
    const blocks = (call: JsonRpcCall) => BigInt(call.params?.[0]?.toBlock ?? 0) - BigInt(call.params?.[0]?.fromBlock ?? 0) + 1n;
    const refusing = await proxy(7, { rewrite: (method, result, call) => (method === 'eth_getLogs' && blocks(call) > 25n ? new RpcErrorAnswer(error) : result) });
    const url = devnet.storeUrl();
    await backfill(url, devnet.settings({ rpcUrls: [refusing.url], maxBlockRange: 400, lagHorizon: 40, deadlineMs: 5_000 }));
    await expectComplete(url);
  });

  it.each([
    ['stops before', 3, 'before'],
    ['crashes right after', 1, 'after'],
    ['crashes right after', 4, 'after'],
  ] as const)('a restart after the ingester %s append %i: each log exactly once', async (_, n, when) => {
    const url = devnet.storeUrl();
    await expect(backfill(url, devnet.settings(), (s) => dyingStore(s, n, when))).rejects.toThrow(/stopped|crashed/);
    const partial = await withStore(url, (store) => storedLogs(store, devnet.stream));
    expect(partial.length).toBeLessThan(canonical.length);
    await backfill(url);
    await expectComplete(url);
  });

  it('two ingesters racing on one store: each log exactly once', async () => {
    const url = devnet.storeUrl();
    const reports = await Promise.all([backfill(url, devnet.settings({ maxBlockRange: 30 })), backfill(url, devnet.settings({ maxBlockRange: 70, random: mulberry32(8) }))]);
    // Both covered the whole range, and between them wrote each log once.
    expect(reports.map((r) => (r?.appended ?? 0) + (r?.alreadyIngested ?? 0))).toEqual([canonical.length, canonical.length]);
    expect(reports.reduce((n, r) => n + (r?.appended ?? 0), 0)).toBe(canonical.length);
    await expectComplete(url);
  });

  it('an ingester another one left behind its index follows the stream from its tail, appending nothing twice', async () => {
    const url = devnet.storeUrl();
    let raced = false;
    // At B's first append another ingester has just stored the first of its logs (so B's is refused), and by the
    // time B learns that, everything else too: B re-reads only 20 logs of the tail, far above its delivery.
    const overtaken = (store: EventStore): EventStore =>
      Object.assign(Object.create(store) as EventStore, {
        append: async (...args: Parameters<EventStore['append']>) => {
          const [stream, events, expected] = args;
          if (raced || stream !== devnet.stream) return store.append(...args);
          raced = true;
          await store.append(stream, events.slice(0, 1), expected);
          try {
            return await store.append(...args);
          } finally {
            await backfill(url);
          }
        },
      });
    expect(await backfill(url, devnet.settings({ recentLogs: 20 }), overtaken)).toBeNull(); // the other one ingested it all
    await expectComplete(url);
  });

  it('fails loudly at the deadline, naming the endpoint but not its key', async () => {
    const down = await proxy(4, { down: true });
    const started = performance.now();
    const failure = IngesterService.start(await openStore('sqlite::memory:'), devnet.settings({ rpcUrls: [down.url], deadlineMs: 700 }), testLog());
    await expect(failure).rejects.toThrow(DeadlineExceeded);
    await expect(failure).rejects.toThrow(/^eth_chainId from http:\/\/127\.0\.0\.1:\d+: still failing after \d+ attempts in [\d.]+ s \(deadline\)/);
    await expect(failure).rejects.not.toThrow(/secret-api-key/);
    expect(performance.now() - started).toBeLessThan(3_000);
    // Nor does the error as a log line prints it, causes and stacks included (as the service's fatal log does).
    const error = await failure.then(() => new Error('started'), (e: Error) => e);
    expect(JSON.stringify(pino.stdSerializers.err(error))).not.toContain('secret-api-key');
  });

  it('a refusal keeps the node error for classifying it, but its log line never shows the key', async () => {
    const keyed = await proxy(6, {});
    const rpc = await ChainRpc.connect({ urls: [keyed.url], chainId: devnet.deployment.chainId, deadlineMs: 1_000, log: testLog() });
    const refusal = await rpc.request('eth_noSuchMethod', [], () => E.right(null)).catch((e: Error) => e);
    expect(refusal).toBeInstanceOf(RpcRefused);
    expect(nodeError(refusal)).toBeInstanceOf(MethodNotFoundRpcError);
    expect(JSON.stringify(pino.stdSerializers.err(refusal as Error))).not.toContain('secret-api-key');
  });

  it('a key refused with HTTP 401 and a JSON-RPC error body (Alchemy) is a refusal at once, not retried up to the deadline', async () => {
    const unauthorized = await proxy(8, { rewrite: () => new RpcErrorAnswer({ code: -32600, message: 'Must be authenticated!' }, 401) });
    const started = performance.now();
    const failure = IngesterService.start(await openStore('sqlite::memory:'), devnet.settings({ rpcUrls: [unauthorized.url], deadlineMs: 10_000 }), testLog());
    await expect(failure).rejects.toThrow(RpcRefused);
    await expect(failure).rejects.toThrow(/^eth_chainId from http:\/\/127\.0\.0\.1:\d+: .*Must be authenticated!/s);
    expect(performance.now() - started).toBeLessThan(5_000); // a retry runs to the 10 s deadline
  });

  it('a malformed log from the RPC stops ingestion with the field at fault; it is never skipped', async () => {
    const corrupt = (method: string, result: unknown) =>
      method === 'eth_getLogs' && Array.isArray(result) && result.length > 4 ? result.map((l, i) => (i === 4 ? { ...l, blockHash: '0x1234' } : l)) : result;
    const bad = await proxy(5, { rewrite: corrupt });
    const url = devnet.storeUrl();
    await expect(backfill(url, devnet.settings({ rpcUrls: [bad.url], deadlineMs: 800 }))).rejects.toThrow(/eth_getLogs \d+\.\.\d+ .*still failing .* malformed answer: log 4: blockHash: expected 32 bytes of hex, got "0x1234"/);
    const stored = await withStore(url, (store) => storedLogs(store, devnet.stream));
    expect(stored.length).toBeLessThan(canonical.length);
    expect(recordedIds(stored)).toEqual(canonical.slice(0, stored.length));
  });

  /**
   * Settings that ingest only the chain's last block (the three clears): a pass takes a few calls. A pass that
   * must get past a few faulted answers has seconds for their backoffs on a loaded machine; one that must stop
   * at a lasting fault sets `failFast`.
   */
  const lastBlock = async (overrides: Partial<IngesterSettings>) =>
    devnet.settings({ deploymentBlock: BigInt(await devnet.anvil.request<string>('eth_blockNumber', [])), deadlineMs: 5_000, ...overrides });
  const failFast = { deadlineMs: 800 } as const;

  /** The first `times` answers of `method` rewritten by `f`. */
  const firstAnswers = (method: string, times: number, f: (result: unknown) => unknown) => {
    let left = times;
    return (m: string, result: unknown) => (m === method && left-- > 0 ? f(result) : result);
  };

  it('a node without the block at the head it reported is asked again, head first; it never makes a pass report the ledger up to date', async () => {
    const lagging = await proxy(8, { rewrite: firstAnswers('eth_getBlockByNumber', 2, () => null) });
    const report = await backfill('sqlite::memory:', await lastBlock({ rpcUrls: [lagging.url] }));
    expect(report).toMatchObject({ appended: 6, reorg: false });

    lagging.faults = { rewrite: firstAnswers('eth_getBlockByNumber', Infinity, () => null) };
    await expect(backfill('sqlite::memory:', await lastBlock({ rpcUrls: [lagging.url], ...failFast }))).rejects.toThrow(
      /^the confirmed head from http:\/\/127\.0\.0\.1:\d+: still failing after \d+ attempts .*\(deadline\): eth_getBlockByNumber has no block (\d+), though eth_blockNumber answered \1$/,
    );
  });

  it('the confirmed head gives up at the deadline, even when the read it asks again is slow', async () => {
    let blocks = 0;
    const slow = await proxy(15, {
      rewrite: firstAnswers('eth_getBlockByNumber', Infinity, () => null),
      // The first read's block answer comes late but within the deadline; the next one never in time.
      answered: async (call) => void (call.method === 'eth_getBlockByNumber' && (await sleep(++blocks === 1 ? 1_500 : 3_000))),
    });
    const settings = await lastBlock({ rpcUrls: [slow.url], deadlineMs: 2_000, random: () => 0 });
    const started = performance.now();
    // The read cut short at the deadline names the disagreement before it.
    await expect(backfill('sqlite::memory:', settings)).rejects.toThrow(
      /^the confirmed head from http:\/\/127\.0\.0\.1:\d+: still failing after \d+ attempts .*eth_getBlockByNumber has no block (\d+), though eth_blockNumber answered \1\)?$/,
    );
    // Not a deadline per call of the read asked again just before the deadline, running past it.
    expect(performance.now() - started).toBeLessThan(3_000);
  });

  it('an eth_getLogs answer holding one log at two blocks mixes two forks: asked again, its first place never stored', async () => {
    let mixed = 0;
    // The answer's last log again, as a node mid-reorg shows it: at the range's first block, a block of the fork the chain left.
    const twice = (method: string, result: unknown, call: JsonRpcCall): unknown => {
      if (method !== 'eth_getLogs') return result;
      const last = (result as { blockNumber: string }[]).at(-1);
      const from = call.params?.[0]?.fromBlock;
      if (last === undefined || from === undefined || BigInt(from) >= BigInt(last.blockNumber) || mixed++ > 0) return result;
      return [{ ...last, blockNumber: from, blockHash: `0x${'ab'.repeat(32)}` }, ...(result as unknown[])];
    };
    const settings = await lastBlock({ rpcUrls: [(await proxy(16, { rewrite: twice })).url], lagHorizon: 0, concurrency: 1 });
    const url = devnet.storeUrl();
    const from = settings.deploymentBlock - 4n;
    await backfill(url, { ...settings, deploymentBlock: from });
    expect(mixed).toBeGreaterThan(0);
    const onChain = await devnet.anvil.request<{ transactionHash: string; logIndex: string; blockNumber: string }[]>('eth_getLogs', [
      { address: devnet.deployment.orderbook, fromBlock: `0x${from.toString(16)}`, toBlock: `0x${settings.deploymentBlock.toString(16)}` },
    ]);
    const stored = await withStore(url, (store) => storedLogs(store, devnet.stream));
    expect(stored.map((e) => [e.transactionHash, e.logIndex, e.block])).toEqual(onChain.map((l) => [l.transactionHash, BigInt(l.logIndex), BigInt(l.blockNumber)]));
  });

  it('a block answer of another number than asked, or a head past 2^53, is malformed: retried, then fatal, never scanned to', async () => {
    const plusOne = (block: unknown) => block && { ...block, number: `0x${(BigInt((block as { number: string }).number) + 1n).toString(16)}` };
    const shifted = await proxy(10, { rewrite: firstAnswers('eth_getBlockByNumber', 2, plusOne) });
    const settings = await lastBlock({ rpcUrls: [shifted.url] });
    expect(await backfill('sqlite::memory:', settings)).toMatchObject({ appended: 6, to: settings.deploymentBlock });

    shifted.faults = { rewrite: firstAnswers('eth_getBlockByNumber', Infinity, plusOne) };
    await expect(backfill('sqlite::memory:', { ...settings, ...failFast })).rejects.toThrow(/^block (\d+) from http:\/\/127\.0\.0\.1:\d+: still failing .*malformed answer: asked for block \1, got block \d+\)?$/);
    shifted.faults = { rewrite: firstAnswers('eth_blockNumber', Infinity, () => '0x20000000000000') };
    await expect(backfill('sqlite::memory:', { ...settings, ...failFast })).rejects.toThrow(/^eth_blockNumber from .*malformed answer: expected a hex quantity of at most 2\^53 - 1 \(0x1fffffffffffff\), got "0x20000000000000"\)?$/);
  });

  it('a node whose block hashes change at every call stops a pass (ChainUnsettled), naming the block; the service tries again at its next poll', async () => {
    let made = 0;
    const rehash = (method: string, block: unknown) => (method === 'eth_getBlockByNumber' && block ? { ...block, hash: `0x${(++made).toString(16).padStart(64, '0')}` } : block);
    const flapping = await proxy(11, { rewrite: rehash });
    const settings = await lastBlock({ rpcUrls: [flapping.url] });
    await expect(backfill('sqlite::memory:', settings)).rejects.toThrow(
      /^the chain reorganised during each of 3 steps towards block (\d+), the last time: eth_getBlockByNumber has block \1 as 0x0+[0-9a-f]+, not 0x0+[0-9a-f]+; 0 logs appended, the ledger is not up to the confirmed head$/,
    );

    const store = await openStore('sqlite::memory:');
    const service = await IngesterService.start(store, settings, testLog());
    const abort = new AbortController();
    const running = service.run(abort.signal);
    await until(() => made > 20, 'several interrupted steps');
    flapping.faults = {};
    await until(async () => (await storedLogs(store, devnet.stream)).length === 6, 'the last block ingested once the node settles');
    abort.abort();
    await running;
    await store.close();
  });

  it('an eth_getLogs answer of null is named null, not "object"', async () => {
    const empty = await proxy(12, { rewrite: firstAnswers('eth_getLogs', Infinity, () => null) });
    await expect(backfill('sqlite::memory:', await lastBlock({ rpcUrls: [empty.url], ...failFast }))).rejects.toThrow(/^eth_getLogs \d+\.\.\d+ by hash from .*malformed answer: expected an array of logs, got null\)?$/);
  });

  it('an endpoint answering malformed logs, or no block at its head, has the calls move on to the next endpoint, which answers right', async () => {
    const broken = await proxy(13, { rewrite: firstAnswers('eth_getLogs', Infinity, () => null) });
    expect(await backfill('sqlite::memory:', await lastBlock({ rpcUrls: [broken.url, devnet.anvil.rpcUrl] }))).toMatchObject({ appended: 6 });
    expect(broken.calls.get('eth_getLogs')).toBe(1);

    const lagging = await proxy(14, { rewrite: firstAnswers('eth_getBlockByNumber', Infinity, () => null) });
    expect(await backfill('sqlite::memory:', await lastBlock({ rpcUrls: [lagging.url, devnet.anvil.rpcUrl] }))).toMatchObject({ appended: 6 });
    expect(lagging.calls.get('eth_getBlockByNumber')).toBe(1);
  });

  it('says why a young chain has nothing to ingest yet, instead of "already at the confirmed head"', async () => {
    const latest = BigInt(await devnet.anvil.request<string>('eth_blockNumber', []));
    const outcome = (overrides: Partial<IngesterSettings>) =>
      withStore('sqlite::memory:', async (store) => (await IngesterService.start(store, devnet.settings(overrides), testLog())).catchUp());
    expect(await outcome({ confirmations: 10_000 })).toEqual({ nothingYet: 'belowDepth', latest, confirmations: 10_000 });
    expect(await outcome({ deploymentBlock: 99_999_999n })).toEqual({ nothingYet: 'belowDeployment', head: latest, deploymentBlock: 99_999_999n });

    const env = { LEDGER_CHAIN_ID: String(devnet.deployment.chainId), LEDGER_ORDERBOOK: devnet.deployment.orderbook, LEDGER_RPC_URL: devnet.anvil.rpcUrl, LEDGER_CONFIRMATIONS: '0' };
    const shallow = await runCli(['ingest', '--store', 'sqlite::memory:'], { env: { ...env, LEDGER_CONFIRMATIONS: '10000' } });
    expect(shallow).toMatchObject({ code: 0, stdout: `ingest: the chain's head ${latest} is below the confirmation depth 10000; nothing to ingest yet\n` });
    const early = await runCli(['ingest', '--json', '--store', 'sqlite::memory:'], { env: { ...env, LEDGER_DEPLOYMENT_BLOCK: '99999999' } });
    expect(early.code).toBe(0);
    expect(JSON.parse(early.stdout)).toMatchObject({ upToDate: false, nothingYet: 'belowDeployment', reason: `the confirmed head ${latest} is below the deployment block 99999999; nothing to ingest yet` });
  });

  it('the service logs why there is nothing to ingest yet once, not at every poll', async () => {
    const counting = await proxy(7, {});
    const { lines, log } = capturedLog('info');
    const store = await openStore('sqlite::memory:');
    const service = await IngesterService.start(store, devnet.settings({ rpcUrls: [counting.url], deploymentBlock: 99_999_999n, pollIntervalMs: 10 }), log);
    const abort = new AbortController();
    const running = service.run(abort.signal);
    await until(() => (counting.calls.get('eth_blockNumber') ?? 0) >= 4, 'four steps');
    abort.abort();
    await running;
    service.close();
    await store.close();
    expect(lines.filter((l) => l.msg.includes('nothing to ingest yet')).map((l) => l.msg)).toEqual([expect.stringMatching(/^the confirmed head \d+ is below the deployment block 99999999; nothing to ingest yet$/)]);
  });

  it('leaves a store outage to the supervisor, which retries it; only a failure for good is logged as "ingestion stopped"', async () => {
    const inner = await openStore('sqlite::memory:');
    const locked = Object.assign(Object.create(inner) as EventStore, { append: () => Promise.reject(new StoreUnavailable('database is locked')) });
    const outage = capturedLog('info');
    const service = await IngesterService.start(locked, devnet.settings(), outage.log);
    await expect(service.run(new AbortController().signal)).rejects.toThrow(StoreUnavailable);
    service.close();
    expect(outage.lines.filter((l) => l.msg === 'ingestion stopped')).toEqual([]);

    const failing = await proxy(8, {});
    const down = capturedLog('info');
    const stopped = await IngesterService.start(inner, devnet.settings({ rpcUrls: [failing.url], deadlineMs: 1_000 }), down.log);
    failing.faults = { down: true };
    await expect(stopped.run(new AbortController().signal)).rejects.toThrow(DeadlineExceeded);
    stopped.close();
    await inner.close();
    expect(down.lines.filter((l) => l.msg === 'ingestion stopped').map((l) => l.level)).toEqual([50]);
  });

  it('refuses a node that serves another chain', async () => {
    await expect(IngesterService.start(await openStore('sqlite::memory:'), devnet.settings({ chainId: 8453 }), testLog())).rejects.toThrow(ChainIdMismatch);
    await expect(IngesterService.start(await openStore('sqlite::memory:'), devnet.settings({ chainId: 8453 }), testLog())).rejects.toThrow(
      /serves chain 31337, but the configured chainId is 8453/,
    );
  });
});
