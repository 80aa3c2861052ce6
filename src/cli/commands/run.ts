/** run: the service. `--once` processes everything stored until nothing is open, then exits 0. */
import { accumulatorConfig, configFrom, jsonOption, parse, UsageError } from '../context.ts';
import { withStore } from '../../eventstore/url.ts';
import { runOnce } from '../../services/run-once.ts';
import { executorTuning } from '../../services/executor.ts';
import { PaperBroker } from '../../broker/paper.ts';
import type { Broker } from '../../broker/port.ts';
import { createSchwabBroker, schwabSettings } from '../../broker/schwab/index.ts';
import { ConfigProblems, type ResolvedConfig } from '../../config.ts';
import { serve } from './serve.ts';
import { lockExecutor } from '../../services/executor-lock.ts';
import type { EventStore } from '../../eventstore/port.ts';
import type { AccumulatorConfig } from '../../../projections/accumulator.ts';

const BROKERS = ['paper', 'schwab'] as const;

/** The configured broker; Schwab's secrets come from the environment and are checked here, before anything runs. */
export function brokerFor(config: ResolvedConfig): Broker {
  if (config.broker === 'paper') return new PaperBroker({ fillDelayMs: config.paperFillDelayMs });
  return createSchwabBroker(schwabSettings(config, 'run --broker schwab'));
}

function withBrokerFlag(config: ResolvedConfig, flag: string | undefined): ResolvedConfig {
  if (flag === undefined) return config;
  const broker = BROKERS.find((b) => b === flag);
  if (broker === undefined) throw new UsageError(`--broker must be one of ${BROKERS.join(', ')} (got ${JSON.stringify(flag)})`);
  return { ...config, broker };
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parse(argv, { once: { type: 'boolean', default: false }, broker: { type: 'string' }, roles: { type: 'string' }, ...jsonOption });
  // Each flag of one mode is refused by the other, never ignored.
  if (values.once && values.roles !== undefined) throw new UsageError('run --once takes no --roles: it accumulates and executes (drop --once to run a subset of the roles)');
  if (!values.once && values.json) throw new UsageError('run takes --json only with --once (the service logs JSON lines on stderr)');
  const config = withBrokerFlag(configFrom(values), values.broker);
  if (!values.once) return serve(config, values.roles, () => brokerFor(config));
  const problems = new ConfigProblems();
  const fold = problems.check(() => accumulatorConfig(config, 'run'));
  const broker = problems.check(() => brokerFor(config));
  problems.throwIfAny();
  // Only what is stored is processed: a SQLite file that does not exist is a mistyped path, not an empty ledger that is done.
  const report = await withStore(config.store, (store) => runOnceLocked(store, config, fold!, broker!), { create: false });
  if (values.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else process.stdout.write(`run --once: folded ${count(report.eventsFolded, 'event')} in ${count(report.rounds, 'round')}; ${count(report.ordersCompleted, 'order')} completed\n`);
}

const count = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? '' : 's'}`;

/** `run --once` is an executor too: it holds the store's executor lock while it runs, and stops if another executor takes it over. */
async function runOnceLocked(store: EventStore, config: ResolvedConfig, fold: AccumulatorConfig, broker: Broker) {
  const lock = await lockExecutor(config.store, { staleMs: config.executorLockStaleMs });
  try {
    const report = await runOnce(store, fold, broker, executorTuning(config), lock.lost);
    lock.lost.throwIfAborted();
    return report;
  } finally {
    await lock.release();
  }
}
