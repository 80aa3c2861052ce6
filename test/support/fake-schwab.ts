/**
 * The Schwab adapter over canned answers instead of HTTP: for answers the simulator does not
 * give (an order it would not make, a FILLED order without its executions).
 */
import type { Logger } from '../../src/log.ts';
import { SchwabBroker } from '../../src/broker/schwab/broker.ts';
import { WriteBudget } from '../../src/broker/schwab/write-budget.ts';
import type { TraderRequest } from '../../src/broker/schwab/trader-api.ts';
import { testLog } from './test-log.ts';

export interface CannedAnswer {
  readonly status: number;
  readonly body: string;
  readonly location?: string;
  /** The Date header, epoch ms (none by default). */
  readonly date?: number;
}

export function fakeSchwabBroker(answer: (request: TraderRequest) => CannedAnswer, now: () => Date, log: Logger = testLog('broker')): SchwabBroker {
  const api = { account: async (request: TraderRequest) => ({ location: null, retryAfterMs: undefined, correlId: 'canned', ...answer(request) }) };
  return new SchwabBroker({ api, budget: new WriteBudget(now), now, reconcileSkewMs: 60_000, log });
}
