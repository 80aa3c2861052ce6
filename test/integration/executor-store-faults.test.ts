/**
 * An executor whose store writes keep failing says so in readiness. The store here is a SQLite
 * file and the failure a real one: the running `run --roles execute,api` process gets a file-size
 * limit of 0 (`prlimit`, RLIMIT_FSIZE), so every write SQLite makes fails with EFBIG
 * (SQLITE_IOERR_WRITE), as on a full disk, while reads go on; lifting the limit ends the outage.
 */
import { afterEach, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { copyFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { createSimClock } from '../../src/broker/schwab-sim/index.ts';
import { Harness } from '../support/executor-harness.ts';
import type { ServiceProcess } from '../support/e2e-stack.ts';
import { spawnRoles } from '../support/role-process.ts';
import { until } from '../support/until.ts';

let harness: Harness;
const running: ServiceProcess[] = [];
afterEach(async () => {
  await Promise.allSettled(running.splice(0).map((p) => p.stop('SIGKILL')));
  await harness.close();
});

/** Sets the soft limit on the size of the files `pid` writes (its hard limit stays, so it can be lifted again). */
const limitFileSize = (pid: number, limit: string) => execFileSync('prlimit', ['--pid', String(pid), `--fsize=${limit}:`]);

/** The readiness answer's status and reasons. */
async function readiness(service: ServiceProcess): Promise<{ status: number; reasons: string[] }> {
  const { status, body } = await service.fetch('/health/ready');
  return { status, reasons: (JSON.parse(body) as { reasons: string[] }).reasons };
}

it('is not ready while its order steps keep failing to write, and ready again once a step succeeds', async () => {
  harness = await Harness.start({ store: 'file', clock: 'wall' });
  const service = await spawnRoles(harness, 'executor', 'execute,api');
  running.push(service);
  await service.ready();

  limitFileSize(service.pid!, '0');
  const commandId = await harness.request('GME', 'BUY', 2n); // written by this process, which has no limit
  expect(await service.logged('executor step failed: retrying', 10_000), service.logTail).toBe(true);
  const failing = await until(async () => {
    const answer = await readiness(service);
    // The API's fold catching up with the command is another reason, for a moment: not the one looked for.
    return answer.status === 503 && !answer.reasons.some((r) => r.startsWith('ledger follower')) && answer;
  }, 'readiness to turn 503 for the executor', 10_000);
  expect(failing.reasons).toHaveLength(1);
  expect(failing.reasons[0]).toMatch(/^execute not alive: .*disk I\/O error \(SQLITE_IOERR_WRITE\)/);
  expect(await harness.orderEvents(commandId)).toEqual([]);

  limitFileSize(service.pid!, 'unlimited');
  await service.ready(20_000);
  await until(async () => (await harness.outcome(commandId))?.type === 'HedgeOrderFilled', 'the fill', 20_000);
  expect(harness.ordersPlaced()).toBe(1);
  expect((await service.stop('SIGTERM')).code).toBe(0);
}, 60_000);

it('stops (exit 1) when its store file is replaced under it, rather than retry writes into a file nobody sees', async () => {
  harness = await Harness.start({ store: 'file', clock: 'wall', sim: { clock: createSimClock({ start: new Date(), followWallClock: true }) } });
  harness.sim.control.setMarketOpen(true);
  harness.sim.control.setScript({ kind: 'queued', afterMs: 60_000 }, { next: 1 });
  const service = await spawnRoles(harness, 'executor', 'execute,api');
  running.push(service);
  const commandId = await harness.request('GME', 'BUY', 2n);
  await until(async () => (await harness.orderEvents(commandId)).some((e) => e.type === 'HedgeOrderPlaced'), 'the order placed and polled');
  await harness.store.close();

  // Replaced as a careless restore would: a copy moved onto the path while the process runs.
  const file = join(harness.dir, 'ledger.db');
  copyFileSync(file, `${file}.copy`);
  renameSync(`${file}.copy`, file);
  harness.sim.clock.advance(60_000); // the order fills: recording it is the executor's next write

  const exited = await service.exited;
  expect(exited.code, service.logTail).toBe(1);
  expect(service.logTail).toMatch(/was deleted or replaced since this process opened it/);
  expect(harness.ordersPlaced()).toBe(1);
}, 60_000);
