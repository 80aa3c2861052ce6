/**
 * Fill extraction: a pure state machine folded over the stored events in global order.
 * Orderbook logs become fills of our orders (spec/orderbook-v4.md) or rejections with a
 * reason; token metadata events feed the symbol lookup; every other event passes through.
 *
 * A ClearV2 carries no amounts: it waits in the state until the AfterClear of the same
 * transaction pairs with it, and its fills (or rejections) are emitted then, under the
 * ClearV2's id. The paired AfterClear itself yields nothing.
 *
 * A reorg's OrderbookLogRemoved takes its log back: the log is replayed, and what it yields is
 * what its record yielded, undone (fills) or withdrawn (rejections).
 */
import * as t from 'io-ts';
import * as E from 'fp-ts/lib/Either.js';
import * as D from '../src/domain/decimal.ts';
import { BigIntString, NonNegativeInt, PositiveInt, describeErrors } from '../src/domain/codecs.ts';
import type { Envelope, EventData, LedgerEventOf } from '../src/domain/events.ts';
import { decodeRecordedOrderbookLog, type ClearV2Args, type ClearStateChange, type IO, type OrderbookLog, type OrderV3, type TakeOrderV2Args } from '../src/domain/orderbook-abi.ts';
import { baseTicker, isUsdc } from '../src/domain/symbols.ts';
import type { Fill, Rejection, RejectionReason } from './fill.ts';

export interface FillConfig {
  readonly chainId: number;
  /** Lowercase. */
  readonly orderbook: string;
  /** Our order owners, lowercase. */
  readonly owners: ReadonlySet<string>;
}

// ---- state ----

const TokenSymbol = t.type({ symbol: t.union([t.string, t.null]), reason: t.union([t.string, t.null]) });
/** A token's recorded ERC20 symbol, or null with the reason it could not be read. */
export type TokenSymbol = t.TypeOf<typeof TokenSymbol>;

const LogRef = t.type({ logId: t.string, chainId: PositiveInt, transactionHash: t.string, blockNumber: BigIntString, logIndex: NonNegativeInt });
/** Where a log sits on chain: what its fills and rejections cite. */
type LogRef = t.TypeOf<typeof LogRef>;

/** An IO's decimals as the ABI decoder reads them: a snapshot holding another number is refused, not settled with it. */
const Uint8 = t.refinement(NonNegativeInt, (n) => n <= 255, 'a uint8');
const Leg = t.type({ token: t.string, decimals: Uint8 });
/** One side of an order's trade: the token (lowercase) and the decimals the order's IO states. */
type Leg = t.TypeOf<typeof Leg>;

const OrderLegs = t.type({ owner: t.string, received: Leg, given: Leg });
/** What one of our orders trades in a log, before the amounts are known. */
type OrderLegs = t.TypeOf<typeof OrderLegs>;

const PartyRefusal = t.type({ reason: t.keyof({ not_ours: null, bad_io_index: null }), detail: t.string });
/** Why a clear's party yields no fill, known from the ClearV2 alone. */
type PartyRefusal = t.TypeOf<typeof PartyRefusal>;

const ReadableClearFields = t.type({ log: LogRef, alice: t.union([OrderLegs, PartyRefusal]), bob: t.union([OrderLegs, PartyRefusal]) });
/** The fold tells the two kinds apart by `undecodable` alone: a readable clear carrying one is refused, not read as unreadable. */
const ReadableClear = new t.Type<t.TypeOf<typeof ReadableClearFields>, t.OutputOf<typeof ReadableClearFields>, unknown>(
  'ReadableClear',
  ReadableClearFields.is,
  (u, c) => (typeof u === 'object' && u !== null && 'undecodable' in u ? t.failure(u, c, 'a readable clear is not marked undecodable') : ReadableClearFields.validate(u, c)),
  ReadableClearFields.encode,
);
/** A ClearV2 whose data did not decode (already rejected): it keeps its place, so the AfterClear after it is its own, not the next clear's. */
const UndecodableClear = t.type({ log: LogRef, undecodable: t.literal(true) });
const OpenClear = t.union([ReadableClear, UndecodableClear]);
/** A ClearV2 awaiting its AfterClear, reduced to what settling it needs (no re-decoding). */
type OpenClear = t.TypeOf<typeof OpenClear>;

export interface ExtractorState {
  /** Token address (lowercase) → recorded symbol. Copied only when a token event changes it. */
  readonly tokens: ReadonlyMap<string, TokenSymbol>;
  /** The ledger's pass over its logs: the current transaction's ClearV2s in log order, awaiting their AfterClear. */
  readonly openClears: readonly OpenClear[];
  /**
   * The removals' pass: the ClearV2s a reorg's removals have replayed, awaiting their removed AfterClear.
   * A pass of its own, so that a removal never pairs with nor closes a clear the ledger still counts.
   */
  readonly removedClears: readonly OpenClear[];
}

export const initialExtractorState: ExtractorState = { tokens: new Map(), openClears: [], removedClears: [] };

/** Where one pass over orderbook logs stands (the ledger's, or the removals'): the tokens known, and its open clears. */
type Pass = Pick<ExtractorState, 'tokens' | 'openClears'>;

/** JSON form of the state for snapshots: tokens as an object in insertion order, bigints as strings. */
const ExtractorStateJson = t.type({
  tokens: new t.Type<ReadonlyMap<string, TokenSymbol>, Record<string, t.OutputOf<typeof TokenSymbol>>, unknown>(
    'TokenMap',
    (u): u is ReadonlyMap<string, TokenSymbol> => u instanceof Map,
    (u, c) => {
      const record = t.record(t.string, TokenSymbol).validate(u, c);
      return E.isLeft(record) ? record : t.success(new Map(Object.entries(record.right)));
    },
    (tokens) => Object.fromEntries(tokens),
  ),
  openClears: t.array(OpenClear),
  removedClears: t.array(OpenClear),
});
export type SerializedExtractorState = t.OutputOf<typeof ExtractorStateJson>;

export const serializeExtractorState = (state: ExtractorState): SerializedExtractorState =>
  ExtractorStateJson.encode({ tokens: state.tokens, openClears: [...state.openClears], removedClears: [...state.removedClears] });

export class CorruptExtractorState extends Error {
  override readonly name = 'CorruptExtractorState';
}

/** Decodes a snapshot's extractor state; throws CorruptExtractorState naming the failing path. */
export function deserializeExtractorState(json: unknown): ExtractorState {
  const decoded = ExtractorStateJson.decode(json);
  if (E.isRight(decoded)) return decoded.right;
  const { path, reason } = describeErrors(decoded.left);
  throw new CorruptExtractorState(`extractor state invalid at ${path || '<root>'}: ${reason}`);
}

// ---- the fold ----

type OrderbookEvent = OrderbookLog['event'];

export interface Extracted {
  readonly state: ExtractorState;
  readonly fills: readonly Fill[];
  /** Fills of logs a reorg removed, to undo. */
  readonly reversals: readonly Fill[];
  readonly rejections: readonly Rejection[];
  /** Rejections of logs a reorg removed, taken back. */
  readonly withdrawnRejections: readonly Rejection[];
}

/** One log's outcome in a pass. */
interface Step {
  readonly state: Pass;
  readonly fills: readonly Fill[];
  readonly rejections: readonly Rejection[];
}

const NO_FILLS: readonly Fill[] = [];
const NO_REJECTIONS: readonly Rejection[] = [];

const unchanged = (state: ExtractorState): Extracted => ({ state, fills: NO_FILLS, reversals: NO_FILLS, rejections: NO_REJECTIONS, withdrawnRejections: NO_REJECTIONS });

/** Folds one stored event. */
export function extract(config: FillConfig, state: ExtractorState, event: Envelope): Extracted {
  switch (event.type) {
    case 'TokenMetadataRecorded':
      return unchanged(recordToken(config, state, event.data));
    case 'OrderbookLogRecorded':
      return record(config, state, event);
    case 'OrderbookLogRemoved':
      return takeBack(config, state, event);
    default:
      return unchanged(state);
  }
}

function recordToken(config: FillConfig, state: ExtractorState, token: EventData<'TokenMetadataRecorded'>): ExtractorState {
  if (token.chainId !== config.chainId) return state;
  const known = state.tokens.get(token.address);
  if (known?.symbol === token.symbol && known.reason === token.reason) return state;
  return { ...state, tokens: new Map(state.tokens).set(token.address, { symbol: token.symbol, reason: token.reason }) };
}

/**
 * A log on chain, folded in the ledger's pass. Once the ledger records a log of our orderbook again, a reorg's
 * removals are over: a ClearV2 still in their pass was closed unpaired in the ledger's pass by a log the reorg
 * kept (none of its removals closed it), and that rejection is withdrawn now.
 */
function record(config: FillConfig, state: ExtractorState, event: Envelope<LedgerEventOf<'OrderbookLogRecorded'>>): Extracted {
  const step = extractLog(config, state, event);
  const removalsOver = state.removedClears.length > 0 && ofOurOrderbook(config, event.data);
  if (!removalsOver && step.state.openClears === state.openClears) {
    return { state, fills: step.fills, reversals: NO_FILLS, rejections: step.rejections, withdrawnRejections: NO_REJECTIONS };
  }
  return {
    state: { tokens: state.tokens, openClears: step.state.openClears, removedClears: removalsOver ? [] : state.removedClears },
    fills: step.fills,
    reversals: NO_FILLS,
    rejections: step.rejections,
    withdrawnRejections: removalsOver ? unpaired(state.removedClears) : NO_REJECTIONS,
  };
}

/**
 * Takes back a log a reorg removed. The removals replay their logs in chain order in a pass of their own, where
 * a removed ClearV2 pairs again with its removed AfterClear and a removed transaction closes the one removed
 * before it, so the replay yields what the log's record yielded: fills to undo and rejections to withdraw,
 * never those of a log the ledger still counts. A ClearV2 still awaiting its AfterClear in the ledger's pass
 * yielded nothing yet (but its own rejection, if it did not decode), and no removed AfterClear follows it: it
 * leaves both passes, so that nothing ever closes it as unpaired.
 */
function takeBack(config: FillConfig, state: ExtractorState, removal: Envelope<LedgerEventOf<'OrderbookLogRemoved'>>): Extracted {
  const { logId, reason: _reason, ...log } = removal.data;
  const step = extractLog(config, { tokens: state.tokens, openClears: state.removedClears }, { ...removal, id: logId, type: 'OrderbookLogRecorded', data: log });
  const others = (clears: readonly OpenClear[]) => clears.filter((clear) => clear.log.logId !== logId);
  const awaiting = state.openClears.some((clear) => clear.log.logId === logId);
  return {
    state: {
      tokens: state.tokens,
      openClears: awaiting ? others(state.openClears) : state.openClears,
      removedClears: awaiting ? others(step.state.openClears) : step.state.openClears,
    },
    fills: NO_FILLS,
    reversals: step.fills,
    rejections: NO_REJECTIONS,
    withdrawnRejections: step.rejections,
  };
}

/** Another contract's or chain's logs are not part of our orderbook's transaction sequence. */
const ofOurOrderbook = (config: FillConfig, log: EventData<'OrderbookLogRecorded'>): boolean => log.chainId === config.chainId && log.address === config.orderbook;

function extractLog(config: FillConfig, state: Pass, event: Envelope<LedgerEventOf<'OrderbookLogRecorded'>>): Step {
  const log = event.data;
  const ref: LogRef = { logId: event.id, chainId: log.chainId, transactionHash: log.transactionHash, blockNumber: log.blockNumber, logIndex: Number(log.logIndex) };
  if (!ofOurOrderbook(config, log)) {
    return { state, fills: NO_FILLS, rejections: [rejection(ref, 'not_ours', `log of ${log.address} on chain ${log.chainId}, not of orderbook ${config.orderbook} on chain ${config.chainId}`)] };
  }
  const closed = closeTransaction(state, ref);
  const outcome = extractDecoded(config, closed.state, ref, log);
  if (closed.rejections.length === 0) return outcome;
  return { ...outcome, rejections: [...closed.rejections, ...outcome.rejections] };
}

/**
 * A new transaction leaves the previous one's open ClearV2s without their AfterClear for good. So does
 * a new pass over the same transaction (a log not after the newest open clear, or in another block):
 * the transaction recorded or removed again from its first log, the clears it left open must not take
 * its AfterClears.
 */
function closeTransaction(state: Pass, ref: LogRef): { state: Pass; rejections: readonly Rejection[] } {
  const newest = state.openClears[state.openClears.length - 1]?.log;
  if (newest === undefined || (newest.transactionHash === ref.transactionHash && newest.blockNumber === ref.blockNumber && newest.logIndex < ref.logIndex)) {
    return { state, rejections: NO_REJECTIONS };
  }
  return { state: { tokens: state.tokens, openClears: [] }, rejections: unpaired(state.openClears) };
}

/** Clears closed without their AfterClear. */
const unpaired = (clears: readonly OpenClear[]): Rejection[] =>
  clears
    .filter((clear) => !('undecodable' in clear)) // rejected as malformed already
    .map((clear) => rejection(clear.log, 'unpaired_clear', `no AfterClear followed it in transaction ${clear.log.transactionHash}`));

function extractDecoded(config: FillConfig, state: Pass, ref: LogRef, log: EventData<'OrderbookLogRecorded'>): Step {
  // The event codec has checked and lowercased the data: no second scan of its hex.
  const decoded = decodeRecordedOrderbookLog(log);
  switch (decoded.event) {
    case null:
      return undecodable(state, ref, rejection(ref, decoded.reason, decoded.detail), decoded.topic);
    case 'ClearV2':
      // New states are listed field by field: spreading costs measurably more on every log of a replay.
      return { state: { tokens: state.tokens, openClears: [...state.openClears, openClear(config, ref, decoded.args)] }, fills: NO_FILLS, rejections: NO_REJECTIONS };
    case 'AfterClear':
      return afterClear(state, ref, decoded.args.clearStateChange);
    case 'TakeOrderV2': {
      const { fills, rejections } = takeOutcome(config, state.tokens, ref, decoded.args);
      return { state, fills, rejections };
    }
  }
}

/**
 * A log that does not decode is rejected; if it is a clear's, it still takes its place in the
 * transaction's pairing, so one bad log cannot hand another clear's amounts to the next clear.
 */
function undecodable(state: Pass, ref: LogRef, malformed: Rejection, topic: OrderbookEvent | undefined): Step {
  if (topic === 'ClearV2') return { state: { tokens: state.tokens, openClears: [...state.openClears, { log: ref, undecodable: true }] }, fills: NO_FILLS, rejections: [malformed] };
  const clear = state.openClears[0];
  if (topic !== 'AfterClear' || clear === undefined) return { state, fills: NO_FILLS, rejections: [malformed] };
  // The clear it settles gets no amounts: rejected too, unless it was unreadable itself.
  const next: Pass = { tokens: state.tokens, openClears: state.openClears.slice(1) };
  const unsettled = 'undecodable' in clear ? [] : [rejection(clear.log, 'unpaired_clear', `its AfterClear (log ${ref.logIndex}) could not be decoded`)];
  return { state: next, fills: NO_FILLS, rejections: [...unsettled, malformed] };
}

// ---- clears ----

function openClear(config: FillConfig, ref: LogRef, { alice, bob, clearConfig: c }: ClearV2Args): OpenClear {
  return {
    log: ref,
    alice: orderLegs(config, alice, c.aliceInputIOIndex, c.aliceOutputIOIndex),
    bob: orderLegs(config, bob, c.bobInputIOIndex, c.bobOutputIOIndex),
  };
}

/** Pairs the AfterClear with the earliest open ClearV2 of its transaction and settles that clear. */
function afterClear(state: Pass, ref: LogRef, change: ClearStateChange): Step {
  const clear = state.openClears[0];
  if (clear === undefined) {
    return { state, fills: NO_FILLS, rejections: [rejection(ref, 'unpaired_after_clear', `no open ClearV2 before it in transaction ${ref.transactionHash}`)] };
  }
  const next: Pass = { tokens: state.tokens, openClears: state.openClears.slice(1) };
  if ('undecodable' in clear) {
    return { state: next, fills: NO_FILLS, rejections: [rejection(ref, 'unpaired_after_clear', `its ClearV2 (log ${clear.log.logIndex}) could not be decoded`)] };
  }
  if (isForeign(clear.alice) && isForeign(clear.bob)) {
    return { state: next, fills: NO_FILLS, rejections: [rejection(clear.log, 'not_ours', `alice: ${clear.alice.detail}; bob: ${clear.bob.detail}`)] };
  }
  // Both parties count when both are ours: their fills cancel for one symbol, never pick one.
  const outcomes = [
    partyOutcome(state.tokens, clear.log, 'alice', clear.alice, change.aliceInput, change.aliceOutput),
    partyOutcome(state.tokens, clear.log, 'bob', clear.bob, change.bobInput, change.bobOutput),
  ];
  return {
    state: next,
    fills: outcomes.filter((o): o is Fill => o !== null && !('reason' in o)),
    rejections: outcomes.filter((o): o is Rejection => o !== null && 'reason' in o),
  };
}

/** One party's fill or rejection; null for a party that is not ours beside one that is. */
function partyOutcome(tokens: ExtractorState['tokens'], log: LogRef, party: 'alice' | 'bob', legs: OrderLegs | PartyRefusal, received: bigint, given: bigint): Fill | Rejection | null {
  if (isForeign(legs)) return null;
  if (isRefusal(legs)) return rejection(log, legs.reason, `${party}: ${legs.detail}`);
  const fill = priceFill(tokens, legs, received, given);
  return isRefusal(fill) ? rejection(log, fill.reason, `${party}: ${fill.detail}`) : toFill(log, party, legs.owner, fill);
}

// ---- takes ----

/** The taker's input is what our order gave, the taker's output what it received. */
function takeOutcome(config: FillConfig, tokens: ExtractorState['tokens'], ref: LogRef, take: TakeOrderV2Args): Pick<Step, 'fills' | 'rejections'> {
  const legs = orderLegs(config, take.config.order, take.config.inputIOIndex, take.config.outputIOIndex);
  if (isRefusal(legs)) return { fills: NO_FILLS, rejections: [rejection(ref, legs.reason, legs.detail)] };
  const fill = priceFill(tokens, legs, take.output, take.input);
  if (isRefusal(fill)) return { fills: NO_FILLS, rejections: [rejection(ref, fill.reason, fill.detail)] };
  return { fills: [toFill(ref, 'take', legs.owner, fill)], rejections: NO_REJECTIONS };
}

// ---- from an order's legs and amounts to a priced fill ----

interface Refusal {
  readonly reason: RejectionReason;
  readonly detail: string;
}

const isRefusal = (x: object | string): x is Refusal => typeof x === 'object' && 'reason' in x;

const isForeign = (party: OrderLegs | PartyRefusal): party is PartyRefusal => isRefusal(party) && party.reason === 'not_ours';

/** Our order's received and given tokens, or why it has none (not ours, IO index out of range). */
function orderLegs(config: FillConfig, order: OrderV3, inputIOIndex: bigint, outputIOIndex: bigint): OrderLegs | PartyRefusal {
  const owner = order.owner; // addresses come out of the ABI decoder lowercase, as config's do
  if (!config.owners.has(owner)) return { reason: 'not_ours', detail: `owner ${owner} is not ours` };
  const received = ioAt(order.validInputs, inputIOIndex);
  const given = ioAt(order.validOutputs, outputIOIndex);
  if (received === undefined || given === undefined) {
    return {
      reason: 'bad_io_index',
      detail: `input IO index ${inputIOIndex} of ${order.validInputs.length} validInputs, output IO index ${outputIOIndex} of ${order.validOutputs.length} validOutputs`,
    };
  }
  return { owner, received, given };
}

const ioAt = (ios: readonly IO[], index: bigint): Leg | undefined => {
  const io = index < ios.length ? ios[Number(index)] : undefined; // bigint < number compares exactly
  return io && { token: io.token, decimals: io.decimals };
};

interface PricedFill {
  readonly symbol: string;
  readonly tokenSymbol: string;
  readonly side: Fill['side'];
  readonly shares: D.Decimal;
  readonly usdc: D.Decimal;
  readonly price: D.Decimal;
}

/** Applies the spec's checks in order: zero amount, unknown token, hedgeable pair, exact amounts and price. */
function priceFill(tokens: ExtractorState['tokens'], legs: OrderLegs, received: bigint, given: bigint): PricedFill | Refusal {
  if (received === 0n || given === 0n) return { reason: 'zero_amount', detail: `received ${received} of ${legs.received.token}, gave ${given} of ${legs.given.token}` };
  const receivedSymbol = symbolOf(tokens, legs.received.token);
  if (isRefusal(receivedSymbol)) return receivedSymbol;
  const givenSymbol = symbolOf(tokens, legs.given.token);
  if (isRefusal(givenSymbol)) return givenSymbol;
  const trade = tradeOf(receivedSymbol, givenSymbol);
  if (trade === null) return { reason: 'not_hedgeable', detail: `received ${receivedSymbol}, gave ${givenSymbol}: not USDC against a tokenized equity` };
  const selling = trade.side === 'SELL';
  const shares = scaled(selling ? given : received, selling ? legs.given : legs.received);
  if (isRefusal(shares)) return shares;
  const usdc = scaled(selling ? received : given, selling ? legs.received : legs.given);
  if (isRefusal(usdc)) return usdc;
  const price = D.div(usdc, shares);
  if (D.isZero(price)) return { reason: 'nonsensical_price', detail: `${D.format(usdc)} USDC for ${D.format(shares)} ${trade.tokenSymbol} rounds to a price of 0` };
  // Fields listed, not spread: on Node 20's V8 `{ ...trade, more }` takes a slow path (~3 µs per fill).
  return { side: trade.side, symbol: trade.symbol, tokenSymbol: trade.tokenSymbol, shares, usdc, price };
}

/** Our order gave equity for USDC: onchain SELL; it received equity for USDC: onchain BUY. Null: not hedgeable. */
function tradeOf(receivedSymbol: string, givenSymbol: string): Trade | null {
  if (isUsdc(receivedSymbol)) return equityTrade('SELL', givenSymbol);
  if (isUsdc(givenSymbol)) return equityTrade('BUY', receivedSymbol);
  return null;
}

type Trade = Pick<PricedFill, 'side' | 'symbol' | 'tokenSymbol'>;

const equityTrade = (side: Fill['side'], tokenSymbol: string): Trade | null => {
  const symbol = baseTicker(tokenSymbol);
  return symbol === null ? null : { side, symbol, tokenSymbol };
};

function symbolOf(tokens: ExtractorState['tokens'], token: string): string | Refusal {
  const known = tokens.get(token);
  if (known === undefined) return { reason: 'unknown_token', detail: `no symbol recorded for token ${token} before this log` };
  return known.symbol ?? { reason: 'unknown_token', detail: `symbol of token ${token} unreadable: ${known.reason ?? 'no reason recorded'}` };
}

/** The amount in whole tokens; an IO claiming more than 18 decimals may not fit our exact scale. */
function scaled(amount: bigint, leg: Leg): D.Decimal | Refusal {
  try {
    return D.fromUnits(amount, leg.decimals);
  } catch (error) {
    return { reason: 'nonsensical_price', detail: `amount of ${leg.token} not exact at 18 decimals: ${(error as Error).message}` };
  }
}

const toFill = (log: LogRef, party: Fill['party'], owner: string, fill: PricedFill): Fill => ({
  logId: log.logId,
  party,
  chainId: log.chainId,
  transactionHash: log.transactionHash,
  blockNumber: log.blockNumber,
  logIndex: log.logIndex,
  owner,
  // Listed rather than spread, like priceFill's result (V8's slow path for spreads among fields).
  side: fill.side,
  symbol: fill.symbol,
  tokenSymbol: fill.tokenSymbol,
  shares: fill.shares,
  usdc: fill.usdc,
  price: fill.price,
});

/**
 * The readable ClearV2s still waiting for their AfterClear where the fold stopped: no later log
 * has closed their transaction (it is the ledger's last so far), so the fold has not rejected them.
 * Queries list them as `unpaired_clear`, so that such a clear is never left out; an AfterClear of
 * the same transaction stored later still pairs with it.
 */
export const awaitingAfterClear = (state: ExtractorState): Rejection[] =>
  state.openClears.flatMap((clear) =>
    'undecodable' in clear ? [] : [rejection(clear.log, 'unpaired_clear', `no AfterClear follows it in transaction ${clear.log.transactionHash}, the ledger's last so far`)],
  );

const rejection = (log: LogRef, reason: RejectionReason, detail: string): Rejection => ({
  eventId: log.logId,
  transactionHash: log.transactionHash,
  blockNumber: log.blockNumber,
  logIndex: log.logIndex,
  reason,
  detail,
});
