import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as D from '../../src/domain/decimal.ts';

const units = fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n });
const decimal = units.map((u) => D.div(D.fromBigInt(u), D.fromBigInt(10n ** 18n), 'trunc'));
const anyDecimal = fc.bigInt({ min: -(10n ** 50n), max: 10n ** 50n }).map((u) => D.fromUnits(u, 18));

describe('Decimal', () => {
  it('0.7 + 0.2 + 0.1 is exactly 1', () => {
    const total = D.sum(['0.7', '0.2', '0.1'].map(D.parse));
    expect(D.eq(total, D.ONE)).toBe(true);
    expect(D.format(total)).toBe('1');
  });

  it('ten times 0.1 is exactly 1', () => {
    expect(D.format(D.sum(Array.from({ length: 10 }, () => D.parse('0.1'))))).toBe('1');
  });

  it('formats canonically', () => {
    expect(['0', '-0.2', '1.5', '007.10', '-0.000', '1.000000000000000001'].map((s) => D.format(D.parse(s)))).toEqual([
      '0', '-0.2', '1.5', '7.1', '0', '1.000000000000000001',
    ]);
  });

  it('reads trailing fractional zeros past the 18th digit as the exact value they write', () => {
    expect(['2.5000000000000000000000', '-0.1000000000000000010000', '3.0000000000000000000'].map((s) => D.format(D.parse(s)))).toEqual(['2.5', '-0.100000000000000001', '3']);
  });

  it('rejects what is not a plain decimal, naming the input', () => {
    for (const bad of ['', '1e3', '+1', '.5', '1.', 'NaN', '0x10', ' 1', '1.0000000000000000001']) {
      expect(() => D.parse(bad), bad).toThrow(D.DecimalFormatError);
    }
    expect(() => D.parse('1e3')).toThrow(/"1e3"/);
  });

  it('recognises canonical strings only', () => {
    expect(['0', '-0.2', '1.5', '12'].every(D.isCanonical)).toBe(true);
    expect(['-0', '01', '1.50', '1.', '+1', '0.0'].some(D.isCanonical)).toBe(false);
  });

  it('scales token units exactly', () => {
    expect(D.format(D.fromUnits(160155077n, 6))).toBe('160.155077');
    expect(D.format(D.fromUnits(2n * 10n ** 18n, 18))).toBe('2');
    expect(D.format(D.div(D.fromUnits(160155077n, 6), D.fromUnits(2n * 10n ** 18n, 18)))).toBe('80.0775385');
    expect(D.format(D.fromUnits(5n * 10n ** 20n, 20))).toBe('5');
    expect(() => D.fromUnits(1n, 20)).toThrow(RangeError);
    // An IO's decimals is a uint8: anything else is refused, even for an amount of 0.
    for (const bad of [-1, 6.5, 256, Number.NaN]) expect(() => D.fromUnits(0n, bad), String(bad)).toThrow(/bad token decimals/);
  });

  it('rounds explicitly', () => {
    const third = D.div(D.ONE, D.fromBigInt(3n));
    expect(D.format(third)).toBe('0.333333333333333333');
    expect(D.format(D.div(D.fromBigInt(2n), D.fromBigInt(3n), 'halfEven'))).toBe('0.666666666666666667');
    expect(D.format(D.div(D.fromBigInt(2n), D.fromBigInt(3n), 'floor'))).toBe('0.666666666666666666');
    expect(D.format(D.div(D.fromBigInt(-2n), D.fromBigInt(3n), 'floor'))).toBe('-0.666666666666666667');
    expect(D.format(D.div(D.fromBigInt(-2n), D.fromBigInt(3n), 'ceil'))).toBe('-0.666666666666666666');
    expect(D.format(D.round(D.parse('22.72995'), 4))).toBe('22.73');
    expect(D.format(D.round(D.parse('22.72985'), 4))).toBe('22.7298');
    expect(() => D.div(D.ONE, D.ZERO)).toThrow(RangeError);
  });

  it('floors toward negative infinity', () => {
    expect(['2.7', '-1.2', '1', '-1', '0.3', '-0.3'].map((s) => D.format(D.floor(D.parse(s))))).toEqual(['2', '-2', '1', '-1', '0', '-1']);
  });

  it('converts whole numbers to bigint and refuses fractions', () => {
    expect(D.toBigInt(D.parse('3'))).toBe(3n);
    expect(() => D.toBigInt(D.parse('3.5'))).toThrow(/3.5 is not a whole number/);
  });

  describe('properties', () => {
    it('format then parse is the identity', () => {
      fc.assert(fc.property(anyDecimal, (d) => D.eq(D.parse(D.format(d)), d) && D.isCanonical(D.format(d))));
    });

    it('parse then format is the identity on canonical strings', () => {
      const canonical = fc
        .tuple(fc.boolean(), fc.bigInt({ min: 0n, max: 10n ** 30n }), fc.stringMatching(/^[0-9]{0,17}[1-9]$/), fc.boolean())
        .map(([negative, int, frac, withFrac]) => `${negative ? '-' : ''}${int}${withFrac ? `.${frac}` : ''}`)
        .filter((s) => s !== '-0');
      fc.assert(fc.property(canonical, (s) => D.format(D.parse(s)) === s));
    });

    it('addition is exact: (a + b) - b = a, and the sum is associative and commutative', () => {
      fc.assert(
        fc.property(anyDecimal, anyDecimal, anyDecimal, (a, b, c) =>
          D.eq(D.sub(D.add(a, b), b), a) && D.eq(D.add(a, b), D.add(b, a)) && D.eq(D.add(D.add(a, b), c), D.add(a, D.add(b, c))),
        ),
      );
    });

    it('n copies of 1/n sum to exactly 1 whenever 1/n is a finite decimal', () => {
      const divisorsOfScale = Array.from({ length: 2000 }, (_, i) => i + 1).filter((n) => 10n ** 18n % BigInt(n) === 0n);
      fc.assert(fc.property(fc.constantFrom(...divisorsOfScale), (n) => {
        const part = D.div(D.ONE, D.fromBigInt(BigInt(n)));
        return D.eq(D.sum(Array.from({ length: n }, () => part)), D.ONE);
      }));
    });

    it('floor(x) <= x < floor(x) + 1, and floor is whole', () => {
      fc.assert(fc.property(decimal, (x) => {
        const f = D.floor(x);
        return D.compare(f, x) <= 0 && D.lt(x, D.add(f, D.ONE)) && D.eq(D.floor(f), f);
      }));
    });

    it('division rounding brackets the exact quotient', () => {
      fc.assert(fc.property(anyDecimal, anyDecimal.filter((d) => !D.isZero(d)), (a, b) => {
        const lo = D.div(a, b, 'floor');
        const hi = D.div(a, b, 'ceil');
        const mid = D.div(a, b, 'halfEven');
        return D.compare(lo, mid) <= 0 && D.compare(mid, hi) <= 0 && hi.units - lo.units <= 1n;
      }));
    });

    it('halfEven is the nearest value, ties to even, whatever the signs (a negative quotient rounds like its positive twin)', () => {
      fc.assert(fc.property(anyDecimal, anyDecimal.filter((d) => !D.isZero(d)), (a, b) => {
        const n = a.units * 10n ** 18n; // the exact quotient is n / d, in units of 1e-18
        const d = b.units;
        const r = D.div(a, b, 'halfEven').units;
        const twiceError = 2n * (r * d - n);
        const absTwiceError = twiceError < 0n ? -twiceError : twiceError;
        const absD = d < 0n ? -d : d;
        expect(absTwiceError <= absD).toBe(true);
        if (absTwiceError === absD) expect(r % 2n).toBe(0n);
        expect(D.div(D.neg(a), b, 'halfEven')).toEqual(D.neg(D.div(a, b, 'halfEven')));
      }));
      expect(['-2.5', '-3.5', '-2.7', '-2.2'].map((s) => D.format(D.round(D.parse(s), 0)))).toEqual(['-2', '-4', '-3', '-2']);
    });

    it('fromUnits is exact for every token precision up to 18', () => {
      fc.assert(fc.property(fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }), fc.integer({ min: 0, max: 18 }), (amount, decimals) =>
        D.fromUnits(amount, decimals).units === amount * 10n ** BigInt(18 - decimals),
      ));
    });

    it('fromUnits agrees with a bigint reference for every uint8 token precision: the exact value, or a RangeError when finer than 1e-18', () => {
      // Amounts that are exact at 18 digits (whole multiples of 10^(decimals-18)) as often as not.
      const case_ = fc.integer({ min: 0, max: 255 }).chain((decimals) =>
        fc.tuple(
          fc.constant(decimals),
          fc.oneof(
            fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }),
            fc.bigInt({ min: 0n, max: 2n ** 64n }).map((k) => k * 10n ** BigInt(Math.max(0, decimals - 18))),
          ),
        ),
      );
      fc.assert(fc.property(case_, ([decimals, amount]) => {
        const scaled = amount * 10n ** 18n; // amount / 10^decimals in units of 1e-18, when whole
        const divisor = 10n ** BigInt(decimals);
        if (scaled % divisor === 0n) expect(D.fromUnits(amount, decimals).units).toBe(scaled / divisor);
        else expect(() => D.fromUnits(amount, decimals)).toThrow(/finer than 1e-18/);
      }), { numRuns: 500 });
    });
  });
});
