/**
 * Builds realistic IOrderBookV4 logs (ABI-encoded with viem) and wraps them, like the
 * store would, into decoded `Envelope`s with the deterministic ids of the ingestion path.
 */
import * as E from 'fp-ts/lib/Either.js';
import { encodeAbiParameters, encodeEventTopics, keccak256, stringToHex, type Hex } from 'viem';
import { decodeEvent, encodeEvent, streams, type Envelope, type EventData, type LedgerEventOf } from '../../src/domain/events.ts';
import { logEventId, logRecordedAgainEventId, logRemovedAgainEventId, logRemovedEventId, uuidV5 } from '../../src/domain/ids.ts';
import { afterClearEvent, clearV2Event, orderbookAbi, takeOrderV2Event, type ClearConfig, type ClearStateChange, type OrderV3 } from '../../src/domain/orderbook-abi.ts';
import { asPosition, type Json } from '../../src/eventstore/port.ts';

export const CHAIN_ID = 8453;
export const ORDERBOOK = '0xd2938e7c9fe3597f78832ce780feb61945c377d7';
export const OUR_OWNER = '0x1111111111111111111111111111111111111111';
export const OTHER_OWNER = '0x2222222222222222222222222222222222222222';
export const SENDER = '0x3333333333333333333333333333333333333333';

/** Made-up token addresses, lowercase as the store keeps them. */
export const TOKEN = {
  USDC: '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913',
  tAAPL: '0xa000000000000000000000000000000000000001',
  AAPL0x: '0xa000000000000000000000000000000000000002',
  tSPLG: '0xa000000000000000000000000000000000000003',
  tGME: '0xa000000000000000000000000000000000000004',
  GME0x: '0xa000000000000000000000000000000000000005',
  GMEs1: '0xa000000000000000000000000000000000000006',
  WETH: '0x4200000000000000000000000000000000000006',
} as const satisfies Record<string, Hex>;

export type TokenName = keyof typeof TOKEN;

export interface IoSpec {
  readonly token: Hex;
  readonly decimals: number;
  readonly vaultId?: bigint;
}

export interface OrderSpec {
  readonly owner: Hex;
  readonly validInputs: readonly IoSpec[];
  readonly validOutputs: readonly IoSpec[];
  readonly nonce?: Hex;
}

/** USDC (6 decimals) or an equity (18 decimals) as an order IO. */
export const io = (name: TokenName, vaultId = 1n): IoSpec => ({ token: TOKEN[name], decimals: name === 'USDC' ? 6 : 18, vaultId });

/** A raw log's topics and data, as `eth_getLogs` returns them. */
export interface RawLog {
  readonly topics: readonly Hex[];
  readonly data: Hex;
}

/** No parameter is indexed, so topic0 is the only topic. */
const topicsOf = (eventName: 'ClearV2' | 'AfterClear' | 'TakeOrderV2'): Hex[] => [encodeEventTopics({ abi: orderbookAbi, eventName })[0]];

const ZERO_HASH: Hex = `0x${'00'.repeat(32)}`;

export const orderV3 = (spec: OrderSpec): OrderV3 => ({
  owner: spec.owner,
  evaluable: { interpreter: '0x4444444444444444444444444444444444444444', store: '0x5555555555555555555555555555555555555555', bytecode: '0x0102' },
  validInputs: spec.validInputs.map((x) => ({ token: x.token, decimals: x.decimals, vaultId: x.vaultId ?? 1n })),
  validOutputs: spec.validOutputs.map((x) => ({ token: x.token, decimals: x.decimals, vaultId: x.vaultId ?? 1n })),
  nonce: spec.nonce ?? ZERO_HASH,
});

export function clearV2Log(alice: OrderSpec, bob: OrderSpec, indexes: Partial<ClearConfig> = {}, sender: Hex = SENDER): RawLog {
  const clearConfig: ClearConfig = {
    aliceInputIOIndex: 0n,
    aliceOutputIOIndex: 0n,
    bobInputIOIndex: 0n,
    bobOutputIOIndex: 0n,
    aliceBountyVaultId: 0n,
    bobBountyVaultId: 0n,
    ...indexes,
  };
  return {
    topics: topicsOf('ClearV2'),
    data: encodeAbiParameters(clearV2Event.inputs, [sender, orderV3(alice), orderV3(bob), clearConfig]),
  };
}

export function afterClearLog(change: ClearStateChange, sender: Hex = SENDER): RawLog {
  return {
    topics: topicsOf('AfterClear'),
    data: encodeAbiParameters(afterClearEvent.inputs, [sender, change]),
  };
}

/** `input`/`output` are the taker's, as in the event. */
export function takeOrderV2Log(order: OrderSpec, take: { inputIOIndex?: bigint; outputIOIndex?: bigint; input: bigint; output: bigint }, sender: Hex = SENDER): RawLog {
  const config = { order: orderV3(order), inputIOIndex: take.inputIOIndex ?? 0n, outputIOIndex: take.outputIOIndex ?? 0n, signedContext: [] };
  return {
    topics: topicsOf('TakeOrderV2'),
    data: encodeAbiParameters(takeOrderV2Event.inputs, [sender, config, take.input, take.output]),
  };
}

/** Where a log sits: its transaction (a label, hashed) and log index; block defaults to 100. */
export interface LogPlace {
  readonly tx: string;
  readonly logIndex: number;
  readonly block?: bigint;
  readonly address?: string;
  readonly chainId?: number;
}

export const txHash = (label: string): Hex => keccak256(stringToHex(label));

/** A take where our order gave (SELL) or received (BUY) `tenths`/10 shares of `token` for 20 USDC each, recorded in `history` at (block, logIndex) of its own transaction. */
export function ourTake(history: History, side: 'SELL' | 'BUY', tenths: bigint, token: TokenName, block: bigint, logIndex = 0): EventData<'OrderbookLogRecorded'> {
  const shares = (tenths * 10n ** 18n) / 10n;
  const usdc = tenths * 2_000_000n;
  const order: OrderSpec = side === 'SELL'
    ? { owner: OUR_OWNER, validInputs: [io('USDC')], validOutputs: [io(token)] }
    : { owner: OUR_OWNER, validInputs: [io(token)], validOutputs: [io('USDC')] };
  const amounts = side === 'SELL' ? { input: shares, output: usdc } : { input: usdc, output: shares };
  return history.log(takeOrderV2Log(order, amounts), { tx: `tx ${block}`, logIndex, block }).data;
}

const hexQuantity = (n: bigint | number): string => `0x${n.toString(16)}`;

/**
 * Stored events in global order: each call appends one and returns its envelope, decoded
 * through the production codecs from the JSON the store would hold.
 */
export class History {
  private position = 0;
  private readonly revisions = new Map<string, bigint>();

  log(raw: RawLog, place: LogPlace): Envelope<LedgerEventOf<'OrderbookLogRecorded'>> {
    const chainId = place.chainId ?? CHAIN_ID;
    const address = place.address ?? ORDERBOOK;
    const transactionHash = txHash(place.tx);
    const block = place.block ?? 100n;
    const data = {
      chainId,
      address,
      blockNumber: hexQuantity(block),
      blockHash: keccak256(stringToHex(`block ${block}`)),
      transactionHash,
      transactionIndex: '0x0',
      logIndex: hexQuantity(place.logIndex),
      topics: [...raw.topics],
      data: raw.data,
    };
    const id = logEventId(chainId, transactionHash, place.logIndex);
    return this.event(streams.orderbook(chainId, address), 'OrderbookLogRecorded', id, data) as Envelope<LedgerEventOf<'OrderbookLogRecorded'>>;
  }

  token(address: string, symbol: string | null, reason: string | null = null, chainId = CHAIN_ID): Envelope {
    return this.event(streams.tokens(chainId), 'TokenMetadataRecorded', uuidV5(`token:${chainId}:${address}`), { chainId, address, symbol, reason });
  }

  /** Every token of TOKEN with its own name as symbol. */
  allTokens(): Envelope[] {
    return (Object.keys(TOKEN) as TokenName[]).map((name) => this.token(TOKEN[name], name));
  }

  /** An event of another fold (an operator's resume), which fill extraction passes through. */
  hedgingResumed(symbol: string): Envelope {
    return this.event(streams.hedgeControl(symbol), 'HedgingResumed', uuidV5(`resume:${symbol}:${this.position}`), { symbol, reason: 'test', at: '2025-01-01T00:00:00Z' });
  }

  /** The reorg compensation for a recorded log (first recorded, or recorded again): the original log, its id and a reason, under the ingester's id. */
  logRemoved(log: Envelope<LedgerEventOf<'OrderbookLogRecorded'>>): Envelope<LedgerEventOf<'OrderbookLogRemoved'>> {
    const { chainId, transactionHash, logIndex, blockHash } = log.data;
    const first = log.id === logEventId(chainId, transactionHash, Number(logIndex));
    const stored = encodeEvent(first ? logRemovedEventId(chainId, transactionHash, Number(logIndex), blockHash) : logRemovedAgainEventId(log.id), {
      type: 'OrderbookLogRemoved',
      data: { ...log.data, logId: log.id, reason: 'reorg' },
    });
    return this.event(streams.orderbook(chainId, log.data.address), stored.type, stored.id, stored.data) as Envelope<LedgerEventOf<'OrderbookLogRemoved'>>;
  }

  /** The removed log on chain again (its transaction mined again into `block`), recorded again under the ingester's id. */
  logRecordedAgain(removal: Envelope<LedgerEventOf<'OrderbookLogRemoved'>>, block: bigint): Envelope<LedgerEventOf<'OrderbookLogRecorded'>> {
    const { logId: _logId, reason: _reason, ...log } = removal.data;
    const stored = encodeEvent(logRecordedAgainEventId(removal.id), { type: 'OrderbookLogRecorded', data: { ...log, blockNumber: block, blockHash: keccak256(stringToHex(`block ${block}`)) } });
    return this.event(streams.orderbook(log.chainId, log.address), stored.type, stored.id, stored.data) as Envelope<LedgerEventOf<'OrderbookLogRecorded'>>;
  }

  /** Any event, stored and decoded like the others (its data as the store's JSON). */
  event(stream: string, type: string, id: string, data: Json): Envelope {
    const revision = this.revisions.get(stream) ?? 0n;
    this.revisions.set(stream, revision + 1n);
    this.position += 1;
    const decoded = decodeEvent({ stream, type, id, revision, position: asPosition(String(this.position).padStart(20, '0')), data, metadata: {} });
    if (E.isLeft(decoded)) throw decoded.left;
    return decoded.right;
  }
}

/** viem checksums decoded addresses; compare them lowercase. */
export const lowercased = (value: unknown): unknown =>
  typeof value === 'string' && /^0x[0-9a-fA-F]{40}$/.test(value)
    ? value.toLowerCase()
    : Array.isArray(value)
      ? value.map(lowercased)
      : typeof value === 'object' && value !== null
        ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, lowercased(v)]))
        : value;
