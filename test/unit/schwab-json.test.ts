/** Number-preserving JSON: Schwab's doubles reach the codecs as their exact text. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as D from '../../src/domain/decimal.ts';
import { JsonNumber, JsonTextError, decimalOfNumberText, parseJsonText, stringifyJson, type JsonValue } from '../../src/broker/schwab/json-text.ts';

/** What JSON.parse would give, numbers through their text: the structures must agree. */
const asPlain = (v: JsonValue): unknown =>
  v instanceof JsonNumber ? Number(v.text) : Array.isArray(v) ? v.map(asPlain) : v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, asPlain(x)])) : v;

describe('parseJsonText', () => {
  it('keeps every number as the text Schwab wrote', () => {
    const parsed = parseJsonText('{"price":22.7299,"quantity":1.0,"orderId":1004055538153999,"tiny":1.5E-4,"neg":-0.0}') as Record<string, JsonNumber>;
    expect(Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, v.text]))).toEqual({ price: '22.7299', quantity: '1.0', orderId: '1004055538153999', tiny: '1.5E-4', neg: '-0.0' });
  });

  it('agrees with JSON.parse on any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = JSON.stringify(value);
        expect(asPlain(parseJsonText(text))).toEqual(JSON.parse(text));
      }),
      { numRuns: 300 },
    );
  });

  it('rejects what JSON.parse rejects, with the offset', () => {
    for (const bad of ['', '{', '[1,]', '{"a" 1}', '01', '1.', 'tru', '"a\u0001"', '{"a":1}x', '<HTML>Access Denied</HTML>']) {
      expect(() => parseJsonText(bad), bad).toThrow(JsonTextError);
    }
  });

  it('keeps "__proto__" as data', () => {
    const parsed = parseJsonText('{"__proto__":{"polluted":true}}') as Record<string, unknown>;
    expect(Object.keys(parsed)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('writes numbers back verbatim', () => {
    expect(stringifyJson({ q: new JsonNumber('3'), legs: [{ s: 'GME' }], ok: true, none: null })).toBe('{"q":3,"legs":[{"s":"GME"}],"ok":true,"none":null}');
  });
});

describe('decimalOfNumberText', () => {
  it('reads plain and exponent forms exactly', () => {
    const cases: [string, string][] = [['22.7299', '22.7299'], ['1.0', '1'], ['1.5E-4', '0.00015'], ['2.5e3', '2500'], ['15e-2', '0.15'], ['-0.0', '0'], ['0.1e1', '1'], ['1E+2', '100']];
    for (const [text, expected] of cases) expect(D.format(decimalOfNumberText(text)), text).toBe(expected);
  });

  it('matches the decimal of any double that needs at most 18 decimals', () => {
    fc.assert(
      fc.property(fc.integer({ min: -1_000_000_000, max: 1_000_000_000 }), fc.integer({ min: 0, max: 8 }), (units, scale) => {
        const exact = D.parse((units / 10 ** scale).toFixed(scale));
        expect(D.eq(decimalOfNumberText(String(units / 10 ** scale)), exact)).toBe(true);
      }),
    );
  });

  it('refuses more precision than the ledger keeps', () => {
    expect(() => decimalOfNumberText('1e-19')).toThrow(D.DecimalFormatError);
    expect(() => decimalOfNumberText('0x10')).toThrow(D.DecimalFormatError);
  });
});
