/**
 * The Schwab adapter assembled from configuration: the app secret and the token key from the
 * environment only, everything else (the app key included) from the config. `run --broker
 * schwab` and `auth` share it.
 */
import { ConfigError, ConfigProblems, readSecret, requireSettings, type ResolvedConfig } from '../../config.ts';
import { logger, type Logger } from '../../log.ts';
import { SchwabBroker } from './broker.ts';
import { OAuthClient, type SchwabApp } from './oauth.ts';
import { EncryptedTokenFile, parseEncryptionKey } from './token-store.ts';
import { TokenManager } from './tokens.ts';
import { TraderApi, masked } from './trader-api.ts';
import { WriteBudget } from './write-budget.ts';

export { SchwabBroker } from './broker.ts';
export { EncryptedTokenFile, type StoredTokens } from './token-store.ts';
export { codeFromRedirect, LoginFailed, REFRESH_TOKEN_LIFETIME_MS } from './oauth.ts';
export { saveLogin } from './tokens.ts';

export interface SchwabSettings {
  readonly app: SchwabApp;
  readonly tokens: EncryptedTokenFile;
  readonly accountNumber?: string | undefined;
  readonly requestTimeoutMs: number;
  readonly reconcileSkewMs: number;
}

/** The encrypted token file; needs only SCHWAB_TOKEN_FILE and TOKEN_ENCRYPTION_KEY (enough for `auth status`). */
export function tokenFileOf(config: ResolvedConfig, command: string, env: NodeJS.ProcessEnv = process.env): EncryptedTokenFile {
  let key: Buffer;
  try {
    key = parseEncryptionKey(readSecret('tokenEncryptionKey', command, env));
  } catch (e) {
    throw e instanceof ConfigError ? e : new ConfigError([`env TOKEN_ENCRYPTION_KEY: ${(e as Error).message}`]);
  }
  return new EncryptedTokenFile(config.schwabTokenFile, key);
}

/** What a process needs to talk to Schwab; a missing piece stops it with a ConfigError that says how to give it. */
export function schwabSettings(config: ResolvedConfig, command: string, env: NodeJS.ProcessEnv = process.env): SchwabSettings {
  const problems = new ConfigProblems();
  problems.check(() => requireSettings(config, ['schwabAppKey'], command));
  const appSecret = problems.check(() => readSecret('schwabAppSecret', command, env));
  const tokens = problems.check(() => tokenFileOf(config, command, env));
  problems.throwIfAny();
  return {
    app: { baseUrl: config.schwabBaseUrl.replace(/\/+$/, ''), appKey: config.schwabAppKey!, appSecret: appSecret!, callbackUrl: config.schwabCallbackUrl },
    tokens: tokens!,
    accountNumber: config.schwabAccountNumber,
    requestTimeoutMs: config.schwabRequestTimeoutMs,
    reconcileSkewMs: config.reconcileSkewMs,
  };
}

export interface SchwabRuntime {
  /** Defaults to the wall clock; tests pass the simulator's. */
  readonly now?: () => Date;
  readonly log?: Logger;
}

export function oauthClient(settings: SchwabSettings, runtime: SchwabRuntime = {}): OAuthClient {
  return new OAuthClient(settings.app, { timeoutMs: settings.requestTimeoutMs, log: runtime.log ?? logger('schwab'), now: runtime.now ?? (() => new Date()) });
}

function traderApi(settings: SchwabSettings, now: () => Date, log: Logger): TraderApi {
  const tokens = new TokenManager({ file: settings.tokens, oauth: oauthClient(settings, { now, log }), now, log });
  return new TraderApi({ baseUrl: settings.app.baseUrl, tokens, timeoutMs: settings.requestTimeoutMs, log, accountNumber: settings.accountNumber });
}

export function createSchwabBroker(settings: SchwabSettings, runtime: SchwabRuntime = {}): SchwabBroker {
  const now = runtime.now ?? (() => new Date());
  const log = runtime.log ?? logger('schwab');
  return new SchwabBroker({ api: traderApi(settings, now, log), budget: new WriteBudget(now), now, reconcileSkewMs: settings.reconcileSkewMs, log });
}

/**
 * Asks Schwab whether the saved login works, as the executor's first call would: the account it
 * trades in (masked), refreshing an expired access token on the way (saved, as the service does).
 * Throws ReauthRequired when Schwab refuses the login, BrokerNeedsOperator when no account fits.
 */
export async function checkLogin(settings: SchwabSettings, runtime: SchwabRuntime = {}): Promise<string> {
  const account = await traderApi(settings, runtime.now ?? (() => new Date()), runtime.log ?? logger('schwab')).selectedAccount();
  return masked(account.accountNumber);
}
