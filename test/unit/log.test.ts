/** Log lines: secrets censored wherever a logged object may carry them, and an error's code kept. */
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.ts';

function logged(write: (log: ReturnType<typeof createLogger>) => void): Record<string, unknown> {
  const lines: string[] = [];
  write(createLogger('info', { write: (line: string) => void lines.push(line) }));
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]!) as Record<string, unknown>;
}

describe('createLogger', () => {
  it('censors secrets at the top level and one level down', () => {
    const line = logged((log) =>
      log.info({ accessToken: 'at-1', refresh_token: 'rt-1', code: 'C0.oauth', tokens: { idToken: 'id-1', appSecret: 's-1' }, headers: { Authorization: 'Bearer at-1' }, config: { password: 'pw', encryptionKey: 'k' } }, 'tokens refreshed'),
    );
    expect(JSON.stringify(line)).not.toMatch(/at-1|rt-1|C0\.oauth|id-1|s-1|"pw"|"k"/);
    expect(line).toMatchObject({ accessToken: '[redacted]', code: '[redacted]', tokens: { idToken: '[redacted]' }, headers: { Authorization: '[redacted]' } });
  });

  it("keeps an error's code, which says what went wrong", () => {
    const error = Object.assign(new Error('cannot read /data/schwab-tokens.json'), { code: 'EACCES' });
    expect(logged((log) => log.error({ err: error }, 'token file unreadable'))).toMatchObject({ err: { code: 'EACCES', message: 'cannot read /data/schwab-tokens.json' } });
  });
});
