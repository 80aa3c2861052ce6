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
import { comparePositions, type EventStore, type NewEvent, type Position } from '../../eventstore/port.ts';
import { decodeEvent, encodeEvent, streams } from '../../domain/events.ts';
import { hedgeDecisionId } from '../../domain/ids.ts';
import type { Decision } from '../../../projections/accumulator.ts';

export async function replay(argv: string[]): Promise<void> {
  const { values } = parse(argv, jsonOption);
  const started = performance.now();
  const { view, check } = await withLedger(values, 'replay', async (store, fold) => {
    const bar = progress('replaying'); // once the configuration has set the log level: off a terminal it logs
    const derived = new Map<string, NewEvent>();
    try {
      const view = await foldLedger(store, fold, { progress: (n, total) => bar.update(n, total), listener: { onDecision: (d) => void derived.set(keyOf(d), appended(d)) } });
      return { view, check: await checkRecorded(store, view.accumulator.position, derived) };
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

/** A decision as the accumulator appends it: its id and the codec's JSON, compared as text (the same text, the same decision). */
const appended = (d: Decision): NewEvent => encodeEvent(hedgeDecisionId(d.data.symbol, d.data.sequence), d);

/**
 * The recorded decisions up to the last event the replay folded (later ones it has not derived yet), and those of
 * them it derived otherwise or not at all. Unreadable ones are left out: the replay counts them as `corrupt_event`.
 */
async function checkRecorded(store: EventStore, upTo: Position | null, derived: ReadonlyMap<string, NewEvent>): Promise<{ recorded: number; differing: string[] }> {
  let recorded = 0;
  const differing: string[] = [];
  if (upTo === null) return { recorded, differing };
  for await (const event of store.readAll({ prefixes: [streams.hedgeCommands('')] })) {
    if (comparePositions(event.position, upTo) > 0) break;
    const decoded = decodeEvent(event);
    if (decoded._tag === 'Left') continue;
    recorded++;
    const decision = decoded.right as Decision;
    const ours = derived.get(keyOf(decision));
    const theirs = encodeEvent(event.id, decision);
    if (ours === undefined || JSON.stringify(ours) !== JSON.stringify(theirs)) differing.push(`decision ${decision.data.sequence} for ${decision.data.symbol} (recorded ${describe(theirs)}; derived ${ours === undefined ? 'none' : describe(ours)})`);
  }
  return { recorded, differing };
}

const describe = (e: NewEvent): string => `${e.type} ${JSON.stringify(e.data)}`;
