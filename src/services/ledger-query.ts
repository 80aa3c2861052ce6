/** Folds the stored ledger on demand into the read models; the answer equals a fold from scratch. */
import { comparePositions, type EventStore, type Position } from '../eventstore/port.ts';
import { LEDGER_PREFIXES } from '../domain/events.ts';
import { LedgerView, type LedgerViewListener } from '../../projections/ledger.ts';
import type { AccumulatorConfig } from '../../projections/accumulator.ts';

/** Called every 10,000 events with how many are done and, when the store can tell, roughly how many there are. */
export type FoldProgress = (events: number, total: number | undefined) => void;

export async function foldLedger(
  store: EventStore,
  config: AccumulatorConfig,
  listener: LedgerViewListener = {},
  progress?: FoldProgress,
  upTo?: Position,
): Promise<LedgerView> {
  const view = new LedgerView(config, listener);
  const total = progress && (await store.estimateEventCount?.());
  for await (const recorded of store.readAll({ prefixes: LEDGER_PREFIXES })) {
    if (upTo !== undefined && comparePositions(recorded.position, upTo) > 0) break; // a second pass folds the events of the first, not those appended since
    view.applyStored(recorded);
    if (progress && view.events % 10_000 === 0) progress(view.events, total);
  }
  return view;
}
