/**
 * EventStoreDB log positions <-> our opaque Position strings.
 *
 * A position is `{commit, prepare}`, ordered by commit then prepare. Both are uint64 on the wire,
 * so each is written as 20 zero-padded decimal digits: `<commit>/<prepare>`. Equal widths make plain
 * string comparison the store's order, which is all the port promises.
 */
import { StoreConfigError } from './errors.ts';
import { asPosition, type Position } from './port.ts';

/** Structurally the client's `Position`; kept local so this module stays pure. */
export interface LogPosition {
  readonly commit: bigint;
  readonly prepare: bigint;
}

const DIGITS = 20;
const UINT64_MAX = 2n ** 64n - 1n;
const ENCODED = /^(\d{20})\/(\d{20})$/;

const inRange = (n: bigint): boolean => n >= 0n && n <= UINT64_MAX;

const pad = (n: bigint): string => {
  // Outside uint64 the fixed width, and with it the ordering, would break.
  if (!inRange(n)) throw new RangeError(`EventStoreDB log position out of uint64 range: ${n}`);
  return n.toString().padStart(DIGITS, '0');
};

export const encodePosition = ({ commit, prepare }: LogPosition): Position => asPosition(`${pad(commit)}/${pad(prepare)}`);

const parse = (encoded: string): LogPosition | undefined => {
  const [, commit, prepare] = ENCODED.exec(encoded) ?? [];
  if (commit === undefined || prepare === undefined) return undefined;
  const position = { commit: BigInt(commit), prepare: BigInt(prepare) };
  return inRange(position.commit) && inRange(position.prepare) ? position : undefined;
};

/** True when `encoded` is a position this module wrote (a SQLite position, say, is not). */
export const isEncodedPosition = (encoded: string): boolean => parse(encoded) !== undefined;

export function decodePosition(position: Position): LogPosition {
  const decoded = parse(position);
  if (!decoded) {
    throw new StoreConfigError(`not an EventStoreDB position: ${JSON.stringify(position)} (expected <20 digits>/<20 digits>)`);
  }
  return decoded;
}
