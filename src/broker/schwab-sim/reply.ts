/** A response the handlers build and the server sends (or a fault replaces). */
import { stringify, type Json } from './json.ts';

export interface Reply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | Buffer;
}

export const jsonReply = (status: number, value: Json): Reply => ({
  status,
  headers: { 'Content-Type': 'application/json' },
  body: stringify(value),
});

export const emptyReply = (status: number, headers: Readonly<Record<string, string>> = {}): Reply => ({ status, headers, body: '' });

/** Schwab's error shape; clients should key on the status and treat the body as opaque. */
export const schwabError = (status: number, message: string, errors: readonly string[] = [message]): Reply =>
  jsonReply(status, { message, errors });
