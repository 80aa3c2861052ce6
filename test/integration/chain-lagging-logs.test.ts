/**
 * The newest blocks' logs, read by block hash, against a real anvil: a backend behind a load
 * balancer that lags the node reporting the head answers a range past its own head with only the
 * logs it has (often none) and no error, as geth does. Read by hash, such a block is refused
 * ("unknown block") and asked for again, never taken for empty. Blocks whose logs bloom rules
 * out our logs cost no eth_getLogs call; blocks deeper than the horizon are still read by range.
 * The blooms are checked bit for bit against the node's, on blocks with random logs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as E from 'fp-ts/lib/Either.js';
import { bytesToHex, encodeFunctionData, hexToBytes, keccak256, stringToHex, type Hex } from 'viem';
import { orderbookAbi, takeArgs } from '../../src/chain/devnet/index.ts';
import { IngesterService, type IngesterSettings } from '../../src/chain/ingester-service.ts';
import { bloomBits, bloomOf, hasBits, LogBloomFilter } from '../../src/chain/log-bloom.ts';
import { LAG_HORIZON } from '../../src/chain/log-scanner.ts';
import { ChainRpc, lagsBehind } from '../../src/chain/rpc.ts';
import { DeadlineExceeded } from '../../src/chain/retry.ts';
import { ORDERBOOK_TOPICS } from '../../src/domain/orderbook-abi.ts';
import { withStore } from '../../src/eventstore/url.ts';
import { OURS, chainLogIds, mineEmpty, recordedIds, reportOf, startDevnet, storedLogs, type Devnet } from '../support/chain-fixture.ts';
import { RpcErrorAnswer, startRpcProxy, type JsonRpcCall, type RpcProxy } from '../support/chain-proxy.ts';
import { capturedLog, testLog } from '../support/test-log.ts';

const E17 = 10n ** 17n;
const OUR_TOPICS = ORDERBOOK_TOPICS as readonly Hex[];

interface RawLog {
  readonly address: Hex;
  readonly topics: readonly Hex[];
  readonly blockNumber: Hex;
}

/** Init code of a contract whose constructor emits one log with these topics (0 to 4) and no data, then deploys nothing. */
const emitterInitCode = (topics: readonly Hex[]): Hex => {
  const pushes = [...topics].reverse().map((topic) => `7f${topic.slice(2)}`).join('');
  return `0x${pushes}60006000${(0xa0 + topics.length).toString(16)}00`;
};

/**
 * A proxy whose eth_getLogs backend lags `behind` blocks behind the head the proxy last reported
 * (eth_blockNumber): a range answers only the logs at or below its head, as geth does; a block
 * hash above it (or one it never saw in a header) is refused "unknown block", as anvil and geth
 * refuse one. After `endsAfter` refusals it has caught up. Heads and blocks come up to date.
 */
interface LaggingBackend {
  readonly proxy: RpcProxy;
  behind: number;
  endsAfter: number;
  refusals: number;
  /** The eth_getLogs calls seen, in order. */
  readonly logCalls: JsonRpcCall[];
}

async function laggingBackend(devnet: Devnet): Promise<LaggingBackend> {
  let latest = 0n;
  const numbers = new Map<string, bigint>();
  const backend: LaggingBackend = { proxy: await startRpcProxy(devnet.anvil.rpcUrl, 1), behind: 0, endsAfter: Infinity, refusals: 0, logCalls: [] };
  backend.proxy.faults = {
    rewrite: (method, result, call) => {
      if (method === 'eth_blockNumber') latest = BigInt(result as string);
      if (method === 'eth_getBlockByNumber' && result !== null) numbers.set((result as { hash: string }).hash, BigInt((result as { number: string }).number));
      if (method !== 'eth_getLogs') return result;
      backend.logCalls.push(call);
      const top = latest - BigInt(backend.behind);
      const hash = call.params?.[0]?.blockHash;
      if (hash === undefined) return (result as RawLog[]).filter((log) => BigInt(log.blockNumber) <= top);
      const at = numbers.get(hash);
      if (backend.behind === 0 || (at !== undefined && at <= top)) return result;
      if (++backend.refusals >= backend.endsAfter) backend.behind = 0;
      return new RpcErrorAnswer({ code: -32000, message: 'unknown block' });
    },
  };
  return backend;
}

describe('the newest blocks, read by block hash', () => {
  let devnet: Devnet;
  let sender: Hex;
  const proxies: RpcProxy[] = [];

  beforeAll(async () => {
    devnet = await startDevnet();
    sender = (await devnet.anvil.request<Hex[]>('eth_accounts'))[1]!;
  });

  afterAll(async () => {
    await Promise.all(proxies.map((p) => p.close()));
    await devnet?.stop();
  });

  const lagging = async () => {
    const backend = await laggingBackend(devnet);
    proxies.push(backend.proxy);
    return backend;
  };

  const take = (tenths: bigint) => devnet.trader.take({ owner: OURS, side: 'sell', equityToken: 'tGME', shares: tenths * E17, usdc: tenths * 1_000_000n });
  const head = async () => BigInt(await devnet.anvil.request<Hex>('eth_blockNumber'));
  const send = (tx: { to?: Hex; data: Hex }) => devnet.anvil.request<Hex>('eth_sendTransaction', [{ from: sender, ...tx }]);
  /** A block holding one log of another address with these topics (ours among them, maybe). */
  const foreignLog = (topics: readonly Hex[]) => send({ data: emitterInitCode(topics) });

  const pass = (url: string, settings: IngesterSettings) => withStore(url, async (store) => reportOf(await (await IngesterService.start(store, settings, testLog())).catchUp()));
  const storedIds = (url: string) => withStore(url, async (store) => recordedIds(await storedLogs(store, devnet.stream)));

  it('a block\'s bloom is the one its logs make, bit for bit, and never rules out a log of ours (random blocks)', async () => {
    const filter = new LogBloomFilter(devnet.deployment.orderbook.toLowerCase() as Hex, OUR_TOPICS);
    const topic = fc.oneof(fc.constantFrom(...OUR_TOPICS), fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => bytesToHex(b)));
    const tx = fc.oneof(fc.record({ ours: fc.integer({ min: 1, max: 9 }) }), fc.record({ topics: fc.array(topic, { maxLength: 4 }) }));
    const seen = { ours: 0, othersOnly: 0 };
    await devnet.anvil.request('evm_setAutomine', [false]);
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(tx, { maxLength: 4 }), async (txs) => {
          for (const t of txs) {
            if ('ours' in t) {
              const fill = { owner: OURS, side: 'buy', equityToken: 'tAAPL', shares: BigInt(t.ours) * E17, usdc: 1_000_000n } as const;
              await send({ to: devnet.deployment.orderbook, data: encodeFunctionData({ abi: orderbookAbi, functionName: 'takeOrder', args: takeArgs(devnet.deployment, fill) }) });
            } else await foreignLog(t.topics);
          }
          await devnet.anvil.request('evm_mine', []);
          const block = await devnet.anvil.request<{ hash: Hex; logsBloom: Hex }>('eth_getBlockByNumber', ['latest', false]);
          const logs = await devnet.anvil.request<RawLog[]>('eth_getLogs', [{ blockHash: block.hash }]);
          expect(logs.length).toBe(txs.length);
          expect(bytesToHex(bloomOf(logs.flatMap((l) => [l.address, ...l.topics])))).toBe(block.logsBloom);
          for (const item of logs.flatMap((l) => [l.address, ...l.topics])) expect(hasBits(hexToBytes(block.logsBloom), bloomBits(item))).toBe(true);
          const ours = logs.some((l) => l.address.toLowerCase() === devnet.deployment.orderbook.toLowerCase() && OUR_TOPICS.includes(l.topics[0]!));
          seen[ours ? 'ours' : 'othersOnly'] += logs.length > 0 ? 1 : 0;
          if (ours) expect(filter.mayHold(block.logsBloom)).toBe(true);
          if (logs.length === 0) expect(filter.mayHold(block.logsBloom)).toBe(false);
        }),
        { numRuns: 40 },
      );
    } finally {
      await devnet.anvil.request('evm_setAutomine', [true]);
    }
    // The runs made blocks of both kinds.
    expect(seen.ours).toBeGreaterThan(0);
    expect(seen.othersOnly).toBeGreaterThan(0);
  });

  it('a backend lagging the head for eth_getLogs: the newest blocks\' logs are ingested once it catches up, each exactly once (range queries lost them)', async () => {
    const backend = await lagging();
    // One service, as `run` keeps it: a step starts where the one before it ended (a restart would rescan from the last log stored).
    await withStore(devnet.storeUrl(), async (store) => {
      const service = await IngesterService.start(store, devnet.settings({ rpcUrls: [backend.proxy.url] }), testLog());
      await service.catchUp();
      // Trades in the three newest blocks, which the eth_getLogs backend does not have yet.
      for (const tenths of [3n, 4n, 5n]) await take(tenths);
      backend.behind = 3;
      backend.endsAfter = 4;
      await service.catchUp();
      backend.behind = 0;
      await service.catchUp(); // a later step, once the backend caught up
      expect(recordedIds(await storedLogs(store, devnet.stream))).toEqual(await chainLogIds(devnet));
    });
    expect(backend.refusals).toBe(4);
  });

  it('anvil refuses eth_getLogs by a block hash it does not have, in words read as a node lagging behind the block (never a silent [])', async () => {
    const rpc = await ChainRpc.connect({ urls: [devnet.anvil.rpcUrl], chainId: devnet.deployment.chainId, deadlineMs: 5_000, log: testLog() });
    const unknown = keccak256(stringToHex('no such block'));
    const answer = rpc.request('eth_getLogs', [{ blockHash: unknown, address: devnet.deployment.orderbook }], (u) => E.right(u), 'eth_getLogs by hash', () => false);
    const error = await answer.then(() => null, (e: unknown) => e);
    expect(String(error)).toMatch(/unknown block/);
    expect(lagsBehind(error)).toBe(true);
  });

  it('a backend that stays behind stops the pass at the deadline, naming the block; what it stored is a prefix, completed later', async () => {
    const url = devnet.storeUrl();
    const backend = await lagging();
    const settings = devnet.settings({ rpcUrls: [backend.proxy.url] });
    await pass(url, settings);
    const trade = await take(6n);
    backend.behind = 1;
    const failed = pass(url, { ...settings, deadlineMs: 800 });
    await expect(failed).rejects.toThrow(DeadlineExceeded);
    await expect(failed).rejects.toThrow(new RegExp(`^block ${trade.blockNumber} from http://127\\.0\\.0\\.1:\\d+: still failing .*eth_getLogs has no block ${trade.blockNumber} by the hash`));
    const canonical = await chainLogIds(devnet);
    expect(await storedIds(url)).toEqual(canonical.slice(0, -1));
    backend.behind = 0;
    await pass(url, settings);
    expect(await storedIds(url)).toEqual(canonical);
  });

  it('blocks whose bloom rules our logs out cost no eth_getLogs call: empty blocks, logs of another contract (even with our topic0s)', async () => {
    const from = (await head()) + 1n;
    await mineEmpty(devnet, 5);
    for (const topic of OUR_TOPICS) await foreignLog([topic]);
    await foreignLog([keccak256(stringToHex('Transfer(address,address,uint256)')), keccak256(stringToHex('other'))]);
    const ours = [await take(1n), await take(2n)].map((r) => r.blockNumber);
    await mineEmpty(devnet, 3);
    const backend = await lagging();
    const url = devnet.storeUrl();
    expect(await pass(url, devnet.settings({ rpcUrls: [backend.proxy.url], deploymentBlock: from }))).toMatchObject({ appended: 2, from, to: await head() });
    // Answered in any order: concurrent calls.
    const asked = backend.logCalls.map((c) => c.params?.[0]?.blockHash).sort();
    expect(asked).toEqual((await Promise.all(ours.map(async (n) => (await devnet.anvil.request<{ hash: string }>('eth_getBlockByNumber', [`0x${n.toString(16)}`, false])).hash))).sort());
  });

  it(`blocks deeper than ${LAG_HORIZON} below the confirmed head are still read by range; only the newer ones by hash`, async () => {
    const deep = await take(7n);
    await mineEmpty(devnet, LAG_HORIZON + 20);
    const recent = await take(8n);
    await mineEmpty(devnet, 2);
    const to = await head();
    const backend = await lagging();
    const url = devnet.storeUrl();
    await pass(url, devnet.settings({ rpcUrls: [backend.proxy.url], maxBlockRange: 10_000 }));
    expect(await storedIds(url)).toEqual(await chainLogIds(devnet));
    const ranges = backend.logCalls.filter((c) => c.params?.[0]?.blockHash === undefined).map((c) => [BigInt(c.params![0]!.fromBlock!), BigInt(c.params![0]!.toBlock!)]);
    const byHash = backend.logCalls.filter((c) => c.params?.[0]?.blockHash !== undefined);
    // The adaptive ranges double up to the horizon: a few calls for the whole deep part, which holds `deep`.
    expect(ranges.length).toBeLessThan(16);
    expect(ranges.map(([, end]) => end!).reduce((a, b) => (a > b ? a : b))).toBe(to - BigInt(LAG_HORIZON));
    expect(ranges.some(([a, b]) => a! <= deep.blockNumber && deep.blockNumber <= b!)).toBe(true);
    expect(byHash.length).toBe(1);
    expect(recent.blockNumber).toBeGreaterThan(to - BigInt(LAG_HORIZON));
  });
});

describe('a block header answered from another fork', () => {
  let devnet: Devnet;
  let proxy: RpcProxy | undefined;

  beforeAll(async () => {
    devnet = await startDevnet();
  });

  afterAll(async () => {
    await proxy?.close();
    await devnet?.stop();
  });

  it('is not taken for the block below the head: a stale node\'s header of block n (another hash, a bloom without our logs) does not lose the log of the canonical block n', async () => {
    proxy = await startRpcProxy(devnet.anvil.rpcUrl, 1);
    const rewritten: string[] = [];
    // One service, as `run` keeps it: a step starts where the one before it ended.
    await withStore(devnet.storeUrl(), async (store) => {
      const service = await IngesterService.start(store, devnet.settings({ rpcUrls: [proxy!.url] }), testLog());
      await service.catchUp();
      const trade = await devnet.trader.take({ owner: OURS, side: 'sell', equityToken: 'tGME', shares: 3n * E17, usdc: 3_000_000n });
      await mineEmpty(devnet, 2);
      // One answer, as a node behind the balancer still on the fork the chain left gives it: its own block n, without our log.
      proxy!.faults = {
        rewrite: (method, result, call) => {
          if (method !== 'eth_getBlockByNumber' || call.params?.[0] !== `0x${trade.blockNumber.toString(16)}` || rewritten.length > 0) return result;
          const hash = keccak256(stringToHex('a block of the abandoned fork'));
          rewritten.push(hash);
          return { ...(result as object), hash, logsBloom: `0x${'0'.repeat(512)}` };
        },
      };
      await service.catchUp();
      proxy!.faults = {};
      await mineEmpty(devnet, 1);
      await service.catchUp(); // a later step, every answer canonical
      expect(rewritten.length).toBe(1);
      expect(recordedIds(await storedLogs(store, devnet.stream))).toEqual(await chainLogIds(devnet));
    });
  });

  it('a node without a block the ledger relies on, though the latest block is above it, lags: asked again, not taken for a reorg', async () => {
    proxy = await startRpcProxy(devnet.anvil.rpcUrl, 1);
    const { lines, log } = capturedLog('warn');
    await withStore(devnet.storeUrl(), async (store) => {
      const service = await IngesterService.start(store, devnet.settings({ rpcUrls: [proxy!.url] }), log);
      const trade = await devnet.trader.take({ owner: OURS, side: 'sell', equityToken: 'tGME', shares: 2n * E17, usdc: 2_000_000n });
      await service.catchUp(); // the trade's block is the newest the ledger relies on
      await mineEmpty(devnet, 2);
      let nulls = 0;
      // One answer, as a node behind the balancer gives it: no such block yet.
      proxy!.faults = { rewrite: (method, result, call) => (method === 'eth_getBlockByNumber' && call.params?.[0] === `0x${trade.blockNumber.toString(16)}` && nulls++ === 0 ? null : result) };
      const report = reportOf(await service.catchUp());
      expect(nulls).toBeGreaterThan(1);
      expect(report?.reorg).toBe(false);
      expect(lines.map((l) => l.msg)).not.toContain('the chain no longer has a block the ledger relies on: reorg');
      expect(recordedIds(await storedLogs(store, devnet.stream))).toEqual(await chainLogIds(devnet));
    });
  });
});
