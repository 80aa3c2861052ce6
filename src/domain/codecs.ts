/** io-ts codecs for the primitives that cross our boundaries as strings. */
import * as t from 'io-ts';
import { pipe } from 'fp-ts/lib/function.js';
import * as E from 'fp-ts/lib/Either.js';
import * as D from './decimal.ts';

/**
 * io-ts's `t.type` and `t.array`, decoding without io-ts's per-field bookkeeping: `t.type` builds a
 * fresh error context for every field and element it visits and copies the object whenever a
 * field decodes to a new value, a fifth of the time it takes to decode a stored log (replay
 * decodes millions). These decode each field against the parent's context into a new object;
 * only when something fails do they run io-ts's own validation, so errors name the same paths.
 */
export function struct<P extends t.Props>(props: P, name?: string): t.TypeC<P> {
  const standard = t.type(props, name);
  const keys = Object.keys(props);
  const codecs = keys.map((key) => props[key]!);
  const validate: t.Validate<unknown, t.TypeOf<t.TypeC<P>>> = (u, c) => {
    if (!t.UnknownRecord.is(u)) return standard.validate(u, c);
    const decoded: Record<string, unknown> = {};
    for (let i = 0; i < keys.length; i++) {
      const field = codecs[i]!.validate(u[keys[i]!], c);
      if (E.isLeft(field)) return standard.validate(u, c);
      decoded[keys[i]!] = field.right;
    }
    return t.success(decoded as t.TypeOf<t.TypeC<P>>);
  };
  return new t.InterfaceType(standard.name, standard.is, validate, standard.encode, props);
}

/** `t.array` without per-element contexts; see `struct`. */
export function arrayOf<C extends t.Mixed>(item: C, name?: string): t.ArrayC<C> {
  const standard = t.array(item, name);
  const validate: t.Validate<unknown, t.TypeOf<C>[]> = (u, c) => {
    if (!Array.isArray(u)) return standard.validate(u, c);
    const decoded: t.TypeOf<C>[] = new Array(u.length);
    for (let i = 0; i < u.length; i++) {
      const element = item.validate(u[i], c);
      if (E.isLeft(element)) return standard.validate(u, c);
      decoded[i] = element.right;
    }
    return t.success(decoded);
  };
  return new t.ArrayType(standard.name, standard.is, validate, standard.encode, item);
}

/** A canonical decimal string ("0", "-0.2", "1.5") <-> Decimal. */
export const DecimalString = new t.Type<D.Decimal, string, unknown>(
  'DecimalString',
  (u): u is D.Decimal => typeof u === 'object' && u !== null && typeof (u as { units?: unknown }).units === 'bigint',
  (u, c) => {
    if (typeof u !== 'string' || !D.isCanonical(u)) return t.failure(u, c, 'expected a canonical decimal string');
    try {
      return t.success(D.parse(u));
    } catch (error) {
      // Canonical yet not exact at our scale (more than 18 fractional digits): a failure, never a throw.
      return t.failure(u, c, error instanceof D.DecimalFormatError ? error.reason : String(error));
    }
  },
  D.format,
);

/** A decimal string of a non-negative whole number of shares. */
export const WholeShares = new t.Type<D.Decimal, string, unknown>(
  'WholeShares',
  DecimalString.is,
  (u, c) =>
    pipe(
      DecimalString.validate(u, c),
      E.chain((d) => (D.eq(D.floor(d), d) && D.sign(d) >= 0 ? t.success(d) : t.failure(u, c, 'expected a whole, non-negative number of shares'))),
    ),
  D.format,
);

// Patterns are module constants: a regex literal inside the validator is a new RegExp object per call.
const INTEGER = /^-?(0|[1-9][0-9]*)$/;
const HEX_QUANTITY = /^0x(0|[1-9a-fA-F][0-9a-fA-F]*)$/;

/** A base-10 integer string <-> bigint (revisions, block numbers, token amounts). */
export const BigIntString = new t.Type<bigint, string, unknown>(
  'BigIntString',
  (u): u is bigint => typeof u === 'bigint',
  (u, c) => (typeof u === 'string' && INTEGER.test(u) ? t.success(BigInt(u)) : t.failure(u, c, 'expected an integer string')),
  (b) => b.toString(),
);

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** A 0x-prefixed hex quantity as JSON-RPC writes it ("0x1a") <-> bigint. */
export const HexQuantity = new t.Type<bigint, string, unknown>(
  'HexQuantity',
  (u): u is bigint => typeof u === 'bigint',
  (u, c) => (typeof u === 'string' && HEX_QUANTITY.test(u) ? t.success(BigInt(u)) : t.failure(u, c, 'expected a hex quantity like 0x1a')),
  (b) => `0x${b.toString(16)}`,
);

/**
 * A hex quantity that a JavaScript number holds exactly (at most 2^53 - 1): block numbers and
 * transaction and log indexes. No chain comes near; a log claiming more is no log, and past it a
 * log index would round (two logs, one event id) and a block number would end the stream's chain order.
 */
export const SafeHexQuantity = new t.Type<bigint, string, unknown>(
  'SafeHexQuantity',
  (u): u is bigint => HexQuantity.is(u) && u >= 0n && u <= MAX_SAFE,
  // Not E.chain: fp-ts builds its curried form per call (Array.from(arguments), apply), ~1.5 µs per stored log.
  (u, c) => {
    const short = typeof u === 'string' ? shortHexQuantity(u) : undefined;
    if (short !== undefined) return t.success(BigInt(short));
    const n = HexQuantity.validate(u, c);
    return E.isLeft(n) || n.right <= MAX_SAFE ? n : t.failure(u, c, 'expected a hex quantity of at most 2^53 - 1 (0x1fffffffffffff)');
  },
  HexQuantity.encode,
);

/** Each ASCII code's hex digit value (either case), -1 for any other code. */
const HEX_DIGIT = new Int8Array(128).fill(-1);
for (let d = 0; d < 16; d++) {
  HEX_DIGIT['0123456789abcdef'.charCodeAt(d)] = d;
  HEX_DIGIT['0123456789ABCDEF'.charCodeAt(d)] = d;
}

/**
 * The value of `u` when it is a hex quantity (as HEX_QUANTITY takes it) of at most 13 digits, which a
 * number holds exactly; undefined otherwise, for the pattern and BigInt to answer. Every stored log has
 * three (its block number, transaction and log index): a loop costs a fifth of a regex call and the
 * parse of a string into a bigint.
 */
function shortHexQuantity(u: string): number | undefined {
  const length = u.length;
  if (length < 3 || length > 15 || u.charCodeAt(0) !== 0x30 || u.charCodeAt(1) !== 0x78) return undefined;
  if (length > 3 && u.charCodeAt(2) === 0x30) return undefined; // a leading zero
  let value = 0;
  for (let i = 2; i < length; i++) {
    const digit = HEX_DIGIT[u.charCodeAt(i)] ?? -1; // codes past 127 read as undefined
    if (digit < 0) return undefined;
    value = value * 16 + digit;
  }
  return value;
}

/**
 * Lowercase hex of whole bytes, written as eight digits per step then up to three pairs. Same
 * language as /^0x([0-9a-f]{2})*$/, but V8's regex engine runs a group of classes spelled out
 * one by one about twice as fast as `[0-9a-f]*` (0.23 against 0.45 ns per digit, measured on
 * stored logs; `{8}` instead of spelling them out loses the gain). Replay checks ~1.7k digits per
 * log. Linear on any input: each group has a fixed length, so a failure backtracks at most
 * three pairs per step of eight.
 */
const DIGIT = '[0-9a-f]';
const LOWER_HEX = new RegExp(`^0x(?:${DIGIT.repeat(8)})*(?:${DIGIT}${DIGIT}){0,3}$`);
const MIXED_HEX = /^0x[0-9a-fA-F]*$/;

/** Lowercase 0x-hex of `bytes` bytes (any whole number of bytes when undefined). */
export const hexOfLength = (name: string, bytes: number | undefined) =>
  new t.Type<`0x${string}`, string, unknown>(
    name,
    (u): u is `0x${string}` => typeof u === 'string' && u.startsWith('0x'),
    (u, c) => {
      if (typeof u !== 'string') return t.failure(u, c, 'expected 0x-prefixed hex');
      // One scan in the common case (lowercase, whole bytes): replay decodes kilobytes of log data per
      // event. An odd number of digits takes the second scan and fails the length check below.
      const hex = LOWER_HEX.test(u) ? u : MIXED_HEX.test(u) ? u.toLowerCase() : null;
      if (hex === null) return t.failure(u, c, 'expected 0x-prefixed hex');
      const len = (hex.length - 2) / 2;
      if (!Number.isInteger(len) || (bytes !== undefined && len !== bytes)) return t.failure(u, c, `expected ${bytes ?? 'whole'} bytes of hex`);
      return t.success(hex as `0x${string}`);
    },
    (s) => s,
  );

/** Lowercased on decode so equality is plain string equality. */
export const Address = hexOfLength('Address', 20);
export const Hash32 = hexOfLength('Hash32', 32);
export const HexData = hexOfLength('HexData', undefined);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const Uuid = t.refinement(t.string, (s) => UUID.test(s), 'Uuid');

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
/** An ISO-8601 UTC timestamp string, kept as text (events record time; folds never read a clock). */
export const IsoTime = t.refinement(t.string, (s) => ISO_TIME.test(s), 'IsoTime');

/**
 * Whole numbers a JavaScript number holds exactly: decision numbers, failure counts, chain ids, counts in
 * the configuration. Plain `t.number` takes 1.5, -1 and Infinity (JSON's 1e400).
 */
export const PositiveInt = t.refinement(t.number, (n) => Number.isSafeInteger(n) && n > 0, 'a positive integer');
export const NonNegativeInt = t.refinement(t.number, (n) => Number.isSafeInteger(n) && n >= 0, 'a non-negative integer');

const TICKER = /^[A-Z][A-Z0-9.]*$/;
/** A base ticker or broker symbol: GME, BRK.B. */
export const Ticker = t.refinement(t.string, (s) => TICKER.test(s), 'an uppercase ticker like GME');

/**
 * `t.record` that refuses a key its domain refuses: io-ts's own silently drops such a key when the
 * domain is a refinement or custom type (`{"tSPLG": "SPYM"}` would decode to `{}`).
 */
export function strictRecord<D extends t.Mixed, C extends t.Mixed>(domain: D, codomain: C): t.RecordC<D, C> {
  const record = t.record(domain, codomain);
  const validate: t.Validate<unknown, t.TypeOf<t.RecordC<D, C>>> = (u, c) => {
    if (t.UnknownRecord.is(u)) {
      const refused = Object.keys(u).flatMap((k) => {
        const key = domain.validate(k, t.appendContext(c, k, domain, k));
        return E.isLeft(key) ? key.left : [];
      });
      if (refused.length > 0) return t.failures(refused);
    }
    return record.validate(u, c);
  };
  return new t.DictionaryType(record.name, record.is, validate, record.encode, domain, codomain);
}

export const Side = t.keyof({ BUY: null, SELL: null });
export type Side = t.TypeOf<typeof Side>;

/** `text` parsed as JSON and decoded by `codec`; Left for text that is not JSON, or not what the codec takes. */
export const decodeJsonText = <A>(codec: t.Decoder<unknown, A>, text: string): E.Either<unknown, A> =>
  E.chainW((json: unknown) => codec.decode(json))(E.tryCatch(() => JSON.parse(text) as unknown, (e) => e));

/**
 * The first io-ts error's path and reason ("data.quantity", "expected a canonical decimal string,
 * got …"); `showValue: false` leaves the offending value out (it may be a secret, e.g. a token).
 */
export function describeErrors(errors: t.Errors, { showValue = true }: { showValue?: boolean } = {}): { path: string; reason: string } {
  const first = errors[0];
  if (!first) return { path: '', reason: 'invalid' };
  // Intersections and unions add their member index to the context; it is not part of the data's path.
  const combinator = (i: number) => ['IntersectionType', 'UnionType'].includes((first.context[i - 1]?.type as { _tag?: string } | undefined)?._tag ?? '');
  const path = first.context.filter((c, i) => c.key !== '' && !combinator(i)).map((c) => pathSegment(c.key)).join('.');
  const expected = first.message ?? `expected ${first.context[first.context.length - 1]?.type.name ?? 'a valid value'}`;
  return { path, reason: showValue ? `${expected}, got ${preview(first.value)}` : expected };
}

/** A key as a path names it: quoted unless plain (a key from a file may hold a newline, which would break the one-line error, or a ':'). */
const pathSegment = (key: string): string => (/^[\w.$-]+$/.test(key) ? key : JSON.stringify(key));

/** A short rendering of an offending value: errors must stay one readable line. JSON writes a number past its range (1e400) as null: it is Infinity. */
function preview(value: unknown): string {
  const text = value === undefined ? 'nothing' : typeof value === 'number' && !Number.isFinite(value) ? String(value) : JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
