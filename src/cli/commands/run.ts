/** run: the service. `--once` processes everything stored until nothing is open, then exits 0. */
import { accumulatorConfig, configFrom, parse, UsageError, withStore } from '../context.ts';
import { runOnce } from '../../services/run-once.ts';
import { PaperBroker } from '../../broker/paper.ts';
import type { Broker } from '../../broker/port.ts';
import type { ResolvedConfig } from '../../config.ts';

function brokerFor(config: ResolvedConfig): Broker {
  if (config.broker === 'paper') return new PaperBroker();
  throw new UsageError(`broker ${config.broker} is not available in this build yet; use --broker paper`);
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parse(argv, { once: { type: 'boolean', default: false }, broker: { type: 'string' } });
  const config = configFrom(values);
  const broker = brokerFor(values.broker === undefined ? config : { ...config, broker: values.broker as ResolvedConfig['broker'] });
  if (!values.once) throw new UsageError('only `run --once` is available in this build; the long-running service lands with the chain ingester');
  const report = await withStore(config, (store) => runOnce(store, accumulatorConfig(config, 'run'), broker));
  if (values.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else process.stdout.write(`run --once: folded ${report.eventsFolded} events in ${report.rounds} rounds; ${report.ordersCompleted} orders completed\n`);
}
