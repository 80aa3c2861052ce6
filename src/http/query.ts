/** Query and path parameters of the HTTP API, decoded with io-ts; a bad one names itself and the reason. */
import * as t from 'io-ts';
import * as E from 'fp-ts/lib/Either.js';
import { describeErrors } from '../domain/codecs.ts';
import type { HedgeStatus as Status } from '../../projections/ledger.ts';
import type { RejectionReason as Reason } from '../../projections/fill.ts';

export class BadParameter extends Error {
  override readonly name = 'BadParameter';
  constructor(
    readonly parameter: string,
    readonly reason: string,
  ) {
    super(`${parameter}: ${reason}`);
  }
}

const oneOf = <K extends string>(keys: Record<K, null>) => t.keyof(keys, `one of ${Object.keys(keys).join(', ')}`);

export const HedgeStatus = oneOf({ requested: null, submitting: null, placed: null, filled: null, failed: null } satisfies Record<Status, null>);

export const RejectionReason = oneOf({
  not_ours: null,
  not_hedgeable: null,
  zero_amount: null,
  bad_io_index: null,
  unpaired_clear: null,
  unpaired_after_clear: null,
  unknown_token: null,
  malformed_log: null,
  unknown_event: null,
  nonsensical_price: null,
  corrupt_event: null,
} satisfies Record<Reason, null>);


/** A decimal integer text from 1 to `max`. */
export const Limit = (max: number) =>
  new t.Type<number, string, unknown>(
    'Limit',
    (u): u is number => typeof u === 'number',
    (u, c) => (typeof u === 'string' && /^[1-9][0-9]{0,15}$/.test(u) && Number(u) <= max ? t.success(Number(u)) : t.failure(u, c, `expected an integer from 1 to ${max}`)),
    String,
  );

/** Decodes a parameter value or throws BadParameter naming it. */
export function decodeParameter<A>(parameter: string, codec: t.Decoder<unknown, A>, value: unknown): A {
  const decoded = codec.decode(value);
  if (E.isRight(decoded)) return decoded.right;
  throw new BadParameter(parameter, describeErrors(decoded.left).reason);
}

/** Decodes the query string against the parameters a route takes: unknown or repeated ones are errors too. */
export function decodeQuery<P extends t.Props>(query: URLSearchParams, props: P): t.TypeOf<t.PartialC<P>> {
  const values: Record<string, unknown> = {};
  for (const name of new Set(query.keys())) {
    const codec = Object.hasOwn(props, name) ? props[name] : undefined;
    if (codec === undefined) throw new BadParameter(name, `unknown parameter (this route takes ${Object.keys(props).join(', ') || 'none'})`);
    if (query.getAll(name).length > 1) throw new BadParameter(name, 'given more than once');
    values[name] = decodeParameter(name, codec, query.get(name));
  }
  return values as t.TypeOf<t.PartialC<P>>;
}
