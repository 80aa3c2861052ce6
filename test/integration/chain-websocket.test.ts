/**
 * A websocket endpoint that goes away for longer than viem's own reconnecting would try (5
 * tries, 2 s apart) and comes back: calls made meanwhile succeed soon after it is back, and
 * new heads wake the follower again.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChainRpc } from '../../src/chain/rpc.ts';
import { NewHeads } from '../../src/chain/new-heads.ts';
import { startAnvil, type Anvil } from '../../src/chain/devnet/index.ts';
import { tcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { testLog } from '../support/test-log.ts';
import { until } from '../support/until.ts';

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

/** How long `heads.next` waits when a block is mined just after it starts waiting (up to 5 s). */
async function wokenAfter(heads: NewHeads): Promise<number> {
  const started = performance.now();
  const woken = heads.next(5_000, new AbortController().signal);
  await sleep(50);
  await anvil.request('evm_mine');
  await woken;
  return performance.now() - started;
}

it('after a websocket was down for 12 s, a call made meanwhile succeeds within seconds of its return, and new heads wake the follower again', { timeout: 90_000 }, async () => {
  const url = `ws://127.0.0.1:${proxy.port}`;
  const rpc = await ChainRpc.connect({ urls: [url], chainId: anvil.chainId, deadlineMs: 30_000, log: testLog() });
  const heads = new NewHeads(url, testLog());
  try {
    await sleep(500); // subscribed
    expect(await wokenAfter(heads)).toBeLessThan(1_000);
    const before = await rpc.blockNumber();
    proxy.setDown(true);
    await sleep(12_000);
    const during = rpc.blockNumber();
    await sleep(500);
    proxy.setDown(false);
    const back = performance.now();
    expect(await during).toBe(before);
    // The next retry reconnects: within the backoff's longest wait (5 s), a connection, and a loaded machine.
    expect(performance.now() - back).toBeLessThan(10_000); // the old socket waited out 20–30 s per call
    // The subscription's next try (its wait doubles from 1 s while the endpoint is down).
    await expect.poll(() => wokenAfter(heads), { timeout: 25_000, interval: 0 }).toBeLessThan(1_000);
  } finally {
    heads.close();
    rpc.close();
  }
});

it('new heads closed while the websocket still connects: the socket is closed once it opens, not left to keep the process alive', async () => {
  // A SIGTERM right after the service started (the ingester's first step) had the process live on, its roles stopped,
  // until the shutdown timeout (exit 1): the socket opened after close() was never closed.
  const own = await tcpProxy(anvil.port);
  try {
    const heads = new NewHeads(`ws://127.0.0.1:${own.port}`, testLog());
    heads.close();
    await until(() => own.accepted > 0, 'the subscription to connect');
    await until(() => own.open === 0, 'the socket opened after close() to be closed', 10_000);
    expect(own.accepted).toBe(1);
  } finally {
    await own.close();
  }
});

it('an RPC connection aborted while its websocket still connects: the socket is closed once it opens', async () => {
  // A SIGTERM while the ingester's start asked eth_chainId had the process live on until the shutdown timeout (exit 1).
  const own = await tcpProxy(anvil.port);
  try {
    own.hold(true);
    const abort = new AbortController();
    const connecting = ChainRpc.connect({ urls: [`ws://127.0.0.1:${own.port}`], chainId: anvil.chainId, deadlineMs: 30_000, log: testLog(), signal: abort.signal });
    await until(() => own.accepted > 0, 'the endpoint to be connected to');
    abort.abort();
    await expect(connecting).rejects.toThrow();
    own.hold(false);
    await until(() => own.open === 0, 'the socket opened after the abort to be closed', 10_000);
    expect(own.accepted).toBe(1);
  } finally {
    await own.close();
  }
});
