/**
 * Several RPC endpoints, some down when the ingester starts (a closed port, a node restarting, a
 * provider's outage): the others carry the calls, and a down one is never used, though it comes
 * back, until its chain id is checked at the ingester's next start.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { socketClientCache } from 'viem/utils';
import { IngesterService } from '../../src/chain/ingester-service.ts';
import { ChainRpc, endpointLabel } from '../../src/chain/rpc.ts';
import { DeadlineExceeded } from '../../src/chain/retry.ts';
import { openStore } from '../../src/eventstore/url.ts';
import { mulberry32 } from '../../src/seeded-random.ts';
import { randomFills, reportOf, startDevnet, type Devnet } from '../support/chain-fixture.ts';
import { startRpcProxy, type RpcProxy } from '../support/chain-proxy.ts';
import { tcpProxy } from '../support/tcp-proxy.ts';
import { capturedLog, testLog, type LogLine } from '../support/test-log.ts';
import { until } from '../support/until.ts';

/** A port nothing listens on (connections refused at once), and a key in the path that no log may show. */
async function closedEndpoint(scheme: 'http' | 'ws'): Promise<string> {
  const server = createServer();
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  const { port } = server.address() as AddressInfo;
  await new Promise((closed) => server.close(closed));
  return `${scheme}://127.0.0.1:${port}/v2/SECRETKEY`;
}

const passedOver = (lines: readonly LogLine[]) => lines.filter((l) => l.msg === 'an RPC endpoint is unavailable; passed over until the ingester starts again');

describe('RPC endpoints down at start', () => {
  let devnet: Devnet;
  const proxies: RpcProxy[] = [];

  beforeAll(async () => {
    devnet = await startDevnet();
    await devnet.trader.takeMany(randomFills(mulberry32(11), 4));
  }, 120_000);
  afterAll(async () => {
    await Promise.all(proxies.map((p) => p.close()));
    await devnet?.stop();
  });

  it.each(['first', 'last'] as const)('one down (listed %s): the ingester starts on the others at once, the down one named by scheme and host', async (where) => {
    const down = await closedEndpoint('http');
    const urls = where === 'first' ? [down, devnet.anvil.rpcUrl] : [devnet.anvil.rpcUrl, down];
    const { lines, log } = capturedLog('warn');
    const store = await openStore('sqlite::memory:');
    const started = performance.now();
    const service = await IngesterService.start(store, devnet.settings({ rpcUrls: urls, deadlineMs: 10_000 }), log);
    try {
      expect(performance.now() - started).toBeLessThan(5_000); // not held up until the down one's deadline
      expect(reportOf(await service.catchUp())).toMatchObject({ appended: 4, removed: 0 });
      expect(passedOver(lines)).toEqual([
        expect.objectContaining({ level: 40, endpoint: endpointLabel(down), chainId: devnet.anvil.chainId, error: expect.stringMatching(/ECONNREFUSED/) }),
      ]);
      expect(JSON.stringify(lines)).not.toContain('SECRETKEY');
    } finally {
      service.close();
      await store.close();
    }
  });

  it('one that was down at start is not used once it is back: its chain id was never confirmed', async () => {
    const flapping = await startRpcProxy(devnet.anvil.rpcUrl, 21, { down: true });
    proxies.push(flapping);
    const rpc = await ChainRpc.connect({ urls: [flapping.url, devnet.anvil.rpcUrl], chainId: devnet.anvil.chainId, deadlineMs: 10_000, log: testLog() });
    try {
      expect(rpc.urls).toEqual([devnet.anvil.rpcUrl]);
      flapping.faults = {};
      const asked = flapping.calls.get('eth_chainId');
      await rpc.blockNumber();
      await rpc.checkChainId();
      expect([...flapping.calls.entries()]).toEqual([['eth_chainId', asked]]);
    } finally {
      rpc.close();
    }
  });

  it('none answering: the start fails at the deadline, naming an endpoint by scheme and host', async () => {
    const { lines, log } = capturedLog('warn');
    const urls = [await closedEndpoint('http'), await closedEndpoint('http')];
    const started = performance.now();
    const error = await ChainRpc.connect({ urls, chainId: devnet.anvil.chainId, deadlineMs: 1_000, log }).catch((e: Error) => e);
    expect(performance.now() - started).toBeLessThan(1_900); // asked at once, not one deadline after the other
    expect(error).toBeInstanceOf(DeadlineExceeded);
    expect((error as Error).message).toMatch(new RegExp(`^eth_chainId from ${endpointLabel(urls[0]!)}: still failing .*ECONNREFUSED`));
    expect(JSON.stringify([(error as Error).message, ...lines])).not.toContain('SECRETKEY');
  });

  it('stopped before it starts (a SIGTERM during the service\'s start): it gives up at once, not at the deadline of the endpoints that are down', async () => {
    const stopped = new AbortController();
    stopped.abort(new Error('stopping'));
    const started = performance.now();
    const urls = [await closedEndpoint('http'), await closedEndpoint('http')];
    await expect(ChainRpc.connect({ urls, chainId: devnet.anvil.chainId, deadlineMs: 10_000, log: testLog(), signal: stopped.signal })).rejects.toThrow('stopping');
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('a websocket endpoint down at start is passed over, and left without a socket open when it comes back', async () => {
    const ws = await tcpProxy(devnet.anvil.port);
    const wsUrl = `ws://127.0.0.1:${ws.port}`;
    try {
      ws.setDown(true);
      const { lines, log } = capturedLog('warn');
      const rpc = await ChainRpc.connect({ urls: [wsUrl, await closedEndpoint('ws'), devnet.anvil.rpcUrl], chainId: devnet.anvil.chainId, deadlineMs: 10_000, log });
      ws.setDown(false);
      try {
        expect(rpc.urls).toEqual([devnet.anvil.rpcUrl]);
        expect(passedOver(lines)).toHaveLength(2);
        await rpc.blockNumber();
        expect(ws.accepted).toBe(0);
      } finally {
        rpc.close();
      }
      expect([...socketClientCache.values()].filter((s) => s.url.startsWith('ws://127.0.0.1:'))).toEqual([]);
    } finally {
      await ws.close();
    }
  });

  it('a live websocket endpoint beside a down one carries the calls, and its socket is closed with the rpc', async () => {
    const ws = await tcpProxy(devnet.anvil.port);
    const wsUrl = `ws://127.0.0.1:${ws.port}`;
    try {
      const rpc = await ChainRpc.connect({ urls: [await closedEndpoint('http'), wsUrl], chainId: devnet.anvil.chainId, deadlineMs: 10_000, log: testLog() });
      try {
        expect(rpc.urls).toEqual([wsUrl]);
        expect(await rpc.blockNumber()).toBeGreaterThan(0n);
      } finally {
        rpc.close();
      }
      await until(() => ws.open === 0, 'the socket to be closed');
    } finally {
      await ws.close();
    }
  });
});
