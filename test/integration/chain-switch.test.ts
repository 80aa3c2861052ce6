/**
 * An endpoint that starts serving another network under its URL while the ingester runs (a
 * provider or load balancer pointed elsewhere, a local node restarted on another chain): none
 * of the blocks the ledger relies on are on it, which looks like a reorg below all of them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAnvil, type Anvil } from '../../src/chain/devnet/index.ts';
import { IngesterService } from '../../src/chain/ingester-service.ts';
import { ChainIdMismatch } from '../../src/chain/rpc.ts';
import { openStore } from '../../src/eventstore/url.ts';
import { mulberry32 } from '../../src/seeded-random.ts';
import { mineEmpty, randomFills, reportOf, startDevnet, storedLogs, type Devnet } from '../support/chain-fixture.ts';
import { startRpcProxy, type RpcProxy } from '../support/chain-proxy.ts';
import { testLog } from '../support/test-log.ts';

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
});
