/** The logs bloom's bit indexes, against the yellow paper's definition (real blocks: test/integration/chain-lagging-logs.test.ts). */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { bytesToHex, hexToBytes, keccak256, stringToHex, type Hex } from 'viem';
import * as E from 'fp-ts/lib/Either.js';
import { bloomBits, bloomOf, hasBits, LogBloomFilter, LogsBloom } from '../../src/chain/log-bloom.ts';

describe('log bloom', () => {
  it('the bit indexes are the yellow paper\'s: the low 11 bits of the hash\'s byte pairs 0-1, 2-3, 4-5', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (bytes) => {
        const hash = hexToBytes(keccak256(bytes));
        expect(bloomBits(bytesToHex(bytes))).toEqual([0, 2, 4].map((i) => ((hash[i]! * 256 + hash[i + 1]!) % 2048)));
      }),
    );
    // Bit 0 is the lowest bit of the last byte.
    const item = stringToHex('x');
    const bloom = bloomOf([item]);
    for (const bit of bloomBits(item)) expect((bloom[255 - Math.floor(bit / 8)]! >> bit % 8) & 1).toBe(1);
  });

  it('a filter holds a block only with the address and one of the topic0s', () => {
    const of = (byte: string, n: number): Hex => `0x${byte.repeat(n)}`;
    const [address, t1, t2, other] = [of('11', 20), of('aa', 32), of('bb', 32), of('cc', 32)];
    const filter = new LogBloomFilter(address, [t1, t2]);
    const hex = (items: readonly Hex[]) => bytesToHex(bloomOf(items));
    expect(filter.mayHold(hex([address, t2]))).toBe(true);
    expect(filter.mayHold(hex([address, other]))).toBe(false);
    expect(filter.mayHold(hex([t1, t2]))).toBe(false);
    expect(filter.mayHold(hex([]))).toBe(false);
    expect(hasBits(bloomOf([address, other]), bloomBits(other))).toBe(true);
    const isBloom = (text: string) => E.isRight(LogsBloom.decode(text));
    expect([isBloom(hex([])), isBloom(hex([]).slice(0, -2)), isBloom(`0x${'g'.repeat(512)}`)]).toEqual([true, false, false]);
  });
});
