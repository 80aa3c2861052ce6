/**
 * Schwab's OAuth2 authorization-code flow (no PKCE): the authorize URL a human opens, the
 * code exchange, and refreshes. Any 4xx on a refresh means the login is over (expired or
 * revoked refresh token): ReauthRequired, never retried. Error bodies are not logged or
 * quoted: Schwab echoes the refresh token in them.
 */
import { BrokerUnavailable, ReauthRequired } from '../port.ts';
import type { Logger } from '../../log.ts';
import { TokenResponse, decodeBody } from './codecs.ts';
import { exchange, type HttpAnswer } from './http.ts';
import type { StoredTokens } from './token-store.ts';

/** A refresh token lasts 7 days from the login; refreshes do not extend it. */
export const REFRESH_TOKEN_LIFETIME_MS = 7 * 24 * 60 * 60_000;

const LOGIN_COMMAND = 'with `hedge-ledger auth login` (same environment: SCHWAB_APP_KEY, SCHWAB_APP_SECRET, TOKEN_ENCRYPTION_KEY); the running service picks the new tokens up by itself';
export const LOGIN_ADVICE = `log in ${LOGIN_COMMAND}`;
export const REAUTH_ADVICE = `log in again ${LOGIN_COMMAND}`;

export interface SchwabApp {
  readonly baseUrl: string;
  readonly appKey: string;
  readonly appSecret: string;
  readonly callbackUrl: string;
}

export interface OAuthOptions {
  readonly timeoutMs: number;
  readonly log: Logger;
  readonly now: () => Date;
}

/** The code in the URL the browser landed on (`…?code=C0.xxxx%40&session=…`), decoded. */
export function codeFromRedirect(pasted: string): string {
  let url: URL;
  try {
    url = new URL(pasted.trim());
  } catch {
    throw new LoginFailed('that is not a URL: paste the whole address the browser landed on after the login');
  }
  const code = url.searchParams.get('code');
  // OAuth's error redirect (RFC 6749 §4.1.2.1): the login was refused or abandoned, so there is no code to look for.
  const error = url.searchParams.get('error');
  if ((code === null || code === '') && error !== null) {
    throw new LoginFailed(`Schwab sent the browser back with error=${JSON.stringify(error.slice(0, 100))} and no code (the app not approved, or the login abandoned): run \`hedge-ledger auth login\` again and approve the app`);
  }
  if (code === null || code === '') throw new LoginFailed('the pasted URL has no code parameter: paste the address the browser landed on after the login');
  return code;
}

/** The code exchange failed: a human should try again (codes live about 30 s). */
export class LoginFailed extends Error {
  override readonly name = 'LoginFailed';
}

/** Only Schwab's short error code (`invalid_grant`…), never its description. */
function oauthErrorCode(answer: HttpAnswer): string {
  const code = /"error"\s*:\s*"([A-Za-z_]{1,64})"/.exec(answer.body)?.[1];
  return `HTTP ${answer.status}${code === undefined ? '' : ` ${code}`}`;
}

export class OAuthClient {
  constructor(private readonly app: SchwabApp, private readonly options: OAuthOptions) {}

  authorizeUrl(): string {
    const query = new URLSearchParams({ client_id: this.app.appKey, redirect_uri: this.app.callbackUrl, response_type: 'code' });
    return `${this.app.baseUrl}/v1/oauth/authorize?${query}`;
  }

  /** Exchanges the code from the redirect for a fresh login. */
  async login(code: string): Promise<StoredTokens> {
    const answer = await this.token({ grant_type: 'authorization_code', code, redirect_uri: this.app.callbackUrl });
    // Schwab's answer to bad app credentials: another login would be refused the same way.
    if (answer.status === 401) {
      throw new LoginFailed(`Schwab refused the app key and secret (${oauthErrorCode(answer)}): check SCHWAB_APP_KEY and SCHWAB_APP_SECRET against the app on developer.schwab.com (it must be Ready For Use), then run \`hedge-ledger auth login\` again`);
    }
    if (answer.status >= 400 && answer.status < 500) {
      throw new LoginFailed(`Schwab refused the code (${oauthErrorCode(answer)}): codes live about 30 s and work once; run \`hedge-ledger auth login\` again`);
    }
    const now = this.options.now().getTime();
    return this.tokensFrom(answer, new Date(now + REFRESH_TOKEN_LIFETIME_MS).toISOString());
  }

  /** A new access token; the refresh token and its expiry stay those of the login. */
  async refresh(tokens: StoredTokens): Promise<StoredTokens> {
    const answer = await this.token({ grant_type: 'refresh_token', refresh_token: tokens.refreshToken });
    if (answer.status >= 400 && answer.status < 500) throw new ReauthRequired(`Schwab refused the refresh token (${oauthErrorCode(answer)}): ${REAUTH_ADVICE}`);
    return this.tokensFrom(answer, tokens.refreshExpiresAt);
  }

  private async token(form: Record<string, string>): Promise<HttpAnswer> {
    const basic = Buffer.from(`${this.app.appKey}:${this.app.appSecret}`).toString('base64');
    const answer = await exchange(
      {
        method: 'POST',
        url: `${this.app.baseUrl}/v1/oauth/token`,
        headers: { Authorization: `Basic ${basic}`, 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(form).toString(),
      },
      this.options.timeoutMs,
      this.options.log,
    ).catch((e: unknown) => {
      throw new BrokerUnavailable(`token endpoint: ${(e as Error).message}`, undefined, { cause: e });
    });
    if (answer.status >= 500 || answer.status === 429) throw new BrokerUnavailable(`token endpoint answered HTTP ${answer.status}`, answer.retryAfterMs);
    return answer;
  }

  private tokensFrom(answer: HttpAnswer, refreshExpiresAt: string): StoredTokens {
    if (answer.status !== 200) throw new BrokerUnavailable(`token endpoint answered HTTP ${answer.status}`);
    const body = decodeBody(TokenResponse, answer.body, 'token response');
    const now = this.options.now().getTime();
    return {
      accessToken: body.access_token,
      accessExpiresAt: new Date(now + body.expires_in * 1000).toISOString(),
      refreshToken: body.refresh_token,
      refreshExpiresAt,
    };
  }
}
