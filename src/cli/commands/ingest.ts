/**
 * ingest: one pass of the chain ingester, from the stream's last log (or the deployment block)
 * up to the confirmed head as of the start, then exit. Progress: blocks done/total, logs/s,
 * ETA (a bar on a TTY, a log line every 5 s elsewhere).
 */
import { configFrom, jsonOption, parse } from '../context.ts';
import { withStore } from '../../eventstore/url.ts';
import { IngesterService, ingesterSettings } from '../../chain/ingester-service.ts';
import { isNothingYet, nothingYetText, type StepOutcome, type StepProgress } from '../../chain/follower.ts';
import { progress } from '../progress.ts';

export async function ingest(argv: string[]): Promise<void> {
  const { values } = parse(argv, jsonOption);
  const config = configFrom(values);
  const settings = ingesterSettings(config, 'ingest');
  const bar = progress('ingest: blocks');
  const started = performance.now();
  const show = (p: StepProgress) => {
    const logsPerSecond = Math.round(p.logs / Math.max((performance.now() - started) / 1000, 1e-3));
    bar.update(Number(p.done - p.from + 1n), Number(p.to - p.from + 1n), `${p.logs} logs, ${logsPerSecond} logs/s`);
  };
  const outcome = await withStore(config.store, async (store) => {
    const service = await IngesterService.start(store, settings);
    try {
      return await service.catchUp(show);
    } finally {
      bar.finish();
      service.close();
    }
  });
  const seconds = Number(((performance.now() - started) / 1000).toFixed(3));
  process.stdout.write(values.json ? `${JSON.stringify(summary(outcome, seconds))}\n` : `ingest: ${sentence(outcome, seconds)}\n`);
}

/** The pass as JSON. A young chain (shorter than the depth, or below the deployment block) is no error: it says why, exit 0. */
const summary = (outcome: StepOutcome, seconds: number): object => {
  if (outcome === null) return { upToDate: true, elapsedSeconds: seconds };
  if (isNothingYet(outcome)) return { upToDate: false, nothingYet: outcome.nothingYet, reason: nothingYetText(outcome), elapsedSeconds: seconds };
  return { ...outcome, from: String(outcome.from), to: String(outcome.to), elapsedSeconds: seconds };
};

/** The pass in one line. */
const sentence = (outcome: StepOutcome, seconds: number): string => {
  if (outcome === null) return 'already at the confirmed head';
  if (isNothingYet(outcome)) return nothingYetText(outcome);
  return `blocks ${outcome.from}..${outcome.to}: ${outcome.appended} logs appended, ${outcome.removed} removed by reorgs, ${outcome.tokensRecorded} tokens recorded in ${seconds}s`;
};
