/** Structured logs: pino, one event per line, a `component` on every line, secrets redacted. */
import { pino, type Logger } from 'pino';

export type { Logger };

/** Keys that can hold secrets anywhere in a logged object; their values never reach a log line. */
const SECRET_KEYS = ['appSecret', 'secret', 'accessToken', 'refreshToken', 'idToken', 'access_token', 'refresh_token', 'id_token', 'authorization', 'Authorization', 'password', 'code', 'encryptionKey'];

let root: Logger | undefined;

/** The process's root logger; stderr so stdout stays clean for command output (tables, JSON). */
export function rootLogger(level: string = process.env['LEDGER_LOG_LEVEL'] ?? 'info'): Logger {
  root ??= pino(
    {
      level,
      base: { pid: process.pid },
      redact: { paths: [...SECRET_KEYS, ...SECRET_KEYS.map((k) => `*.${k}`)], censor: '[redacted]' },
      serializers: { err: pino.stdSerializers.err },
    },
    pino.destination({ fd: 2, sync: true }),
  );
  return root;
}

export const logger = (component: string): Logger => rootLogger().child({ component });
