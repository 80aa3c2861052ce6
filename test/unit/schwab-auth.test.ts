/** `auth login` and `auth status` against the simulator: the human's part done by the test. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { loadConfig, type ResolvedConfig } from '../../src/config.ts';
import { login, relative, status } from '../../src/cli/commands/auth.ts';
import { LoginFailed } from '../../src/broker/schwab/index.ts';
import { APP, Harness } from '../support/executor-harness.ts';

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

/** Runs `auth login`, playing the browser: open the printed URL, paste where it lands (after `beforePaste`). */
async function loginThroughTheBrowser(beforePaste: () => void = () => {}): Promise<{ output: string; tokens: Promise<unknown>; code: string }> {
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
  await tokens.catch(() => undefined);
  return { output: text, tokens, code: new URL(landing).searchParams.get('code') ?? '' };
}

describe('auth login', () => {
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

  it('refuses something that is not the redirect', async () => {
    const input = new PassThrough();
    const login$ = login(config, { input, output: new PassThrough() });
    input.end('I logged in\n');
    await expect(login$).rejects.toThrow(LoginFailed);
  });
});

describe('auth status', () => {
  it('shows when both tokens expire, as text and JSON', async () => {
    await (await loginThroughTheBrowser()).tokens;
    const read = async (json: boolean, now: Date) => {
      const out = new PassThrough();
      let text = '';
      out.on('data', (c: Buffer) => (text += c.toString()));
      await status(config, json, out, now);
      return text;
    };
    const later = new Date(harness.sim.clock.now().getTime() + 45 * 60_000);
    expect(await read(false, later)).toMatch(/access token: {2}expired at .* \(15 min ago\): refreshed automatically on the next call\nrefresh token: valid until .* \(in 6 d 23 h\)/);
    expect(JSON.parse(await read(true, later))).toMatchObject({ accessExpired: true, refreshExpired: false, tokenFile: `${harness.dir}/login.json` });
  });

  it('without a login says how to get one', async () => {
    await expect(status(config, false, new PassThrough())).rejects.toThrow(/no Schwab login yet .*auth login/);
  });

  it('writes durations for people', () => {
    expect([relative(29 * 60_000 + 59_000), relative(-(2 * 3_600_000 + 5 * 60_000)), relative(30_000), relative(7 * 86_400_000)]).toEqual(['in 29 min', '2 h 5 min ago', 'in less than a minute', 'in 7 d 0 h']);
  });
});
