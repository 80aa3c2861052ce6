/**
 * The HTTP API under random requests, over raw TCP (node:net) so that anything can be sent: random
 * methods, paths (dot segments, percent-encoding good and bad, long, unicode, NUL), query strings
 * (every documented parameter with good, bad, huge and repeated values; unknown ones), headers (Host
 * variations, huge ones, odd Accept, a body on GET, Expect) and malformed HTTP. Every request gets an
 * answer within a few seconds, with a documented status; every error is JSON naming what was wrong;
 * nothing but GET and HEAD succeeds; a good request beside it (on the same connection and on another)
 * is answered as before; and afterwards every route answers exactly as before the campaign.
 *
 * FUZZ_RUNS=5000 npx vitest run test/integration/http-api-fuzz.test.ts for a bigger campaign.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { openStore } from '../../src/eventstore/url.ts';
import type { EventStore } from '../../src/eventstore/port.ts';
import { loadConfig } from '../../src/config.ts';
import { accumulatorConfig } from '../../src/cli/context.ts';
import { fileTokenResolver } from '../../src/cli/tokens-file.ts';
import { tokensOfLog } from '../../src/chain/log-tokens.ts';
import { compareLogMarks } from '../../src/domain/log-order.ts';
import { Ingester } from '../../src/services/ingester.ts';
import { runOnce } from '../../src/services/run-once.ts';
import { ACCUMULATOR_CHECKPOINT } from '../../src/services/accumulator.ts';
import { LedgerFollower } from '../../src/services/ledger-follower.ts';
import { PaperBroker } from '../../src/broker/paper.ts';
import { createMetrics } from '../../src/http/metrics.ts';
import { Roles } from '../../src/http/health.ts';
import { startHttpApi, type HttpApi } from '../../src/http/server.ts';
import { readLogFile } from '../support/cli.ts';

const RUNS = Number(process.env['FUZZ_RUNS'] ?? 1000);
const SEED = process.env['FUZZ_SEED'] === undefined ? {} : { seed: Number(process.env['FUZZ_SEED']) };
/** Room for a bigger campaign than the default 30 s allow. */
const CAMPAIGN_MS = Math.max(30_000, RUNS * 10);
/** Longer than any answer takes on a loaded machine; an answer later than this is a hang. */
const ANSWER_MS = 5_000;

const example = (file: string): string => fileURLToPath(new URL(`../../docs/example/${file}`, import.meta.url));
const settings = loadConfig({ file: example('ledger.json'), env: {} });
const config = accumulatorConfig(settings, 'http-api fuzz');
const silent = pino({ level: 'silent' });

// ---------------------------------------------------------------- raw HTTP

interface Response {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** Parses the final (non-1xx) responses in `data`; `heads` says which requests were HEAD (no body). */
function parseResponses(data: Buffer, heads: readonly boolean[]): { responses: Response[]; rest: boolean } {
  const responses: Response[] = [];
  let at = 0;
  while (at < data.length) {
    const end = data.indexOf('\r\n\r\n', at);
    if (end < 0) return { responses, rest: true };
    const [statusLine, ...lines] = data.subarray(at, end).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(statusLine ?? '')?.[1] ?? NaN);
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    at = end + 4;
    if (status >= 100 && status < 200) continue;
    const length = heads[responses.length] === true ? 0 : Number(headers['content-length'] ?? NaN);
    if (!Number.isInteger(length)) throw new Error(`response without Content-Length: ${statusLine}`);
    if (at + length > data.length) return { responses, rest: true };
    responses.push({ status, headers, body: data.subarray(at, at + length).toString('utf8') });
    at += length;
  }
  return { responses, rest: false };
}

interface Exchange {
  readonly responses: Response[];
  /** The server closed the connection. */
  readonly closed: boolean;
  /** Everything received, for a failure's message. */
  readonly received: string;
}

/**
 * Sends `bytes` on a new connection and waits until `expected` responses have arrived or the server
 * closed the connection; `halfClose` ends the sending side after writing (for input that is not a
 * whole request, which only the end of the connection can show). Rejects past ANSWER_MS: a hang.
 */
function exchange(port: number, bytes: Buffer, heads: readonly boolean[], expected: number, halfClose = false): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (closed: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      try {
        resolve({ responses: parseResponses(Buffer.concat(chunks), heads).responses, closed, received: short(Buffer.concat(chunks)) });
      } catch (error) {
        reject(error as Error);
      }
    };
    const timer = setTimeout(() => {
      settled = true;
      socket.destroy();
      reject(new Error(`no answer within ${ANSWER_MS} ms to ${short(bytes)}; got ${short(Buffer.concat(chunks))}`));
    }, ANSWER_MS);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      const { responses, rest } = parseResponses(Buffer.concat(chunks), heads);
      if (responses.length >= expected && !rest) finish(false);
    });
    socket.on('error', () => undefined); // a reset after a refused request: judged by what arrived
    socket.on('close', () => finish(true));
    socket.write(bytes);
    if (halfClose) socket.end();
  });
}

// ---------------------------------------------------------------- requests

interface Request {
  readonly method: string;
  readonly target: string;
  readonly version: string;
  /** [name, value] in order; Host among them, or not. */
  readonly headers: readonly (readonly [string, string])[];
  readonly body: string;
}

/** A request as a counterexample shows it: long runs cut. */
const short = (bytes: Buffer): string => JSON.stringify(bytes.toString('latin1').replace(/(.)\1{40,}/g, (run, c: string) => `${c.repeat(5)}…(${run.length} × ${JSON.stringify(c)})`));

const serialize = (r: Request): Buffer =>
  Buffer.concat([
    Buffer.from(`${r.method} ${r.target} ${r.version}\r\n`, 'utf8'),
    Buffer.from(r.headers.map(([n, v]) => `${n}: ${v}\r\n`).join(''), 'utf8'),
    Buffer.from(`\r\n${r.body}`, 'utf8'),
  ]);

const ROUTES = ['/health/live', '/health/ready', '/metrics', '/positions', '/positions/GME', '/positions/AAPL', '/hedges', '/trades', '/rejected', '/status'] as const;
/** The query parameters each route takes, valid values of each. */
const PARAMETERS: Readonly<Record<string, Readonly<Record<string, readonly string[]>>>> = {
  '/hedges': { status: ['requested', 'submitting', 'placed', 'filled', 'failed'] },
  '/trades': { limit: ['1', '2', '100', '10000'], symbol: ['GME', 'AAPL', 'TSLA'] },
  '/rejected': { limit: ['1', '3', '10000'], reason: ['not_ours', 'not_hedgeable', 'unpaired_clear', 'corrupt_event'] },
};
const READ = ['GET', 'HEAD'];
const OTHER_METHODS = ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'PROPFIND', 'PURGE', 'LINK', 'SEARCH'];

const percent = (s: string): string => [...Buffer.from(s, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
/** encodeURIComponent, but a lone surrogate is encoded as U+FFFD rather than thrown on. */
const encode = (s: string): string => [...Buffer.from(s, 'utf8')].map((b) => (/[A-Za-z0-9\-_.!~*'()]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('');

const segment = fc.oneof(
  fc.constantFrom('..', '.', '%2e%2e', '%2E%2E', '.%2e', '%2e', '%zz', '%', '%0', '%00', '%2F', '%2f', '%5C', '%c3%a9', '%E0%A4%A', '%ff', 'GME', 'gme', 'TSLA', 'tGME', '', '~', ';x', 'positions', 'health', 'live'),
  fc.string({ unit: 'grapheme', maxLength: 12 }).map(encode),
  fc.string({ maxLength: 8 }).map(percent),
  fc.integer({ min: 1, max: 20_000 }).map((n) => 'a'.repeat(n)),
  fc.stringMatching(/^[A-Za-z0-9._~!$&'()*+,;=:@-]{1,10}$/),
);

/** A path: a route as it is, a route with something after it, or segments of noise; some with raw bytes a parser refuses. */
const path = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...ROUTES) },
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...ROUTES), fc.constantFrom('/', '//', '/..', '/%2e%2e', '.json', '%20', '/x', ';', '/GME', '%00')).map(([r, s]) => r + s) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom('/positions/', '/health/', '/', '/positions/../'), segment).map(([p, s]) => p + s) },
  { weight: 2, arbitrary: fc.array(segment, { minLength: 1, maxLength: 5 }).map((s) => `/${s.join('/')}`) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...ROUTES), fc.constantFrom('\0', 'é', ' ', '\t', '\\', '"', '<', '\u00a0', '\u{1f600}')).map(([r, s]) => r + s) },
  { weight: 1, arbitrary: fc.constantFrom('*', 'http://localhost/positions', 'localhost:80', '', 'positions', '//positions', '/?', '/#x') },
);

const parameterValue = fc.oneof(
  fc.constantFrom('0', '-1', '1', '10000', '10001', '1e3', '01', '+5', ' 1', '1.5', '0x10', 'NaN', 'Infinity', '99999999999999999999', '9007199254740993', '', 'gme', 'GME', 'filled', 'FILLED', 'not_ours', '%zz', '%', '__proto__', 'null', '[]'),
  fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).map(String),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.integer({ min: 1, max: 10_000 }).map((n) => '9'.repeat(n)),
);
const parameterName = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom('limit', 'symbol', 'status', 'reason') },
  { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'toString', 'sort', 'LIMIT', 'limit[]', '', '%zz') },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 8 }) },
);
/** Encoded as a browser would, or raw (printable ASCII but space and #, as a request line may carry). */
const encodeQueryPart = (s: string, raw: boolean): string => (raw ? s.replace(/[^\x21-\x7e]|#/gu, encode) : encode(s));
const query = fc
  .array(fc.tuple(parameterName, parameterValue, fc.boolean(), fc.boolean()), { maxLength: 4 })
  .map((ps) => (ps.length === 0 ? '' : `?${ps.map(([n, v, raw, bare]) => (bare && v === '' ? encodeQueryPart(n, raw) : `${encodeQueryPart(n, raw)}=${encodeQueryPart(v, raw)}`)).join('&')}`));
/** A valid query for `route`: each of its parameters at most once, with a valid value. */
const validQuery = (route: string) =>
  fc.subarray(Object.entries(PARAMETERS[route] ?? {})).chain((ps) =>
    ps.length === 0 ? fc.constant('') : fc.tuple(...ps.map(([n, vs]) => fc.constantFrom(...vs).map((v) => `${n}=${v}`))).map((kv) => `?${kv.join('&')}`),
  );

const method = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...READ) },
  { weight: 4, arbitrary: fc.constantFrom(...OTHER_METHODS) },
  { weight: 1, arbitrary: fc.constantFrom('get', 'Get', 'CONNECT', 'FOO', 'G ET', 'GET\0', 'GÉT', '') },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Z]{1,12}$/) },
);

type HostKind = 'loopback' | 'foreign' | 'malformed' | 'none' | 'twice';
const host = (port: number): fc.Arbitrary<{ kind: HostKind; values: readonly string[] }> =>
  fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom('localhost', `localhost:${port}`, `127.0.0.1:${port}`, '127.1', '127.255.0.9:1', `[::1]:${port}`, '[::ffff:127.0.0.1]', 'LOCALHOST').map((h) => ({ kind: 'loopback' as const, values: [h] })) },
    { weight: 2, arbitrary: fc.constantFrom('attacker.example', `attacker.example:${port}`, '127.0.0.1.attacker.example', 'localhost.attacker.example', '10.0.0.5', '[::2]', '0.0.0.0', 'localhost@attacker.example').map((h) => ({ kind: 'foreign' as const, values: [h] })) },
    { weight: 1, arbitrary: fc.constantFrom('', 'a b', ':', '[', 'localhost:99999', 'localhost:port', '%').map((h) => ({ kind: 'malformed' as const, values: [h] })) },
    { weight: 1, arbitrary: fc.constant({ kind: 'none' as const, values: [] as string[] }) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom('localhost', 'attacker.example'), fc.constantFrom('localhost', 'attacker.example')).map(([a, b]) => ({ kind: 'twice' as const, values: [a, b] })) },
  );

const extraHeaders = fc.record(
  {
    accept: fc.constantFrom('*/*', 'application/json', 'text/html', 'application/xml;q=0.9', 'image/*', '', '\u00ff', ';;;'),
    huge: fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 100, max: 4_000 }) }, { weight: 1, arbitrary: fc.integer({ min: 4_000, max: 24_000 }) }),
    contentType: fc.constantFrom('application/json', 'text/plain', 'multipart/form-data; boundary=x'),
    body: fc.string({ maxLength: 200 }),
    framing: fc.constantFrom('length', 'wrong-length', 'chunked', 'both'),
    expect: fc.constantFrom('100-continue', 'something', ''),
    upgrade: fc.constantFrom('websocket', 'h2c'),
    other: fc.tuple(fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,15}$/), fc.oneof({ weight: 3, arbitrary: fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 30 }) }, { weight: 1, arbitrary: fc.string({ maxLength: 30 }) })),
  },
  { requiredKeys: [] },
);

interface Case {
  readonly request: Request;
  /** What the oracle can say about it. */
  readonly route: string | undefined;
  readonly hostKind: HostKind;
  readonly hasBody: boolean;
  /** The body is framed as it says (no Content-Length longer than the body, not both framings): the request after it is a request. */
  readonly framed: boolean;
}

const caseOf = (port: number): fc.Arbitrary<Case> =>
  fc
    .tuple(
      method,
      fc.oneof(
        {
          weight: 3,
          // Origin-form mostly; absolute-form (with a loopback authority) now and then.
          arbitrary: fc.tuple(fc.constantFrom(...ROUTES), fc.constantFrom('', '', '', `http://localhost:${port}`, 'HTTP://127.0.0.1')).chain(([r, authority]) => validQuery(r).map((q) => ({ path: authority + r, query: q, route: r as string | undefined }))),
        },
        { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...ROUTES), query).map(([r, q]) => ({ path: r, query: q, route: r as string | undefined })) },
        { weight: 3, arbitrary: fc.tuple(path, query).map(([p, q]) => ({ path: p, query: q, route: undefined })) },
      ),
      host(port),
      extraHeaders,
      fc.oneof({ weight: 6, arbitrary: fc.constant('HTTP/1.1') }, { weight: 1, arbitrary: fc.constantFrom('HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1x', 'http/1.1', 'HTTP/0.9') }),
    )
    .map(([m, { path: p, query: q, route }, h, extra, version]) => {
      const headers: [string, string][] = h.values.map((v) => ['Host', v]);
      let body = '';
      if (extra.accept !== undefined) headers.push(['Accept', extra.accept]);
      if (extra.huge !== undefined) headers.push(['X-Padding', 'x'.repeat(extra.huge)]);
      if (extra.upgrade !== undefined) headers.push(['Connection', 'Upgrade'], ['Upgrade', extra.upgrade]);
      if (extra.other !== undefined) headers.push([extra.other[0], extra.other[1].replace(/[\r\n]/g, ' ')]);
      if (extra.expect !== undefined) headers.push(['Expect', extra.expect]);
      if (extra.body !== undefined) {
        headers.push(['Content-Type', extra.contentType ?? 'application/json']);
        const bytes = Buffer.byteLength(extra.body);
        if (extra.framing === 'chunked' || extra.framing === 'both') {
          headers.push(['Transfer-Encoding', 'chunked']);
          body = `${bytes === 0 ? '' : `${bytes.toString(16)}\r\n${extra.body}\r\n`}0\r\n\r\n`;
        } else {
          body = extra.body;
        }
        if (extra.framing !== 'chunked') headers.push(['Content-Length', String(extra.framing === 'wrong-length' ? bytes + 7 : bytes)]);
      }
      const request: Request = { method: m, target: p + q, version, headers, body };
      return { request, route, hostKind: h.kind, hasBody: extra.body !== undefined, framed: extra.body === undefined || extra.framing === 'length' || extra.framing === 'chunked', [fc.toStringMethod]: () => short(serialize(request)) };
    });

/** Malformed HTTP: a good request cut, with bytes changed or inserted, or noise. */
const malformed = (port: number): fc.Arbitrary<Buffer> => {
  const good = Buffer.from(`GET /trades?limit=2 HTTP/1.1\r\nHost: localhost:${port}\r\nAccept: */*\r\n\r\n`);
  return fc.oneof(
    fc.integer({ min: 0, max: good.length - 1 }).map((n) => good.subarray(0, n)),
    fc.tuple(fc.integer({ min: 0, max: good.length - 1 }), fc.integer({ min: 0, max: 255 })).map(([i, b]) => Buffer.concat([good.subarray(0, i), Buffer.from([b]), good.subarray(i + 1)])),
    fc.tuple(fc.integer({ min: 0, max: good.length }), fc.uint8Array({ minLength: 1, maxLength: 16 })).map(([i, bs]) => Buffer.concat([good.subarray(0, i), Buffer.from(bs), good.subarray(i)])),
    fc.uint8Array({ maxLength: 300 }).map((bs) => Buffer.from(bs)),
    fc.constantFrom('\r\n\r\n', 'GET\r\n\r\n', 'GET / HTTP/1.1\n\n', 'GET / HTTP/1.1\r\nHost localhost\r\n\r\n', 'GET / HTTP/1.1\r\n Host: localhost\r\n\r\n', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03').map((s) => Buffer.from(s, 'latin1')),
  );
};

// ---------------------------------------------------------------- the oracle

/** The documented parameters of each route, as the docs describe their valid values. */
const RULES: Readonly<Record<string, Readonly<Record<string, (v: string) => boolean>>>> = {
  '/hedges': { status: (v) => ['requested', 'submitting', 'placed', 'filled', 'failed'].includes(v) },
  '/trades': { limit: (v) => /^[1-9][0-9]{0,15}$/.test(v) && Number(v) <= 10_000, symbol: (v) => /^[A-Z][A-Z0-9.]*$/.test(v) },
  '/rejected': {
    limit: (v) => /^[1-9][0-9]{0,15}$/.test(v) && Number(v) <= 10_000,
    reason: (v) => ['not_ours', 'not_hedgeable', 'zero_amount', 'bad_io_index', 'unpaired_clear', 'unpaired_after_clear', 'unknown_token', 'malformed_log', 'unknown_event', 'nonsensical_price', 'corrupt_event'].includes(v),
  },
};

/** The parameters of a GET of `target` (a route and a query) that the docs call bad (unknown, repeated or invalid), in order. */
function badParameters(route: string, target: string): string[] {
  const rules = RULES[route] ?? {};
  const query = new URL(target, 'http://api').searchParams;
  return [...new Set(query.keys())].filter((name) => !Object.hasOwn(rules, name) || query.getAll(name).length > 1 || !rules[name]!(query.get(name)!));
}

/** Every status the API documents, and node:http's parse errors it answers as JSON. */
const DOCUMENTED = new Set([200, 400, 403, 404, 405, 417, 431]);

/** The detail each error names besides `error`. */
const ERROR_DETAILS: Readonly<Record<string, readonly string[]>> = {
  'bad parameter': ['parameter', 'reason'],
  'bad request': ['reason'],
  'host not allowed': ['host', 'reason'],
  'not found': ['path'],
  'unknown symbol': ['symbol'],
  'method not allowed': ['method', 'allowed'],
  'expectation failed': ['expect', 'reason'],
  'request header fields too large': ['reason'],
};

function checkResponse(r: Response, isHead: boolean, label: string): void {
  expect(DOCUMENTED, `${label}: status ${r.status} ${r.body.slice(0, 200)}`).toContain(r.status);
  if (r.status === 200 && r.headers['content-type']?.startsWith('text/plain; version=0.0.4')) return; // /metrics
  expect(r.headers['content-type'], label).toBe('application/json; charset=utf-8');
  if (isHead && r.status !== 405) return;
  const body = JSON.parse(r.body) as unknown;
  if (r.status < 400) return;
  expect(body, label).toEqual(expect.objectContaining({ error: expect.any(String) }));
  const { error } = body as { error: string };
  const details = ERROR_DETAILS[error];
  expect(details, `${label}: unknown error ${r.body}`).toBeDefined();
  for (const key of details!) expect((body as Record<string, unknown>)[key], `${label}: ${key} in ${r.body}`).toBeDefined();
  if (typeof (body as { reason?: unknown }).reason === 'string') expect((body as { reason: string }).reason.length, label).toBeGreaterThan(3);
  if (r.status === 405) expect(r.headers['allow'], label).toBe('GET, HEAD');
}

// ---------------------------------------------------------------- the campaign

describe('HTTP API under random requests', () => {
  const stop = new AbortController();
  let store: EventStore;
  let follower: LedgerFollower;
  let api: HttpApi;
  /** GET of every route (and its documented variants) before the campaign: status and body. */
  const before = new Map<string, { status: number; body: string }>();
  const snapshotTargets = [...ROUTES, '/hedges?status=filled', '/trades?limit=2', '/trades?symbol=AAPL', '/rejected?reason=not_ours&limit=3', '/positions/TSLA'];

  const getGood = async (target: string): Promise<{ status: number; body: string }> => {
    const { responses } = await exchange(api.port, Buffer.from(`GET ${target} HTTP/1.1\r\nHost: localhost:${api.port}\r\nConnection: close\r\n\r\n`), [false], 1);
    expect(responses, target).toHaveLength(1);
    const { status, body } = responses[0]!;
    // Metrics: only the ledger's own (process metrics move by themselves).
    return { status, body: target === '/metrics' ? body.split('\n').filter((l) => l.startsWith('hedge_ledger_')).join('\n') : body };
  };
  const snapshot = async () => new Map(await Promise.all(snapshotTargets.map(async (t) => [t, await getGood(t)] as const)));

  beforeAll(async () => {
    store = await openStore('sqlite::memory:');
    const { logs } = await readLogFile(example('logs.jsonl'), settings.chainId, settings.orderbook!, () => undefined);
    await new Ingester({ store, chainId: settings.chainId, orderbook: settings.orderbook!, tokens: fileTokenResolver(example('tokens.json')), tokensOf: tokensOfLog }).ingest(logs.sort(compareLogMarks));
    await runOnce(store, config, new PaperBroker());
    follower = new LedgerFollower({ store, config, log: silent });
    follower.start(stop.signal);
    api = await startHttpApi({ port: 0, follower, store, metrics: createMetrics(), roles: new Roles(), checkpoints: [ACCUMULATOR_CHECKPOINT], log: silent });
    for (const deadline = Date.now() + 5000; !(await follower.status()).caughtUp; ) {
      if (Date.now() > deadline) throw new Error('the API did not catch up with the store');
      await sleep(10);
    }
    for (const [t, r] of await snapshot()) before.set(t, r);
    expect(before.get('/positions')!.status).toBe(200);
    expect(JSON.parse(before.get('/trades')!.body)).toHaveLength(4);
  });

  afterAll(async () => {
    await api?.close();
    stop.abort();
    await follower?.stopped;
    await store?.close();
  });

  it('answers every random request with a documented status and a JSON error naming what was wrong; GET and HEAD alone succeed', async () => {
    const head = await store.headPosition();
    let answered = 0;
    let judged = 0;
    await fc.assert(
      fc.asyncProperty(fc.constant(null).chain(() => caseOf(api.port)), fc.boolean(), async ({ request, route, hostKind, framed }, pipelined) => {
        const label = short(serialize(request));
        const isHead = request.method === 'HEAD';
        // Keep-alive, followed on the same connection by a good request: a bad one must not swallow it.
        const follow = `GET /positions HTTP/1.1\r\nHost: localhost:${api.port}\r\nConnection: close\r\n\r\n`;
        const bytes = pipelined && request.version === 'HTTP/1.1' ? Buffer.concat([serialize(request), Buffer.from(follow)]) : serialize(request);
        const [{ responses, closed, received }, beside] = await Promise.all([exchange(api.port, bytes, [isHead, false], pipelined ? 2 : 1), getGood('/positions')]);
        expect(beside, 'a good request on another connection meanwhile').toEqual(before.get('/positions'));
        expect(responses.length, `${label}: no answer (closed: ${closed})`).toBeGreaterThanOrEqual(1);
        const [first, second] = responses;
        checkResponse(first!, isHead, label);
        answered++;
        if (!READ.includes(request.method)) expect(first!.status, `${label}: a ${request.method} succeeded`).not.toBe(200);

        // What the oracle knows for sure about a well-formed request.
        const headBytes = serialize(request).indexOf('\r\n\r\n');
        const parses = request.version === 'HTTP/1.1' && request.headers.every(([, v]) => /^[\x20-\x7e]*$/.test(v)) && [...OTHER_METHODS, ...READ].includes(request.method);
        if (parses && route !== undefined && headBytes > 17_000) expect(first!.status, `${label}: ${headBytes} bytes of head`).toBe(431);
        if (parses && framed && headBytes < 16_000 && route !== undefined) {
          judged++;
          const expect417 = request.headers.some(([n, v]) => n === 'Expect' && !/100-continue/i.test(v));
          const bad = badParameters(route, request.target);
          const expected = hostKind === 'twice' || hostKind === 'none' ? 400 : hostKind === 'foreign' ? 403 : hostKind === 'malformed' ? [400, 403] : expect417 ? 417 : !READ.includes(request.method) ? 405 : bad.length > 0 ? 400 : 200;
          // The first bad parameter is the one named.
          if (expected === 400 && bad.length > 0 && !isHead && hostKind === 'loopback') expect(JSON.parse(first!.body), label).toMatchObject({ error: 'bad parameter', parameter: bad[0] });
          if (Array.isArray(expected)) expect(expected, label).toContain(first!.status);
          else expect(first!.status, `${label}: ${first!.body.slice(0, 200)}`).toBe(expected);
          const target = request.target;
          if (expected === 200 && !isHead && before.has(target)) expect({ status: first!.status, body: target === '/metrics' ? first!.body.split('\n').filter((l) => l.startsWith('hedge_ledger_')).join('\n') : first!.body }, label).toEqual(before.get(target));
        }
        // A response that kept the connection open leaves the next request to be answered, and right.
        if (second !== undefined && framed) expect({ status: second.status, body: second.body }, `${label}: the request after it`).toEqual(before.get('/positions'));
        else if (pipelined && framed && first!.headers['connection'] !== 'close' && request.version === 'HTTP/1.1') expect.fail(`${label}: the request after a kept-alive ${first!.status} went unanswered (closed: ${closed}); received ${received}`);
      }),
      { numRuns: RUNS, ...SEED, endOnFailure: true },
    );
    expect(answered).toBe(RUNS);
    expect(judged, 'requests whose exact status the oracle knows').toBeGreaterThan(RUNS / 8);
    expect(await store.headPosition()).toBe(head);
  }, CAMPAIGN_MS);

  it('answers malformed HTTP with a JSON 400 (or closes a connection that held no request), and keeps serving', async () => {
    let answered = 0;
    await fc.assert(
      fc.asyncProperty(fc.constant(null).chain(() => malformed(api.port)), async (bytes) => {
        const label = JSON.stringify(bytes.toString('latin1'));
        const [{ responses }, beside] = await Promise.all([exchange(api.port, bytes, [false], 1, true), getGood('/positions')]);
        expect(beside, 'a good request on another connection meanwhile').toEqual(before.get('/positions'));
        if (responses.length === 0) {
          // Nothing to answer: no request line began (only blank lines, or nothing).
          expect(bytes.toString('latin1'), label).toMatch(/^[\r\n]*$/);
          return;
        }
        answered++;
        checkResponse(responses[0]!, false, label);
        expect([200, 400, 403, 404, 431], label).toContain(responses[0]!.status);
      }),
      { numRuns: RUNS, ...SEED, endOnFailure: true },
    );
    expect(answered).toBeGreaterThan(RUNS / 2);
  }, CAMPAIGN_MS);

  it('answers every route exactly as before the campaign, and the ledger is unchanged', async () => {
    expect(new Map(await snapshot())).toEqual(before);
    expect((await follower.status()).caughtUp).toBe(true);
  });
});
