/**
 * The accumulator's state as JSON text, for checkpoints. Decoded with io-ts like any other
 * boundary; a snapshot from another format version is refused rather than guessed at.
 */
import * as t from 'io-ts';
import * as E from 'fp-ts/lib/Either.js';
import { DecimalString, Side, describeErrors } from '../src/domain/codecs.ts';
import { asPosition } from '../src/eventstore/port.ts';
import type { AccumulatorState } from './accumulator.ts';
import { deserializeExtractorState, serializeExtractorState } from './fills.ts';

const SNAPSHOT_VERSION = 3;

const Snapshot = t.type({
  version: t.literal(SNAPSHOT_VERSION),
  extractor: t.unknown,
  symbols: t.record(
    t.string,
    t.type({
      net: DecimalString,
      lastPrice: t.union([DecimalString, t.null]),
      pending: t.union([t.type({ commandId: t.string, side: Side, quantity: DecimalString }), t.null]),
      halted: t.boolean,
      consecutiveFailures: t.number,
      decisions: t.number,
    }),
  ),
  openCommands: t.record(t.string, t.string),
  position: t.union([t.string, t.null]),
});

export class SnapshotError extends Error {
  override readonly name = 'SnapshotError';
}

export const serializeState = (state: AccumulatorState): string =>
  JSON.stringify(Snapshot.encode({ version: SNAPSHOT_VERSION, ...state, extractor: serializeExtractorState(state.extractor) }));

export function deserializeState(text: string): AccumulatorState {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SnapshotError(`accumulator snapshot is not JSON: ${(e as Error).message}`);
  }
  const decoded = Snapshot.decode(json);
  if (E.isLeft(decoded)) {
    const { path, reason } = describeErrors(decoded.left);
    throw new SnapshotError(`accumulator snapshot invalid at ${path || '<root>'}: ${reason}; delete the checkpoint to rebuild from the log`);
  }
  const { extractor, symbols, openCommands, position } = decoded.right;
  return { extractor: deserializeExtractorState(extractor), symbols, openCommands, position: position === null ? null : asPosition(position) };
}
