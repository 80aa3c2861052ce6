/** Structured logs: pino, one event per line, a `component` on every line, secrets redacted. */
import { pino, type Logger } from 'pino';

export type { Logger };

/** Keys that can hold secrets in a logged object or one level down; their values never reach a log line. */
const SECRET_KEYS = ['appSecret', 'secret', 'accessToken', 'refreshToken', 'idToken', 'access_token', 'refresh_token', 'id_token', 'authorization', 'Authorization', 'password', 'encryptionKey'];

/**
 * An OAuth authorization code, if anything logged one as `code`. Top level only: one level
 * down, `err.code` is an error's code (EACCES, ECONNRESET), which an operator needs to see.
 */
const REDACTED = [...SECRET_KEYS, ...SECRET_KEYS.map((k) => `*.${k}`), 'code'];

/** A logger with the process's settings, writing to `destination`. */
export const createLogger = (level: string, destination: pino.DestinationStream): Logger =>
  pino({ level, base: { pid: process.pid }, redact: { paths: REDACTED, censor: '[redacted]' }, serializers: { err: pino.stdSerializers.err } }, destination);

let root: Logger | undefined;
let beforeLine: (() => void) | undefined;

/**
 * Runs `clear` before each line the root logger writes (until called again): a progress bar drawn on
 * the terminal erases itself, so a log line starts at column 0 instead of running on after the bar.
 */
export function beforeLogLine(clear: (() => void) | undefined): void {
  beforeLine = clear;
}

/** The process's root logger; stderr so stdout stays clean for command output (tables, JSON). */
export function rootLogger(level: string = process.env['LEDGER_LOG_LEVEL'] ?? 'info'): Logger {
  if (root === undefined) {
    const stderr = pino.destination({ fd: 2, sync: true });
    root = createLogger(level, { write: (line: string) => (beforeLine?.(), stderr.write(line)) });
  }
  return root;
}

export const logger = (component: string): Logger => rootLogger().child({ component });
