/**
 * The replay path decodes a stored log's data without scanning it again (`decodeRecordedOrderbookLog`
 * trusts the HexData codec), so a stored log whose hex is corrupt must still become a CorruptEvent
 * naming the field: it never reaches the trusting decoder.
 */
import { describe, expect, it } from 'vitest';
import * as E from 'fp-ts/lib/Either.js';
import { decodeEvent, streams } from '../../src/domain/events.ts';
import { asPosition, type Json } from '../../src/eventstore/port.ts';
import { CHAIN_ID, ORDERBOOK, OUR_OWNER, io, takeOrderV2Log, txHash, type RawLog } from '../support/orderbook-logs.ts';

const validLog = (raw: RawLog): Record<string, Json> => ({
  chainId: CHAIN_ID,
  address: ORDERBOOK,
  blockNumber: '0x64',
  blockHash: txHash('block'),
  transactionHash: txHash('tx'),
  transactionIndex: '0x0',
  logIndex: '0x1',
  topics: [...raw.topics],
  data: raw.data,
});

const take = takeOrderV2Log({ owner: OUR_OWNER, validInputs: [io('USDC')], validOutputs: [io('tGME')] }, { input: 10n ** 18n, output: 20_000_000n });

describe('a stored log with corrupt hex', () => {
  const decode = (data: Json) =>
    decodeEvent({ stream: streams.orderbook(CHAIN_ID, ORDERBOOK), type: 'OrderbookLogRecorded', id: 'e', revision: 3n, position: asPosition('00000000000000000007'), data, metadata: null });

  it.each<[string, Record<string, Json | undefined>, string]>([
    ['not hex', { data: '0x0g' }, 'data.data'],
    ['an odd number of digits', { data: '0x000' }, 'data.data'],
    ['characters that truncate to hex digits', { data: '0x\u0130\u0131' }, 'data.data'],
    ['a short topic', { topics: ['0x12'] }, 'data.topics.0'],
    ['a missing block hash', { blockHash: undefined }, 'data.blockHash'],
    ['a log index past 2^53 - 1, where it would round', { logIndex: '0x20000000000000' }, 'data.logIndex'],
    ['a block number past 2^53 - 1', { blockNumber: `0x${'f'.repeat(40)}` }, 'data.blockNumber'],
    ['a chain id that is not a whole number', { chainId: 1.5 }, 'data.chainId'],
  ])('becomes a CorruptEvent (%s)', (_name, change, path) => {
    const log: Record<string, Json | undefined> = { ...validLog(take), ...change };
    for (const [key, value] of Object.entries(change)) if (value === undefined) delete log[key];
    const decoded = decode(log as Json);
    expect(decoded).toEqual(E.left(expect.objectContaining({ kind: 'CorruptEvent', revision: 3n, path })));
  });

  it('decodes mixed-case hex, lowercased', () => {
    const decoded = decode({ ...validLog(take), data: take.data.toUpperCase().replace('0X', '0x') });
    expect(E.isRight(decoded) && decoded.right.type === 'OrderbookLogRecorded' && decoded.right.data.data).toBe(take.data.toLowerCase());
  });
});
