/**
 * ingest: one pass of the chain ingester, from the stream's last log (or the deployment block)
 * up to the confirmed head as of the start, then exit. Progress: blocks done/total, logs/s,
 * ETA (a bar on a TTY, a log line every 5 s elsewhere).
 */
import { configFrom, parse } from '../context.ts';
import { withStore } from '../../eventstore/url.ts';
import { IngesterService, ingesterSettings } from '../../chain/ingester-service.ts';
import type { StepProgress } from '../../chain/follower.ts';
import { progress } from '../progress.ts';

export async function ingest(argv: string[]): Promise<void> {
  const { values } = parse(argv, {});
  const config = configFrom(values);
  const settings = ingesterSettings(config, 'ingest');
  const bar = progress('ingest: blocks');
  const started = performance.now();
  const show = (p: StepProgress) => {
    const logsPerSecond = Math.round(p.logs / Math.max((performance.now() - started) / 1000, 1e-3));
    bar.update(Number(p.done - p.from + 1n), Number(p.to - p.from + 1n), `${p.logs} logs, ${logsPerSecond} logs/s`);
  };
  const report = await withStore(config.store, async (store) => {
    const service = await IngesterService.start(store, settings);
    try {
      return await service.catchUp(show);
    } finally {
      bar.finish();
      service.close();
    }
  });
  const seconds = Number(((performance.now() - started) / 1000).toFixed(3));
  const summary = report === null ? { upToDate: true, elapsedSeconds: seconds } : { ...report, from: String(report.from), to: String(report.to), elapsedSeconds: seconds };
  if (values.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else if (report === null) process.stdout.write(`ingest: already at the confirmed head\n`);
  else {
    process.stdout.write(
      `ingest: blocks ${report.from}..${report.to}: ${report.appended} logs appended, ${report.removed} removed by reorgs, ` +
        `${report.tokensRecorded} tokens recorded in ${seconds}s\n`,
    );
  }
}
