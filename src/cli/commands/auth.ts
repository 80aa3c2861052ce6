/**
 * auth: `auth login` runs Schwab's OAuth login with a human in the loop (open the URL, paste
 * the address the browser lands on); `auth status` shows how long both tokens last and, with
 * `--check`, whether Schwab accepts the login. Neither the code, the tokens nor the app secret
 * is ever printed or logged.
 */
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { configFrom, jsonOption, parse, quoted, UsageError } from '../context.ts';
import { ConfigError, type ResolvedConfig } from '../../config.ts';
import { LoginFailed, checkLogin, codeFromRedirect, oauthClient, saveLogin, schwabSettings, tokenFileOf, type SchwabRuntime, type StoredTokens } from '../../broker/schwab/index.ts';

export interface Terminal {
  readonly input: Readable;
  readonly output: Writable;
}

/** "in 6 d 23 h", "in 29 min", "2 h 5 min ago". */
export function relative(ms: number): string {
  const minutes = Math.floor(Math.abs(ms) / 60_000);
  const [days, hours, mins] = [Math.floor(minutes / 1440), Math.floor(minutes / 60) % 24, minutes % 60];
  const text = days > 0 ? `${days} d ${hours} h` : hours > 0 ? `${hours} h ${mins} min` : mins > 0 ? `${mins} min` : 'less than a minute';
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}

function describeToken(name: string, expiresAt: string, now: Date, whenExpired: string): string {
  const left = Date.parse(expiresAt) - now.getTime();
  return left > 0 ? `${name} valid until ${expiresAt} (${relative(left)})` : `${name} expired at ${expiresAt} (${relative(left)}): ${whenExpired}`;
}

function describeTokens(tokens: StoredTokens, now: Date): string {
  return [
    describeToken('access token: ', tokens.accessExpiresAt, now, 'refreshed automatically on the next call'),
    describeToken('refresh token:', tokens.refreshExpiresAt, now, 'run `hedge-ledger auth login`'),
  ].join('\n');
}

async function firstLine(input: Readable): Promise<string> {
  const lines = createInterface({ input, terminal: false });
  try {
    for await (const line of lines) if (line.trim() !== '') return line;
  } finally {
    lines.close();
  }
  throw new LoginFailed('no URL was pasted');
}

export async function login(config: ResolvedConfig, terminal: Terminal, runtime: SchwabRuntime = {}): Promise<StoredTokens> {
  const settings = schwabSettings(config, 'auth login');
  const oauth = oauthClient(settings, runtime);
  await settings.tokens.assertWritable();
  terminal.output.write(
    [
      '1. Open this URL in a browser, log in to Schwab and approve the app for the account(s) to trade:',
      '',
      `   ${oauth.authorizeUrl()}`,
      '',
      `2. The browser then lands on ${settings.app.callbackUrl}?code=… (the page itself may fail to load; that is fine).`,
      '   Within 30 seconds, paste that whole address here and press Enter:',
      '',
    ].join('\n'),
  );
  const tokens = await oauth.login(codeFromRedirect(await firstLine(terminal.input)));
  await saveLogin(settings.tokens, tokens);
  const now = runtime.now?.() ?? new Date();
  terminal.output.write(`logged in; tokens saved encrypted to ${settings.tokens.path}\n${describeTokens(tokens, now)}\nThe refresh token cannot be extended: log in again before it expires.\n`);
  return tokens;
}

export interface StatusOptions {
  readonly json: boolean;
  /** Also ask Schwab whether the login works: the token file's dates cannot show a revoked login. */
  readonly check: boolean;
}

/** Asks Schwab (see checkLogin); the problem as text when the login cannot be used. */
async function checked(config: ResolvedConfig, runtime: SchwabRuntime): Promise<{ ok: true; account: string } | { ok: false; problem: string }> {
  const settings = schwabSettings(config, 'auth status --check');
  try {
    return { ok: true, account: await checkLogin(settings, runtime) };
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    return { ok: false, problem: (e as Error).message };
  }
}

export async function status(config: ResolvedConfig, options: StatusOptions, output: Writable, runtime: SchwabRuntime = {}): Promise<void> {
  const file = tokenFileOf(config, 'auth status');
  const before = await file.load();
  if (before === undefined) throw new Error(`no Schwab login yet (${file.path} does not exist): run \`hedge-ledger auth login\``);
  const check = options.check ? await checked(config, runtime) : undefined;
  // The check may have refreshed the access token and saved the new one: show the file as it is now.
  const tokens = check === undefined ? before : ((await file.load()) ?? before);
  const now = runtime.now?.() ?? new Date();
  if (options.json) {
    const { accessExpiresAt, refreshExpiresAt } = tokens;
    const expired = (at: string) => Date.parse(at) <= now.getTime();
    output.write(`${JSON.stringify({ tokenFile: file.path, accessExpiresAt, accessExpired: expired(accessExpiresAt), refreshExpiresAt, refreshExpired: expired(refreshExpiresAt), ...(check && { check }) })}\n`);
  } else {
    const verdict = check === undefined ? '' : check.ok ? `Schwab accepts this login: trading in account ${check.account}\n` : '';
    output.write(`${file.path}\n${describeTokens(tokens, now)}\n${verdict}`);
  }
  if (check?.ok === false) throw new Error(`Schwab check failed: ${check.problem}`);
}

export async function auth(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { ...jsonOption, check: { type: 'boolean', default: false } }, ['login|status']);
  const config = configFrom(values);
  switch (positionals[0]) {
    case 'login':
      if (values.json || values.check) throw new UsageError(`auth login takes no ${values.json ? '--json' : '--check'} (auth status does)`);
      await login(config, { input: process.stdin, output: process.stdout });
      return;
    case 'status':
      return status(config, { json: values.json, check: values.check }, process.stdout);
    default:
      throw new UsageError(`${positionals[0] === undefined ? 'auth needs a subcommand' : `unknown auth subcommand ${quoted(positionals[0])}`}: auth login | auth status [--check] [--json]`);
  }
}
