/**
 * Schwab's JSON writes quantities and prices as Java doubles (`1.0`, `22.7299`). We build
 * those numbers from exact decimals and write them as text, so no float arithmetic happens.
 */
import * as D from '../../domain/decimal.ts';

export class JsonDouble {
  constructor(readonly text: string) {}
}

export type Json = JsonDouble | string | number | boolean | null | readonly Json[] | { readonly [key: string]: Json | undefined };

/** The double Schwab would send: the nearest double's shortest text, with `.0` on integers like Java. */
export function double(value: D.Decimal | bigint): JsonDouble {
  const exact = typeof value === 'bigint' ? value.toString() : D.format(value);
  const text = String(Number(exact)); // rendering only: the wire format is a double
  return new JsonDouble(/^-?\d+$/.test(text) ? `${text}.0` : text);
}

/** JSON.stringify that writes JsonDouble verbatim and drops undefined members. */
export function stringify(value: Json): string {
  if (value instanceof JsonDouble) return value.text;
  if (Array.isArray(value)) return `[${value.map((v: Json) => stringify(v)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const members = Object.entries(value as { readonly [key: string]: Json | undefined }).flatMap(([k, v]) =>
      v === undefined ? [] : [`${JSON.stringify(k)}:${stringify(v)}`],
    );
    return `{${members.join(',')}}`;
  }
  return JSON.stringify(value);
}
