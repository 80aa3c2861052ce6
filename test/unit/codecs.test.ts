/**
 * `struct` and `arrayOf` are io-ts's `t.type` and `t.array` without the per-field bookkeeping:
 * for every input they must decode to what io-ts decodes (its declared fields) and fail with
 * io-ts's own errors. The hex codecs' fast pattern, and the short hex quantities' loop, must take
 * exactly what the plain pattern (and BigInt) take.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as t from 'io-ts';
import * as E from 'fp-ts/lib/Either.js';
import { arrayOf, Hash32, hexOfLength, HexQuantity, SafeHexQuantity, struct } from '../../src/domain/codecs.ts';

const inner = { block: HexQuantity, note: t.union([t.string, t.null]) };
const fields = { count: t.number, hashes: t.array(Hash32), entries: t.array(t.type(inner)) };
const fast = struct({ count: t.number, hashes: arrayOf(Hash32), entries: arrayOf(struct(inner)) });
const standard = t.type(fields);

const hash = fc.oneof(
  fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => `0x${Buffer.from(b).toString('hex')}`),
  fc.string(), // mostly not a hash
);
const entry = fc.record(
  { block: fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 64n }).map((n) => `0x${n.toString(16)}`), fc.string()), note: fc.oneof(fc.string(), fc.constant(null), fc.integer()) },
  { requiredKeys: [] },
);
const input = fc.oneof(
  fc.record({ count: fc.oneof(fc.integer(), fc.string()), hashes: fc.array(hash, { maxLength: 3 }), entries: fc.array(entry, { maxLength: 3 }) }, { requiredKeys: [] }),
  fc.anything(),
);

/** io-ts keeps undeclared fields of a decoded object; struct leaves them out. */
const declared = (value: { count: number; hashes: string[]; entries: { block: bigint; note: string | null }[] }) => ({
  count: value.count,
  hashes: value.hashes,
  entries: value.entries.map((e) => ({ block: e.block, note: e.note })),
});

/** An error as a reader sees it: the path's keys and type names, the value, the message. */
const where = (error: t.ValidationError) => ({
  path: error.context.map((c) => `${c.key}:${c.type.name}`),
  value: error.value,
  message: error.message,
});

describe('struct and arrayOf', () => {
  it('decode every input as t.type and t.array do, errors included', () => {
    fc.assert(
      fc.property(input, (u) => {
        const expected = standard.decode(u);
        const actual = fast.decode(u);
        if (E.isLeft(expected)) expect(E.isLeft(actual) && actual.left.map(where)).toEqual(expected.left.map(where));
        else expect(E.isRight(actual) && actual.right).toEqual(declared(expected.right));
      }),
      { numRuns: 2_000 },
    );
  });

  it('decode into fresh objects, leaving the input as it was', () => {
    const u = { count: 1, hashes: [`0x${'AB'.repeat(32)}`], entries: [{ block: '0x10', note: null }], extra: true };
    const copy = structuredClone(u);
    const decoded = fast.decode(u);
    expect(decoded).toEqual(E.right({ count: 1, hashes: [`0x${'ab'.repeat(32)}`], entries: [{ block: 16n, note: null }] }));
    expect(u).toEqual(copy);
  });

  it('keep io-ts’s is and encode', () => {
    const value = { count: 2, hashes: [], entries: [{ block: 255n, note: 'x' }] };
    expect(fast.is(value)).toBe(standard.is(value));
    expect(fast.encode(value)).toEqual(standard.encode(value));
  });
});

describe('hex codecs', () => {
  /** What a hex codec answers, written the plain way: any-case digits, lowercased, whole bytes, the length asked. */
  const plain = (bytes: number | undefined, u: string): string => {
    if (!/^0x[0-9a-fA-F]*$/.test(u)) return 'expected 0x-prefixed hex';
    const length = (u.length - 2) / 2;
    if (!Number.isInteger(length) || (bytes !== undefined && length !== bytes)) return `expected ${bytes ?? 'whole'} bytes of hex`;
    return u.toLowerCase();
  };
  // Mostly hex digits, with a few characters next to them in code order, others that case-fold to them, and line ends.
  const digits = fc.string({ unit: fc.oneof({ weight: 20, arbitrary: fc.constantFrom(...'0123456789abcdef') }, fc.constantFrom(...'ABCDEF/:@`gGxX\n\u0130\u0131\u017f')), maxLength: 80 });
  const text = fc.oneof({ weight: 4, arbitrary: digits.map((d) => `0x${d}`) }, digits, fc.string());

  it.each([undefined, 1, 4, 20, 32])('take exactly what the plain pattern takes (%s bytes)', (bytes) => {
    const codec = hexOfLength('Hex', bytes);
    fc.assert(
      fc.property(text, (u) => {
        const decoded = codec.decode(u);
        expect(E.isRight(decoded) ? decoded.right : decoded.left[0]!.message).toBe(plain(bytes, u));
      }),
      { numRuns: 3_000 },
    );
  });
});

describe('SafeHexQuantity', () => {
  /** What it answers, written the plain way: the hex quantity pattern, BigInt, at most 2^53 - 1. */
  const plain = (u: unknown): bigint | string => {
    if (typeof u !== 'string' || !/^0x(0|[1-9a-fA-F][0-9a-fA-F]*)$/.test(u)) return 'expected a hex quantity like 0x1a';
    const n = BigInt(u);
    return n <= BigInt(Number.MAX_SAFE_INTEGER) ? n : 'expected a hex quantity of at most 2^53 - 1 (0x1fffffffffffff)';
  };
  const digits = fc.string({ unit: fc.oneof({ weight: 20, arbitrary: fc.constantFrom(...'0123456789abcdefABCDEF') }, fc.constantFrom(...'/:@`gGxX \u0660\uff10')), maxLength: 18 });
  const text = fc.oneof({ weight: 4, arbitrary: digits.map((d) => `0x${d}`) }, digits.map((d) => `0X${d}`), fc.string(), fc.anything());

  it('takes exactly what the plain pattern and BigInt take, at any length', () => {
    fc.assert(
      fc.property(text, (u) => {
        const decoded = SafeHexQuantity.decode(u);
        expect(E.isRight(decoded) ? decoded.right : decoded.left[0]!.message).toBe(plain(u));
      }),
      { numRuns: 5_000 },
    );
  });

  it('reads the largest quantities a number holds exactly, and refuses the next', () => {
    for (const n of [0n, 1n, 0xfffffffffffffn, 0x10000000000000n, 2n ** 53n - 1n]) expect(SafeHexQuantity.decode(`0x${n.toString(16)}`)).toEqual(E.right(n));
    expect(E.isLeft(SafeHexQuantity.decode(`0x${(2n ** 53n).toString(16)}`))).toBe(true);
  });
});
