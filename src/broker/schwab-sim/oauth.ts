/**
 * Schwab's OAuth2 authorization-code flow with the real lifetimes: codes 30 s, access
 * tokens 30 min, refresh tokens 7 days from the original login (a refresh never extends
 * it). The browser login is skipped: authorize redirects straight to the callback.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { jsonReply, type Reply } from './reply.ts';

export const CODE_TTL_MS = 30_000;
export const ACCESS_TTL_MS = 30 * 60_000;
export const REFRESH_TTL_MS = 7 * 24 * 60 * 60_000;

export interface OAuthConfig {
  readonly appKey: string;
  readonly appSecret: string;
  readonly callbackUrl: string;
}

export interface TokenResponse {
  readonly expires_in: number;
  readonly token_type: 'Bearer';
  readonly scope: 'api';
  readonly refresh_token: string;
  readonly access_token: string;
  readonly id_token: string;
}

interface Login {
  readonly refreshToken: string;
  readonly refreshExpiresAt: number;
  revoked: boolean;
}

const opaque = (prefix: string, bytes: number): string => `${prefix}${randomBytes(bytes).toString('base64url')}@`;
const base64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

const oauthError = (status: number, error: string, description: string): Reply =>
  jsonReply(status, { error, error_description: description });

/** The doubly-encoded body Schwab answers for an expired or revoked refresh token. */
function refreshRejected(refreshToken: string): Reply {
  const inner = JSON.stringify({
    error_description: `Exception while authenticating refresh token [${refreshToken}], Token is expired or revoked`,
    error: 'refresh_token_authentication_error',
  });
  return oauthError(400, 'unsupported_token_type', `400 Bad Request: "${inner}"`);
}

export class OAuthServer {
  private readonly codes = new Map<string, number>();
  private readonly logins = new Map<string, Login>();
  private readonly accessTokens = new Map<string, { readonly login: Login; readonly expiresAt: number }>();
  private readonly config: OAuthConfig;

  constructor(config: OAuthConfig) {
    this.config = config;
  }

  authorize(query: URLSearchParams, now: number): Reply {
    const problem =
      query.get('client_id') !== this.config.appKey
        ? 'unknown client_id'
        : query.get('redirect_uri') !== this.config.callbackUrl
          ? 'redirect_uri does not match the registered callback'
          : query.get('response_type') !== 'code'
            ? 'response_type must be code'
            : undefined;
    if (problem !== undefined) return oauthError(400, 'invalid_request', problem);
    for (const [stale, expiresAt] of this.codes) if (expiresAt <= now) this.codes.delete(stale);
    const code = opaque('C0.', 24);
    this.codes.set(code, now + CODE_TTL_MS);
    const separator = this.config.callbackUrl.includes('?') ? '&' : '?';
    const location = `${this.config.callbackUrl}${separator}code=${encodeURIComponent(code)}&session=${randomUUID()}`;
    return { status: 302, headers: { Location: location }, body: '' };
  }

  token(authorization: string | undefined, contentType: string | undefined, body: string, now: number): Reply {
    if (!this.isClient(authorization)) return oauthError(401, 'invalid_client', 'Unauthorized');
    if (!(contentType ?? '').startsWith('application/x-www-form-urlencoded')) {
      return oauthError(400, 'invalid_request', 'Content-Type must be application/x-www-form-urlencoded');
    }
    const form = new URLSearchParams(body);
    switch (form.get('grant_type')) {
      case 'authorization_code':
        return this.exchangeCode(form, now);
      case 'refresh_token':
        return this.refresh(form.get('refresh_token') ?? '', now);
      default:
        return oauthError(400, 'unsupported_grant_type', 'grant_type must be authorization_code or refresh_token');
    }
  }

  /** A fresh login without the browser round trip (for tests and tooling). */
  login(now: number): TokenResponse {
    const login: Login = { refreshToken: opaque('', 48), refreshExpiresAt: now + REFRESH_TTL_MS, revoked: false };
    this.logins.set(login.refreshToken, login);
    return this.issue(login, now);
  }

  isAuthorized(authorization: string | undefined, now: number): boolean {
    const bearer = /^Bearer (\S+)$/.exec(authorization ?? '')?.[1];
    const entry = bearer === undefined ? undefined : this.accessTokens.get(bearer);
    return entry !== undefined && !entry.login.revoked && now < entry.expiresAt;
  }

  /** Every access and refresh token stops working; a human must log in again. */
  revokeAll(): void {
    for (const login of this.logins.values()) login.revoked = true;
  }

  private isClient(authorization: string | undefined): boolean {
    const encoded = /^Basic (\S+)$/.exec(authorization ?? '')?.[1];
    if (encoded === undefined) return false;
    return Buffer.from(encoded, 'base64').toString('utf8') === `${this.config.appKey}:${this.config.appSecret}`;
  }

  /** Codes are single use: any attempt consumes one. */
  private exchangeCode(form: URLSearchParams, now: number): Reply {
    const code = form.get('code') ?? '';
    const expiresAt = this.codes.get(code);
    this.codes.delete(code);
    if (expiresAt === undefined || now >= expiresAt) return oauthError(400, 'invalid_grant', 'authorization code is invalid, used or expired');
    if (form.get('redirect_uri') !== this.config.callbackUrl) return oauthError(400, 'invalid_grant', 'redirect_uri does not match');
    return jsonReply(200, { ...this.login(now) });
  }

  private refresh(refreshToken: string, now: number): Reply {
    const login = this.logins.get(refreshToken);
    if (login === undefined || login.revoked || now >= login.refreshExpiresAt) return refreshRejected(refreshToken);
    return jsonReply(200, { ...this.issue(login, now) });
  }

  /** Earlier access tokens stay valid until they expire; the refresh token never rotates. */
  private issue(login: Login, now: number): TokenResponse {
    for (const [token, entry] of this.accessTokens) if (entry.expiresAt <= now) this.accessTokens.delete(token);
    const accessToken = opaque('I0.', 48);
    this.accessTokens.set(accessToken, { login, expiresAt: now + ACCESS_TTL_MS });
    const seconds = Math.floor(now / 1000);
    const idToken = [
      base64url({ alg: 'RS256', typ: 'JWT' }),
      base64url({ iss: 'https://api.schwabapi.com', aud: this.config.appKey, sub: 'sim-user', iat: seconds, exp: seconds + ACCESS_TTL_MS / 1000 }),
      randomBytes(32).toString('base64url'),
    ].join('.');
    return { expires_in: ACCESS_TTL_MS / 1000, token_type: 'Bearer', scope: 'api', refresh_token: login.refreshToken, access_token: accessToken, id_token: idToken };
  }
}
