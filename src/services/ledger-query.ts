/** Folds the stored ledger on demand into the read models; the answer equals a fold from scratch. */
import { comparePositions, type EventStore, type Position } from '../eventstore/port.ts';
import { LEDGER_PREFIXES } from '../domain/events.ts';
import { LedgerView, type LedgerViewListener } from '../../projections/ledger.ts';
import type { AccumulatorConfig } from '../../projections/accumulator.ts';

/** Called every 10,000 events with how many are done and, when the store can tell, roughly how many there are. */
export type FoldProgress = (events: number, total: number | undefined) => void;

export interface FoldOptions {
  /** Told of every fill, reversal, rejection and withdrawn rejection as the fold meets it. */
  readonly listener?: LedgerViewListener;
  readonly progress?: FoldProgress | undefined;
  /** The last position to fold: a second pass folds the events of the first, not those appended since. */
  readonly upTo?: Position | undefined;
  /** Once aborted, the fold stops and returns the view so far: for rows nobody reads any more. */
  readonly signal?: AbortSignal;
  /** Asked before each event; a promise it returns is waited for first (a slow reader catching up with the rows). */
  readonly backpressure?: () => Promise<void> | undefined;
}

export async function foldLedger(store: EventStore, config: AccumulatorConfig, options: FoldOptions = {}): Promise<LedgerView> {
  const { listener, progress, upTo, signal, backpressure } = options;
  const view = new LedgerView(config, listener);
  const total = progress && (await store.estimateEventCount?.());
  for await (const recorded of store.readAll({ prefixes: LEDGER_PREFIXES })) {
    const slowReader = backpressure?.();
    if (slowReader) await slowReader;
    if (signal?.aborted || (upTo !== undefined && comparePositions(recorded.position, upTo) > 0)) break;
    view.applyStored(recorded);
    if (progress && view.events % 10_000 === 0) progress(view.events, total);
  }
  return view;
}
