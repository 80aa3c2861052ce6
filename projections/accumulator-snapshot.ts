/**
 * The accumulator's state as JSON text, for checkpoints. Decoded with io-ts like any other
 * boundary; a snapshot from another format version, or folded under another configuration, is
 * refused rather than guessed at (the service then folds the log again from the start).
 */
import * as t from 'io-ts';
import * as E from 'fp-ts/lib/Either.js';
import { DecimalString, NonNegativeInt, Side, Uuid, WholeShares, describeErrors } from '../src/domain/codecs.ts';
import { asPosition } from '../src/eventstore/port.ts';
import { noSymbols, stateIn, symbolsIn, type AccumulatorConfig, type AccumulatorState, type SymbolState, type SymbolTable } from './accumulator.ts';
import { CorruptExtractorState, deserializeExtractorState, serializeExtractorState } from './fills.ts';

/**
 * Bumped whenever the fold's rules change what a state holds, not only its shape: a snapshot folded
 * under the old rules would be resumed with a state the current fold never derives. 5: an undecodable
 * clear keeps its place among its transaction's open clears, and a reorg's removals replaying a
 * transaction close the clears it left open instead of pairing with them. 6: a reorg's removals pair
 * their clears in a pass of their own (`removedClears`), apart from the ledger's open clears.
 */
const SNAPSHOT_VERSION = 6;

const Snapshot = t.type({
  version: t.literal(SNAPSHOT_VERSION),
  /** The configuration the state was folded under (`configKey`). */
  config: t.string,
  extractor: t.unknown,
  symbols: t.record(
    t.string,
    t.type({
      net: DecimalString,
      lastPrice: t.union([DecimalString, t.null]),
      // Only what the fold derives: a state it never holds is refused (and folded again), never resumed.
      pending: t.union([t.type({ commandId: Uuid, side: Side, quantity: WholeShares }), t.null]),
      halted: t.boolean,
      consecutiveFailures: NonNegativeInt,
      decisions: NonNegativeInt,
    }),
  ),
  openCommands: t.record(t.string, t.string),
  position: t.union([t.string, t.null]),
});

export class SnapshotError extends Error {
  override readonly name = 'SnapshotError';
}

/** What of the configuration the fold's state depends on, as canonical JSON (sets and maps sorted). */
function configKey(config: AccumulatorConfig): string {
  const { chainId, orderbook, owners } = config.fills;
  const brokerSymbols = Object.entries(config.brokerSymbols).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify({ chainId, orderbook, owners: [...owners].sort(), maxConsecutiveFailures: config.maxConsecutiveFailures, brokerSymbols });
}

export const serializeState = (state: AccumulatorState, config: AccumulatorConfig): string =>
  JSON.stringify(
    Snapshot.encode({ version: SNAPSHOT_VERSION, config: configKey(config), ...state, extractor: serializeExtractorState(state.extractor), symbols: symbolRecord(state.symbols) }),
  );

/** The symbol table as the snapshot writes it: a record of each symbol's state, in the table's order. */
const symbolRecord = (symbols: SymbolTable): Record<string, SymbolState> => Object.fromEntries(symbolsIn(symbols).map((symbol) => [symbol, stateIn(symbols, symbol)]));

/** The symbol table of a snapshot's record. */
function symbolTable(record: Record<string, SymbolState>): SymbolTable {
  const entries = Object.entries(record);
  if (entries.length === 0) return noSymbols;
  return { slots: new Map(entries.map(([symbol], slot) => [symbol, slot])), states: entries.map(([, state]) => state) };
}

/**
 * The settings (`owners`, `brokerSymbols`…) a snapshot was folded under that differ from `config`'s;
 * none when they are the same, or when the text holds no configuration to compare.
 */
export function settingsChanged(text: string, config: AccumulatorConfig): string[] {
  const folded = E.chainW((json: unknown) => t.type({ config: t.string }).decode(json))(E.tryCatch(() => JSON.parse(text) as unknown, () => undefined));
  if (E.isLeft(folded)) return [];
  const settings = E.tryCatch(() => JSON.parse(folded.right.config) as Record<string, unknown>, () => undefined);
  if (E.isLeft(settings)) return [];
  const now = JSON.parse(configKey(config)) as Record<string, unknown>;
  return Object.keys(now).filter((key) => JSON.stringify(settings.right[key]) !== JSON.stringify(now[key]));
}

/** The state a snapshot holds; SnapshotError when it is not one, or was folded under another configuration. */
export function deserializeState(text: string, config: AccumulatorConfig): AccumulatorState {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SnapshotError(`accumulator snapshot is not JSON: ${(e as Error).message}`);
  }
  const decoded = Snapshot.decode(json);
  if (E.isLeft(decoded)) {
    const { path, reason } = describeErrors(decoded.left);
    throw new SnapshotError(`accumulator snapshot invalid at ${path || '<root>'}: ${reason}`);
  }
  if (decoded.right.config !== configKey(config)) throw new SnapshotError(`accumulator snapshot was folded under another configuration: ${decoded.right.config}`);
  const { extractor, symbols, openCommands, position } = decoded.right;
  return { extractor: extractorState(extractor), symbols: symbolTable(symbols), openCommands, position: position === null ? null : asPosition(position) };
}

function extractorState(json: unknown): AccumulatorState['extractor'] {
  try {
    return deserializeExtractorState(json);
  } catch (error) {
    if (error instanceof CorruptExtractorState) throw new SnapshotError(error.message, { cause: error });
    throw error;
  }
}
