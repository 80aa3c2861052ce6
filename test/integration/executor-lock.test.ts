/**
 * One executor per SQLite store, between real processes: a running `run --roles execute
 * --broker schwab` (against the simulator) holds `<db file>.executor.lock`; `run --once` on the
 * same file waits the stale age and fails naming it; a holder killed with SIGKILL is taken
 * over at once by the next executor; a clean stop removes the lock; a holder whose lock was
 * taken from under it stops with exit 1; while a service's execute role waits for the lock, its
 * readiness is 503 naming the holder. And in process: the supervisor restarting the execute
 * role after a store blip keeps the lock rather than waiting for itself.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Harness } from '../support/executor-harness.ts';
import type { ServiceProcess } from '../support/e2e-stack.ts';
import { roleEnv, spawnRoles } from '../support/role-process.ts';
import { runCli } from '../support/cli.ts';
import { until } from '../support/until.ts';
import { capturedLog } from '../support/test-log.ts';
import { accumulatorConfig } from '../../src/cli/context.ts';
import { loadConfig } from '../../src/config.ts';
import { PaperBroker } from '../../src/broker/paper.ts';
import { StoreUnavailable } from '../../src/eventstore/errors.ts';
import type { EventStore } from '../../src/eventstore/port.ts';
import { lockExecutor } from '../../src/services/executor-lock.ts';
import { runService } from '../../src/services/service.ts';
import { CHAIN_ID, ORDERBOOK, OUR_OWNER } from '../support/orderbook-logs.ts';

let harness: Harness;
const running: ServiceProcess[] = [];
afterEach(async () => {
  await Promise.allSettled(running.splice(0).map((p) => p.stop('SIGKILL')));
  await harness.close();
});

const lockFile = () => `${join(harness.dir, 'ledger.db')}.executor.lock`;
const stale = (ms: number) => ({ LEDGER_EXECUTOR_LOCK_STALE_MS: String(ms) });

/** A service with the execute role, once it holds the lock. */
async function holder(staleMs: number): Promise<ServiceProcess> {
  const service = await spawnRoles(harness, 'holder', 'execute', stale(staleMs));
  running.push(service);
  expect(await service.logged('executor lock taken', 10_000), service.logTail).toBe(true);
  return service;
}

/** `run --once --broker paper` on the harness's file; resolves with its exit, output and duration. */
async function runOnce(staleMs: number) {
  const started = Date.now();
  const result = await runCli(['run', '--once', '--broker', 'paper'], { env: roleEnv(harness, stale(staleMs)), timeoutMs: 25_000 });
  return { ...result, ms: Date.now() - started };
}

describe('the executor lock between processes', () => {
  it('a run --once beside a running executor waits the stale age, then fails naming it; the holder renews it meanwhile and removes it on a clean stop', async () => {
    harness = await Harness.start({ store: 'file', clock: 'wall' });
    const service = await holder(1_500);

    const once = await runOnce(1_500);
    expect(once.code, once.stderr).toBe(1);
    expect(once.stderr).toMatch(new RegExp(`hedge-ledger run: another executor holds \\S+ledger\\.db\\.executor\\.lock \\(pid ${service.pid} on ${hostname()} since \\S+\\)`));
    expect(once.stderr).toMatch('Run one executor per store');
    expect(once.stderr.match(/another executor holds the lock \(pid/g)).toHaveLength(1); // the warning, once
    expect(once.ms).toBeGreaterThanOrEqual(1_500);

    // The holder has run for longer than the stale age by now: only its heartbeat kept the lock.
    expect(service.alive).toBe(true);
    expect(JSON.parse(readFileSync(lockFile(), 'utf8'))).toMatchObject({ pid: service.pid, host: hostname() });
    expect(Date.now() - statSync(lockFile()).mtimeMs).toBeLessThan(1_500);

    expect((await service.stop('SIGTERM')).code).toBe(0);
    expect(existsSync(lockFile())).toBe(false);
  });

  it('after the holder is SIGKILLed, the next executor on this host takes its lock over at once and does its work', async () => {
    harness = await Harness.start({ store: 'file', clock: 'wall' });
    const service = await holder(60_000);
    await service.stop('SIGKILL');
    expect(existsSync(lockFile())).toBe(true);
    const commandId = await harness.request('GME', 'BUY', 2n);

    // The execute role alone (run --once also accumulates, and would refuse this command: no fill of the ledger derives it).
    const next = await spawnRoles(harness, 'next', 'execute', stale(60_000));
    running.push(next);
    // A dead pid is stale at once: no waiting for the stale age.
    expect(await next.logged(`taking over a left-over executor lock: pid ${service.pid} is gone`, 15_000), next.logTail).toBe(true);
    await harness.until(async () => (await harness.outcome(commandId))?.type === 'HedgeOrderFilled', 'the command filled', 15_000);
    expect((await next.stop('SIGTERM')).code).toBe(0);
    expect(existsSync(lockFile())).toBe(false);
  });

  it('a holder whose lock another process has taken over stops with exit 1', async () => {
    harness = await Harness.start({ store: 'file', clock: 'wall' });
    const service = await holder(1_500);
    writeFileSync(lockFile(), JSON.stringify({ pid: 4242, host: 'other-host', since: new Date().toISOString() }));
    const exited = await Promise.race([service.exited, sleep(10_000).then(() => undefined)]);
    expect(exited?.code, service.logTail).toBe(1);
    expect(service.logTail).toMatch(/hedge-ledger run: execute failed: \S+ is no longer this process's \(now pid 4242 on other-host/);
  });
});

describe('readiness while the execute role waits for the lock', () => {
  it('is 503 naming the holder while the other roles run, and ready once the holder stops and the lock is taken', async () => {
    harness = await Harness.start({ store: 'file', clock: 'wall' });
    const first = await holder(20_000);
    const waiter = await spawnRoles(harness, 'waiter', 'accumulate,execute,api', stale(20_000));
    running.push(waiter);
    expect(await waiter.logged('another executor holds the lock', 10_000), waiter.logTail).toBe(true);

    // Once the API's fold has caught up, the wait is the only reason left.
    const waiting = await until(async () => {
      const answer = await waiter.fetch('/health/ready');
      return !answer.body.includes('ledger follower') && { status: answer.status, reasons: (JSON.parse(answer.body) as { reasons: string[] }).reasons };
    }, 'the API to catch up', 10_000);
    const held = new RegExp(`^another executor holds the lock \\(pid ${first.pid} on ${hostname()} since \\S+\\); waiting up to 20000 ms for it to go stale$`);
    expect(waiting.status).toBe(503);
    expect(waiting.reasons).toHaveLength(1);
    expect(waiting.reasons[0]).toMatch(/^execute not alive: /);
    expect(waiting.reasons[0]!.slice('execute not alive: '.length)).toMatch(held);
    const { roles } = await waiter.get<{ roles: Record<string, { alive: boolean; detail: string | null }> }>('/status');
    expect(roles['accumulate']).toEqual({ alive: true, detail: 'running' });
    expect(roles['execute']?.alive).toBe(false);
    expect(roles['execute']?.detail).toMatch(held);

    expect((await first.stop('SIGTERM')).code).toBe(0);
    await waiter.ready(10_000);
    expect(waiter.logTail).toMatch('executor lock taken');
    expect((await waiter.stop('SIGTERM')).code).toBe(0);
  });
});

describe('the executor lock in a supervised service', () => {
  it('is kept, not taken again, when the execute role restarts after a store blip', async () => {
    harness = await Harness.start({ store: 'file', clock: 'wall' });
    // The first reads of the order streams fail as a busy store does: the supervisor restarts the role.
    let blips = 2;
    const flaky: EventStore = Object.assign(Object.create(harness.store) as EventStore, {
      readAll: (...args: Parameters<EventStore['readAll']>) => {
        if (blips-- > 0) throw new StoreUnavailable('database is locked');
        return harness.store.readAll(...args);
      },
    });
    const config = loadConfig({ env: {}, overrides: { store: harness.storeUrl, chainId: CHAIN_ID, orderbook: ORDERBOOK, owners: [OUR_OWNER], pollIntervalMs: 20 } });
    const { lines, log } = capturedLog('info');
    const stop = new AbortController();
    const service = runService({
      store: flaky, config, fold: accumulatorConfig(config, 'test'), broker: new PaperBroker(), roles: new Set(['execute']), signal: stop.signal,
      lockExecutor: (signal) => lockExecutor(harness.storeUrl, { staleMs: 1_000, signal, log }),
    });
    let failed: unknown;
    service.catch((e: unknown) => (failed = e));

    await until(() => blips < 0, 'the role to restart past both blips', 10_000);
    const commandId = await harness.request('GME', 'BUY', 2n);
    // The paper broker fails it (no onchain price to fill at): an outcome either way, recorded by the restarted executor.
    await until(async () => (await harness.orderEvents(commandId)).some((e) => e.type === 'HedgeOrderFailed'), 'the restarted executor to work a command', 10_000);
    await sleep(1_500); // past the stale age: a restart that took the lock again would have failed by now
    expect(failed).toBeUndefined();
    expect(lines.filter((l) => l.msg === 'executor lock taken')).toHaveLength(1);
    expect(JSON.parse(readFileSync(lockFile(), 'utf8'))).toMatchObject({ pid: process.pid });

    stop.abort();
    await service;
    expect(existsSync(lockFile())).toBe(false);
  });
});
