/**
 * The three Raindex IOrderBookV4 events the ledger reads (spec/IOrderBookV4.events.json),
 * as `as const` ABI so viem infers the decoded argument types, and their pure decoder.
 * No parameter is indexed: topic0 is the only topic, every field is in `data`.
 *
 * The decoder is written by hand for these three fixed layouts: viem's generic one is ten
 * times too slow for replay. It fails where viem fails (see abi-decoder.ts, which also lists
 * the two corners where the data's decoding is stricter), and also refuses a log with more
 * than topic0, which no event here emits; addresses come out lowercase, not checksummed.
 */
import type { AbiParameterToPrimitiveType, Hex } from 'viem';
import * as E from 'fp-ts/lib/Either.js';
import { decodeAbi, type AbiWords } from './abi-decoder.ts';
import { HexData } from './codecs.ts';
import type { EventData } from './events.ts';

const IO_COMPONENTS = [
  { type: 'address', name: 'token' },
  { type: 'uint8', name: 'decimals' },
  { type: 'uint256', name: 'vaultId' },
] as const;

const ORDER_V3_COMPONENTS = [
  { type: 'address', name: 'owner' },
  {
    type: 'tuple',
    name: 'evaluable',
    components: [
      { type: 'address', name: 'interpreter' },
      { type: 'address', name: 'store' },
      { type: 'bytes', name: 'bytecode' },
    ],
  },
  { type: 'tuple[]', name: 'validInputs', components: IO_COMPONENTS },
  { type: 'tuple[]', name: 'validOutputs', components: IO_COMPONENTS },
  { type: 'bytes32', name: 'nonce' },
] as const;

const CLEAR_CONFIG = {
  type: 'tuple',
  name: 'clearConfig',
  components: [
    { type: 'uint256', name: 'aliceInputIOIndex' },
    { type: 'uint256', name: 'aliceOutputIOIndex' },
    { type: 'uint256', name: 'bobInputIOIndex' },
    { type: 'uint256', name: 'bobOutputIOIndex' },
    { type: 'uint256', name: 'aliceBountyVaultId' },
    { type: 'uint256', name: 'bobBountyVaultId' },
  ],
} as const;

const CLEAR_STATE_CHANGE = {
  type: 'tuple',
  name: 'clearStateChange',
  components: [
    { type: 'uint256', name: 'aliceOutput' },
    { type: 'uint256', name: 'bobOutput' },
    { type: 'uint256', name: 'aliceInput' },
    { type: 'uint256', name: 'bobInput' },
  ],
} as const;

const TAKE_ORDER_CONFIG_V3 = {
  type: 'tuple',
  name: 'config',
  components: [
    { type: 'tuple', name: 'order', components: ORDER_V3_COMPONENTS },
    { type: 'uint256', name: 'inputIOIndex' },
    { type: 'uint256', name: 'outputIOIndex' },
    {
      type: 'tuple[]',
      name: 'signedContext',
      components: [
        { type: 'address', name: 'signer' },
        { type: 'bytes32[]', name: 'context' },
        { type: 'bytes', name: 'signature' },
      ],
    },
  ],
} as const;

export const clearV2Event = {
  name: 'ClearV2',
  type: 'event',
  inputs: [
    { type: 'address', name: 'sender' },
    { type: 'tuple', name: 'alice', components: ORDER_V3_COMPONENTS },
    { type: 'tuple', name: 'bob', components: ORDER_V3_COMPONENTS },
    CLEAR_CONFIG,
  ],
} as const;

export const afterClearEvent = {
  name: 'AfterClear',
  type: 'event',
  inputs: [{ type: 'address', name: 'sender' }, CLEAR_STATE_CHANGE],
} as const;

export const takeOrderV2Event = {
  name: 'TakeOrderV2',
  type: 'event',
  inputs: [
    { type: 'address', name: 'sender' },
    TAKE_ORDER_CONFIG_V3,
    { type: 'uint256', name: 'input' },
    { type: 'uint256', name: 'output' },
  ],
} as const;

/** The spec's ABI, event for event. */
export const orderbookAbi = [clearV2Event, afterClearEvent, takeOrderV2Event] as const;

// topic0 = keccak256 of the canonical signature (asserted against the ABI in the unit tests).
export const CLEAR_V2_TOPIC = '0x692ee69af2843c70772be93470669f3c73e583316a047b6bfefdae5629de37ce';
export const AFTER_CLEAR_TOPIC = '0x3f20e55919cca701abb2a40ab72542b25ea7eed63a50f979dd2cd3231e5f488d';
export const TAKE_ORDER_V2_TOPIC = '0xdb6a7f7c95db17afba67ed8b030afd2d087b130ec173b9f15ccde01097dd9353';

/**
 * The logs both ingestion paths take: eth_getLogs asks for these topic0s only, so ingest-file
 * keeps to them too (a later rescan of a block would otherwise "remove" a log still on chain).
 */
export const ORDERBOOK_TOPICS: readonly string[] = [CLEAR_V2_TOPIC, AFTER_CLEAR_TOPIC, TAKE_ORDER_V2_TOPIC];
export const hasOrderbookTopic = (topics: readonly string[]): boolean => ORDERBOOK_TOPICS.includes(topics[0] ?? '');

export type IO = AbiParameterToPrimitiveType<{ type: 'tuple'; components: typeof IO_COMPONENTS }>;
export type OrderV3 = AbiParameterToPrimitiveType<{ type: 'tuple'; components: typeof ORDER_V3_COMPONENTS }>;
export type ClearConfig = AbiParameterToPrimitiveType<typeof CLEAR_CONFIG>;
export type ClearStateChange = AbiParameterToPrimitiveType<typeof CLEAR_STATE_CHANGE>;
export type TakeOrderConfigV3 = AbiParameterToPrimitiveType<typeof TAKE_ORDER_CONFIG_V3>;

export interface ClearV2Args { readonly sender: Hex; readonly alice: OrderV3; readonly bob: OrderV3; readonly clearConfig: ClearConfig }
export interface AfterClearArgs { readonly sender: Hex; readonly clearStateChange: ClearStateChange }
export interface TakeOrderV2Args { readonly sender: Hex; readonly config: TakeOrderConfigV3; readonly input: bigint; readonly output: bigint }

export type OrderbookLog =
  | { readonly event: 'ClearV2'; readonly args: ClearV2Args }
  | { readonly event: 'AfterClear'; readonly args: AfterClearArgs }
  | { readonly event: 'TakeOrderV2'; readonly args: TakeOrderV2Args };

/** Why a log is none of the three events: another topic0, or fields that do not decode. */
export interface UndecodableLog {
  readonly event: null;
  readonly reason: 'unknown_event' | 'malformed_log';
  readonly detail: string;
  /** For a malformed log, the event its topic0 names: a clear's place in its transaction still counts. */
  readonly topic?: OrderbookLog['event'];
}

/**
 * Decodes a raw log; never throws (data that does not decode becomes `malformed_log`). Its data
 * is checked by the HexData codec first, the one check stored logs get.
 */
export function decodeOrderbookLog(topics: readonly Hex[], data: Hex): OrderbookLog | UndecodableLog {
  const checked = HexData.decode(data);
  return decodeLog(topics, E.isRight(checked) ? checked.right : undefined);
}

/**
 * `decodeOrderbookLog` for the data of a decoded OrderbookLogRecorded, which its HexData codec
 * has already checked and lowercased: the same answer without scanning the hex a second time.
 */
export function decodeRecordedOrderbookLog(log: Pick<EventData<'OrderbookLogRecorded'>, 'topics' | 'data'>): OrderbookLog | UndecodableLog {
  return decodeLog(log.topics, log.data);
}

/** `data` is lowercase hex of whole bytes, or undefined when it failed that check. */
function decodeLog(topics: readonly Hex[], data: Hex | undefined): OrderbookLog | UndecodableLog {
  const topic0 = topics[0]; // indexed: destructuring would run the array iterator for every log
  if (topic0 !== CLEAR_V2_TOPIC && topic0 !== AFTER_CLEAR_TOPIC && topic0 !== TAKE_ORDER_V2_TOPIC) {
    return { event: null, reason: 'unknown_event', detail: topic0 === undefined ? 'log has no topics' : `topic0 ${topic0} is not an IOrderBookV4 event we read` };
  }
  // An indexed variant of an event has the same topic0 but a different data layout.
  if (topics.length !== 1) return malformed(topic0, `expected 1 topic, got ${topics.length}`);
  if (data === undefined) return malformed(topic0, 'data is not 0x then whole bytes of hex');
  try {
    return decodeKnown(topic0, data);
  } catch (error) {
    return malformed(topic0, error instanceof Error ? error.message : String(error));
  }
}

const malformed = (topic0: KnownTopic, detail: string): UndecodableLog => ({ event: null, reason: 'malformed_log', detail, topic: TOPIC_EVENTS[topic0] });

type KnownTopic = typeof CLEAR_V2_TOPIC | typeof AFTER_CLEAR_TOPIC | typeof TAKE_ORDER_V2_TOPIC;

const TOPIC_EVENTS: Record<KnownTopic, OrderbookLog['event']> = { [CLEAR_V2_TOPIC]: 'ClearV2', [AFTER_CLEAR_TOPIC]: 'AfterClear', [TAKE_ORDER_V2_TOPIC]: 'TakeOrderV2' };

function decodeKnown(topic0: KnownTopic, data: Hex): OrderbookLog {
  switch (topic0) {
    case CLEAR_V2_TOPIC:
      return { event: 'ClearV2', args: decodeAbi(data, clearV2Args) };
    case AFTER_CLEAR_TOPIC:
      return { event: 'AfterClear', args: decodeAbi(data, afterClearArgs) };
    case TAKE_ORDER_V2_TOPIC:
      return { event: 'TakeOrderV2', args: decodeAbi(data, takeOrderV2Args) };
  }
}

// ---- layouts: each field read at its byte position, in the ABI's order (offsets before tails) ----

const clearV2Args = (w: AbiWords): ClearV2Args => ({
  sender: w.address(0),
  alice: order(w, w.tail(32, 0)),
  bob: order(w, w.tail(64, 0)),
  clearConfig: {
    aliceInputIOIndex: w.uint256(96),
    aliceOutputIOIndex: w.uint256(128),
    bobInputIOIndex: w.uint256(160),
    bobOutputIOIndex: w.uint256(192),
    aliceBountyVaultId: w.uint256(224),
    bobBountyVaultId: w.uint256(256),
  },
});

const afterClearArgs = (w: AbiWords): AfterClearArgs => ({
  sender: w.address(0),
  clearStateChange: { aliceOutput: w.uint256(32), bobOutput: w.uint256(64), aliceInput: w.uint256(96), bobInput: w.uint256(128) },
});

const takeOrderV2Args = (w: AbiWords): TakeOrderV2Args => ({
  sender: w.address(0),
  config: takeOrderConfig(w, w.tail(32, 0)),
  input: w.uint256(64),
  output: w.uint256(96),
});

/** TakeOrderConfigV3 at byte `c`. */
const takeOrderConfig = (w: AbiWords, c: number): TakeOrderConfigV3 => ({
  order: order(w, w.tail(c, c)),
  inputIOIndex: w.uint256(c + 32),
  outputIOIndex: w.uint256(c + 64),
  signedContext: signedContexts(w, w.tail(c + 96, c)),
});

/** OrderV3 at byte `o`. */
const order = (w: AbiWords, o: number): OrderV3 => ({
  owner: w.address(o),
  evaluable: evaluable(w, w.tail(o + 32, o)),
  validInputs: ios(w, w.tail(o + 64, o)),
  validOutputs: ios(w, w.tail(o + 96, o)),
  nonce: w.bytes32(o + 128),
});

/** EvaluableV3 at byte `e`. */
const evaluable = (w: AbiWords, e: number): OrderV3['evaluable'] => ({
  interpreter: w.address(e),
  store: w.address(e + 32),
  bytecode: w.bytes(e + 64, e),
});

/** IO[] whose length is at byte `a`: static 3-word tuples, inline. */
function ios(w: AbiWords, a: number): IO[] {
  const out: IO[] = [];
  for (let i = 0, n = w.length(a, 96), p = a + 32; i < n; i++, p += 96) {
    out.push({ token: w.address(p), decimals: w.uint8(p + 32), vaultId: w.uint256(p + 64) });
  }
  return out;
}

type SignedContextV1 = TakeOrderConfigV3['signedContext'][number];

/** SignedContextV1[] whose length is at byte `a`: dynamic tuples, so one offset slot each, counting from the first slot. */
function signedContexts(w: AbiWords, a: number): SignedContextV1[] {
  const out: SignedContextV1[] = [];
  for (let i = 0, n = w.length(a, 32), slots = a + 32; i < n; i++) {
    const t = w.tail(slots + 32 * i, slots);
    out.push({ signer: w.address(t), context: words(w, w.tail(t + 32, t)), signature: w.bytes(t + 64, t) });
  }
  return out;
}

/** bytes32[] whose length is at byte `a`. */
function words(w: AbiWords, a: number): Hex[] {
  const out: Hex[] = [];
  for (let i = 0, n = w.length(a, 32); i < n; i++) out.push(w.bytes32(a + 32 + 32 * i));
  return out;
}
