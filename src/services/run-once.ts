/**
 * `run --once`: fold everything stored, let the executor finish every open command, fold the
 * outcomes back, and repeat until nothing is open. A broker that needs an operator (re-auth)
 * ends the run with that error: a one-shot run cannot wait for a human.
 */
import type { EventStore } from '../eventstore/port.ts';
import type { Broker } from '../broker/port.ts';
import type { AccumulatorConfig } from '../../projections/accumulator.ts';
import { AccumulatorService } from './accumulator.ts';
import { ExecutorService, type ExecutorTuning } from './executor.ts';
import { logger } from '../log.ts';

export interface RunOnceReport {
  readonly rounds: number;
  readonly eventsFolded: number;
  readonly ordersCompleted: number;
}

export async function runOnce(store: EventStore, config: AccumulatorConfig, broker: Broker, tuning: ExecutorTuning = {}, signal?: AbortSignal): Promise<RunOnceReport> {
  const accumulator = new AccumulatorService({ store, config, log: logger('accumulator') });
  const executor = new ExecutorService({ store, broker, log: logger('executor'), ...tuning });
  await accumulator.restore();
  let rounds = 0, eventsFolded = 0, ordersCompleted = 0;
  for (;;) {
    rounds++;
    eventsFolded += await accumulator.catchUp();
    const completed = await executor.drainOpen(signal, 'fail');
    if (completed === 0 || signal?.aborted) return { rounds, eventsFolded, ordersCompleted };
    ordersCompleted += completed;
  }
}
