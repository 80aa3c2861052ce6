/**
 * The replay path's shortcut gives the answers of the code it shortcuts:
 * - `decodeRecordedOrderbookLog`, which trusts the HexData codec, decodes like the validating
 *   `decodeOrderbookLog` for every data the codec lets through;
 * - a stored log whose hex is corrupt still becomes a CorruptEvent naming the field, so it never
 *   reaches the trusting decoder.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as E from 'fp-ts/lib/Either.js';
import { HexData } from '../../src/domain/codecs.ts';
import { decodeEvent } from '../../src/domain/events.ts';
import { AFTER_CLEAR_TOPIC, CLEAR_V2_TOPIC, TAKE_ORDER_V2_TOPIC, decodeOrderbookLog, decodeRecordedOrderbookLog } from '../../src/domain/orderbook-abi.ts';
import { asPosition, type Json } from '../../src/eventstore/port.ts';
import { CHAIN_ID, ORDERBOOK, OTHER_OWNER, OUR_OWNER, afterClearLog, clearV2Log, io, takeOrderV2Log, txHash, type RawLog } from '../support/orderbook-logs.ts';

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
const clear = clearV2Log({ owner: OTHER_OWNER, validInputs: [io('USDC')], validOutputs: [io('tGME')] }, { owner: OUR_OWNER, validInputs: [io('tGME')], validOutputs: [io('USDC')] });
const after = afterClearLog({ aliceOutput: 1n, bobOutput: 2n, aliceInput: 3n, bobInput: 4n });

describe('a stored log with corrupt hex', () => {
  const decode = (data: Json) =>
    decodeEvent({ stream: 'orderbook-1_x', type: 'OrderbookLogRecorded', id: 'e', revision: 3n, position: asPosition('00000000000000000007'), data, metadata: null });

  it.each<[string, Record<string, Json | undefined>, string]>([
    ['not hex', { data: '0x0g' }, 'data.data'],
    ['an odd number of digits', { data: '0x000' }, 'data.data'],
    ['characters that truncate to hex digits', { data: '0x\u0130\u0131' }, 'data.data'],
    ['a short topic', { topics: ['0x12'] }, 'data.topics.0'],
    ['a missing block hash', { blockHash: undefined }, 'data.blockHash'],
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

describe('decodeRecordedOrderbookLog', () => {
  const topic = fc.constantFrom(CLEAR_V2_TOPIC, AFTER_CLEAR_TOPIC, TAKE_ORDER_V2_TOPIC);
  const digits: fc.Arbitrary<string> = fc.oneof(
    fc.constantFrom(take, clear, after).map((raw) => raw.data.slice(2)),
    fc.tuple(fc.constantFrom(take, clear, after), fc.nat(), fc.nat({ max: 255 })).map(([raw, i, b]) => {
      const d = raw.data.slice(2);
      const at = 2 * (i % (d.length / 2));
      return d.slice(0, at) + b.toString(16).padStart(2, '0') + d.slice(at + 2);
    }),
    fc.tuple(fc.constantFrom(take, clear, after), fc.nat()).map(([raw, n]) => raw.data.slice(2, 2 + 2 * (n % (raw.data.length / 2)))),
    fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b).toString('hex')),
  );

  it('answers like decodeOrderbookLog for any data the HexData codec accepts', () => {
    fc.assert(
      fc.property(topic, digits, fc.boolean(), (topic0, hex, upper) => {
        const data = `0x${upper ? hex.toUpperCase() : hex}` as const;
        const checked = HexData.decode(data);
        if (E.isLeft(checked)) return; // the codec refuses it: it never reaches the decoder
        expect(decodeRecordedOrderbookLog({ topics: [topic0], data: checked.right })).toEqual(decodeOrderbookLog([topic0], data));
      }),
      { numRuns: 2_000 },
    );
  });
});
