/**
 * Live access tokens for the Trader API. Refreshes a little before expiry and once after a
 * 401. One refresher per token: within the process concurrent callers share one refresh;
 * across processes a lock file serializes them, and whoever waited re-reads the file and
 * uses the token the other one got instead of refreshing again.
 */
import { ReauthRequired } from '../port.ts';
import type { Logger } from '../../log.ts';
import { withFileLock } from './file-lock.ts';
import { LOGIN_ADVICE, REAUTH_ADVICE, type OAuthClient } from './oauth.ts';
import type { EncryptedTokenFile, StoredTokens } from './token-store.ts';

const LOCK_TIMEOUT_MS = 30_000;
/** Refresh when the access token expires within this. */
const REFRESH_MARGIN_MS = 60_000;

export interface TokenManagerOptions {
  readonly file: EncryptedTokenFile;
  readonly oauth: OAuthClient;
  readonly now: () => Date;
  readonly log: Logger;
}

/**
 * Saves a new login (`auth login`) holding the refresh lock: a refresh in flight in a running
 * service finishes first, so its save cannot put the old login back over the new one.
 */
export function saveLogin(file: EncryptedTokenFile, tokens: StoredTokens): Promise<void> {
  return withFileLock(file.path, LOCK_TIMEOUT_MS, () => file.save(tokens));
}

export class TokenManager {
  private current: StoredTokens | undefined;
  private refreshing: Promise<StoredTokens> | undefined;
  /** The refresh token Schwab refused, and Schwab's answer: until the file holds another one, asking again is pointless. */
  private refused: { readonly refreshToken: string; readonly problem: string } | undefined;

  constructor(private readonly options: TokenManagerOptions) {}

  /** A live access token; throws ReauthRequired when only a human can get one. */
  async accessToken(): Promise<string> {
    const tokens = this.current ?? (await this.load());
    return this.isFresh(tokens) ? tokens.accessToken : (await this.refreshOnce(tokens.accessToken)).accessToken;
  }

  /** The API answered 401 to `rejected`: refresh once, unless another caller already replaced it. */
  async afterUnauthorized(rejected: string): Promise<string> {
    const tokens = this.current ?? (await this.load());
    if (tokens.accessToken !== rejected && this.isFresh(tokens)) return tokens.accessToken;
    return (await this.refreshOnce(rejected)).accessToken;
  }

  private isFresh(tokens: StoredTokens): boolean {
    return Date.parse(tokens.accessExpiresAt) - REFRESH_MARGIN_MS > this.options.now().getTime();
  }

  private refreshOnce(stale: string): Promise<StoredTokens> {
    this.refreshing ??= withFileLock(this.options.file.path, LOCK_TIMEOUT_MS, () => this.refresh(stale))
      .catch((e: unknown) => {
        if (e instanceof ReauthRequired) this.current = undefined; // next time, look at the file again: a human may have logged in
        throw e;
      })
      .finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  /** Holding the lock: adopt a token another process got meanwhile, or refresh and save. */
  private async refresh(stale: string): Promise<StoredTokens> {
    const onDisk = await this.load();
    if (onDisk.accessToken !== stale && this.isFresh(onDisk)) return onDisk;
    if (Date.parse(onDisk.refreshExpiresAt) <= this.options.now().getTime()) {
      throw new ReauthRequired(`the Schwab login expired at ${onDisk.refreshExpiresAt} (refresh tokens last 7 days): ${REAUTH_ADVICE}`);
    }
    let next: StoredTokens;
    try {
      next = await this.options.oauth.refresh(onDisk);
    } catch (e) {
      if (e instanceof ReauthRequired) this.refused = { refreshToken: onDisk.refreshToken, problem: e.message };
      throw e;
    }
    await this.options.file.save(next);
    this.current = next;
    this.options.log.info({ accessExpiresAt: next.accessExpiresAt, refreshExpiresAt: next.refreshExpiresAt }, 'schwab access token refreshed');
    return next;
  }

  private async load(): Promise<StoredTokens> {
    const tokens = await this.options.file.load();
    if (tokens === undefined) throw new ReauthRequired(`no Schwab login yet (${this.options.file.path} does not exist): ${LOGIN_ADVICE}`);
    // The same words as the refusal: the executor reports a problem once, and this one says what Schwab answered.
    if (tokens.refreshToken === this.refused?.refreshToken) throw new ReauthRequired(this.refused.problem);
    this.current = tokens;
    return tokens;
  }
}
