/** `auth login` and `auth status` against the simulator: the human's part done by the test. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig, type ResolvedConfig } from '../../src/config.ts';
import { login, relative, status } from '../../src/cli/commands/auth.ts';
import { EncryptedTokenFile, LoginFailed, type StoredTokens } from '../../src/broker/schwab/index.ts';
import { TokenFileError } from '../../src/broker/schwab/token-store.ts';
import { readdirSync, writeFileSync } from 'node:fs';
import { OAuthClient } from '../../src/broker/schwab/oauth.ts';
import { TokenManager } from '../../src/broker/schwab/tokens.ts';
import { APP, Harness } from '../support/executor-harness.ts';
import { testLog } from '../support/test-log.ts';

let harness: Harness;
let config: ResolvedConfig;
const saved = { ...process.env };

beforeEach(async () => {
  harness = await Harness.start();
  process.env['SCHWAB_APP_SECRET'] = APP.appSecret;
  process.env['TOKEN_ENCRYPTION_KEY'] = harness.key.toString('base64');
  config = loadConfig({ env: { SCHWAB_BASE_URL: harness.sim.baseUrl, SCHWAB_APP_KEY: APP.appKey, SCHWAB_CALLBACK_URL: APP.callbackUrl, SCHWAB_TOKEN_FILE: `${harness.dir}/login.json` } });
});
afterEach(async () => {
  process.env = { ...saved };
  await harness.close();
});

/** Starts `auth login` and plays the browser: opens the printed URL, pastes where it lands (after `beforePaste`). */
async function startLogin(beforePaste: () => void = () => {}): Promise<{ output: () => string; tokens: Promise<StoredTokens>; code: string }> {
  const input = new PassThrough();
  const output = new PassThrough();
  let text = '';
  output.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const tokens = login(config, { input, output }, { now: harness.now });
  await harness.until(() => text.includes('paste'), 'the prompt');
  const url = /(http:\/\/\S+\/v1\/oauth\/authorize\?\S+)/.exec(text)?.[1] ?? '';
  const landing = (await fetch(url, { redirect: 'manual' })).headers.get('location') ?? '';
  beforePaste();
  input.end(`${landing}\n`);
  return { output: () => text, tokens, code: new URL(landing).searchParams.get('code') ?? '' };
}

/** `auth login` to the end, playing the browser. */
async function loginThroughTheBrowser(beforePaste: () => void = () => {}): Promise<{ output: string; tokens: Promise<unknown>; code: string }> {
  const { output, tokens, code } = await startLogin(beforePaste);
  await tokens.catch(() => undefined);
  return { output: output(), tokens, code };
}

/** A proxy to the simulator that holds every refresh until `release()`: a refresh in flight, for as long as a test needs. */
async function holdingRefreshes(target: string) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let held = 0;
  const server = createServer((req, res) => {
    void (async () => {
      let body = '';
      for await (const chunk of req) body += (chunk as Buffer).toString();
      if (new URLSearchParams(body).get('grant_type') === 'refresh_token') {
        held++;
        await released;
      }
      const headers = { authorization: req.headers.authorization ?? '', 'content-type': req.headers['content-type'] ?? '' };
      const answer = await fetch(`${target}${req.url}`, { method: req.method ?? 'GET', headers, ...(req.method === 'POST' ? { body } : {}) });
      res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'text/plain' }).end(await answer.text());
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    held: () => held,
    release,
    close: () => new Promise<void>((resolve) => server.close(() => resolve()).closeAllConnections()),
  };
}

describe('auth login', () => {
  it('refuses a token file it could not write before it shows the authorize URL, so no one-time code is spent', async () => {
    writeFileSync(`${harness.dir}/not-a-dir`, '');
    config = { ...config, schwabTokenFile: `${harness.dir}/not-a-dir/login.json` };
    const output = new PassThrough();
    let text = '';
    output.on('data', (chunk: Buffer) => (text += chunk.toString()));
    await expect(login(config, { input: new PassThrough(), output }, { now: harness.now })).rejects.toThrow(new TokenFileError(`cannot write the token file ${harness.dir}/not-a-dir/login.json (EEXIST): let this user write to its directory, or point SCHWAB_TOKEN_FILE elsewhere`));
    expect(text).toBe('');
  });

  it('leaves no temporary file next to the token file', async () => {
    await (await startLogin()).tokens;
    expect(readdirSync(harness.dir).filter((name) => name.startsWith('login.json'))).toEqual(['login.json']);
  });

  it('prints the authorize URL, takes the pasted redirect, stores the tokens encrypted, prints no secret', async () => {
    const { output, tokens, code } = await loginThroughTheBrowser();
    const stored = await tokens;
    expect(output).toContain(`${harness.sim.baseUrl}/v1/oauth/authorize?client_id=${APP.appKey}&redirect_uri=${encodeURIComponent(APP.callbackUrl)}&response_type=code`);
    expect(output).toMatch(/logged in; tokens saved encrypted to .*login\.json\naccess token: {2}valid until .*\(in 30 min\)\nrefresh token: valid until .*\(in 7 d 0 h\)/);
    for (const secret of [code, (stored as { accessToken: string }).accessToken, (stored as { refreshToken: string }).refreshToken, APP.appSecret]) expect(output).not.toContain(secret);
    expect(code.endsWith('@')).toBe(true); // the %40 was decoded
  });

  it('a code older than 30 s is refused with what to do', async () => {
    const { tokens } = await loginThroughTheBrowser(() => harness.sim.clock.advance(31_000));
    await expect(tokens).rejects.toThrow(/Schwab refused the code \(HTTP 400 invalid_grant\): codes live about 30 s and work once; run `hedge-ledger auth login` again/);
  });

  it('a wrong app secret is named as such, not as a code that came too late', async () => {
    process.env['SCHWAB_APP_SECRET'] = 'not-the-app-secret';
    const { tokens } = await loginThroughTheBrowser();
    await expect(tokens).rejects.toThrow(/^Schwab refused the app key and secret \(HTTP 401 invalid_client\): check SCHWAB_APP_KEY and SCHWAB_APP_SECRET/);
    await expect(tokens).rejects.not.toThrow(/not-the-app-secret|codes live/);
  });

  it('while the service refreshes the old login, the new one is saved after that refresh, never overwritten by it', async () => {
    const file = new EncryptedTokenFile(config.schwabTokenFile, harness.key);
    const old = (await (await startLogin()).tokens).refreshToken;
    const proxy = await holdingRefreshes(harness.sim.baseUrl);
    const service = new TokenManager({ file, oauth: new OAuthClient({ ...APP, baseUrl: proxy.url }, { timeoutMs: 10_000, log: testLog('oauth'), now: harness.now }), now: harness.now, log: testLog('tokens') });
    harness.sim.clock.advance(31 * 60_000);
    try {
      const refreshed = service.accessToken();
      await harness.until(() => proxy.held() === 1, 'the refresh in flight');
      const relogin = await startLogin();
      await Promise.race([relogin.tokens, sleep(300)]); // time enough to save, unless it waits for the refresh
      proxy.release();
      await refreshed;
      const fresh = await relogin.tokens;
      expect(fresh.refreshToken).not.toBe(old);
      expect((await file.load())?.refreshToken).toBe(fresh.refreshToken);
    } finally {
      proxy.release();
      await proxy.close();
    }
  });

  it('refuses something that is not the redirect', async () => {
    const input = new PassThrough();
    const login$ = login(config, { input, output: new PassThrough() });
    input.end('I logged in\n');
    await expect(login$).rejects.toThrow(LoginFailed);
  });

  it('names the error of a redirect that carries one instead of a code (the app not approved), not a missing code parameter', async () => {
    const input = new PassThrough();
    const login$ = login(config, { input, output: new PassThrough() });
    input.end('https://127.0.0.1/?error=access_denied&error_description=denied\n');
    await expect(login$).rejects.toThrow(/^Schwab sent the browser back with error="access_denied" and no code .*run `hedge-ledger auth login` again/);
  });
});

describe('auth status', () => {
  it('shows when both tokens expire, as text and JSON', async () => {
    await (await loginThroughTheBrowser()).tokens;
    const read = async (json: boolean, now: Date) => {
      const out = new PassThrough();
      let text = '';
      out.on('data', (c: Buffer) => (text += c.toString()));
      await status(config, { json, check: false }, out, { now: () => now });
      return text;
    };
    const later = new Date(harness.sim.clock.now().getTime() + 45 * 60_000);
    expect(await read(false, later)).toMatch(/access token: {2}expired at .* \(15 min ago\): refreshed automatically on the next call\nrefresh token: valid until .* \(in 6 d 23 h\)/);
    expect(JSON.parse(await read(true, later))).toMatchObject({ accessExpired: true, refreshExpired: false, tokenFile: `${harness.dir}/login.json` });
  });

  it('without a login says how to get one', async () => {
    await expect(status(config, { json: false, check: true }, new PassThrough())).rejects.toThrow(/no Schwab login yet .*auth login/);
  });

  it('--check asks Schwab: a revoked login reads as valid in the token file, but the check says Schwab refuses it', async () => {
    await (await loginThroughTheBrowser()).tokens;
    const read = async (options: { json: boolean; check: boolean }) => {
      const out = new PassThrough();
      let text = '';
      out.on('data', (c: Buffer) => (text += c.toString()));
      const outcome = await status(config, options, out, { now: harness.now, log: testLog() }).then(() => 'ok', (e: Error) => e.message);
      return { text, outcome };
    };
    const accepted = await read({ json: false, check: true });
    expect(accepted).toEqual({ outcome: 'ok', text: expect.stringMatching(/refresh token: valid until .*\nSchwab accepts this login: trading in account \*{4}\d{4}\n$/) });
    expect(JSON.parse((await read({ json: true, check: true })).text)).toMatchObject({ refreshExpired: false, check: { ok: true, account: expect.stringMatching(/^\*{4}\d{4}$/) } });

    harness.sim.control.revokeTokens();
    expect(await read({ json: false, check: false })).toEqual({ outcome: 'ok', text: expect.stringMatching(/refresh token: valid until/) });
    const refused = await read({ json: false, check: true });
    expect(refused.text).not.toMatch(/accepts/);
    expect(refused.outcome).toMatch(/^Schwab check failed: Schwab refused the refresh token \(HTTP 400 \w+\): log in again with `hedge-ledger auth login`/);
    const json = await read({ json: true, check: true });
    expect(JSON.parse(json.text)).toMatchObject({ refreshExpired: false, check: { ok: false, problem: expect.stringMatching(/^Schwab refused the refresh token/) } });
    expect(json.outcome).toMatch(/^Schwab check failed/);
  });

  it('--check that refreshes an expired access token reports the token file as the check left it, not as it was before', async () => {
    await (await loginThroughTheBrowser()).tokens;
    harness.sim.clock.advance(45 * 60_000); // the access token (30 min) has expired: the check refreshes it, and saves the new one
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => (text += c.toString()));
    await status(config, { json: true, check: true }, out, { now: harness.now, log: testLog() });
    const saved = await new EncryptedTokenFile(`${harness.dir}/login.json`, harness.key).load();
    expect(JSON.parse(text)).toMatchObject({ accessExpiresAt: saved?.accessExpiresAt, accessExpired: false, check: { ok: true } });
  });

  it('writes durations for people', () => {
    expect([relative(29 * 60_000 + 59_000), relative(-(2 * 3_600_000 + 5 * 60_000)), relative(30_000), relative(7 * 86_400_000)]).toEqual(['in 29 min', '2 h 5 min ago', 'in less than a minute', 'in 7 d 0 h']);
  });
});
