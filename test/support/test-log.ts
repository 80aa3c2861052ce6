/** Logs of the suites stay quiet unless a run asks for them (LEDGER_TEST_LOGS=debug); the code under test logs as in production. */
import { pino, type Logger } from 'pino';

export const testLog = (component = 'test'): Logger => pino({ level: process.env['LEDGER_TEST_LOGS'] ?? 'silent' }).child({ component });

/** A line a logger wrote, parsed. */
export type LogLine = { readonly msg: string } & Readonly<Record<string, unknown>>;

/** A logger at `level` whose lines are kept, parsed, for a test to look at. */
export function capturedLog(level: string): { readonly lines: LogLine[]; readonly log: Logger } {
  const lines: LogLine[] = [];
  return { lines, log: pino({ level }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) }) };
}
