/** Logs of the suites stay quiet unless a run asks for them (LEDGER_TEST_LOGS=debug); the code under test logs as in production. */
import { pino, type Logger } from 'pino';

export const testLog = (component = 'test'): Logger => pino({ level: process.env['LEDGER_TEST_LOGS'] ?? 'silent' }).child({ component });
