/**
 * io-ts codecs for Schwab's answers, decoded from number-preserving JSON (json-text.ts).
 * Tolerant where Schwab may grow (extra fields, status strings we have never seen), strict
 * on money: quantities and prices must be JSON numbers with an exact decimal value, whole
 * and non-negative for shares, positive for prices.
 */
import * as t from 'io-ts';
import * as E from 'fp-ts/lib/Either.js';
import * as D from '../../domain/decimal.ts';
import { describeErrors } from '../../domain/codecs.ts';
import { JsonNumber, JsonTextError, decimalOfNumberText, parseJsonText } from './json-text.ts';

const numberDecimal = (name: string, check: (d: D.Decimal) => boolean, expected: string) =>
  new t.Type<D.Decimal, JsonNumber, unknown>(
    name,
    (u): u is D.Decimal => typeof u === 'object' && u !== null && typeof (u as { units?: unknown }).units === 'bigint',
    (u, c) => {
      if (!(u instanceof JsonNumber)) return t.failure(u, c, `expected ${expected} as a JSON number`);
      try {
        const d = decimalOfNumberText(u.text);
        return check(d) ? t.success(d) : t.failure(u.text, c, `expected ${expected}`);
      } catch {
        return t.failure(u.text, c, `expected ${expected} with at most ${D.SCALE_DIGITS} decimals`);
      }
    },
    (d) => new JsonNumber(D.format(d)),
  );

/** Whole, non-negative shares (`1.0`): fractional quantities are not supported. */
const Shares = numberDecimal('Shares', (d) => D.sign(d) >= 0 && D.eq(D.floor(d), d), 'a whole, non-negative number of shares');
/** A positive execution price. */
const Price = numberDecimal('Price', (d) => D.sign(d) > 0, 'a positive price');

const INT64_MAX = 2n ** 63n - 1n;

/** Whether `digits` is an order id Schwab can issue: a positive int64 without leading zeros. */
export const isOrderId = (digits: string): boolean => /^[1-9]\d{0,18}$/.test(digits) && BigInt(digits) <= INT64_MAX;

/**
 * Order ids are int64: kept as the digits Schwab wrote. A longer run of digits is a garbled
 * answer, not an id: adopted by reconciliation, it would be polled for ever (404) while the
 * command's real order went unseen.
 */
const OrderId = new t.Type<string, JsonNumber, unknown>(
  'OrderId',
  (u): u is string => typeof u === 'string',
  (u, c) => (u instanceof JsonNumber && isOrderId(u.text) ? t.success(u.text) : t.failure(u, c, 'expected a positive int64 order id')),
  (s) => new JsonNumber(s),
);

/** ISO 8601 date and time; the zone is optional (Schwab's `+0000` has no colon). */
const ISO_TIME = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?)(Z|[+-]\d{2}:?\d{2})?$/;

/** Date.parse rolls `2025-02-30` into March: the fields must read back unchanged. */
const onTheCalendar = (fields: string): boolean => {
  const ms = Date.parse(`${fields}Z`);
  return !Number.isNaN(ms) && new Date(ms).toISOString().startsWith(fields.slice(0, 19));
};

/**
 * `2025-08-29T17:15:17+0000` → Date. Schwab writes UTC, so a time without a zone is read as UTC:
 * Date.parse would take it as the host's local time, and an entry time hours off can make
 * reconciliation miss our own order (and place it twice) or adopt an older one.
 */
const SchwabTime = new t.Type<Date, string, unknown>(
  'SchwabTime',
  (u): u is Date => u instanceof Date,
  (u, c) => {
    const m = typeof u === 'string' ? ISO_TIME.exec(u) : null;
    const zone = m?.[2] === undefined ? 'Z' : m[2].replace(/^([+-]\d{2})(\d{2})$/, '$1:$2');
    const ms = m === null || !onTheCalendar(m[1]!) ? NaN : Date.parse(`${m[1]}${zone}`);
    return Number.isNaN(ms) ? t.failure(u, c, 'expected a time like 2025-08-29T17:15:17+0000') : t.success(new Date(ms));
  },
  (d) => d.toISOString(),
);

/** A small whole number that is not money (seconds, counts): a JS number is fine. */
const Seconds = new t.Type<number, JsonNumber, unknown>(
  'Seconds',
  (u): u is number => typeof u === 'number',
  (u, c) => (u instanceof JsonNumber && /^\d{1,9}$/.test(u.text) ? t.success(Number(u.text)) : t.failure(u, c, 'expected whole seconds')),
  (n) => new JsonNumber(String(n)),
);

/**
 * A token or identifier that must name something: an empty account hash would be cached and put in every path
 * (`/accounts//orders`); an empty refresh token would be saved over the login and refused at the next refresh.
 */
const NonEmptyString = new t.Type<string, string, unknown>(
  'NonEmptyString',
  (u): u is string => typeof u === 'string' && u.trim() !== '',
  (u, c) => (typeof u !== 'string' ? t.failure(u, c, 'expected string') : u.trim() === '' ? t.failure(u, c, 'expected a non-empty string') : t.success(u)),
  t.identity,
);

export const TokenResponse = t.type({
  access_token: NonEmptyString,
  refresh_token: NonEmptyString,
  expires_in: Seconds,
  token_type: t.string,
});
export type TokenResponse = t.TypeOf<typeof TokenResponse>;

export const AccountNumbers = t.array(t.type({ accountNumber: NonEmptyString, hashValue: NonEmptyString }));

const ExecutionLeg = t.type({ quantity: Shares, price: Price });

const Activity = t.partial({ activityType: t.string, executionLegs: t.array(ExecutionLeg) });

/** A leg's symbol: a blank one names no symbol, so, like a missing one, it cannot rule out ours. */
const LegInstrument = t.type({ instrument: t.type({ symbol: NonEmptyString }) });

const OrderLeg = t.intersection([t.type({ instruction: t.string, quantity: Shares }), LegInstrument]);

/** An order's legs: at least one. An empty list says nothing of what the order is for, so it cannot rule out ours. */
function legsOf<C extends t.Mixed>(leg: C) {
  const legs = t.array(leg);
  return new t.Type<t.TypeOf<C>[], t.OutputOf<C>[], unknown>(
    'OrderLegs',
    (u): u is t.TypeOf<C>[] => legs.is(u) && u.length > 0,
    (u, c) => (Array.isArray(u) && u.length === 0 ? t.failure(u, c, 'expected at least one leg') : legs.validate(u, c)),
    legs.encode,
  );
}

export const Order = t.intersection([
  t.type({
    orderId: OrderId,
    /** Any string: unknown statuses are open orders, never a decoding failure. */
    status: t.string,
    orderType: t.string,
    enteredTime: SchwabTime,
    orderLegCollection: legsOf(OrderLeg),
  }),
  /** filledQuantity: Schwab's own count, for when the executions are missing or incomplete. */
  t.partial({ statusDescription: t.string, filledQuantity: Shares, orderActivityCollection: t.array(Activity) }),
]);
export type Order = t.TypeOf<typeof Order>;

/** The orders list, decoded order by order: an order someone else placed that we cannot read must not hide ours. */
export const OrderList = t.array(t.unknown);

/** Just the symbols of an order's legs: enough to tell whether an order we cannot read could be ours. */
export const OrderSymbols = t.type({ orderLegCollection: legsOf(LegInstrument) });

/** Why a body did not decode: bad JSON or the first failing path; never the body itself (it may hold tokens). */
export class UnexpectedAnswer extends Error {
  override readonly name = 'UnexpectedAnswer';
}

/** Decodes parsed JSON, or an UnexpectedAnswer naming the first failing path. */
export function decodeJson<A>(codec: t.Decoder<unknown, A>, json: unknown, what: string): E.Either<UnexpectedAnswer, A> {
  const result = codec.decode(json);
  if (E.isRight(result)) return result;
  const { path, reason } = describeErrors(result.left, { showValue: false }); // a token answer's values are secrets
  return E.left(new UnexpectedAnswer(`${what}: at ${path || '<root>'}: ${reason}`));
}

/** Parses a body's JSON text (numbers kept exact) and decodes it, or throws UnexpectedAnswer naming what failed. */
export function decodeBody<A>(codec: t.Decoder<unknown, A>, body: string, what: string): A {
  let json: unknown;
  try {
    json = parseJsonText(body);
  } catch (e) {
    throw new UnexpectedAnswer(`${what}: ${(e as JsonTextError).message}`);
  }
  const result = decodeJson(codec, json, what);
  if (E.isLeft(result)) throw result.left;
  return result.right;
}
