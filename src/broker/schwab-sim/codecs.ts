/** io-ts helpers for the simulator's request bodies (control API and scripts). */
import * as t from 'io-ts';
import { isLeft } from 'fp-ts/lib/Either.js';
import { PathReporter } from 'io-ts/lib/PathReporter.js';
import * as D from '../../domain/decimal.ts';

export const intAtLeast = (min: number, name: string): t.Type<number, number, unknown> =>
  new t.Type<number, number, unknown>(
    name,
    (u): u is number => typeof u === 'number' && Number.isSafeInteger(u) && u >= min,
    (u, c) => (typeof u === 'number' && Number.isSafeInteger(u) && u >= min ? t.success(u) : t.failure(u, c, `expected an integer >= ${min}`)),
    t.identity,
  );

export const PositiveInt = intAtLeast(1, 'PositiveInt');
export const NonNegativeInt = intAtLeast(0, 'NonNegativeInt');

/** A price as Schwab quotes it: positive, at most 4 decimals. Throws RangeError otherwise. */
export function parsePrice(text: string): D.Decimal {
  const price = D.parse(text);
  if (D.sign(price) <= 0 || !D.eq(D.round(price, 4), price)) throw new RangeError(`price ${text} must be positive with at most 4 decimals`);
  return price;
}

/** A price string ("22.7299"); kept as text so in-process and JSON callers share one shape. */
export const PriceText = new t.Type<string, string, unknown>(
  'PriceText',
  (u): u is string => typeof u === 'string',
  (u, c) => {
    if (typeof u !== 'string') return t.failure(u, c, 'expected a decimal string such as "22.7299"');
    try {
      parsePrice(u);
      return t.success(u);
    } catch (err) {
      return t.failure(u, c, (err as Error).message);
    }
  },
  t.identity,
);

export const withOptional = <R extends t.Props, O extends t.Props>(required: R, optional: O) =>
  t.intersection([t.type(required), t.partial(optional)]);

export type Decoded<A> = { readonly ok: true; readonly value: A } | { readonly ok: false; readonly errors: string[] };

export function decode<A>(codec: t.Decoder<unknown, A>, input: unknown): Decoded<A> {
  const result = codec.decode(input);
  return isLeft(result) ? { ok: false, errors: PathReporter.report(result) } : { ok: true, value: result.right };
}
