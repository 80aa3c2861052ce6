/**
 * The read-only HTTP API (node:http): health, Prometheus metrics and the ledger's queries.
 * Binds 127.0.0.1 unless told otherwise. Every error is JSON `{ error, … }`.
 */
import { STATUS_CODES, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { StoreUnavailable } from '../eventstore/errors.ts';
import type { Logger } from '../log.ts';
import { exposeLedger } from './metrics.ts';
import { BadParameter } from './query.ts';
import { HttpProblem, problem, type Reply } from './reply.ts';
import { apiRoutes, type ApiContext, type Route } from './routes.ts';

const DEFAULT_HTTP_HOST = '127.0.0.1';
/** How long close() lets in-flight requests finish before it drops their connections. */
const CLOSE_GRACE_MS = 500;
const COMPONENT = 'http';
const READ_METHODS = ['GET', 'HEAD'];

export interface HttpApiOptions extends ApiContext {
  /** Default 127.0.0.1; `0.0.0.0` or `::` exposes the API beyond this host. */
  readonly host?: string;
  /** 0 picks a free port (see `HttpApi.port`). */
  readonly port: number;
  /** Give it a `component` (e.g. `logger('http')`). */
  readonly log: Logger;
}

export interface HttpApi {
  /** e.g. http://127.0.0.1:8080 */
  readonly url: string;
  readonly port: number;
  /** Stops accepting, ends idle keep-alive connections at once and busy ones after a short grace. */
  close(): Promise<void>;
}

function percentDecoded(captures: readonly string[]): string[] {
  try {
    return captures.map(decodeURIComponent);
  } catch {
    throw new BadParameter('path', 'malformed percent-encoding');
  }
}

/** Loopback names as a Host header's hostname: localhost, 127.0.0.0/8, [::1], [::ffff:127.x.x.x] (URL normalises 127.1, case, brackets, and the mapped form to hex). */
const LOOPBACK_HOSTNAME = /^(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]|\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\])$/;

/** The address listen() reports: 127.0.0.0/8, ::1, or 127.x as an IPv4-mapped IPv6 address (a bind to ::ffff:127.0.0.1). */
const isLoopbackAddress = (address: string): boolean => address === '::1' || /^(::ffff:)?127\./i.test(address);

/**
 * An API bound to loopback answers only requests addressed to a loopback name. A web page the
 * operator opens could otherwise read the ledger through DNS rebinding: its own name, resolved
 * to 127.0.0.1, makes the browser treat the API as the page's own origin. A request without
 * Host (HTTP/1.0) comes from no browser.
 */
function hostRefused(host: string | undefined): Reply | undefined {
  if (host === undefined) return undefined;
  const hostname = URL.canParse(`http://${host}`) ? new URL(`http://${host}`).hostname : undefined;
  if (hostname !== undefined && LOOPBACK_HOSTNAME.test(hostname)) return undefined;
  return problem(403, 'host not allowed', { host, reason: 'the API listens on loopback and answers only requests addressed to localhost, 127.0.0.1 or [::1]' });
}

/** A request target in absolute-form (`http://host/path`), which a server must accept as well (RFC 9112 §3.2.2); else undefined. */
const absoluteForm = (target: string): URL | undefined => (/^https?:\/\//i.test(target) && URL.canParse(target) ? new URL(target) : undefined);

async function answer(routes: readonly Route[], method: string, target: string): Promise<Reply> {
  const url = absoluteForm(target) ?? new URL(`http://api${target.startsWith('/') ? target : `/${target}`}`);
  for (const { pattern, handle } of routes) {
    const match = pattern.exec(url.pathname);
    if (match === null) continue;
    if (!READ_METHODS.includes(method)) return problem(405, 'method not allowed', { method, allowed: READ_METHODS }, { Allow: READ_METHODS.join(', ') });
    return handle(url.searchParams, percentDecoded(match.slice(1)));
  }
  return problem(404, 'not found', { path: url.pathname });
}

/** Expected failures become their 4xx/503; anything else is logged and answered 500 without details. */
function failure(error: unknown, options: HttpApiOptions, context: object): Reply {
  if (error instanceof HttpProblem) return error.reply;
  if (error instanceof BadParameter) return problem(400, 'bad parameter', { parameter: error.parameter, reason: error.reason });
  const kind = error instanceof Error ? error.name : 'unknown';
  options.metrics.errors.inc({ component: COMPONENT, kind });
  if (error instanceof StoreUnavailable) {
    options.log.warn({ ...context, err: error }, 'store unavailable');
    return problem(503, 'store unavailable', { detail: error.message });
  }
  options.log.error({ ...context, err: error }, 'request failed');
  return problem(500, 'internal error');
}

/** HTTP/1.1 requires exactly one Host (RFC 9112 §3.2); node:http keeps only the first of several, and its own 400 for none has no body. */
function hostMissingOrRepeated(req: IncomingMessage): Reply | undefined {
  const hosts = req.rawHeaders.filter((name, i) => i % 2 === 0 && name.toLowerCase() === 'host').length;
  const close = { Connection: 'close' };
  if (hosts > 1) return problem(400, 'bad request', { reason: `${hosts} Host headers; a request carries at most one` }, close);
  if (hosts === 0 && req.httpVersionMajor === 1 && req.httpVersionMinor >= 1) return problem(400, 'bad request', { reason: 'an HTTP/1.1 request needs a Host header' }, close);
  return undefined;
}

/**
 * node:http, with no 'upgrade' listener, answers a request asking for an Upgrade like any other but
 * reads nothing more from its connection: a request sent after it on the connection would wait for
 * the keep-alive timeout, unanswered. Closing the connection tells the client to send it on another.
 */
const closeAfterUpgrade = (req: IncomingMessage): Record<string, string> =>
  req.headers.upgrade !== undefined && /(^|,)\s*upgrade\s*(,|$)/i.test(req.headers.connection ?? '') ? { Connection: 'close' } : {};

/** A request refused whatever it asks: a missing or repeated Host, or (bound to loopback) another host's name, in Host or in an absolute-form target. */
const refused = (req: IncomingMessage, loopback: boolean): Reply | undefined => {
  const authority = absoluteForm(req.url ?? '')?.host;
  return hostMissingOrRepeated(req) ?? (loopback ? (hostRefused(req.headers.host) ?? (authority === undefined ? undefined : hostRefused(authority))) : undefined);
};

function send(req: IncomingMessage, res: ServerResponse, reply: Reply): void {
  res.writeHead(reply.status, { ...reply.headers, ...closeAfterUpgrade(req), 'Content-Length': Buffer.byteLength(reply.body) });
  res.end(reply.body);
}

async function respond(routes: readonly Route[], options: HttpApiOptions, loopback: boolean, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = performance.now();
  const context = { method: req.method ?? 'GET', target: req.url ?? '/' };
  const reply =
    refused(req, loopback) ??
    (await answer(routes, context.method, context.target).catch((error: unknown) => failure(error, options, context)));
  send(req, res, reply);
  options.log.debug({ ...context, status: reply.status, ms: Math.round(performance.now() - started) }, 'request');
}

/** A reply written straight to a socket node:http no longer answers on (a parse error, CONNECT), then closed. */
function sendRaw(socket: Duplex, reply: Reply): void {
  const headers = Object.entries({ ...reply.headers, 'Content-Length': String(Buffer.byteLength(reply.body)), Connection: 'close' }).map(([k, v]) => `${k}: ${v}\r\n`);
  socket.end(`HTTP/1.1 ${reply.status} ${STATUS_CODES[reply.status] ?? ''}\r\n${headers.join('')}\r\n${reply.body}`, () => socket.destroy());
}

/** What node:http's parser refused, answered as JSON like every other error (node:http's own answers have no body). */
function parseFailure(error: Error & { code?: string; reason?: string }): Reply {
  const reason = error.reason ?? error.message;
  if (error.code === 'HPE_HEADER_OVERFLOW') return problem(431, 'request header fields too large', { reason: 'the request line and headers exceed 16 KB' });
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') return problem(408, 'request timeout', { reason });
  return problem(400, 'bad request', { reason });
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

function closer(server: Server, unexpose: () => void): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () =>
    (closing ??= new Promise<void>((resolve) => {
      unexpose();
      const force = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
      server.close(() => {
        clearTimeout(force);
        resolve();
      });
      server.closeIdleConnections();
    }));
}

export async function startHttpApi(options: HttpApiOptions): Promise<HttpApi> {
  const routes = apiRoutes(options);
  let loopback = true; // until listen() says where: no request is answered before that
  /** Per connection, the responses not yet sent in full. */
  const unanswered = new WeakMap<Duplex, Set<ServerResponse>>();
  const track = (req: IncomingMessage, res: ServerResponse): void => {
    const pending = unanswered.get(req.socket) ?? new Set();
    unanswered.set(req.socket, pending.add(res));
    res.once('close', () => pending.delete(res));
  };
  // No requireHostHeader: its 400 has no body; hostMissingOrRepeated answers in JSON.
  const server = createServer({ requireHostHeader: false }, (req, res) => {
    track(req, res);
    respond(routes, options, loopback, req, res).catch((error: unknown) => {
      options.log.error({ err: error, target: req.url }, 'response failed');
      res.destroy();
    });
  });
  server.on('clientError', (error: Error & { code?: string; reason?: string }, socket: Duplex) => {
    options.log.debug({ code: error.code, reason: error.reason ?? error.message }, 'malformed request');
    // The requests before it on the connection (pipelined) are answered first: the refusal follows their answers.
    const before = [...(unanswered.get(socket) ?? [])].map((res) => new Promise((closed) => res.once('close', closed)));
    void Promise.all(before).then(() => (socket.writable ? sendRaw(socket, parseFailure(error)) : socket.destroy()));
  });
  // Without these node:http drops a CONNECT without a word, and answers an unknown Expect with an empty 417.
  server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    const method = req.method ?? 'CONNECT';
    sendRaw(socket, problem(405, 'method not allowed', { method, allowed: READ_METHODS }, { Allow: READ_METHODS.join(', ') }));
    options.log.debug({ method, target: req.url, status: 405 }, 'request');
  });
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    track(req, res);
    const reply = refused(req, loopback) ?? problem(417, 'expectation failed', { expect: req.headers.expect ?? '', reason: 'the API supports only Expect: 100-continue' });
    send(req, res, reply);
    options.log.debug({ method: req.method, target: req.url, status: reply.status }, 'request');
  });
  const host = options.host ?? DEFAULT_HTTP_HOST;
  const unexpose = exposeLedger(options.metrics, options.follower);
  const address = await listen(server, options.port, host).catch((error: unknown) => {
    unexpose();
    throw error;
  });
  loopback = isLoopbackAddress(address.address);
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  options.log.info({ url }, 'HTTP API listening');
  return { url, port: address.port, close: closer(server, unexpose) };
}
