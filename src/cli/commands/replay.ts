/** replay: rebuild every projection from the start of the log; print count, time, rate and a state hash. */
import { jsonOption, parse, withLedger } from '../context.ts';
import { foldLedger } from '../../services/ledger-query.ts';
import { stateHash } from '../../services/state-hash.ts';
import { progress } from '../progress.ts';

export async function replay(argv: string[]): Promise<void> {
  const { values } = parse(argv, jsonOption);
  const started = performance.now();
  const view = await withLedger(values, 'replay', async (store, fold) => {
    const bar = progress('replaying'); // once the configuration has set the log level: off a terminal it logs
    try {
      return await foldLedger(store, fold, { progress: (n, total) => bar.update(n, total) });
    } finally {
      bar.finish();
    }
  });
  const seconds = (performance.now() - started) / 1000;
  const report = {
    events: view.events,
    elapsedSeconds: Number(seconds.toFixed(3)),
    eventsPerSecond: Math.round(view.events / Math.max(seconds, 1e-9)),
    symbols: view.symbols().length,
    hedges: view.hedges.size,
    stateHash: stateHash(view),
  };
  if (values.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else {
    process.stdout.write(
      `replayed ${report.events} events in ${report.elapsedSeconds}s (${report.eventsPerSecond} events/s)\n` +
        `symbols ${report.symbols}, hedges ${report.hedges}\nstate hash ${report.stateHash}\n`,
    );
  }
}
