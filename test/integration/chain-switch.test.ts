/**
 * An endpoint that starts serving another network under its URL while the ingester runs (a
 * provider or load balancer pointed elsewhere, a local node restarted on another chain): none
 * of the blocks the ledger relies on are on it, which looks like a reorg below all of them.
 * And one that names another chain once (a load balancer's glitch), which must not stop
 * ingestion; or always (misconfigured), which a fallback serving the configured chain replaces.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAnvil, type Anvil } from '../../src/chain/devnet/index.ts';
import { IngesterService } from '../../src/chain/ingester-service.ts';
import { DOUBTED_ANSWERS, ChainIdMismatch, ChainRpc } from '../../src/chain/rpc.ts';
import { openStore } from '../../src/eventstore/url.ts';
import { mulberry32 } from '../../src/seeded-random.ts';
import { mineEmpty, randomFills, reportOf, startDevnet, storedLogs, type Devnet } from '../support/chain-fixture.ts';
import { startRpcProxy, type RpcProxy } from '../support/chain-proxy.ts';
import { capturedLog, testLog } from '../support/test-log.ts';

describe('an endpoint that switches networks', () => {
  let devnet: Devnet;
  let other: Anvil;
  let proxy: RpcProxy;

  beforeAll(async () => {
    devnet = await startDevnet();
    other = await startAnvil({ chainId: devnet.anvil.chainId + 1 });
    proxy = await startRpcProxy(devnet.anvil.rpcUrl, 1);
    await devnet.trader.takeMany(randomFills(mulberry32(3), 6));
    await mineEmpty(devnet, 2);
  }, 120_000);
  afterAll(async () => {
    await proxy?.close();
    await other?.stop();
    await devnet?.stop();
  });

  it('stops with ChainIdMismatch instead of taking the other chain for a reorg and removing the stored logs', async () => {
    const store = await openStore(devnet.storeUrl());
    const service = await IngesterService.start(store, devnet.settings({ rpcUrls: [proxy.url], deadlineMs: 2_000 }), testLog());
    try {
      expect(reportOf(await service.catchUp())).toMatchObject({ appended: 6, removed: 0 });
      await other.request('anvil_mine', ['0x40']);
      proxy.faults.target = other.rpcUrl;
      await expect(service.catchUp()).rejects.toThrow(ChainIdMismatch);
      const stored = await storedLogs(store, devnet.stream);
      expect(stored.map((e) => e.type)).toEqual(Array(6).fill('OrderbookLogRecorded'));
    } finally {
      service.close();
      await store.close();
    }
  });

  const proxies: RpcProxy[] = [];
  afterAll(() => Promise.all(proxies.map((p) => p.close())));

  /** A proxy before the devnet whose eth_chainId answers name Base while `glitches.left` > 0 (one fewer each time). */
  const glitching = async (left: number) => {
    const glitches = { left };
    const glitch = await startRpcProxy(devnet.anvil.rpcUrl, 2, { rewrite: (method, result) => (method === 'eth_chainId' && glitches.left-- > 0 ? '0x2105' : result) });
    proxies.push(glitch);
    return { glitch, glitches };
  };

  it('an eth_chainId answer naming another chain once is asked again: the ingester starts and ingests', async () => {
    const { lines, log } = capturedLog('warn');
    const { glitch } = await glitching(1);
    const store = await openStore('sqlite::memory:');
    // A generous deadline: the second answer comes after a backoff, on a busy machine too.
    const service = await IngesterService.start(store, devnet.settings({ rpcUrls: [glitch.url], deadlineMs: 10_000 }), log);
    try {
      expect(reportOf(await service.catchUp())).toMatchObject({ appended: 6, removed: 0 });
      expect(lines.map((l) => l.msg)).toEqual(['RPC endpoint answered another chain id; asking again']);
      expect(lines[0]).toMatchObject({ what: 'eth_chainId', error: expect.stringMatching(/^RPC http:\/\/127\.0\.0\.1:\d+ serves chain 8453, but the configured chainId is 31337 /) });
      expect(JSON.stringify(lines)).not.toContain('secret-api-key');
    } finally {
      service.close();
      await store.close();
    }
  });

  it('the check before missing blocks are taken for a reorg asks again too, up to a few answers naming another chain', async () => {
    const { glitch, glitches } = await glitching(0);
    const rpc = await ChainRpc.connect({ urls: [glitch.url], chainId: devnet.anvil.chainId, deadlineMs: 10_000, log: testLog() });
    try {
      glitches.left = DOUBTED_ANSWERS - 1;
      await expect(rpc.checkChainId()).resolves.toBeUndefined();
      glitches.left = DOUBTED_ANSWERS;
      const started = performance.now();
      await expect(rpc.checkChainId()).rejects.toThrow(/^RPC http:\/\/127\.0\.0\.1:\d+ serves chain 8453, but the configured chainId is 31337 \(LEDGER_CHAIN_ID\)$/);
      expect(performance.now() - started).toBeLessThan(8_000); // told apart by the answers, not at the deadline
    } finally {
      rpc.close();
    }
  });

  it('the check over several endpoints names the one that answered another chain, not all of them', async () => {
    const [down, switching] = [await startRpcProxy(devnet.anvil.rpcUrl, 5), await startRpcProxy(devnet.anvil.rpcUrl, 6)];
    proxies.push(down, switching);
    const rpc = await ChainRpc.connect({ urls: [down.url, switching.url], chainId: devnet.anvil.chainId, deadlineMs: 10_000, log: testLog() });
    try {
      down.faults.down = true; // every call falls back to the other one, which then switches networks
      switching.faults.target = other.rpcUrl;
      const label = new URL(switching.url).origin;
      await expect(rpc.checkChainId()).rejects.toThrow(new RegExp(`^RPC ${label} serves chain ${other.chainId}, but the configured chainId is ${devnet.anvil.chainId} \\(LEDGER_CHAIN_ID\\)$`));
    } finally {
      rpc.close();
    }
  });

  it('an endpoint that keeps serving another chain is passed over, and reported, for a fallback that serves the configured one', async () => {
    const { lines, log } = capturedLog('warn');
    const elsewhere = await startRpcProxy(devnet.anvil.rpcUrl, 3, { target: other.rpcUrl });
    proxies.push(elsewhere);
    const store = await openStore('sqlite::memory:');
    const service = await IngesterService.start(store, devnet.settings({ rpcUrls: [elsewhere.url, devnet.anvil.rpcUrl], deadlineMs: 10_000 }), log);
    try {
      const asked = elsewhere.calls.get('eth_chainId');
      expect(reportOf(await service.catchUp())).toMatchObject({ appended: 6, removed: 0 });
      expect(elsewhere.calls.get('eth_chainId')).toBe(asked); // nothing more asked of it
      expect([...elsewhere.calls.keys()]).toEqual(['eth_chainId']);
      expect(lines.filter((l) => l.msg === 'an RPC endpoint serves another chain; passed over')).toEqual([
        expect.objectContaining({ level: 40, endpoint: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/), servedChainId: String(other.chainId), chainId: devnet.anvil.chainId }),
      ]);
      expect(JSON.stringify(lines)).not.toContain('secret-api-key');
    } finally {
      service.close();
      await store.close();
    }
  });

  it('stops with ChainIdMismatch, naming each endpoint, when none serves the configured chain', async () => {
    const elsewhere = await startRpcProxy(devnet.anvil.rpcUrl, 4, { target: other.rpcUrl });
    proxies.push(elsewhere);
    const failure = IngesterService.start(await openStore('sqlite::memory:'), devnet.settings({ rpcUrls: [elsewhere.url, other.rpcUrl], deadlineMs: 10_000 }), testLog());
    await expect(failure).rejects.toThrow(ChainIdMismatch);
    await expect(failure).rejects.toThrow(new RegExp(`^RPC http://127\\.0\\.0\\.1:\\d+ serves chain ${other.chainId}, http://127\\.0\\.0\\.1:\\d+ serves chain ${other.chainId}, but the configured chainId is ${devnet.anvil.chainId} \\(LEDGER_CHAIN_ID\\)$`));
  });
});
