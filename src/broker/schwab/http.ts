/**
 * One HTTP exchange with Schwab over global fetch: a timeout through AbortSignal, the whole
 * body read as text (fetch undoes gzip; HTML error pages stay text), the correlation id
 * Schwab puts on every response logged. No retries here: callers decide, because only they
 * know whether repeating the request could place a second order.
 */
import type { Logger } from '../../log.ts';

export interface HttpRequest {
  readonly method: 'GET' | 'POST' | 'DELETE';
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
}

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
  readonly location: string | null;
  readonly retryAfterMs: number | undefined;
  readonly correlId: string | null;
  /** The server's clock as its Date header gives it (whole seconds, epoch ms); undefined when absent or unreadable. */
  readonly date?: number | undefined;
}

/** No answer: refused, reset, dropped or timed out. The request may or may not have been acted on. */
export class TransportError extends Error {
  override readonly name = 'TransportError';
  constructor(message: string, readonly timedOut: boolean, options?: ErrorOptions) {
    super(message, options);
  }
}

/** HTTP dates (RFC 9110): IMF-fixdate and RFC 850 say GMT; asctime is GMT without saying so. */
const GMT_DATE = /^[A-Za-z]{3,9}, [\d\sA-Za-z:-]+ GMT$/;
const ASCTIME = /^[A-Za-z]{3} [A-Za-z]{3} [\d ]\d \d{2}:\d{2}:\d{2} \d{4}$/;

/**
 * The longest wait a Retry-After is taken for. Schwab's limits count per minute: a wait of days is garbage (digits
 * run together, a date years ahead) that would pause every order write for as long as it says, and one past 2^31 ms
 * Node's timers do not keep at all: they fire after 1 ms, and the request would be sent again every millisecond.
 */
const MAX_RETRY_AFTER_MS = 5 * 60_000;

/**
 * Retry-After in seconds (fractions tolerated) or as an HTTP date, at most MAX_RETRY_AFTER_MS; undefined when absent
 * or unreadable. Only those forms reach Date.parse: it reads almost any text as some date long past ("1.5", "-1"),
 * which would mean no wait at all.
 */
function retryAfterMs(header: string | null, nowMs: number): number | undefined {
  const text = header?.trim() ?? '';
  if (/^\d+(\.\d+)?$/.test(text)) return Math.min(MAX_RETRY_AFTER_MS, Math.ceil(Number(text) * 1000));
  const at = httpDate(text);
  return at === undefined ? undefined : Math.min(MAX_RETRY_AFTER_MS, Math.max(0, at - nowMs));
}

/** An HTTP date as epoch ms; undefined unless the text is one. */
function httpDate(header: string | null): number | undefined {
  const text = header?.trim() ?? '';
  const at = GMT_DATE.test(text) ? Date.parse(text) : ASCTIME.test(text) ? Date.parse(`${text} GMT`) : NaN;
  return Number.isNaN(at) ? undefined : at;
}

/** The path without the query, and the account hash as `{hash}`: shorter log lines, same meaning. */
const pathOf = (url: string): string => new URL(url).pathname.replace(/(\/accounts\/)(?!accountNumbers$)[^/]+/, '$1{hash}');

export async function exchange(request: HttpRequest, timeoutMs: number, log: Logger): Promise<HttpAnswer> {
  const started = performance.now();
  const init: RequestInit = { method: request.method, headers: request.headers, signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' };
  if (request.body !== undefined) init.body = request.body;
  let res: Response | undefined;
  try {
    res = await fetch(request.url, init);
    const body = await res.text();
    const answer: HttpAnswer = {
      status: res.status,
      body,
      location: res.headers.get('location'),
      retryAfterMs: retryAfterMs(res.headers.get('retry-after'), Date.now()),
      correlId: res.headers.get('schwab-client-correlid'),
      date: httpDate(res.headers.get('date')),
    };
    log.debug({ method: request.method, path: pathOf(request.url), status: res.status, correlId: answer.correlId, ms: Math.round(performance.now() - started) }, 'schwab answered');
    return answer;
  } catch (e) {
    if (res === undefined && refusedToSend(e)) throw new TransportError(`${request.method} ${pathOf(request.url)}: fetch refused to send the request (a malformed URL or header)`, false);
    const timedOut = (e as Error).name === 'TimeoutError';
    const reason = timedOut ? `no answer within ${timeoutMs} ms` : describeFailure(e);
    throw new TransportError(`${request.method} ${pathOf(request.url)}: ${reason}`, timedOut, { cause: e });
  }
}

/**
 * fetch refused the request before sending it: a header value it cannot send (a token with a
 * control character) or a bad URL. Its message quotes the value, `Bearer <token>` included, so
 * neither the message nor the error goes any further. Every failure after sending is "fetch failed";
 * one while reading the body (the connection dropped) is a TypeError too ("terminated"), hence only
 * fetch's own failures, before any answer, are asked about.
 */
const refusedToSend = (e: unknown): boolean => e instanceof TypeError && e.message !== 'fetch failed';

/** fetch says "fetch failed"; the useful part (ECONNRESET, other side closed) is in the cause. */
function describeFailure(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.message === undefined) return (e as Error).message;
  return cause.code === undefined ? cause.message : `${cause.message} (${cause.code})`;
}
