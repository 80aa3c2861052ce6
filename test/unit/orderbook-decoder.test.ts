/**
 * The hand-written IOrderBookV4 decoder against viem's `decodeEventLog` as the oracle.
 *
 * Where the two may differ, by design (see src/domain/abi-decoder.ts):
 * - addresses: viem checksums them, we return them lowercase (compared lowercased here);
 * - a uint8 `decimals` above 255: viem returns it as a number, we reject the log;
 * - data that is not `0x` then whole bytes of hex: viem drops any 2-character prefix and
 *   left-pads an odd digit count with a 0 nibble, we reject the log.
 * Everywhere else: same values, and a `malformed_log` exactly when viem throws.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BaseError, bytesToHex, decodeEventLog, encodeAbiParameters, toHex, type Hex } from 'viem';
import {
  AFTER_CLEAR_TOPIC,
  CLEAR_V2_TOPIC,
  TAKE_ORDER_V2_TOPIC,
  afterClearEvent,
  clearV2Event,
  decodeOrderbookLog,
  takeOrderV2Event,
  type OrderbookLog,
  type UndecodableLog,
} from '../../src/domain/orderbook-abi.ts';
import { OTHER_OWNER, OUR_OWNER, afterClearLog, clearV2Log, io, lowercased, takeOrderV2Log, type OrderSpec, type RawLog } from '../support/orderbook-logs.ts';

type Topic = typeof CLEAR_V2_TOPIC | typeof AFTER_CLEAR_TOPIC | typeof TAKE_ORDER_V2_TOPIC;

const EVENTS = { [CLEAR_V2_TOPIC]: clearV2Event, [AFTER_CLEAR_TOPIC]: afterClearEvent, [TAKE_ORDER_V2_TOPIC]: takeOrderV2Event } as const;

/** viem's decoding of a log of one of the three events (addresses lowercased), or its error. */
function viem(log: RawLog): { decoded: unknown } | { error: BaseError } {
  const topic = log.topics[0] as Topic;
  try {
    const { eventName, args } = decodeEventLog({ abi: [EVENTS[topic]], topics: [topic], data: log.data });
    return { decoded: { event: eventName, args: lowercased(args) } };
  } catch (error) {
    if (!(error instanceof BaseError)) throw error;
    return { error };
  }
}

/** viem's decoding of a log it must accept. */
function viemDecoded(log: RawLog): unknown {
  const oracle = viem(log);
  if ('error' in oracle) throw new Error(`viem rejects the log: ${oracle.error.shortMessage}`);
  return oracle.decoded;
}

const hand = (log: RawLog): OrderbookLog | UndecodableLog => decodeOrderbookLog(log.topics, log.data);

const seller: OrderSpec = { owner: OUR_OWNER, validInputs: [io('USDC')], validOutputs: [io('tGME')] };

/** A log of one of the three events whose data does not decode: it names the event its topic0 is, for the pairing of clears. */
const malformed = (detail: RegExp | string = /./) => ({ event: null, reason: 'malformed_log', detail: typeof detail === 'string' ? detail : expect.stringMatching(detail), topic: expect.stringMatching(/^(ClearV2|AfterClear|TakeOrderV2)$/) });

// ---- well-formed arguments ----

const hexBytes = (minLength: number, maxLength: number) => fc.uint8Array({ minLength, maxLength }).map((b) => bytesToHex(b));
const address = hexBytes(20, 20);
const bytes32 = hexBytes(32, 32);
const uint256 = fc.oneof(
  fc.constantFrom(0n, 1n, 255n, 256n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 64n - 1n, 2n ** 64n, 2n ** 255n, 2n ** 256n - 1n),
  fc.bigInt({ min: 0n, max: 2n ** 64n }),
  fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }),
);
const ioOf = (addresses: fc.Arbitrary<Hex>) => fc.record({ token: addresses, decimals: fc.integer({ min: 0, max: 255 }), vaultId: uint256 });
const ioArb = ioOf(address);
/** An order whose addresses (owner, interpreter, store, IO tokens) come from `addresses`. */
const orderOf = (addresses: fc.Arbitrary<Hex>, { ios, bytecode }: { ios: number; bytecode: number }) => {
  const io = ioOf(addresses);
  return fc.record({
    owner: addresses,
    evaluable: fc.record({ interpreter: addresses, store: addresses, bytecode: hexBytes(0, bytecode) }),
    validInputs: fc.array(io, { maxLength: ios }),
    validOutputs: fc.array(io, { maxLength: ios }),
    nonce: bytes32,
  });
};
const orderArb = orderOf(address, { ios: 4, bytecode: 100 });
const signedContextArb = fc.record({ signer: address, context: fc.array(bytes32, { maxLength: 3 }), signature: hexBytes(0, 80) });

const clearV2 = fc
  .tuple(address, orderArb, orderArb, fc.record({ aliceInputIOIndex: uint256, aliceOutputIOIndex: uint256, bobInputIOIndex: uint256, bobOutputIOIndex: uint256, aliceBountyVaultId: uint256, bobBountyVaultId: uint256 }))
  .map((args): RawLog => ({ topics: [CLEAR_V2_TOPIC], data: encodeAbiParameters(clearV2Event.inputs, args) }));
const afterClear = fc
  .tuple(address, fc.record({ aliceOutput: uint256, bobOutput: uint256, aliceInput: uint256, bobInput: uint256 }))
  .map((args): RawLog => ({ topics: [AFTER_CLEAR_TOPIC], data: encodeAbiParameters(afterClearEvent.inputs, args) }));
const takeOrderV2 = fc
  .tuple(address, fc.record({ order: orderArb, inputIOIndex: uint256, outputIOIndex: uint256, signedContext: fc.array(signedContextArb, { maxLength: 3 }) }), uint256, uint256)
  .map((args): RawLog => ({ topics: [TAKE_ORDER_V2_TOPIC], data: encodeAbiParameters(takeOrderV2Event.inputs, args) }));
const wellFormed = fc.oneof(clearV2, afterClear, takeOrderV2);

// ---- corruptions, on the hex digits after 0x ----

type Mutation = (digits: string) => string;

const word = (value: bigint): string => toHex(value, { size: 32 }).slice(2);
/** Values that land on offsets and lengths: in range, just past it, unsafe, or anything. */
const wordValue = fc.oneof(fc.nat({ max: 2_000 }).map(BigInt), fc.nat({ max: 64 }).map((n) => BigInt(32 * n)), fc.constantFrom(2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 256n - 1n), uint256);
const byteIndex = (digits: string, i: number): number => 2 * (i % Math.max(1, digits.length / 2));

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.nat().map((n): Mutation => (d) => d.slice(0, byteIndex(d, n))),
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })).map(([i, b]): Mutation => (d) => d.slice(0, byteIndex(d, i)) + word(BigInt(b)).slice(62) + d.slice(byteIndex(d, i) + 2)),
  fc.tuple(fc.nat(), wordValue).map(([i, v]): Mutation => (d) => {
    const at = 64 * (i % Math.max(1, Math.floor(d.length / 64)));
    return d.slice(0, at) + word(v) + d.slice(at + 64);
  }),
  // A word written at any byte, not only on the 32-byte grid.
  fc.tuple(fc.nat(), wordValue).map(([i, v]): Mutation => (d) => (d.length < 64 ? d : d.slice(0, byteIndex(d.slice(62), i)) + word(v) + d.slice(byteIndex(d.slice(62), i) + 64))),
  hexBytes(1, 64).map((extra): Mutation => (d) => d + extra.slice(2)),
  fc.tuple(fc.nat(), fc.constantFrom('g', 'G', 'x', ' ', 'é', '\u0130')).map(([i, c]): Mutation => (d) => (d.length === 0 ? d : d.slice(0, i % d.length) + c + d.slice((i % d.length) + 1))),
  fc.constant<Mutation>((d) => d.toUpperCase()),
);

const corrupted: fc.Arbitrary<RawLog> = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(wellFormed, fc.array(mutation, { minLength: 1, maxLength: 3 })).map(([log, ms]) => ({ ...log, data: `0x${ms.reduce((d, m) => m(d), log.data.slice(2))}` as Hex })) },
  fc.tuple(fc.constantFrom<Topic>(CLEAR_V2_TOPIC, AFTER_CLEAR_TOPIC, TAKE_ORDER_V2_TOPIC), hexBytes(0, 600)).map(([topic, data]) => ({ topics: [topic], data })),
);

/** Whether viem's args hold an IO whose uint8 decimals is above 255 (a log we reject and viem does not). */
const hasWideDecimals = (value: unknown): boolean =>
  typeof value === 'object' && value !== null && (('decimals' in value && typeof value.decimals === 'number' && value.decimals > 255) || Object.values(value).some(hasWideDecimals));

describe('decodeOrderbookLog against viem', () => {
  it('decodes random well-formed ClearV2, AfterClear and TakeOrderV2 logs to what viem decodes', () => {
    fc.assert(
      fc.property(wellFormed, (log) => {
        expect(hand(log)).toEqual(viemDecoded(log));
      }),
      { numRuns: 500 },
    );
  });

  it('decodes each address as itself when addresses share the decoder’s cache slot, differing in one digit anywhere', () => {
    // The cache finds an address by its last digits and compares all 40 (as five groups of eight).
    const base = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';
    const alike = [0, 7, 8, 15, 16, 23, 24, 31, 32, 36].map((i) => `0x${base.slice(0, i)}${base[i] === 'f' ? 'e' : 'f'}${base.slice(i + 1)}` as Hex);
    const pooled = fc.constantFrom(`0x${base}` as Hex, ...alike);
    const order = orderOf(pooled, { ios: 3, bytecode: 10 });
    const take = fc
      .tuple(pooled, fc.record({ order, inputIOIndex: uint256, outputIOIndex: uint256, signedContext: fc.constant([]) }), uint256, uint256)
      .map((args): RawLog => ({ topics: [TAKE_ORDER_V2_TOPIC], data: encodeAbiParameters(takeOrderV2Event.inputs, args) }));
    fc.assert(
      fc.property(fc.array(take, { minLength: 2, maxLength: 6 }), (logs) => {
        for (const log of logs) expect(hand(log)).toEqual(viemDecoded(log));
      }),
      { numRuns: 300 },
    );
  });

  it('decodes large well-formed logs to what viem decodes: thousands of IOs, long bytecode and signatures, many signed contexts', () => {
    // Past 8193 reads the decoder tracks every position read; past 8 KiB of data it leaves its scratch buffer.
    const manyIos = fc.oneof(fc.constant([]), fc.integer({ min: 2_750, max: 3_000 }).chain((n) => fc.array(ioArb, { minLength: n, maxLength: n })));
    const bigOrder = fc.record({
      owner: address,
      evaluable: fc.record({ interpreter: address, store: address, bytecode: fc.oneof(hexBytes(0, 100), hexBytes(8_100, 12_000)) }),
      validInputs: manyIos,
      validOutputs: fc.array(ioArb, { maxLength: 40 }),
      nonce: bytes32,
    });
    const bigSignedContext = fc.record({ signer: address, context: fc.array(bytes32, { maxLength: 200 }), signature: hexBytes(0, 3_000) });
    const bigTake = fc
      .tuple(address, fc.record({ order: bigOrder, inputIOIndex: uint256, outputIOIndex: uint256, signedContext: fc.array(bigSignedContext, { maxLength: 12 }) }), uint256, uint256)
      .map((args): RawLog => ({ topics: [TAKE_ORDER_V2_TOPIC], data: encodeAbiParameters(takeOrderV2Event.inputs, args) }));
    const bigClear = fc
      .tuple(address, bigOrder, orderArb, fc.record({ aliceInputIOIndex: uint256, aliceOutputIOIndex: uint256, bobInputIOIndex: uint256, bobOutputIOIndex: uint256, aliceBountyVaultId: uint256, bobBountyVaultId: uint256 }))
      .map((args): RawLog => ({ topics: [CLEAR_V2_TOPIC], data: encodeAbiParameters(clearV2Event.inputs, args) }));
    fc.assert(
      fc.property(fc.oneof(bigTake, bigClear), (log) => {
        expect(hand(log)).toEqual(viemDecoded(log));
      }),
      { numRuns: 12, endOnFailure: true }, // shrinking thousands of IOs against viem takes minutes
    );
  });

  it('never throws on corrupted logs, rejects a log exactly when viem throws, and otherwise decodes what viem decodes', () => {
    const seen = { viemThrew: 0, bothDecoded: 0 };
    fc.assert(
      fc.property(corrupted, (log) => {
        const ours = hand(log);
        const oracle = viem(log);
        if ('error' in oracle) {
          seen.viemThrew++;
          expect(ours).toMatchObject(malformed());
        } else if (ours.event === null && hasWideDecimals(oracle.decoded)) {
          expect(ours).toEqual(malformed(/^uint8 at byte \d+ is above 255$/)); // the stricter corner
        } else {
          seen.bothDecoded++;
          expect(ours).toEqual(oracle.decoded);
        }
      }),
      { numRuns: 2_000 },
    );
    // Both outcomes must be exercised for the property to say anything.
    expect(seen.viemThrew).toBeGreaterThan(100);
    expect(seen.bothDecoded).toBeGreaterThan(100);
  });

  it("reports a read past the end with viem's message", () => {
    const log = takeOrderV2Log(seller, { input: 1n, output: 2n });
    for (const bytes of [0, 1, 31, 32, 100, 400, (log.data.length - 2) / 2 - 1]) {
      const truncated = { ...log, data: log.data.slice(0, 2 + 2 * bytes) as Hex };
      const oracle = viem(truncated);
      expect(oracle).toHaveProperty('error');
      expect(hand(truncated)).toEqual(malformed('error' in oracle ? oracle.error.shortMessage : ''));
    }
  });

  it('ignores the high bytes of an address word and the padding after bytes, like viem', () => {
    const log = takeOrderV2Log(seller, { input: 1n, output: 2n });
    const padding = log.data.indexOf(`${word(2n)}0102`) + 68; // past the bytecode's length and its 2 bytes
    expect(padding).toBeGreaterThan(68);
    const dirty = { ...log, data: `0xff${log.data.slice(4, padding)}ee${log.data.slice(padding + 2)}` as Hex };
    expect(hand(dirty)).toEqual(viemDecoded(dirty));
  });

  it('reads uppercase hex like viem, returning it lowercase', () => {
    const log = clearV2Log(seller, { owner: OTHER_OWNER, validInputs: [], validOutputs: [] });
    const upper = { ...log, data: `0x${log.data.slice(2).toUpperCase()}` as Hex };
    expect(hand(upper)).toEqual(hand(log));
    expect(hand(upper)).toEqual(viemDecoded(upper));
  });
});

describe('decodeOrderbookLog: where it is stricter than viem', () => {
  it('rejects an IO whose uint8 decimals is above 255, which viem returns as a number', () => {
    const log = takeOrderV2Log(seller, { input: 1n, output: 2n });
    const usdcDecimals = `${word(6n)}${word(1n)}`; // then its vault id
    expect(log.data.split(usdcDecimals)).toHaveLength(2);
    const wide = { ...log, data: log.data.replace(usdcDecimals, `${word(256n)}${word(1n)}`) as Hex };
    expect(viemDecoded(wide)).toMatchObject({ args: { config: { order: { validInputs: [{ decimals: 256 }] } } } });
    expect(hand(wide)).toEqual(malformed(/^uint8 at byte \d+ is above 255$/));
  });

  it('rejects data that is not 0x then whole bytes of hex, which viem reads after padding or skipping', () => {
    const log = afterClearLog({ aliceOutput: 1n, bobOutput: 2n, aliceInput: 3n, bobInput: 4n });
    for (const data of [`${log.data}0`, `0X${log.data.slice(2)}`] as Hex[]) {
      viemDecoded({ ...log, data });
      expect(hand({ ...log, data })).toEqual(malformed(/^data is not 0x then whole bytes of hex$/));
    }
  });
});

// ---- aliasing offsets: viem's limits on re-reads and on decoded bytes ----

/** The smallest n in (lo, hi] at which viem throws on build(n), given it decodes build(lo) and throws on build(hi). */
function firstViemFailure(build: (n: number) => RawLog, lo: number, hi: number): { n: number; error: BaseError } {
  viemDecoded(build(lo));
  let failing = viem(build(hi));
  if (!('error' in failing)) throw new Error(`viem decodes build(${hi})`);
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    const outcome = viem(build(mid));
    if ('error' in outcome) [hi, failing] = [mid, outcome];
    else lo = mid;
  }
  return { n: hi, error: failing.error };
}

/** Expects ours to decode build(n) like viem one step before viem starts failing, and to fail where viem does. */
function expectSameLimit(build: (n: number) => RawLog, lo: number, hi: number, viemError: string, ourDetail: RegExp): void {
  const { n, error } = firstViemFailure(build, lo, hi);
  expect(error.name).toBe(viemError);
  expect(hand(build(n - 1))).toEqual(viemDecoded(build(n - 1)));
  expect(hand(build(n))).toEqual(malformed(ourDetail));
}

const hexDigits = (log: RawLog): string => log.data.slice(2);
const wordAt = (digits: string, byte: number): number => Number(BigInt(`0x${digits.slice(2 * byte, 2 * byte + 64)}`));

/** A TakeOrderV2 whose signedContext is `n` offsets all to one SignedContextV1, appended after the data. */
function aliasedSignedContexts(n: number, context: Hex[], signature: Hex): RawLog {
  const digits = hexDigits(takeOrderV2Log(seller, { input: 1n, output: 2n }));
  const config = wordAt(digits, 32);
  const signedContextType = { type: 'tuple', components: takeOrderV2Event.inputs[1].components[3].components } as const;
  const tuple = encodeAbiParameters([signedContextType], [{ signer: OTHER_OWNER, context, signature }]).slice(66); // without the offset to it
  const array = word(BigInt(n)) + word(BigInt(32 * n)).repeat(n) + tuple;
  const slot = 2 * (config + 96);
  return { topics: [TAKE_ORDER_V2_TOPIC], data: `0x${digits.slice(0, slot)}${word(BigInt(digits.length / 2 - config))}${digits.slice(slot + 64)}${array}` };
}

/** A ClearV2 whose bob is alice's order (same offset), alice holding `n` validInputs. */
function aliasedOrders(n: number): RawLog {
  const alice = { ...seller, validInputs: Array.from({ length: n }, () => io('USDC')) };
  const digits = hexDigits(clearV2Log(alice, seller));
  return { topics: [CLEAR_V2_TOPIC], data: `0x${digits.slice(0, 128)}${digits.slice(64, 128)}${digits.slice(192)}` };
}

describe('decodeOrderbookLog: offsets aliasing one tail, as viem bounds them', () => {
  const reReads = /^more than 8192 reads of already read bytes: offsets alias one tail$/;

  it('fails at the same signedContext count as viem once re-reads of one SignedContextV1 pass 8192', () => {
    const context = Array.from({ length: 10 }, (_, i) => word(BigInt(i))).map((w) => `0x${w}` as Hex);
    expectSameLimit((n) => aliasedSignedContexts(n, context, '0xabcd'), 1, 2_000, 'RecursiveReadLimitExceededError', reReads);
  });

  it('fails at the same IO count as viem when bob re-reads alice', () => {
    expectSameLimit(aliasedOrders, 1, 4_000, 'RecursiveReadLimitExceededError', reReads);
  });

  it('fails at the same signedContext count as viem once the shared signature adds up to more than 32 times the data', () => {
    expectSameLimit((n) => aliasedSignedContexts(n, [], `0x${'ab'.repeat(3_000)}`), 1, 500, 'AbiDecodingSizeLimitExceededError', /^bytes values add up to more than \d+ bytes: offsets alias one tail$/);
  });
});
