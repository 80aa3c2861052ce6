/**
 * JSON with numbers kept as their source text. Schwab writes quantities and prices as
 * doubles (`22.7299`, `1.0`); JSON.parse would turn them into JS numbers, which never hold
 * money here (and Node 20's JSON.parse cannot show a reviver the source text). This small
 * recursive-descent parser returns every number as a JsonNumber holding its exact text.
 */
import * as D from '../../domain/decimal.ts';

export class JsonNumber {
  constructor(readonly text: string) {}
}

export type JsonValue = JsonNumber | string | boolean | null | JsonValue[] | { [key: string]: JsonValue };

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
/** A string token's extent; JSON.parse then checks its escapes and control characters. */
const STRING = /"(?:[^"\\]|\\.)*"/y;
const WHITESPACE = /[ \t\n\r]*/y;
const LITERALS = [['true', true], ['false', false], ['null', null]] as const;

export class JsonTextError extends SyntaxError {
  override readonly name = 'JsonTextError';
}

class Parser {
  private at = 0;

  constructor(private readonly text: string) {}

  document(): JsonValue {
    const value = this.value();
    this.skipWhitespace();
    if (this.at !== this.text.length) this.fail('unexpected text after the value');
    return value;
  }

  private value(): JsonValue {
    this.skipWhitespace();
    const c = this.text[this.at];
    if (c === '{') return this.object();
    if (c === '[') return this.array();
    if (c === '"') return this.string();
    const literal = LITERALS.find(([word]) => this.text.startsWith(word, this.at));
    if (literal) {
      this.at += literal[0].length;
      return literal[1];
    }
    return new JsonNumber(this.token(NUMBER, 'a value'));
  }

  private object(): { [key: string]: JsonValue } {
    const out: { [key: string]: JsonValue } = {};
    this.at++;
    if (this.peekAfterWhitespace() === '}') return this.close(out);
    for (;;) {
      this.skipWhitespace();
      const key = this.string();
      this.expect(':');
      Object.defineProperty(out, key, { value: this.value(), enumerable: true, writable: true, configurable: true }); // "__proto__" stays data
      if (this.peekAfterWhitespace() === '}') return this.close(out);
      this.expect(',');
    }
  }

  private array(): JsonValue[] {
    const out: JsonValue[] = [];
    this.at++;
    if (this.peekAfterWhitespace() === ']') return this.close(out);
    for (;;) {
      out.push(this.value());
      if (this.peekAfterWhitespace() === ']') return this.close(out);
      this.expect(',');
    }
  }

  private string(): string {
    const token = this.token(STRING, 'a string');
    try {
      return JSON.parse(token) as string;
    } catch {
      return this.fail('bad string escape or control character');
    }
  }

  private close<T>(value: T): T {
    this.at++;
    return value;
  }

  private token(pattern: RegExp, what: string): string {
    pattern.lastIndex = this.at;
    const match = pattern.exec(this.text);
    if (match === null) this.fail(`expected ${what}`);
    this.at = pattern.lastIndex;
    return match[0];
  }

  private expect(c: string): void {
    if (this.peekAfterWhitespace() !== c) this.fail(`expected ${JSON.stringify(c)}`);
    this.at++;
  }

  private peekAfterWhitespace(): string | undefined {
    this.skipWhitespace();
    return this.text[this.at];
  }

  private skipWhitespace(): void {
    WHITESPACE.lastIndex = this.at;
    WHITESPACE.exec(this.text);
    this.at = WHITESPACE.lastIndex;
  }

  private fail(reason: string): never {
    throw new JsonTextError(`bad JSON at offset ${this.at}: ${reason}`);
  }
}

/** Parses JSON text; numbers come back as JsonNumber. Throws JsonTextError on bad input. */
export const parseJsonText = (text: string): JsonValue => new Parser(text).document();

/** The exact decimal a JSON number's text denotes (`22.7299`, `1.0`, `1.5E-4`), never via a JS number. */
export function decimalOfNumberText(text: string): D.Decimal {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (m === null) throw new D.DecimalFormatError(text, 'not a JSON number');
  const [, sign = '', int = '', frac = '', exp = '0'] = m;
  const shift = Number(exp);
  if (Math.abs(shift) > D.SCALE_DIGITS + 20) throw new D.DecimalFormatError(text, 'exponent out of range');
  const digits = int + frac;
  const point = int.length + shift; // where the decimal point lands in `digits`
  const padded = point <= 0 ? '0'.repeat(1 - point) + digits : point > digits.length ? digits.padEnd(point, '0') : digits;
  const at = Math.max(point, 1);
  return D.parse(`${sign}${padded.slice(0, at)}.${padded.slice(at) || '0'}`);
}

/** JSON text with every JsonNumber written verbatim (request bodies carry exact share counts). */
export function stringifyJson(value: JsonValue): string {
  if (value instanceof JsonNumber) return value.text;
  if (Array.isArray(value)) return `[${value.map(stringifyJson).join(',')}]`;
  if (value !== null && typeof value === 'object') return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}:${stringifyJson(v)}`).join(',')}}`;
  return JSON.stringify(value);
}
