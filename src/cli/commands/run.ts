/** run: the service. `--once` processes everything stored until nothing is open, then exits 0. */
import { accumulatorConfig, configFrom, parse, UsageError } from '../context.ts';
import { withStore } from '../../eventstore/url.ts';
import { executorTuning, runOnce } from '../../services/run-once.ts';
import { PaperBroker } from '../../broker/paper.ts';
import type { Broker } from '../../broker/port.ts';
import { createSchwabBroker, schwabSettings, type SchwabRuntime } from '../../broker/schwab/index.ts';
import type { ResolvedConfig } from '../../config.ts';
import { serve } from './serve.ts';

const BROKERS = ['paper', 'schwab'] as const;

/** The configured broker; Schwab's secrets come from the environment and are checked here, before anything runs. */
export function brokerFor(config: ResolvedConfig, runtime: SchwabRuntime = {}): Broker {
  if (config.broker === 'paper') return new PaperBroker({ fillDelayMs: config.paperFillDelayMs });
  return createSchwabBroker(schwabSettings(config, 'run --broker schwab'), runtime);
}

function withBrokerFlag(config: ResolvedConfig, flag: string | undefined): ResolvedConfig {
  if (flag === undefined) return config;
  const broker = BROKERS.find((b) => b === flag);
  if (broker === undefined) throw new UsageError(`--broker must be one of ${BROKERS.join(', ')} (got ${JSON.stringify(flag)})`);
  return { ...config, broker };
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parse(argv, { once: { type: 'boolean', default: false }, broker: { type: 'string' }, roles: { type: 'string' } });
  const config = withBrokerFlag(configFrom(values), values.broker);
  if (!values.once) return serve(config, values.roles, () => brokerFor(config));
  const fold = accumulatorConfig(config, 'run');
  const broker = brokerFor(config);
  const report = await withStore(config.store, (store) => runOnce(store, fold, broker, executorTuning(config)));
  if (values.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else process.stdout.write(`run --once: folded ${report.eventsFolded} events in ${report.rounds} rounds; ${report.ordersCompleted} orders completed\n`);
}
