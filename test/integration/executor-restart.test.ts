/**
 * Real processes, really killed: the executor runs in a child process against a SQLite file
 * and the simulator, is SIGKILLed between Submitting and Placed or while polling, and a new
 * process finishes the job with exactly one order. Then `run --once --broker schwab` end to
 * end through the CLI.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { createSimClock } from '../../src/broker/schwab-sim/index.ts';
import { Harness } from '../support/executor-harness.ts';
import { ROOT } from '../support/cli.ts';
import { spawnTsx, succeeded, type Spawned } from '../support/executor-process.ts';

let harness: Harness;
afterEach(() => harness.close());

/** A simulator on the wall clock (children use theirs), market pinned open, a store file children can open. */
async function start(): Promise<Harness> {
  harness = await Harness.start({ store: 'file', clock: 'wall', sim: { clock: createSimClock({ start: new Date(), followWallClock: true }) } });
  harness.sim.control.setMarketOpen(true);
  return harness;
}

const executorChild = (): Spawned =>
  spawnTsx('test/support/executor-child.ts', [harness.storeUrl, harness.sim.baseUrl, harness.tokens.path], { TOKEN_ENCRYPTION_KEY: harness.key.toString('hex') });

const types = async (commandId: string): Promise<string[]> => (await harness.orderEvents(commandId)).map((e) => e.type.replace('HedgeOrder', ''));

/** Kills a child once `ready` holds, then lets a fresh process finish; returns the command. */
async function killWhen(ready: () => boolean, what: string): Promise<string> {
  const commandId = await harness.request('GME', 'BUY', 2n);
  const first = executorChild();
  await harness.until(ready, what, 20_000);
  expect((await first.kill()).signal).toBe('SIGKILL');
  return commandId;
}

async function restartAndFinish(commandId: string): Promise<void> {
  harness.sim.control.clearFaults();
  expect(JSON.parse(await succeeded(executorChild()))).toEqual({ finished: 1, open: 0 });
  const [order, ...others] = harness.sim.control.orders();
  expect(others).toEqual([]);
  expect(order).toMatchObject({ status: 'FILLED', filledQuantity: '2', averagePrice: '22.7299' });
  expect(await types(commandId)).toEqual(['Submitting', 'Placed', 'Filled']);
  expect((await harness.orderEvents(commandId))[1]?.data).toMatchObject({ brokerOrderId: order?.orderId });
}

describe('a process killed and restarted', () => {
  it('between Submitting and Placed, after the order reached the broker: the restart adopts it', async () => {
    await start();
    harness.sim.control.injectFault('place', { kind: 'timeout', applied: true });
    const commandId = await killWhen(() => harness.ordersPlaced() === 1, 'the order at the broker');
    expect(await types(commandId)).toEqual(['Submitting']);
    await restartAndFinish(commandId);
    expect(harness.requests('place')).toBe(1);
  });

  it('between Submitting and Placed, before the order reached the broker: the restart places it once', async () => {
    await start();
    harness.sim.control.injectFault('place', { kind: 'timeout' });
    const commandId = await killWhen(() => harness.requests('place') === 1, 'the POST');
    expect(harness.ordersPlaced()).toBe(0);
    expect(await types(commandId)).toEqual(['Submitting']);
    await restartAndFinish(commandId);
    // Reconciled before placing: at the restart, and again if that first look came within the settle time (timing decides).
    expect(harness.requests('listOrders')).toBeGreaterThanOrEqual(1);
  });

  it('while polling: the restart polls the same order to its fill', async () => {
    await start();
    harness.sim.control.setScript({ kind: 'queued', afterMs: 60_000 }, { next: 1 });
    const commandId = await killWhen(() => harness.requests('getOrder') >= 3, 'polls');
    expect(await types(commandId)).toEqual(['Submitting', 'Placed']);
    harness.sim.clock.advance(60_000);
    await restartAndFinish(commandId);
    expect(harness.requests('place')).toBe(1);
    expect(harness.requests('listOrders')).toBe(0);
  });
});

describe('hedge-ledger run --once --broker schwab', () => {
  const cli = (args: string[], env: Record<string, string>): Spawned => spawnTsx('src/cli/main.ts', args, env);



  it('hedges the example ledger at the simulator, and a second run places nothing', async () => {
    await start();
    const env = harness.cliEnv();
    await succeeded(cli(['ingest-file', join(ROOT, 'docs/example/logs.jsonl'), '--tokens', join(ROOT, 'docs/example/tokens.json')], env));
    expect(JSON.parse(await succeeded(cli(['run', '--once', '--broker', 'schwab', '--json'], env)))).toMatchObject({ ordersCompleted: 2 });
    const hedges = JSON.parse(await succeeded(cli(['hedges', '--json'], env))) as Record<string, unknown>[];
    expect(hedges.map(({ symbol, side, quantity, status, filledQuantity, averagePrice }) => ({ symbol, side, quantity, status, filledQuantity, averagePrice }))).toEqual([
      { symbol: 'GME', side: 'BUY', quantity: '1', status: 'filled', filledQuantity: '1', averagePrice: '22.7299' },
      { symbol: 'AAPL', side: 'SELL', quantity: '2', status: 'filled', filledQuantity: '2', averagePrice: '230.11' },
    ]);
    expect(JSON.parse(await succeeded(cli(['run', '--once', '--broker', 'schwab', '--json'], env)))).toMatchObject({ ordersCompleted: 0 });
    expect(harness.sim.control.orders().map((o) => `${o.instruction} ${o.quantity} ${o.symbol} ${o.status}`).sort()).toEqual(['BUY 1 GME FILLED', 'SELL 2 AAPL FILLED']);
  });

  it('says what is missing before touching anything', async () => {
    await start();
    const { TOKEN_ENCRYPTION_KEY: _key, SCHWAB_APP_SECRET: _secret, ...env } = harness.cliEnv();
    const { code, stderr } = await cli(['run', '--once', '--broker', 'schwab'], { ...env, TOKEN_ENCRYPTION_KEY: '', SCHWAB_APP_SECRET: '' }).exited;
    expect(code).toBe(2);
    expect(stderr).toMatch(/run --broker schwab needs env SCHWAB_APP_SECRET/);
    expect(harness.requests('accountNumbers')).toBe(0);
  });
});
