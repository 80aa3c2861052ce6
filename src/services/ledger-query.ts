/** Folds the stored ledger on demand into the read models; the answer equals a fold from scratch. */
import type { EventStore } from '../eventstore/port.ts';
import { LEDGER_PREFIXES, decodeEvent } from '../domain/events.ts';
import { LedgerView, type LedgerViewListener } from '../../projections/ledger.ts';
import type { AccumulatorConfig } from '../../projections/accumulator.ts';

export interface FoldProgress {
  (events: number): void;
}

export async function foldLedger(
  store: EventStore,
  config: AccumulatorConfig,
  listener: LedgerViewListener = {},
  progress?: FoldProgress,
): Promise<LedgerView> {
  const view = new LedgerView(config, listener);
  for await (const recorded of store.readAll({ prefixes: LEDGER_PREFIXES })) {
    const decoded = decodeEvent(recorded);
    if (decoded._tag === 'Right') view.apply(decoded.right);
    else view.applyCorrupt(recorded.id, decoded.left.message);
    if (progress && view.events % 10_000 === 0) progress(view.events);
  }
  return view;
}
