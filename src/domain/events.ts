/**
 * The ledger's events: names, streams and io-ts codecs. Decimals and bigints travel as
 * strings; raw logs keep the hex form `eth_getLogs` returned.
 */
import * as t from 'io-ts';
import * as E from 'fp-ts/lib/Either.js';
import { Address, arrayOf, DecimalString, Hash32, HexData, IsoTime, NonNegativeInt, PositiveInt, SafeHexQuantity, Side, struct, Uuid, WholeShares, describeErrors } from './codecs.ts';
import { CorruptEvent } from '../eventstore/errors.ts';
import { hedgeDecisionId } from './ids.ts';
import type { Json, NewEvent, Position, RecordedEvent } from '../eventstore/port.ts';

// ---- streams (categories contain no '-'; EventStoreDB takes the text before the first '-') ----

export const streams = {
  orderbook: (chainId: number, orderbook: string) => `orderbook-${chainId}_${orderbook.toLowerCase()}`,
  tokens: (chainId: number) => `token-${chainId}`,
  hedgeCommands: (symbol: string) => `hedgecmd-${symbol}`,
  hedgeOrder: (commandId: string) => `hedgeorder-${commandId}`,
  hedgeControl: (symbol: string) => `hedgectl-${symbol}`,
} as const;

/** Every stream prefix the ledger's folds read, in $all order. */
export const LEDGER_PREFIXES = ['orderbook-', 'token-', 'hedgecmd-', 'hedgeorder-', 'hedgectl-'] as const;

// ---- chain facts ----

/** One log exactly as `eth_getLogs` returned it, plus the chain it came from. */
export const OrderbookLogRecorded = struct({
  chainId: PositiveInt,
  address: Address,
  blockNumber: SafeHexQuantity,
  blockHash: Hash32,
  transactionHash: Hash32,
  transactionIndex: SafeHexQuantity,
  logIndex: SafeHexQuantity,
  topics: arrayOf(Hash32),
  data: HexData,
});

/**
 * Compensation for a log the chain no longer contains (a reorg): folds treat the log as never
 * having happened. It carries the whole original log, so a fold can undo its effect without
 * remembering every log it has seen.
 */
export const OrderbookLogRemoved = t.intersection([
  OrderbookLogRecorded,
  struct({
    /** Id of the OrderbookLogRecorded event it compensates. */
    logId: Uuid,
    reason: t.string,
  }),
]);

/** ERC20 metadata, read once from the chain; `symbol` null with a reason when unreadable. */
export const TokenMetadataRecorded = struct({
  chainId: PositiveInt,
  address: Address,
  symbol: t.union([t.string, t.null]),
  reason: t.union([t.string, t.null]),
});

// ---- the accumulator's decisions (hedgecmd-<SYMBOL>, one writer) ----

export const HedgeRequested = struct({
  commandId: Uuid,
  /** 1-based decision number within the symbol's stream. */
  sequence: PositiveInt,
  symbol: t.string,
  brokerSymbol: t.string,
  side: Side,
  quantity: WholeShares,
  /** The symbol's last onchain price when the decision was made (the paper broker fills at it). */
  referencePrice: t.union([DecimalString, t.null]),
  /** Id of the event whose folding produced this decision. */
  causationId: Uuid,
});

export const HedgingHalted = struct({
  sequence: PositiveInt,
  symbol: t.string,
  reason: t.string,
  consecutiveFailures: NonNegativeInt,
  causationId: Uuid,
});

// ---- operator (hedgectl-<SYMBOL>) ----

export const HedgingResumed = struct({
  symbol: t.string,
  reason: t.string,
  at: IsoTime,
});

// ---- executor outcomes (hedgeorder-<commandId>, one writer) ----

export const HedgeOrderSubmitting = struct({
  commandId: Uuid,
  broker: t.string,
  symbol: t.string,
  side: Side,
  quantity: WholeShares,
  /** When the intent was recorded; reconciliation looks for broker orders entered after it (minus skew). */
  at: IsoTime,
});

export const HedgeOrderPlaced = struct({
  commandId: Uuid,
  brokerOrderId: t.string,
  at: IsoTime,
});

export const HedgeOrderFilled = struct({
  commandId: Uuid,
  filledQuantity: WholeShares,
  averagePrice: DecimalString,
  at: IsoTime,
});

/** The executor asks the broker to cancel an order open past its deadline (recorded before the request). */
export const HedgeOrderCancelRequested = struct({
  commandId: Uuid,
  brokerOrderId: t.string,
  reason: t.string,
  at: IsoTime,
});

/** Terminal failure (rejected, cancelled, expired…), keeping any partial fill. */
export const HedgeOrderFailed = struct({
  commandId: Uuid,
  reason: t.string,
  filledQuantity: WholeShares,
  averagePrice: t.union([DecimalString, t.null]),
  at: IsoTime,
});

export const eventCodecs = {
  OrderbookLogRecorded,
  OrderbookLogRemoved,
  TokenMetadataRecorded,
  HedgeRequested,
  HedgingHalted,
  HedgingResumed,
  HedgeOrderSubmitting,
  HedgeOrderPlaced,
  HedgeOrderCancelRequested,
  HedgeOrderFilled,
  HedgeOrderFailed,
} as const;

type Codecs = typeof eventCodecs;
export type EventType = keyof Codecs;

/** The decoded payload of each event type. */
export type EventData<K extends EventType> = t.TypeOf<Codecs[K]>;

/** A decoded domain event: `{ type, data }` discriminated by type. */
export type LedgerEvent = { [K in EventType]: { readonly type: K; readonly data: EventData<K> } }[EventType];
export type LedgerEventOf<K extends EventType> = Extract<LedgerEvent, { type: K }>;

/** A decoded event with where it sits in the store. */
export type Envelope<Ev extends LedgerEvent = LedgerEvent> = Ev & {
  readonly stream: string;
  readonly id: string;
  readonly revision: bigint;
  readonly position: Position;
  readonly metadata: Json;
};

/** The stream prefix (category and '-') every event type is stored under: one writer each, see `streams`. */
const STREAM_PREFIX: { readonly [K in EventType]: (typeof LEDGER_PREFIXES)[number] } = {
  OrderbookLogRecorded: 'orderbook-',
  OrderbookLogRemoved: 'orderbook-',
  TokenMetadataRecorded: 'token-',
  HedgeRequested: 'hedgecmd-',
  HedgingHalted: 'hedgecmd-',
  HedgingResumed: 'hedgectl-',
  HedgeOrderSubmitting: 'hedgeorder-',
  HedgeOrderPlaced: 'hedgeorder-',
  HedgeOrderCancelRequested: 'hedgeorder-',
  HedgeOrderFilled: 'hedgeorder-',
  HedgeOrderFailed: 'hedgeorder-',
};

/**
 * Each event type's name, stream prefix and codec, by the name a stored row carries: one lookup of
 * the row's type text (a new string per row) instead of one per table it would index, and the
 * envelope carries the constant name, which the folds' switches on `type` compare by identity.
 */
const EVENT_TYPES = new Map(
  (Object.keys(eventCodecs) as EventType[]).map((type) => [type as string, { type, prefix: STREAM_PREFIX[type], codec: eventCodecs[type] as t.Type<unknown, unknown, unknown> }]),
);

/**
 * Decodes a stored event, or a CorruptEvent naming stream, revision and the failing path. An event
 * of a type that belongs in another stream is corrupt too: no writer puts it there, and a fold
 * would otherwise take it for what its type says (a fill, a decision, an outcome).
 */
export function decodeEvent(recorded: RecordedEvent): E.Either<CorruptEvent, Envelope> {
  const { stream, revision } = recorded;
  const known = EVENT_TYPES.get(recorded.type);
  if (known === undefined) return E.left(new CorruptEvent(stream, revision, 'type', `unknown event type ${JSON.stringify(recorded.type)}`));
  const { type, prefix, codec } = known;
  if (!stream.startsWith(prefix)) return E.left(new CorruptEvent(stream, revision, 'type', `a ${type} belongs in a ${prefix}… stream`));
  const data = codec.decode(recorded.data);
  if (data._tag === 'Left') {
    const { path, reason } = describeErrors(data.left);
    return E.left(new CorruptEvent(stream, revision, path ? `data.${path}` : 'data', reason));
  }
  const event = { type, data: data.right, stream, id: recorded.id, revision, position: recorded.position, metadata: recorded.metadata } as Envelope;
  const misplaced = misplacedEvent(event);
  return misplaced === undefined ? E.right(event) : E.left(misplaced);
}

/**
 * A stream named after what it holds holds nothing else: a readable event there whose data names
 * something else is corrupt, or every fold would file it under what its data says.
 */
function misplacedEvent(event: Envelope): CorruptEvent | undefined {
  const { stream, revision } = event;
  switch (event.type) {
    case 'OrderbookLogRecorded':
    case 'OrderbookLogRemoved': {
      const { chainId, address } = event.data;
      const own = orderbookStream(chainId, address);
      if (stream === own) return undefined;
      return new CorruptEvent(stream, revision, stream.startsWith(`orderbook-${chainId}_`) ? 'data.address' : 'data.chainId', `a log of orderbook ${address} on chain ${chainId} belongs in ${own}`);
    }
    case 'TokenMetadataRecorded': {
      const own = streams.tokens(event.data.chainId);
      if (stream === own) return undefined;
      return new CorruptEvent(stream, revision, 'data.chainId', `token metadata of chain ${event.data.chainId} belongs in ${own}`);
    }
    case 'HedgeOrderSubmitting':
    case 'HedgeOrderPlaced':
    case 'HedgeOrderCancelRequested':
    case 'HedgeOrderFilled':
    case 'HedgeOrderFailed': {
      const { commandId } = event.data;
      if (stream === streams.hedgeOrder(commandId)) return undefined;
      return new CorruptEvent(stream, revision, 'data.commandId', `an event of command ${commandId} in the order stream of ${stream.slice(STREAM_PREFIX[event.type].length)}`);
    }
    case 'HedgeRequested':
    case 'HedgingHalted':
      return misplacedDecision(event);
    case 'HedgingResumed':
      if (stream === streams.hedgeControl(event.data.symbol)) return undefined;
      return new CorruptEvent(stream, revision, 'data.symbol', `a resume of ${event.data.symbol} in another symbol's stream`);
    default:
      return undefined;
  }
}

/** The stream last named by `orderbookStream`, with the chain and address it names. */
let lastOrderbook = { chainId: 0, address: '', stream: '' };

/**
 * `streams.orderbook`, remembered for the last orderbook asked about: every stored log is checked
 * against its stream, and a ledger's logs nearly all come from one orderbook. Comparing the address
 * costs less than building the name again and flattening it to compare.
 */
function orderbookStream(chainId: number, address: string): string {
  if (chainId !== lastOrderbook.chainId || address !== lastOrderbook.address) lastOrderbook = { chainId, address, stream: streams.orderbook(chainId, address) };
  return lastOrderbook.stream;
}

/**
 * Decision n of a symbol (command or halt) is stored in `hedgecmd-<SYMBOL>` at revision n - 1, a command
 * with the id hedgeDecisionId(symbol, n): one that is not where and what the accumulator writes would have
 * a fold adopt a decision nobody made (and number its next one after it), and the executor place it.
 */
function misplacedDecision({ stream, revision, type, data }: Envelope<LedgerEventOf<'HedgeRequested' | 'HedgingHalted'>>): CorruptEvent | undefined {
  const { symbol, sequence } = data;
  if (stream !== streams.hedgeCommands(symbol)) return new CorruptEvent(stream, revision, 'data.symbol', `a decision for ${symbol} in another symbol's stream`);
  if (revision !== BigInt(sequence - 1)) return new CorruptEvent(stream, revision, 'data.sequence', `decision ${sequence} stored at revision ${revision}, not ${sequence - 1}`);
  if (type === 'HedgeRequested' && data.commandId !== hedgeDecisionId(symbol, sequence)) {
    return new CorruptEvent(stream, revision, 'data.commandId', `${data.commandId} is not the id of decision ${sequence} of ${symbol}`);
  }
  return undefined;
}

/** Encodes a domain event for appending under the given id. */
export function encodeEvent(id: string, event: LedgerEvent, metadata?: Json): NewEvent {
  const codec = eventCodecs[event.type] as t.Type<unknown, Json, unknown>;
  const data = codec.encode(event.data);
  return metadata === undefined ? { id, type: event.type, data } : { id, type: event.type, data, metadata };
}

