/**
 * The three Raindex IOrderBookV4 events the ledger reads (spec/IOrderBookV4.events.json),
 * as `as const` ABI so viem infers the decoded argument types, and their pure decoder.
 * No parameter is indexed: topic0 is the only topic, every field is in `data`.
 */
import { BaseError, decodeEventLog, type AbiParameterToPrimitiveType, type Hex } from 'viem';

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
}

// Single-event ABIs: we dispatch on topic0 ourselves, so viem matches one selector per log.
const clearV2Abi = [clearV2Event] as const;
const afterClearAbi = [afterClearEvent] as const;
const takeOrderV2Abi = [takeOrderV2Event] as const;

/** Decodes a raw log with viem; never throws (a decoder error becomes `malformed_log`). */
export function decodeOrderbookLog(topics: readonly Hex[], data: Hex): OrderbookLog | UndecodableLog {
  const [topic0] = topics;
  if (topic0 !== CLEAR_V2_TOPIC && topic0 !== AFTER_CLEAR_TOPIC && topic0 !== TAKE_ORDER_V2_TOPIC) {
    return { event: null, reason: 'unknown_event', detail: topic0 === undefined ? 'log has no topics' : `topic0 ${topic0} is not an IOrderBookV4 event we read` };
  }
  // An indexed variant of an event has the same topic0 but a different data layout.
  if (topics.length !== 1) return { event: null, reason: 'malformed_log', detail: `expected 1 topic, got ${topics.length}` };
  try {
    return decodeKnown(topic0, data);
  } catch (error) {
    return { event: null, reason: 'malformed_log', detail: decoderMessage(error) };
  }
}

type KnownTopic = typeof CLEAR_V2_TOPIC | typeof AFTER_CLEAR_TOPIC | typeof TAKE_ORDER_V2_TOPIC;

function decodeKnown(topic0: KnownTopic, data: Hex): OrderbookLog {
  switch (topic0) {
    case CLEAR_V2_TOPIC:
      return { event: 'ClearV2', args: present(decodeEventLog({ abi: clearV2Abi, topics: [topic0], data }).args) };
    case AFTER_CLEAR_TOPIC:
      return { event: 'AfterClear', args: present(decodeEventLog({ abi: afterClearAbi, topics: [topic0], data }).args) };
    case TAKE_ORDER_V2_TOPIC:
      return { event: 'TakeOrderV2', args: present(decodeEventLog({ abi: takeOrderV2Abi, topics: [topic0], data }).args) };
  }
}

/** viem types `args` as optional for a log without indexed topics; in strict mode it is always there. */
function present<A>(args: A | undefined): A {
  if (args === undefined) throw new Error('log decoded to no arguments');
  return args;
}

/** viem's one-line message, without its docs link and version footer. */
const decoderMessage = (error: unknown): string =>
  error instanceof BaseError ? error.shortMessage : error instanceof Error ? error.message : String(error);
