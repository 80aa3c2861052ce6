/**
 * The token manager against the simulator: refresh ahead of expiry, one refresher per token
 * (within a process and across processes sharing the file), any 4xx on refresh = re-auth,
 * and nothing secret in the logs.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { BrokerUnavailable, ReauthRequired } from '../../src/broker/port.ts';
import { OAuthClient } from '../../src/broker/schwab/oauth.ts';
import { TokenManager } from '../../src/broker/schwab/tokens.ts';
import { EncryptedTokenFile, createSchwabBroker } from '../../src/broker/schwab/index.ts';
import { ExecutorService } from '../../src/services/executor.ts';
import { APP, Harness } from '../support/executor-harness.ts';
import { capturedLog, testLog } from '../support/test-log.ts';

const MINUTE = 60_000;
let harness: Harness;
afterEach(() => harness.close());

/** A manager like the adapter's, on the simulator's clock. */
function manager(h: Harness, file = h.tokens): TokenManager {
  const now = () => h.sim.clock.now();
  return new TokenManager({ file, oauth: new OAuthClient({ ...APP, baseUrl: h.sim.baseUrl }, { timeoutMs: 500, log: testLog('oauth'), now }), now, log: testLog('tokens') });
}

describe('TokenManager', () => {
  it('refreshes a minute before expiry, keeps the refresh token and its 7-day end, and saves', async () => {
    harness = await Harness.start();
    const login = await harness.tokens.load();
    const tokens = manager(harness);
    expect(await tokens.accessToken()).toBe(login?.accessToken);
    harness.sim.clock.advance(29 * MINUTE + 30_000);
    const fresh = await tokens.accessToken();
    expect(fresh).not.toBe(login?.accessToken);
    expect(harness.requests('token')).toBe(1);
    expect(await harness.tokens.load()).toMatchObject({ accessToken: fresh, refreshToken: login?.refreshToken, refreshExpiresAt: login?.refreshExpiresAt });
  });

  it('one refresh for many callers, and for two processes sharing the token file', async () => {
    harness = await Harness.start();
    const [a, b] = [manager(harness), manager(harness)];
    await Promise.all([a.accessToken(), b.accessToken()]);
    harness.sim.clock.advance(31 * MINUTE);
    const seen = await Promise.all([...Array.from({ length: 10 }, () => a.accessToken()), b.accessToken(), b.accessToken()]);
    expect(new Set(seen).size).toBe(1);
    expect(harness.requests('token')).toBe(1);
  });

  it('takes over the lock of a refresher that died', async () => {
    harness = await Harness.start();
    writeFileSync(`${harness.tokens.path}.lock`, '999999999');
    harness.sim.clock.advance(31 * MINUTE);
    await manager(harness).accessToken();
    expect(harness.requests('token')).toBe(1);
  });

  it('after a 401, refreshes once unless another caller already did', async () => {
    harness = await Harness.start();
    const tokens = manager(harness);
    const first = await tokens.accessToken();
    const second = await tokens.afterUnauthorized(first);
    expect(second).not.toBe(first);
    expect(await tokens.afterUnauthorized(first)).toBe(second);
    expect(harness.requests('token')).toBe(1);
  });

  it('any 4xx on refresh means re-auth: not retried until a new login is in the file', async () => {
    harness = await Harness.start();
    const tokens = manager(harness);
    harness.sim.control.revokeTokens();
    harness.sim.clock.advance(31 * MINUTE);
    await expect(tokens.accessToken()).rejects.toThrow(ReauthRequired);
    await expect(tokens.accessToken()).rejects.toThrow(/^Schwab refused the refresh token \(HTTP 400 unsupported_token_type\): log in again/); // as the first time, without asking again
    expect(harness.requests('token')).toBe(1);
    const login = await harness.login();
    expect(await tokens.accessToken()).toBe(login.accessToken);
    harness.sim.control.injectFault('token', { kind: 'html', status: 401 });
    harness.sim.clock.advance(31 * MINUTE);
    await expect(tokens.accessToken()).rejects.toThrow(/HTTP 401/);
  });

  it('a 5xx or a timeout on refresh is transient, not re-auth', async () => {
    harness = await Harness.start();
    const tokens = manager(harness);
    harness.sim.clock.advance(31 * MINUTE);
    harness.sim.control.injectFault('token', { kind: 'status', status: 503 });
    await expect(tokens.accessToken()).rejects.toThrow(BrokerUnavailable);
    harness.sim.control.injectFault('token', { kind: 'timeout' });
    await expect(tokens.accessToken()).rejects.toThrow(/no answer within 500 ms/);
    await tokens.accessToken();
    expect(harness.requests('token')).toBe(3);
  });

  it('without a login, says to log in', async () => {
    harness = await Harness.start();
    const nobody = manager(harness, new EncryptedTokenFile(`${harness.dir}/none.json`, harness.key));
    await expect(nobody.accessToken()).rejects.toThrow(/no Schwab login yet \(.* does not exist\): log in with `hedge-ledger auth login`/);
  });
});

it('logs correlation ids and never a token, a code or a secret', async () => {
  harness = await Harness.start();
  const { lines: logged, log } = capturedLog('debug');
  const broker = createSchwabBroker(harness.settings(), { now: harness.now, log });
  harness.sim.control.injectFault('place', { kind: 'drop', applied: true });
  harness.sim.clock.advance(31 * MINUTE); // a refresh happens on the way
  await harness.request('GME', 'BUY', 1n);
  await new ExecutorService({ store: harness.store, broker, log, now: harness.now, pollIntervalMs: 10, backoffMs: { min: 5, max: 20 } }).drainOpen();
  const tokens = await harness.tokens.load();
  const lines = logged.map((line) => JSON.stringify(line)).join('\n');
  expect(lines).toMatch(/"correlId":"[0-9a-f-]{36}"/);
  for (const secret of [tokens!.accessToken, tokens!.refreshToken, APP.appSecret, harness.key.toString('hex'), harness.key.toString('base64')]) expect(lines).not.toContain(secret);
});
