/**
 * replay: rebuild every projection from the start of the log; print count, time, rate and a state hash. It also
 * compares each recorded decision with the one it derives, and warns, naming each, when they differ: the hash is
 * then not that of what was hedged.
 */
import { jsonOption, parse, withLedger } from '../context.ts';
import { foldLedger } from '../../services/ledger-query.ts';
import { stateHash } from '../../services/state-hash.ts';
import { progress } from '../progress.ts';
import { logger } from '../../log.ts';
import type { NewEvent } from '../../eventstore/port.ts';
import { encodeEvent, type Envelope } from '../../domain/events.ts';
import { decisionEvent, recordedAs } from '../../services/accumulator.ts';
import type { Decision } from '../../../projections/accumulator.ts';
import type { LedgerViewListener } from '../../../projections/ledger.ts';

export async function replay(argv: string[]): Promise<void> {
  const { values } = parse(argv, jsonOption);
  const started = performance.now();
  const { view, check } = await withLedger(values, 'replay', async (store, fold) => {
    const bar = progress('replaying'); // once the configuration has set the log level: off a terminal it logs
    const check = new DecisionCheck();
    try {
      return { view: await foldLedger(store, fold, { progress: (n, total) => bar.update(n, total), listener: check }), check };
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
    recordedDecisions: check.recorded,
    differingDecisions: check.differing.length,
  };
  if (values.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else {
    process.stdout.write(
      `replayed ${report.events} events in ${report.elapsedSeconds}s (${report.eventsPerSecond} events/s)\n` +
        `symbols ${report.symbols}, hedges ${report.hedges}\nstate hash ${report.stateHash}\n` +
        `recorded decisions ${report.recordedDecisions}, ${report.differingDecisions === 0 ? 'each one derived again' : `${report.differingDecisions} not derived again`}\n`,
    );
  }
  if (check.differing.length > 0) {
    logger('replay').warn(
      { differing: check.differing },
      `${check.differing.length} of ${check.recorded} recorded decisions differ from the ones this replay derives: this state is not what was hedged. ` +
        'The settings given (owners, orderbook, symbol map, failure limit) are not those that wrote this ledger, a stored event it depends on is corrupt, or something else wrote its decisions',
    );
  }
}

const keyOf = (d: Decision): string => `${d.data.symbol}#${d.data.sequence}`;

/**
 * Each recorded decision against the one the fold derived (the ledger records a decision after the event it derives
 * from, so it is derived by then), in the replay's one pass. Unreadable ones are left out: the replay counts them as
 * `corrupt_event`.
 */
class DecisionCheck implements LedgerViewListener {
  recorded = 0;
  readonly differing: string[] = [];
  private readonly derived = new Map<string, NewEvent>();

  onDecision(decision: Decision): void {
    this.derived.set(keyOf(decision), decisionEvent(decision));
  }

  onRecordedDecision(recorded: Envelope<Decision>): void {
    this.recorded++;
    const ours = this.derived.get(keyOf(recorded));
    if (ours !== undefined && recordedAs(recorded, ours)) return;
    const { symbol, sequence } = recorded.data;
    this.differing.push(`decision ${sequence} for ${symbol} (recorded ${describe(encodeEvent(recorded.id, recorded))}; derived ${ours === undefined ? 'none' : describe(ours)})`);
  }
}

const describe = (e: NewEvent): string => `${e.type} ${JSON.stringify(e.data)}`;
