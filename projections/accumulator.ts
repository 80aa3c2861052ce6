/**
 * The accumulator: a decider folded over the ledger's events in global order.
 *
 *   net = Σ onchain BUY − Σ onchain SELL − Σ broker SELL filled + Σ broker BUY filled   (per base ticker)
 *
 * `react` folds one stored event and returns the decisions it implies (HedgeRequested or
 * HedgingHalted), already applied to the returned state. Decisions are a pure function of
 * the events before them, so a replay reproduces every one of them, numbered the same way.
 * No I/O, no clock, no randomness; the state is O(symbols).
 */
import * as D from '../src/domain/decimal.ts';
import type { Side } from '../src/domain/codecs.ts';
import type { Envelope, EventData, LedgerEventOf } from '../src/domain/events.ts';
import { hedgeDecisionId } from '../src/domain/ids.ts';
import type { Position } from '../src/eventstore/port.ts';
import type { Fill, Rejection } from './fill.ts';
import { extract, initialExtractorState, type Extracted, type ExtractorState, type FillConfig } from './fills.ts';

export interface AccumulatorConfig {
  readonly fills: FillConfig;
  /** Consecutive broker failures of a symbol before hedging halts (rule 5). */
  readonly maxConsecutiveFailures: number;
  /** Base ticker → broker symbol (e.g. SPLG → SPYM); unmapped tickers trade as themselves. */
  readonly brokerSymbols: Readonly<Record<string, string>>;
}

export interface PendingHedge {
  readonly commandId: string;
  readonly side: Side;
  readonly quantity: D.Decimal;
}

export interface SymbolState {
  readonly net: D.Decimal;
  /** Price of the last onchain fill, recorded on commands as their reference price. */
  readonly lastPrice: D.Decimal | null;
  readonly pending: PendingHedge | null;
  readonly halted: boolean;
  readonly consecutiveFailures: number;
  /** Decisions (commands and halts) emitted so far; the next one is numbered decisions + 1. */
  readonly decisions: number;
}

/**
 * Each symbol's state, in the order the symbols first appeared: `slots` gives a symbol's index in
 * `states`. Immutable like the rest of the state: a fill makes a new table. Not a record of symbols:
 * on Node 20's V8 a copy of an object that was itself a copy takes the slow path, ~10 ns per key
 * (~3.5k instructions per replayed event at 20 symbols, cachegrind), and replay copies once per
 * fill; an array copies as one block, and tables share `slots` until a new symbol appears.
 */
export interface SymbolTable {
  readonly slots: ReadonlyMap<string, number>;
  readonly states: readonly SymbolState[];
}

export interface AccumulatorState {
  readonly extractor: ExtractorState;
  readonly symbols: SymbolTable;
  /** The symbol each open command belongs to, so broker outcomes find their position. */
  readonly openCommands: Readonly<Record<string, string>>;
  /** Global position of the last folded event: a redelivered event (at or before it) is a no-op. */
  readonly position: Position | null;
}

export type Decision = LedgerEventOf<'HedgeRequested'> | LedgerEventOf<'HedgingHalted'>;

export interface Reaction {
  readonly state: AccumulatorState;
  readonly decisions: readonly Decision[];
  readonly fills: readonly Fill[];
  /** Fills of logs a reorg removed, undone. */
  readonly reversals: readonly Fill[];
  readonly rejections: readonly Rejection[];
  /** Rejections of logs a reorg removed, taken back. */
  readonly withdrawnRejections: readonly Rejection[];
}

export const noSymbols: SymbolTable = { slots: new Map(), states: [] };

export const initialState: AccumulatorState = { extractor: initialExtractorState, symbols: noSymbols, openCommands: {}, position: null };

const emptySymbol: SymbolState = { net: D.ZERO, lastPrice: null, pending: null, halted: false, consecutiveFailures: 0, decisions: 0 };

/** A symbol's state in a table; a symbol never met has the empty state. */
export function stateIn(symbols: SymbolTable, symbol: string): SymbolState {
  const slot = symbols.slots.get(symbol);
  return slot === undefined ? emptySymbol : symbols.states[slot]!;
}

export const symbolState = (state: AccumulatorState, symbol: string): SymbolState => stateIn(state.symbols, symbol);

/** The table with `symbol`'s state replaced, or added after the others when it is new. */
function withState(symbols: SymbolTable, symbol: string, next: SymbolState): SymbolTable {
  const slot = symbols.slots.get(symbol);
  if (slot === undefined) return { slots: new Map(symbols.slots).set(symbol, symbols.states.length), states: [...symbols.states, next] };
  const states = symbols.states.slice();
  states[slot] = next;
  return { slots: symbols.slots, states };
}

/** The symbols in a table, in the order they first appeared. */
export const symbolsIn = (symbols: SymbolTable): string[] => [...symbols.slots.keys()];

const withSymbol = (state: AccumulatorState, symbol: string, next: SymbolState): AccumulatorState => ({
  ...state,
  symbols: withState(state.symbols, symbol, next),
});

// ---- evolve: facts change the state ----

type Symbols = AccumulatorState['symbols'];

// Fills fold into the symbol table alone, so a log costs one new state however many fills it has.
// The hot paths below list an object's fields rather than spread it: measured on replay, V8 (Node 20)
// copies a spread noticeably slower, and TypeScript still insists on every field of the literal.

/** Exposure changes only on fills: onchain BUY adds equity, SELL removes it. */
function applyFill(symbols: Symbols, fill: Fill): Symbols {
  const s = stateIn(symbols, fill.symbol);
  const net = fill.side === 'BUY' ? D.add(s.net, fill.shares) : D.sub(s.net, fill.shares);
  return withState(symbols, fill.symbol, { net, lastPrice: fill.price, pending: s.pending, halted: s.halted, consecutiveFailures: s.consecutiveFailures, decisions: s.decisions });
}

/** A reorg removed the log: its fill never happened. */
function undoFill(symbols: Symbols, fill: Fill): Symbols {
  const s = stateIn(symbols, fill.symbol);
  const net = fill.side === 'BUY' ? D.sub(s.net, fill.shares) : D.add(s.net, fill.shares);
  return withState(symbols, fill.symbol, { ...s, net });
}

/** The state after extraction moved the extractor and its fills (and reversals) moved the symbols; the same state when none did. */
function withExtracted(state: AccumulatorState, { state: extractor, fills, reversals }: Extracted): AccumulatorState {
  if (extractor === state.extractor && fills.length === 0 && reversals.length === 0) return state;
  return { extractor, symbols: reversals.reduce(undoFill, fills.reduce(applyFill, state.symbols)), openCommands: state.openCommands, position: state.position };
}

/** The symbols whose net the fills and reversals moved. */
const touchedBy = ({ fills, reversals }: Extracted): readonly string[] =>
  reversals.length === 0 ? fills.map((f) => f.symbol) : [...fills, ...reversals].map((f) => f.symbol);

/** A broker fill of q shares moves net by q toward zero: a SELL hedge removes unhedged equity. */
const brokerFillEffect = (side: Side, quantity: D.Decimal): D.Decimal => (side === 'SELL' ? D.neg(quantity) : quantity);

function closeCommand(state: AccumulatorState, commandId: string, filled: D.Decimal, failed: boolean): AccumulatorState {
  const symbol = state.openCommands[commandId];
  if (symbol === undefined) return state; // not open: a repeated or foreign outcome changes nothing
  const s = symbolState(state, symbol);
  if (s.pending?.commandId !== commandId) return state;
  const { [commandId]: _closed, ...openCommands } = state.openCommands;
  const next: SymbolState = {
    ...s,
    net: D.add(s.net, brokerFillEffect(s.pending.side, filled)),
    pending: null,
    consecutiveFailures: failed ? s.consecutiveFailures + 1 : 0,
  };
  return { ...withSymbol(state, symbol, next), openCommands };
}

/** Applies a decision to the state; idempotent, so reading our own decision back is a no-op. */
function applyDecision(state: AccumulatorState, decision: Decision): AccumulatorState {
  const { symbol, sequence } = decision.data;
  const s = symbolState(state, symbol);
  if (sequence <= s.decisions) return state;
  if (decision.type === 'HedgingHalted') return withSymbol(state, symbol, { ...s, halted: true, decisions: sequence });
  const { commandId, side, quantity } = decision.data;
  return {
    ...withSymbol(state, symbol, { ...s, pending: { commandId, side, quantity }, decisions: sequence }),
    openCommands: { ...state.openCommands, [commandId]: symbol },
  };
}

function resume(state: AccumulatorState, data: EventData<'HedgingResumed'>): AccumulatorState {
  const s = symbolState(state, data.symbol);
  return withSymbol(state, data.symbol, { ...s, halted: false, consecutiveFailures: 0 });
}

// ---- decide: what the state asks for now ----

/** Rule 2 and rule 5: a whole share of exposure and nothing pending → hedge, or halt after K failures. */
export function decide(config: AccumulatorConfig, state: AccumulatorState, symbol: string, causationId: string): Decision | null {
  const s = symbolState(state, symbol);
  if (s.pending !== null || s.halted || D.lt(D.abs(s.net), D.ONE)) return null;
  const sequence = s.decisions + 1;
  if (s.consecutiveFailures >= config.maxConsecutiveFailures) {
    const reason = `${s.consecutiveFailures} consecutive broker failures; resume with HedgingResumed`;
    return { type: 'HedgingHalted', data: { sequence, symbol, reason, consecutiveFailures: s.consecutiveFailures, causationId } };
  }
  return {
    type: 'HedgeRequested',
    data: {
      commandId: hedgeDecisionId(symbol, sequence),
      sequence,
      symbol,
      brokerSymbol: config.brokerSymbols[symbol] ?? symbol,
      side: D.sign(s.net) > 0 ? 'SELL' : 'BUY',
      quantity: D.floor(D.abs(s.net)),
      referencePrice: s.lastPrice,
      causationId,
    },
  };
}

// ---- react: evolve with one stored event, then decide for the symbols it touched ----

// Results are written out field by field, never as `{ state, ...nothing, touched }`: Node 20's V8
// takes a slow path (microseconds) for a spread followed by more fields, once per event here.
const NO_FILLS: readonly Fill[] = [];
const NO_REJECTIONS: readonly Rejection[] = [];
const NO_SYMBOLS: readonly string[] = [];

type Evolved = Omit<Reaction, 'decisions'> & { readonly touched: readonly string[] };

/** Facts that move no fill: the state, and the symbols whose answer may have changed. */
const moved = (state: AccumulatorState, touched: readonly string[] = NO_SYMBOLS): Evolved => ({ state, fills: NO_FILLS, reversals: NO_FILLS, rejections: NO_REJECTIONS, withdrawnRejections: NO_REJECTIONS, touched });

/** Folds facts of one event; returns the symbols whose answer may have changed. */
function evolve(config: AccumulatorConfig, state: AccumulatorState, event: Envelope): Evolved {
  switch (event.type) {
    case 'OrderbookLogRecorded':
    case 'OrderbookLogRemoved': // extraction takes the removed log back: reversals, withdrawn rejections
    case 'TokenMetadataRecorded': {
      const out = extract(config.fills, state.extractor, event);
      return { state: withExtracted(state, out), fills: out.fills, reversals: out.reversals, rejections: out.rejections, withdrawnRejections: out.withdrawnRejections, touched: touchedBy(out) };
    }
    case 'HedgeRequested':
    case 'HedgingHalted':
      return moved(applyDecision(state, event));
    case 'HedgeOrderFilled':
    case 'HedgeOrderFailed': {
      const symbol = state.openCommands[event.data.commandId];
      const next = closeCommand(state, event.data.commandId, event.data.filledQuantity, event.type === 'HedgeOrderFailed');
      return moved(next, symbol === undefined ? NO_SYMBOLS : [symbol]);
    }
    case 'HedgingResumed':
      return moved(resume(state, event.data), [event.data.symbol]);
    case 'HedgeOrderSubmitting':
    case 'HedgeOrderPlaced':
    case 'HedgeOrderCancelRequested':
      return moved(state); // rule 3: placing (or asking to cancel) moves nothing
  }
}

/** A decision as the ledger records it. */
export const isDecision = (event: Envelope): event is Envelope<Decision> => event.type === 'HedgeRequested' || event.type === 'HedgingHalted';

/** Rule 1: an event at or before the last one folded is a redelivery, a no-op. */
export const alreadyFolded = (state: AccumulatorState, event: Pick<Envelope, 'position'>): boolean => state.position !== null && event.position <= state.position;

/** Rule 1 and 6: folds one stored event (once), then decides for every symbol it touched. */
export function react(config: AccumulatorConfig, state: AccumulatorState, event: Envelope): Reaction {
  if (alreadyFolded(state, event)) return { state, decisions: [], fills: NO_FILLS, reversals: NO_FILLS, rejections: NO_REJECTIONS, withdrawnRejections: NO_REJECTIONS };
  const evolved = evolve(config, state, event);
  const { extractor, symbols, openCommands } = evolved.state;
  let next: AccumulatorState = { extractor, symbols, openCommands, position: event.position };
  const decisions: Decision[] = [];
  // Most events touch no symbol or one: no Set to dedupe them.
  const touched = evolved.touched.length < 2 ? evolved.touched : new Set(evolved.touched);
  for (const symbol of touched) {
    const decision = decide(config, next, symbol, event.id);
    if (decision) {
      decisions.push(decision);
      next = applyDecision(next, decision);
    }
  }
  return { state: next, decisions, fills: evolved.fills, reversals: evolved.reversals, rejections: evolved.rejections, withdrawnRejections: evolved.withdrawnRejections };
}
