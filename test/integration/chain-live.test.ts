/**
 * The running ingester against a real anvil node: logs sent while it runs (several clears in one
 * transaction among them), duplicate deliveries, a websocket's new heads, the confirmation
 * depth and head tags, and answers flagged `removed`.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Fill } from '../../src/chain/devnet/index.ts';
import { IngesterService, type IngesterSettings } from '../../src/chain/ingester-service.ts';
import { streams } from '../../src/domain/events.ts';
import { openStore } from '../../src/eventstore/url.ts';
import type { EventStore } from '../../src/eventstore/port.ts';
import { foldLedger } from '../../src/services/ledger-query.ts';
import { OURS, chainLogIds, clearOf, expectedNet, mineEmpty, partiesOf, randomFills, recordedIds, startDevnet, storedLogs, storedNet, type Devnet } from '../support/chain-fixture.ts';
import { mulberry32 } from '../../src/seeded-random.ts';
import { testLog } from '../support/test-log.ts';
import { installMulticall3 } from '../support/chain-multicall.ts';
import { MULTICALL3 } from '../../src/chain/token-symbols.ts';
import { startRpcProxy, type RpcProxy } from '../support/chain-proxy.ts';

const E17 = 10n ** 17n;
const take = (side: 'sell' | 'buy', tenths: bigint): Fill => ({ owner: OURS, side, equityToken: 'tGME', shares: tenths * E17, usdc: tenths * 2_000_000n });

/** Polls `condition` until it holds or `ms` pass. */
async function eventually(condition: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const until = performance.now() + ms;
  while (!(await condition())) {
    if (performance.now() > until) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('chain live', () => {
  let devnet: Devnet;
  const stores: EventStore[] = [];
  const proxies: RpcProxy[] = [];
  const running: { stop: AbortController; done: Promise<void> }[] = [];

  beforeAll(async () => {
    devnet = await startDevnet();
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((r) => (r.stop.abort(), r.done)));
    await Promise.all(proxies.splice(0).map((p) => p.close()));
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    await devnet?.stop();
  });

  const open = async () => {
    const store = await openStore(devnet.storeUrl());
    stores.push(store);
    return store;
  };
  const service = async (store: EventStore, overrides: Partial<IngesterSettings> = {}) => IngesterService.start(store, devnet.settings(overrides), testLog());
  /** Starts `run` in the background; stopped after the test. */
  const run = async (store: EventStore, overrides: Partial<IngesterSettings> = {}) => {
    const stop = new AbortController();
    const started = await service(store, overrides);
    const done = started.run(stop.signal).finally(() => started.close());
    running.push({ stop, done });
    return { stop: async () => (stop.abort(), done) };
  };
  const holdsChain = (store: EventStore) => async () => recordedIds(await storedLogs(store, devnet.stream)).join() === (await chainLogIds(devnet)).join();

  it('follows logs sent while it runs, several clears in one transaction among them', async () => {
    const store = await open();
    const runner = await run(store);
    const clears = [clearOf('tGME', 10n * E17, 'sell'), clearOf('tAAPL', 5n * E17, 'buy'), clearOf('tGME', 3n * E17, 'buy')];
    const fills = [take('sell', 15n), ...partiesOf(clears), ...randomFills(mulberry32(9), 40)];
    await devnet.trader.take(fills[0]!);
    const receipt = await devnet.trader.clearMany(clears);
    await devnet.trader.takeMany(fills.slice(7));
    await eventually(holdsChain(store));
    await runner.stop();

    const clearTx = (await storedLogs(store, devnet.stream)).filter((e) => e.transactionHash === receipt.transactionHash);
    expect(clearTx.map((e) => Number(e.logIndex))).toEqual([0, 1, 2, 3, 4, 5]);
    const rejected: string[] = [];
    const view = await foldLedger(store, devnet.fold, { listener: { onRejection: (r) => rejected.push(r.reason) } });
    expect(rejected.filter((r) => r.startsWith('unpaired'))).toEqual([]);
    expect(view.rejectedByReason.get('not_ours')).toBeGreaterThan(0);
    expect(await storedNet(store, devnet.fold)).toEqual(expectedNet(fills)); // the chain holds this test's fills only
  });

  it('a duplicate delivery (every log twice, out of order, in every answer) is stored once', async () => {
    const doubled = await startRpcProxy(devnet.anvil.rpcUrl, 11, { rewrite: (method, result) => (method === 'eth_getLogs' && Array.isArray(result) ? [...result].reverse().concat(result) : result) });
    proxies.push(doubled);
    const store = await open();
    await (await service(store, { rpcUrls: [doubled.url] })).catchUp();
    await devnet.trader.takeMany([take('sell', 2n), take('buy', 1n)]);
    await (await service(store, { rpcUrls: [doubled.url] })).catchUp();
    expect(await holdsChain(store)()).toBe(true);
  });

  it('wakes on a websocket new head long before its poll interval', async () => {
    const store = await open();
    const runner = await run(store, { rpcUrls: [devnet.anvil.rpcUrl, devnet.anvil.wsUrl], pollIntervalMs: 60_000 });
    await eventually(holdsChain(store));
    const sent = performance.now();
    await devnet.trader.take(take('buy', 4n));
    await eventually(holdsChain(store), 5_000);
    expect(performance.now() - sent).toBeLessThan(5_000);
    await runner.stop();
  });

  it('ingests a log only once it is `confirmations` deep, or under the safe head', async () => {
    const store = await open();
    const deep = await service(store, { confirmations: 2 });
    await mineEmpty(devnet, 2);
    await deep.catchUp();
    const ids = async () => recordedIds(await storedLogs(store, devnet.stream));
    const before = await ids();
    await devnet.trader.take(take('sell', 1n));
    await deep.catchUp();
    expect(await ids()).toEqual(before);
    await mineEmpty(devnet, 2);
    await deep.catchUp();
    expect(await ids()).toEqual(await chainLogIds(devnet));

    await mineEmpty(devnet, 40); // anvil's safe head is 32 blocks behind the latest
    const safe = await service(await open(), { confirmations: 'safe' });
    const { number: safeHead } = (await devnet.anvil.request<{ number: string }>('eth_getBlockByNumber', ['safe', false]));
    expect(await safe.catchUp()).toMatchObject({ to: BigInt(safeHead) });
  });

  it('an answer with a log flagged removed is asked again, never half-used', async () => {
    let flagged = 0;
    const flaky = await startRpcProxy(devnet.anvil.rpcUrl, 12, {
      rewrite: (method, result) => {
        if (method !== 'eth_getLogs' || !Array.isArray(result) || result.length === 0 || flagged >= 3) return result;
        flagged++;
        return result.map((log, i) => (i === 0 ? { ...log, removed: true } : log));
      },
    });
    proxies.push(flaky);
    const store = await open();
    await (await service(store, { rpcUrls: [flaky.url] })).catchUp();
    expect(flagged).toBe(3);
    expect(await holdsChain(store)()).toBe(true);
  });

  it('reads token symbols through multicall3 where the chain has it: no call per token, BrokenToken recorded as unknown', async () => {
    await installMulticall3(devnet.anvil);
    const counting = await startRpcProxy(devnet.anvil.rpcUrl, 13);
    proxies.push(counting);
    const called: string[] = [];
    counting.faults.answered = async (call) => void (call.method === 'eth_call' && called.push(call.params?.[0]?.to ?? ''));
    const store = await open();
    expect(await (await service(store, { rpcUrls: [counting.url] })).catchUp()).toMatchObject({ tokensRecorded: 9 });
    // One multicall per batch of logs that brings new tokens (how the scan cuts its ranges decides how many).
    expect(called.length).toBeGreaterThan(0);
    expect(new Set(called)).toEqual(new Set([MULTICALL3]));
    const symbols = new Map<string, string | null>();
    const reasons: string[] = [];
    for await (const e of store.readStream(streams.tokens(devnet.deployment.chainId))) {
      const { address, symbol, reason } = e.data as { address: string; symbol: string | null; reason: string | null };
      symbols.set(address, symbol);
      if (reason !== null) reasons.push(reason);
    }
    const { tokens } = devnet.deployment;
    expect(symbols.get(tokens.GMEs1.address.toLowerCase())).toBe('GMEs1');
    expect(symbols.get(tokens.BrokenToken.address.toLowerCase())).toBeNull();
    expect(reasons).toEqual(['symbol() reverted: BrokenToken: no symbol']);
    expect(await holdsChain(store)()).toBe(true);
  });
});
