import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodePosition, encodePosition, isEncodedPosition, type LogPosition } from '../../src/eventstore/esdb-position.ts';
import { StoreConfigError } from '../../src/eventstore/errors.ts';
import { asPosition, comparePositions } from '../../src/eventstore/port.ts';

const UINT64_MAX = 2n ** 64n - 1n;
const uint64 = fc.bigInt({ min: 0n, max: UINT64_MAX });
const logPosition = fc.record({ commit: uint64, prepare: uint64 });

const sign = (n: bigint): -1 | 0 | 1 => (n < 0n ? -1 : n > 0n ? 1 : 0);
const tupleOrder = (a: LogPosition, b: LogPosition): -1 | 0 | 1 =>
  a.commit !== b.commit ? sign(a.commit - b.commit) : sign(a.prepare - b.prepare);

describe('EventStoreDB positions', () => {
  it('encodes as two 20-digit fields', () => {
    expect(encodePosition({ commit: 42n, prepare: 7n })).toBe('00000000000000000042/00000000000000000007');
    expect(encodePosition({ commit: UINT64_MAX, prepare: 0n })).toBe('18446744073709551615/00000000000000000000');
  });

  it('round-trips every uint64 pair', () => {
    fc.assert(
      fc.property(logPosition, (p) => {
        expect(decodePosition(encodePosition(p))).toEqual(p);
      }),
    );
  });

  it('string order is (commit, prepare) order', () => {
    fc.assert(
      fc.property(logPosition, logPosition, (a, b) => {
        expect(comparePositions(encodePosition(a), encodePosition(b))).toBe(tupleOrder(a, b));
      }),
    );
  });

  it('orders by prepare when commits tie, and by commit when they differ by one', () => {
    const near = logPosition.chain((a) =>
      fc
        .record({ commit: fc.constantFrom(a.commit, a.commit === UINT64_MAX ? 0n : a.commit + 1n), prepare: uint64 })
        .map((b) => [a, b] as const),
    );
    fc.assert(
      fc.property(near, ([a, b]) => {
        expect(comparePositions(encodePosition(a), encodePosition(b))).toBe(tupleOrder(a, b));
      }),
    );
  });

  it('refuses values that cannot keep the fixed width', () => {
    expect(() => encodePosition({ commit: -1n, prepare: 0n })).toThrow(RangeError);
    expect(() => encodePosition({ commit: 0n, prepare: UINT64_MAX + 1n })).toThrow(RangeError);
  });

  it('rejects strings that are not EventStoreDB positions', () => {
    for (const bad of ['00000000000000000042', '42/7', '00000000000000000042/0000000000000000000x', '99999999999999999999/00000000000000000000', '']) {
      expect(isEncodedPosition(bad)).toBe(false);
      expect(() => decodePosition(asPosition(bad))).toThrow(StoreConfigError);
    }
  });
});
