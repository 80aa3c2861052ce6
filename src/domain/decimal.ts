/**
 * Exact decimal numbers for money and share quantities: a bigint scaled by 10^18.
 * A JavaScript `number` never holds an amount; 0.7 + 0.2 + 0.1 is exactly 1 here.
 */

export const SCALE_DIGITS = 18;
const SCALE = 10n ** BigInt(SCALE_DIGITS);

declare const decimalBrand: unique symbol;
/** Value = units / 10^18. Construct only through the functions below. */
export type Decimal = { readonly units: bigint; readonly [decimalBrand]: true };

export type Rounding = 'floor' | 'ceil' | 'trunc' | 'halfEven';

const make = (units: bigint): Decimal => ({ units }) as Decimal;

export const ZERO = make(0n);
export const ONE = make(SCALE);

const CANONICAL = /^-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?$/;
const LENIENT = /^(-?)([0-9]+)(?:\.([0-9]+))?$/;

export class DecimalFormatError extends Error {
  override readonly name = 'DecimalFormatError';
  constructor(readonly input: string, readonly reason: string) {
    super(`not a decimal: ${JSON.stringify(input)} (${reason})`);
  }
}

/** Parses `"1.5"`, `"-0.2"`, `"007.10"`; rejects exponents, blanks and more than 18 fractional digits. */
export function parse(text: string): Decimal {
  const m = LENIENT.exec(text);
  if (!m) throw new DecimalFormatError(text, 'expected digits with an optional sign and fraction');
  const [, sign, int = '0', frac = ''] = m;
  const trimmed = frac.replace(/0+$/, '');
  if (trimmed.length > SCALE_DIGITS) throw new DecimalFormatError(text, `more than ${SCALE_DIGITS} fractional digits`);
  const units = BigInt(int) * SCALE + BigInt(trimmed.padEnd(SCALE_DIGITS, '0') || '0');
  return make(sign === '-' ? -units : units);
}

/** True for the canonical form only: no `+`, no leading zeros, no trailing fractional zeros, no `-0`. */
export const isCanonical = (text: string): boolean => CANONICAL.test(text) && text !== '-0';

/** Canonical string: `"0"`, `"-0.2"`, `"1.5"`. */
export function format(d: Decimal): string {
  const negative = d.units < 0n;
  const abs = negative ? -d.units : d.units;
  const int = abs / SCALE;
  const frac = (abs % SCALE).toString().padStart(SCALE_DIGITS, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${int}${frac ? `.${frac}` : ''}`;
}

/** 10^0 … 10^18, computed once: replay scales two amounts per fill. */
const POWERS_OF_TEN: readonly bigint[] = Array.from({ length: SCALE_DIGITS + 1 }, (_, i) => 10n ** BigInt(i));

/**
 * An integer amount in a token's smallest unit (USDC: 6 decimals, equities: 18). Any uint8
 * precision, as an IO's decimals may be: above 18 the amount must be a whole number of 1e-18.
 */
export function fromUnits(amount: bigint, decimals: number): Decimal {
  if (!Number.isInteger(decimals) || decimals < 0 || decimals > 255) throw new RangeError(`bad token decimals ${decimals}`);
  if (decimals <= SCALE_DIGITS) return make(amount * POWERS_OF_TEN[SCALE_DIGITS - decimals]!);
  const divisor = 10n ** BigInt(decimals - SCALE_DIGITS);
  if (amount % divisor !== 0n) throw new RangeError(`amount ${amount} with ${decimals} decimals is finer than 1e-${SCALE_DIGITS}`);
  return make(amount / divisor);
}

export const fromBigInt = (n: bigint): Decimal => make(n * SCALE);

export const add = (a: Decimal, b: Decimal): Decimal => make(a.units + b.units);
export const sub = (a: Decimal, b: Decimal): Decimal => make(a.units - b.units);
export const neg = (a: Decimal): Decimal => make(-a.units);
export const abs = (a: Decimal): Decimal => (a.units < 0n ? neg(a) : a);
export const sum = (xs: readonly Decimal[]): Decimal => xs.reduce(add, ZERO);

/** Integer division of bigints with an explicit rounding mode. */
function divRound(n: bigint, d: bigint, rounding: Rounding): bigint {
  if (d === 0n) throw new RangeError('division by zero');
  const q = n / d; // truncates toward zero
  const r = n % d;
  if (r === 0n) return q;
  const positive = (n < 0n) === (d < 0n);
  switch (rounding) {
    case 'trunc':
      return q;
    case 'floor':
      return positive ? q : q - 1n;
    case 'ceil':
      return positive ? q + 1n : q;
    case 'halfEven': {
      const twice = 2n * (r < 0n ? -r : r);
      const absD = d < 0n ? -d : d;
      const away = positive ? q + 1n : q - 1n;
      if (twice > absD) return away;
      if (twice < absD) return q;
      return q % 2n === 0n ? q : away;
    }
  }
}

export const mul = (a: Decimal, b: Decimal, rounding: Rounding = 'halfEven'): Decimal =>
  make(divRound(a.units * b.units, SCALE, rounding));

export const div = (a: Decimal, b: Decimal, rounding: Rounding = 'halfEven'): Decimal =>
  make(divRound(a.units * SCALE, b.units, rounding));

/** Largest integer <= a, as a Decimal. */
export const floor = (a: Decimal): Decimal => make(divRound(a.units, SCALE, 'floor') * SCALE);

/** Rounds to `digits` fractional digits (broker prices have 4). */
export const round = (a: Decimal, digits: number, rounding: Rounding = 'halfEven'): Decimal => {
  const step = 10n ** BigInt(SCALE_DIGITS - digits);
  return make(divRound(a.units, step, rounding) * step);
};

/** The integer part, for whole-share quantities; throws when `a` is not an integer. */
export function toBigInt(a: Decimal): bigint {
  if (a.units % SCALE !== 0n) throw new RangeError(`${format(a)} is not a whole number`);
  return a.units / SCALE;
}

export const compare = (a: Decimal, b: Decimal): -1 | 0 | 1 => (a.units < b.units ? -1 : a.units > b.units ? 1 : 0);
export const eq = (a: Decimal, b: Decimal): boolean => a.units === b.units;
export const lt = (a: Decimal, b: Decimal): boolean => a.units < b.units;
export const gte = (a: Decimal, b: Decimal): boolean => a.units >= b.units;
export const isZero = (a: Decimal): boolean => a.units === 0n;
export const sign = (a: Decimal): -1 | 0 | 1 => compare(a, ZERO);
