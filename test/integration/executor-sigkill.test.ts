/**
 * Real processes, killed at random instants: an executor child works through many commands at
 * the simulator over HTTP, under random faults on every endpoint (the ambiguous POST among
 * them), and is SIGKILLed at a random instant after some progress, again and again, until one runs to the end.
 * Whatever instant each kill hit, the simulator holds exactly one order per command, in that
 * command's symbol, side and quantity, the ledger names it, and every outcome is the order's.
 */
import { afterEach, expect, it } from 'vitest';
import * as D from '../../src/domain/decimal.ts';
import { createSimClock } from '../../src/broker/schwab-sim/index.ts';
import { mulberry32 } from '../../src/seeded-random.ts';
import { Harness } from '../support/executor-harness.ts';
import { spawnTsx, type Exited } from '../support/executor-process.ts';
import { until } from '../support/until.ts';
import { setTimeout as sleep } from 'node:timers/promises';

let harness: Harness;
afterEach(() => harness.close());

const SEED = Number(process.env['SIGKILL_SEED'] ?? 20_261_129);
const SYMBOLS = ['GME', 'AAPL', 'TSLA', 'NVDA', 'MSFT', 'SPY'] as const;
const KILLS = 30;

it('an executor SIGKILLed at random instants, then restarted: one order per command, outcomes as the simulator has them', async () => {
  const random = mulberry32(SEED);
  harness = await Harness.start({ store: 'file', clock: 'wall', sim: { seed: SEED, clock: createSimClock({ start: new Date(), followWallClock: true }) } });
  const { control } = harness.sim;
  control.setMarketOpen(true);
  control.setScript({ kind: 'partialThenFill', first: 1, afterMs: 150 }, { symbol: 'AAPL' });
  control.setScript({ kind: 'queued', afterMs: 300 }, { symbol: 'TSLA' });
  control.injectFault('place', { kind: 'drop', applied: true }, { probability: 0.2 });
  control.injectFault('place', { kind: 'status', status: 503, applied: true }, { probability: 0.1 });
  control.injectFault('place', { kind: 'timeout', applied: true }, { probability: 0.1 });
  control.injectFault('place', { kind: 'noLocation' }, { probability: 0.1 });
  control.injectFault('getOrder', { kind: 'status', status: 500 }, { probability: 0.2 });
  control.injectFault('listOrders', { kind: 'html' }, { probability: 0.15 });

  // Each symbol's commands ask distinct quantities: an order can be only one command's.
  const commands: { commandId: string; symbol: string; side: 'BUY' | 'SELL'; quantity: bigint }[] = [];
  for (let q = 1n; q <= 8n; q++) {
    for (const symbol of SYMBOLS) {
      const side = q % 2n === 0n ? 'SELL' : 'BUY';
      commands.push({ commandId: await harness.request(symbol, side, q), symbol, side, quantity: q });
    }
  }

  const env = { TOKEN_ENCRYPTION_KEY: harness.key.toString('hex'), CHILD_REQUEST_TIMEOUT_MS: '300' };
  let last: Exited | undefined;
  const kills: string[] = [];
  for (let run = 0; ; run++) {
    const child = spawnTsx('test/support/executor-child.ts', [harness.storeUrl, harness.sim.baseUrl, harness.tokens.path], env);
    if (run >= KILLS) {
      last = await child.exited;
      break;
    }
    // At a random instant after 1 to 3 more orders reached the simulator: midway through the work however fast the machine is.
    const target = control.counters().ordersPlaced + 1 + Math.floor(random() * 3);
    const extraMs = Math.floor(random() * 30);
    const progressed = until(() => control.counters().ordersPlaced >= target, `order ${target} at the simulator`, 20_000, 5).then(() => sleep(extraMs));
    const exited = await Promise.race([child.exited, progressed.then(() => undefined)]);
    if (exited !== undefined) {
      last = exited;
      break;
    }
    await child.kill();
    kills.push(`${extraMs} ms after order ${target}: ${control.counters().ordersPlaced} orders`);
  }
  expect(kills.length, 'the children were killed midway, not after the work').toBeGreaterThan(1);
  expect(last?.code, last?.stderr).toBe(0);
  expect(JSON.parse(last!.stdout.trim().split('\n').at(-1)!)).toMatchObject({ open: 0 });

  const orders = control.orders();
  expect(orders).toHaveLength(commands.length);
  for (const c of commands) {
    const events = await harness.orderEvents(c.commandId);
    const placed = events.filter((e) => e.type === 'HedgeOrderPlaced');
    expect(placed, c.commandId).toHaveLength(1);
    const brokerOrderId = (placed[0]!.data as { brokerOrderId: string }).brokerOrderId;
    const order = orders.find((o) => o.orderId === brokerOrderId);
    expect(order, `${c.commandId}: order ${brokerOrderId}`).toMatchObject({ symbol: c.symbol, instruction: c.side, quantity: c.quantity.toString() });
    expect(orders.filter((o) => o.symbol === c.symbol && o.quantity === c.quantity.toString())).toHaveLength(1);
    const outcome = events.at(-1)!;
    expect(outcome.type, c.commandId).toBe('HedgeOrderFilled');
    const data = outcome.data as { filledQuantity: D.Decimal; averagePrice: D.Decimal };
    expect([D.format(data.filledQuantity), D.format(data.averagePrice)]).toEqual([order!.filledQuantity, order!.averagePrice]);
  }
}, 120_000);
