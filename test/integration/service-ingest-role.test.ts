/**
 * The `run` service's ingest role, in process, against anvil behind a faulty RPC proxy: after the
 * supervisor restarts the role (a store outage, then the watchdog), the next RPC hiccup must be
 * retried with backoff like any other, not end the service.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { StoreUnavailable } from '../../src/eventstore/errors.ts';
import type { EventStore } from '../../src/eventstore/port.ts';
import { openStore } from '../../src/eventstore/url.ts';
import { runService } from '../../src/services/service.ts';
import { ingesterSettings } from '../../src/chain/ingester-service.ts';
import { createMetrics } from '../../src/http/metrics.ts';
import { chainLogIds, randomFills, startDevnet, storedLogs, type Devnet } from '../support/chain-fixture.ts';
import { mulberry32 } from '../../src/seeded-random.ts';
import { startRpcProxy, type RpcProxy } from '../support/chain-proxy.ts';
import { until } from '../support/until.ts';

/** The store, except that appends to `stream` fail while `outage.on` (and count the failures). */
function withOutage(store: EventStore, stream: string, outage: { on: boolean; failed: number }): EventStore {
  return Object.assign(Object.create(store) as EventStore, {
    append: (s: string, events: Parameters<EventStore['append']>[1], expected: Parameters<EventStore['append']>[2]) => {
      if (s !== stream || !outage.on) return store.append(s, events, expected);
      outage.failed++;
      return Promise.reject(new StoreUnavailable('database is locked'));
    },
  });
}

describe('run: the ingest role', () => {
  let devnet: Devnet;
  let proxy: RpcProxy;

  beforeAll(async () => {
    devnet = await startDevnet();
    proxy = await startRpcProxy(devnet.anvil.rpcUrl, 11);
  }, 60_000);

  afterAll(async () => {
    await proxy?.close();
    await devnet?.stop();
  });

  it('after restarts (store outage, watchdog), an RPC failure is retried, not fatal', async () => {
    const random = mulberry32(5);
    await devnet.trader.takeMany(randomFills(random, 20));
    const inner = await openStore('sqlite::memory:');
    const outage = { on: true, failed: 0 };
    const store = withOutage(inner, devnet.stream, outage);
    const { chainId, orderbook, deploymentBlock } = devnet.deployment;
    const config = loadConfig({
      env: {},
      overrides: { rpcUrl: proxy.url, chainId, orderbook, deploymentBlock: Number(deploymentBlock), confirmations: 0, chainPollIntervalMs: 50, rpcDeadlineMs: 10_000, ingestStallMs: 400 },
    });
    const abort = new AbortController();
    const metrics = createMetrics();
    const running = runService({ store, config, fold: devnet.fold, ingest: ingesterSettings(config, 'test'), roles: new Set(['ingest']), signal: abort.signal, metrics });
    running.catch(() => undefined); // awaited below; a failure also fails the waits
    const ingestedAll = async () => (await storedLogs(inner, devnet.stream)).length === (await chainLogIds(devnet)).length;

    await until(() => outage.failed > 0, 'the outage to hit an append');
    outage.on = false; // the supervisor restarts the role, which now appends
    await until(ingestedAll, 'the backfill after the restart');

    proxy.faults = { maxLogRange: 0 }; // the head moves on, but every eth_getLogs is refused: no progress
    await devnet.trader.takeMany(randomFills(random, 5));
    await until(async () => (await metrics.errors.get()).values.some((v) => v.labels['kind'] === 'Stalled'), 'the watchdog');
    proxy.faults = {};
    await until(ingestedAll, 'the logs after the watchdog restart');

    proxy.faults = { error500: 1 };
    await until(() => (proxy.injected.get('error500') ?? 0) >= 2, 'RPC failures');
    proxy.faults = {};
    await devnet.trader.takeMany(randomFills(random, 5));
    await until(ingestedAll, 'the logs after the RPC failures');

    abort.abort();
    await expect(running).resolves.toBeUndefined();
    await inner.close();
  });

  it('a restarted ingester that the watchdog stops while it connects to a node that is down is restarted again, rather than fail the service with the watchdog\'s own abort ("This operation was aborted")', async () => {
    const random = mulberry32(6);
    await devnet.trader.takeMany(randomFills(random, 5));
    const store = await openStore('sqlite::memory:');
    const { chainId, orderbook, deploymentBlock } = devnet.deployment;
    const config = loadConfig({
      env: {},
      overrides: { rpcUrl: proxy.url, chainId, orderbook, deploymentBlock: Number(deploymentBlock), confirmations: 0, chainPollIntervalMs: 50, rpcDeadlineMs: 30_000, ingestStallMs: 400 },
    });
    const abort = new AbortController();
    const metrics = createMetrics();
    const running = runService({ store, config, fold: devnet.fold, ingest: ingesterSettings(config, 'test'), roles: new Set(['ingest']), signal: abort.signal, metrics });
    let failed: unknown;
    running.catch((error: unknown) => (failed = error));
    const ingestedAll = async () => (await storedLogs(store, devnet.stream)).length === (await chainLogIds(devnet)).length;
    await until(ingestedAll, 'the backfill');

    proxy.faults = { maxLogRange: 0 }; // the head moves on, but no eth_getLogs passes: the watchdog restarts the role…
    await devnet.trader.takeMany(randomFills(random, 3));
    await until(async () => (await metrics.errors.get()).values.some((v) => v.labels['kind'] === 'Stalled'), 'the watchdog');
    proxy.faults = { down: true }; // …and the restarted role finds the node down, for a while shorter than the RPC deadline
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    proxy.faults = {};
    expect(failed).toBeUndefined();
    await until(ingestedAll, 'the logs once the node is back');

    abort.abort();
    await expect(running).resolves.toBeUndefined();
    await store.close();
  });
});
