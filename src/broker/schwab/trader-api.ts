/**
 * Authorized calls to `/trader/v1`: a live bearer token on every request, one refresh and one
 * retry after a 401 (a 401 means the request was refused, so repeating it cannot duplicate
 * an order), and the account hash, looked up once and cached.
 */
import type * as t from 'io-ts';
import { BrokerNeedsOperator, BrokerUnavailable, ReauthRequired } from '../port.ts';
import type { Logger } from '../../log.ts';
import { AccountNumbers, decodeBody } from './codecs.ts';

type Account = t.TypeOf<typeof AccountNumbers>[number];
import { exchange, type HttpAnswer, type HttpRequest } from './http.ts';
import { REAUTH_ADVICE } from './oauth.ts';
import type { TokenManager } from './tokens.ts';

export interface TraderApiOptions {
  readonly baseUrl: string;
  readonly tokens: TokenManager;
  readonly timeoutMs: number;
  readonly log: Logger;
  /** Which account to trade in; required when the login sees more than one. */
  readonly accountNumber?: string | undefined;
}

export interface TraderRequest {
  readonly method: HttpRequest['method'];
  /** Under /trader/v1/accounts/{accountHash}, e.g. `/orders`. */
  readonly path: string;
  readonly query?: Readonly<Record<string, string>>;
  readonly body?: string;
}

/** Account numbers are not secrets, but logs and errors show only their last digits. */
export const masked = (accountNumber: string): string => `****${accountNumber.slice(-4)}`;

export class TraderApi {
  private selected: Promise<Account> | undefined;

  constructor(private readonly options: TraderApiOptions) {}

  /** A request about our account. Throws TransportError when no answer came. */
  async account(request: TraderRequest): Promise<HttpAnswer> {
    const { hashValue: hash } = await this.selectedAccount();
    const query = request.query === undefined ? '' : `?${new URLSearchParams(request.query)}`;
    return this.authorized(request.method, `/trader/v1/accounts/${encodeURIComponent(hash)}${request.path}${query}`, request.body);
  }

  /** The account this login trades in (asked of Schwab once): proof that Schwab accepts the login. */
  selectedAccount(): Promise<Account> {
    this.selected ??= this.selectAccount().catch((e: unknown) => {
      this.selected = undefined;
      throw e;
    });
    return this.selected;
  }

  private async selectAccount(): Promise<Account> {
    const answer = await this.authorized('GET', '/trader/v1/accounts/accountNumbers');
    if (answer.status !== 200) throw new BrokerUnavailable(`accountNumbers answered HTTP ${answer.status} (correlId ${answer.correlId})`, answer.retryAfterMs);
    const accounts = decodeBody(AccountNumbers, answer.body, 'accountNumbers');
    const wanted = this.options.accountNumber;
    const chosen = wanted === undefined ? (accounts.length === 1 ? accounts[0] : undefined) : accounts.find((a) => a.accountNumber === wanted);
    if (accounts.length === 0) {
      throw new BrokerNeedsOperator(`Schwab lists no account for this login (accountNumbers answered an empty list): check the app's access to the account to hedge in at Schwab, then ${REAUTH_ADVICE}`);
    }
    if (chosen === undefined) {
      const seen = accounts.map((a) => masked(a.accountNumber)).join(', ') || 'none';
      const what = wanted === undefined ? 'this login sees several accounts' : `account ${masked(wanted)} is not among this login's accounts`;
      throw new BrokerNeedsOperator(`${what} (${seen}): set SCHWAB_ACCOUNT_NUMBER to the account to hedge in`);
    }
    this.options.log.info({ account: masked(chosen.accountNumber) }, 'schwab account selected');
    return chosen;
  }

  private async authorized(method: HttpRequest['method'], path: string, body?: string): Promise<HttpAnswer> {
    const { tokens } = this.options;
    const first = await this.send(method, path, await tokens.accessToken(), body);
    if (first.answer.status !== 401) return first.answer;
    const second = await this.send(method, path, await tokens.afterUnauthorized(first.token), body);
    if (second.answer.status === 401) throw new ReauthRequired(`Schwab refused a freshly refreshed access token (correlId ${second.answer.correlId}): ${REAUTH_ADVICE}`);
    return second.answer;
  }

  private async send(method: HttpRequest['method'], path: string, token: string, body?: string): Promise<{ answer: HttpAnswer; token: string }> {
    const headers: Record<string, string> = { Authorization: `Bearer ${token}`, Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const url = `${this.options.baseUrl}${path}`;
    const request: HttpRequest = body === undefined ? { method, url, headers } : { method, url, headers, body };
    return { answer: await exchange(request, this.options.timeoutMs, this.options.log), token };
  }
}

