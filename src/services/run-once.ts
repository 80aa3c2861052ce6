/**
 * `run --once`: fold everything stored, let the executor finish every open command, fold the
 * outcomes back, and repeat until nothing is open.
 */
import type { EventStore } from '../eventstore/port.ts';
import type { Broker } from '../broker/port.ts';
import type { AccumulatorConfig } from '../../projections/accumulator.ts';
import { AccumulatorService } from './accumulator.ts';
import { ExecutorService } from './executor.ts';
import { logger } from '../log.ts';

export interface RunOnceReport {
  readonly rounds: number;
  readonly eventsFolded: number;
  readonly ordersCompleted: number;
}

export async function runOnce(store: EventStore, config: AccumulatorConfig, broker: Broker, options: { pollIntervalMs?: number } = {}): Promise<RunOnceReport> {
  const accumulator = new AccumulatorService({ store, config, log: logger('accumulator') });
  const executor = new ExecutorService({ store, broker, log: logger('executor'), pollIntervalMs: options.pollIntervalMs ?? 200 });
  await accumulator.restore();
  let rounds = 0, eventsFolded = 0, ordersCompleted = 0;
  for (;;) {
    rounds++;
    eventsFolded += await accumulator.catchUp();
    const completed = await executor.drainOpen();
    if (completed === 0) return { rounds, eventsFolded, ordersCompleted };
    ordersCompleted += completed;
  }
}
