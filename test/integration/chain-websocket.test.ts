/**
 * A websocket endpoint that goes away for longer than viem's own reconnecting (5 tries, 2 s
 * apart) and comes back: calls made meanwhile succeed soon after it is back.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChainRpc } from '../../src/chain/rpc.ts';
import { startAnvil, type Anvil } from '../../src/chain/devnet/index.ts';
import { tcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { testLog } from '../support/test-log.ts';

let anvil: Anvil;
let proxy: TcpProxy;
beforeAll(async () => {
  anvil = await startAnvil();
  proxy = await tcpProxy(anvil.port);
});
afterAll(async () => {
  await proxy?.close();
  await anvil?.stop();
});

it('a call over a websocket that was down for 12 s succeeds within seconds of the endpoint coming back', { timeout: 60_000 }, async () => {
  const rpc = await ChainRpc.connect({ urls: [`ws://127.0.0.1:${proxy.port}`], chainId: anvil.chainId, deadlineMs: 30_000, log: testLog() });
  try {
    const before = await rpc.blockNumber();
    proxy.setDown(true);
    await sleep(12_000);
    const during = rpc.blockNumber();
    await sleep(500);
    proxy.setDown(false);
    const back = performance.now();
    expect(await during).toBe(before);
    // The next retry reconnects: within the backoff's longest wait (5 s) and a connection.
    expect(performance.now() - back).toBeLessThan(6_000);
  } finally {
    rpc.close();
  }
});
