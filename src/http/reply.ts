/** Responses: JSON typed as store-safe `Json`, so a bigint or Decimal cannot reach JSON.stringify unformatted. */
import type { Json } from '../eventstore/port.ts';

export interface Reply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export const json = (status: number, value: Json, headers: Readonly<Record<string, string>> = {}): Reply => ({
  status,
  headers: { 'Content-Type': 'application/json; charset=utf-8', ...headers },
  body: JSON.stringify(value),
});

/** `{ error, …details }`: the shape of every 4xx and 5xx answer. */
export const problem = (status: number, error: string, details: { readonly [key: string]: Json } = {}, headers: Readonly<Record<string, string>> = {}): Reply =>
  json(status, { error, ...details }, headers);

/** Thrown by a handler to answer with a problem. */
export class HttpProblem extends Error {
  override readonly name = 'HttpProblem';
  constructor(readonly reply: Reply) {
    super(reply.body);
  }
}
