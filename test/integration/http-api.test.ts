/** The HTTP API over real HTTP, on the example ledger in a SQLite store, against the CLI's JSON shapes. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, request, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { openStore } from '../../src/eventstore/url.ts';
import { StoreUnavailable } from '../../src/eventstore/errors.ts';
import { NO_STREAM, type EventStore } from '../../src/eventstore/port.ts';
import { uuidV5 } from '../../src/domain/ids.ts';
import { loadConfig } from '../../src/config.ts';
import { accumulatorConfig } from '../../src/cli/context.ts';
import { fileTokenResolver } from '../../src/cli/tokens-file.ts';
import { tokensOfLog } from '../../src/chain/log-tokens.ts';
import type { RecordedLog } from '../../src/chain/rpc-log.ts';
import { compareLogMarks } from '../../src/domain/log-order.ts';
import { Ingester } from '../../src/services/ingester.ts';
import { runOnce } from '../../src/services/run-once.ts';
import { runService } from '../../src/services/service.ts';
import { ACCUMULATOR_CHECKPOINT } from '../../src/services/accumulator.ts';
import { foldLedger } from '../../src/services/ledger-query.ts';
import { ROOT, readLogFile } from '../support/cli.ts';
import { capturedLog } from '../support/test-log.ts';
import { LedgerFollower } from '../../src/services/ledger-follower.ts';
import { PaperBroker } from '../../src/broker/paper.ts';
import { hedgesJson, positionsJson, rejectionJson, rejectionKey, tradeJson, tradeKey } from '../../projections/queries.ts';
import { createMetrics, exposeAccumulator } from '../../src/http/metrics.ts';
import { Roles, lagWithin, type RoleHealth } from '../../src/http/health.ts';
import { startHttpApi, type HttpApi } from '../../src/http/server.ts';

const example = (file: string): string => fileURLToPath(new URL(`../../docs/example/${file}`, import.meta.url));
const settings = loadConfig({ file: example('ledger.json'), env: {} });
const config = accumulatorConfig(settings, 'http-api test');
const silent = pino({ level: 'silent' });

async function exampleLogs(): Promise<RecordedLog[]> {
  const { logs } = await readLogFile(example('logs.jsonl'), settings.chainId, settings.orderbook!, () => undefined);
  return logs.sort(compareLogMarks);
}

const ingest = (store: EventStore, logs: readonly RecordedLog[]) =>
  new Ingester({ store, chainId: settings.chainId, orderbook: settings.orderbook!, tokens: fileTokenResolver(example('tokens.json')), tokensOf: tokensOfLog }).ingest(logs);

/** What the CLI's `--json` queries print for the same store. */
async function cliJson(store: EventStore) {
  const trades = new Map<string, ReturnType<typeof tradeJson>>();
  const rejected = new Map<string, ReturnType<typeof rejectionJson>>();
  const view = await foldLedger(store, config, {
    listener: {
      onFill: (f) => trades.set(tradeKey(f), tradeJson(f)),
      onReversal: (f) => trades.delete(tradeKey(f)),
      onRejection: (r) => rejected.set(rejectionKey(r), rejectionJson(r)),
      onRejectionWithdrawn: (r) => rejected.delete(rejectionKey(r)),
    },
  });
  // As `rejected` lists them: after the fold's rejections, the ClearV2s still waiting for their AfterClear.
  return { positions: positionsJson(view), hedges: hedgesJson(view), trades: [...trades.values()], rejected: [...rejected.values(), ...view.awaitingAfterClear().map(rejectionJson)] };
}

async function get(api: HttpApi, path: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; body: unknown }> {
  const response = await fetch(`${api.url}${path}`, init);
  const text = await response.text();
  const json = response.headers.get('content-type')?.startsWith('application/json') && text !== '';
  return { status: response.status, headers: response.headers, body: json ? JSON.parse(text) : text };
}

/** A GET with the Host header a browser would send for `host` (fetch does not let a caller set it). */
function getAs(url: string, path: string, host: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { headers: { host } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk)).on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', reject).end();
  });
}

const body = async (api: HttpApi, path: string): Promise<unknown> => (await get(api, path)).body;

interface RawResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: unknown;
}

/** The complete final (non-1xx) responses in what a connection received, bodies parsed when JSON. */
function responsesOf(received: string): RawResponse[] {
  const responses: RawResponse[] = [];
  let rest = received;
  while (rest.startsWith('HTTP/1.1 ') && rest.includes('\r\n\r\n')) {
    const end = rest.indexOf('\r\n\r\n');
    const [line = '', ...lines] = rest.slice(0, end).split('\r\n');
    const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    const length = Number(headers['content-length'] ?? 0);
    if (rest.length < end + 4 + length) break;
    const text = rest.slice(end + 4, end + 4 + length);
    rest = rest.slice(end + 4 + length);
    const status = Number(line.split(' ')[1]);
    if (status >= 200) responses.push({ status, headers, body: headers['content-type']?.startsWith('application/json') ? JSON.parse(text) : text });
  }
  return responses;
}

/**
 * Sends `text` as it is on a new connection (node:net: anything, malformed HTTP included); resolves once
 * `expected` responses have arrived or the server closed the connection, or after `ms` (timedOut).
 */
function rawHttp(port: number, text: string, expected = 1, ms = 3000): Promise<{ responses: RawResponse[]; closed: boolean; timedOut: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    const done = (closed: boolean, timedOut: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ responses: responsesOf(received), closed, timedOut });
    };
    const timer = setTimeout(() => done(false, true), ms);
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (responsesOf(received).length >= expected) done(false, false);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => done(true, false));
    socket.write(text, 'latin1');
  });
}

async function caughtUp(follower: LedgerFollower): Promise<void> {
  await expect.poll(async () => (await follower.status()).caughtUp, { timeout: 5000, interval: 10 }).toBe(true);
}

describe('HTTP API on the example ledger', () => {
  const stop = new AbortController();
  const captured = capturedLog('debug');
  const { lines } = captured;
  const log = captured.log.child({ component: 'http' });
  const metrics = createMetrics();
  let store: EventStore;
  let follower: LedgerFollower;
  let api: HttpApi;
  let logs: RecordedLog[];

  const started = Date.now();

  beforeAll(async () => {
    store = await openStore('sqlite::memory:');
    logs = await exampleLogs();
    await ingest(store, logs.filter((l) => l.blockNumber <= 30_000_001n)); // the first two GME takes; the rest arrive while the API runs
    follower = new LedgerFollower({ store, config, log: silent });
    follower.start(stop.signal);
    api = await startHttpApi({ port: 0, follower, store, metrics, roles: new Roles(), checkpoints: [ACCUMULATOR_CHECKPOINT], log });
  });

  afterAll(async () => {
    await api.close();
    stop.abort();
    await follower.stopped;
    await store.close();
  });

  it('binds 127.0.0.1 on a free port by default', () => {
    expect(new URL(api.url).hostname).toBe('127.0.0.1');
    expect(api.port).toBeGreaterThan(0);
  });

  it('follows the store live: new logs and hedge outcomes show without a restart', async () => {
    await caughtUp(follower);
    const before = await body(api, '/positions');
    expect(before).toEqual((await cliJson(store)).positions);
    expect(before).toMatchObject([{ symbol: 'GME', net: '-0.8', trades: 2 }]);

    await ingest(store, logs);
    // No accumulator has run yet: its checkpoint is missing, so not at the head.
    expect(await body(api, '/status')).toMatchObject({ checkpoints: { [ACCUMULATOR_CHECKPOINT]: { position: null, caughtUp: false } } });
    await runOnce(store, config, new PaperBroker());
    const cli = await cliJson(store);
    await expect.poll(() => body(api, '/positions'), { timeout: 5000, interval: 10 }).toEqual(cli.positions);
    expect(cli.positions).toMatchObject([{ symbol: 'AAPL', net: '0.5' }, { symbol: 'GME', net: '-0.2' }]);
    await expect.poll(() => body(api, '/hedges'), { timeout: 5000, interval: 10 }).toEqual(cli.hedges);
  });

  it('answers every query with the JSON the CLI prints', async () => {
    await caughtUp(follower);
    const cli = await cliJson(store);
    expect(cli.hedges.map((h) => h.status)).toEqual(['filled', 'filled']);
    expect(await body(api, '/positions/GME')).toEqual(cli.positions.find((p) => p.symbol === 'GME'));
    expect(await body(api, '/hedges?status=filled')).toEqual(cli.hedges);
    expect(await body(api, '/hedges?status=placed')).toEqual([]);
    expect(await body(api, '/trades')).toEqual(cli.trades);
    expect(cli.trades).toHaveLength(4);
    expect(await body(api, '/trades?limit=2')).toEqual(cli.trades.slice(-2));
    expect(await body(api, '/trades?symbol=AAPL')).toEqual(cli.trades.filter((t) => t.symbol === 'AAPL'));
    expect(await body(api, '/rejected')).toEqual(cli.rejected);
    expect(await body(api, '/rejected?reason=not_ours&limit=10')).toEqual(cli.rejected.filter((r) => r.reason === 'not_ours'));
  });

  it('reports checkpoints, the fold and role health in /status', async () => {
    await caughtUp(follower);
    const head = await store.headPosition();
    const status = (await body(api, '/status')) as { follower: { lastEventAt: string } };
    expect(status).toEqual({
      head,
      follower: { state: 'following', position: head, eventsFolded: follower.view.events, lastEventAt: expect.any(String), caughtUp: true },
      // run --once has folded every event, its own last ones included, before it ended
      checkpoints: { [ACCUMULATOR_CHECKPOINT]: { position: (await store.readCheckpoint(ACCUMULATOR_CHECKPOINT))?.position ?? null, caughtUp: true } },
      roles: {},
    });
    expect(Date.parse(status.follower.lastEventAt)).toBeGreaterThan(started);
    expect(Date.parse(status.follower.lastEventAt)).toBeLessThanOrEqual(Date.now());
  });

  it('serves the named metrics in Prometheus text', async () => {
    // A process that has not ingested shows no block numbers (a 0 would read as no lag).
    expect(await body(api, '/metrics')).not.toMatch(/^hedge_ledger_(chain_head|ingested)_block /m);
    metrics.logsIngested.inc(8);
    metrics.chainHead.set(30_000_010);
    metrics.ingestedBlock.set(30_000_000);
    metrics.brokerLatency.observe({ operation: 'place' }, 0.12);
    metrics.errors.inc({ component: 'executor', kind: 'BrokerTimeout' });
    const { status, headers, body: text } = await get(api, '/metrics');
    expect(status).toBe(200);
    expect(headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    for (const line of [
      'hedge_ledger_logs_ingested_total 8',
      'hedge_ledger_chain_head_block 30000010',
      'hedge_ledger_ingested_block 30000000',
      'hedge_ledger_broker_latency_seconds_count{operation="place"} 1',
      'hedge_ledger_errors_total{component="executor",kind="BrokerTimeout"} 1',
      'hedge_ledger_hedges{status="filled"} 2',
      'hedge_ledger_hedges{status="requested"} 0',
      `hedge_ledger_fold_events ${follower.view.events}`,
      'hedge_ledger_fold_behind_head 0',
      'hedge_ledger_fold_last_event_timestamp_seconds ',
      'process_cpu_seconds_total ',
    ]) expect(text).toContain(line);
  });

  it('answers bad paths, methods and parameters with JSON errors', async () => {
    expect(await get(api, '/nope')).toMatchObject({ status: 404, body: { error: 'not found', path: '/nope' } });
    expect(await get(api, '/positions/TSLA')).toMatchObject({ status: 404, body: { error: 'unknown symbol', symbol: 'TSLA' } });
    const post = await get(api, '/positions', { method: 'POST' });
    expect(post).toMatchObject({ status: 405, body: { error: 'method not allowed', method: 'POST', allowed: ['GET', 'HEAD'] } });
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    const bad = async (path: string) => ((await get(api, path)) as { status: number; body: { parameter: string; reason: string } });
    expect(await bad('/hedges?status=done')).toMatchObject({ status: 400, body: { error: 'bad parameter', parameter: 'status', reason: expect.stringMatching(/one of requested, submitting, placed, filled, failed, got "done"/) } });
    expect(await bad('/trades?limit=0')).toMatchObject({ status: 400, body: { parameter: 'limit', reason: 'expected an integer from 1 to 10000, got "0"' } });
    expect(await bad('/trades?limit=10001')).toMatchObject({ status: 400, body: { parameter: 'limit' } });
    expect(await bad('/rejected?limit=ten')).toMatchObject({ status: 400, body: { parameter: 'limit' } });
    expect(await bad('/rejected?reason=late')).toMatchObject({ status: 400, body: { parameter: 'reason' } });
    expect(await bad('/trades?symbol=gme')).toMatchObject({ status: 400, body: { parameter: 'symbol' } });
    expect(await bad('/positions/gme')).toMatchObject({ status: 400, body: { parameter: 'symbol' } });
    expect(await bad('/positions/%E0%A4%A')).toMatchObject({ status: 400, body: { parameter: 'path' } });
    expect(await bad('/trades?limit=1&limit=2')).toMatchObject({ status: 400, body: { parameter: 'limit', reason: 'given more than once' } });
    expect(await bad('/positions?sort=net')).toMatchObject({ status: 400, body: { parameter: 'sort', reason: expect.stringMatching(/unknown parameter/) } });
  });

  it('answers what node:http refuses before any route in JSON too: malformed HTTP, headers over 16 KB, no Host, an unknown Expect, CONNECT', async () => {
    const one = async (text: string): Promise<RawResponse | undefined> => {
      const { responses } = await rawHttp(api.port, text);
      expect(responses.length, text.slice(0, 80)).toBeLessThanOrEqual(1);
      return responses[0];
    };
    const json = { 'content-type': 'application/json; charset=utf-8' };
    expect(await one('FOO /positions HTTP/1.1\r\nHost: localhost\r\n\r\n')).toMatchObject({ status: 400, headers: json, body: { error: 'bad request', reason: 'Invalid method encountered' } });
    expect(await one('GET /posi\0tions HTTP/1.1\r\nHost: localhost\r\n\r\n')).toMatchObject({ status: 400, headers: json, body: { error: 'bad request', reason: 'Invalid char in url path' } });
    expect(await one(`GET /positions HTTP/1.1\r\nHost: localhost\r\nX-Padding: ${'x'.repeat(20_000)}\r\n\r\n`)).toMatchObject({ status: 431, headers: json, body: { error: 'request header fields too large', reason: expect.stringMatching(/16 KB/) } });
    expect(await one('GET /positions HTTP/1.1\r\n\r\n')).toMatchObject({ status: 400, headers: json, body: { error: 'bad request', reason: 'an HTTP/1.1 request needs a Host header' } });
    expect(await one('GET /positions HTTP/1.0\r\n\r\n')).toMatchObject({ status: 200 }); // HTTP/1.0 has no Host
    expect(await one('GET /positions HTTP/1.1\r\nHost: localhost\r\nExpect: 200-ok\r\n\r\n')).toMatchObject({ status: 417, headers: json, body: { error: 'expectation failed', expect: '200-ok', reason: expect.stringMatching(/100-continue/) } });
    expect(await one('GET /positions HTTP/1.1\r\nHost: attacker.example\r\nExpect: 200-ok\r\n\r\n')).toMatchObject({ status: 403, body: { error: 'host not allowed' } });
    expect(await one('CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n\r\n')).toMatchObject({ status: 405, headers: { ...json, allow: 'GET, HEAD' }, body: { error: 'method not allowed', method: 'CONNECT', allowed: ['GET', 'HEAD'] } });
    expect(await get(api, '/health/live')).toMatchObject({ status: 200 });
  });
  it('refuses a request with more than one Host: node:http would judge it by the first alone', async () => {
    for (const hosts of [['localhost', 'attacker.example'], ['attacker.example', 'localhost'], ['localhost', 'localhost']]) {
      const { responses } = await rawHttp(api.port, `GET /positions HTTP/1.1\r\n${hosts.map((h) => `Host: ${h}\r\n`).join('')}\r\n`);
      expect(responses, hosts.join(', ')).toMatchObject([{ status: 400, body: { error: 'bad request', reason: '2 Host headers; a request carries at most one' } }]);
    }
  });
  it('closes the connection after answering a request for an Upgrade, so a request sent after it does not wait unanswered', async () => {
    const upgrade = 'GET /health/live HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n';
    // node:http reads nothing more from such a connection: it used to say keep-alive and leave the next request unanswered until its keep-alive timeout (5 s).
    const { responses, closed, timedOut } = await rawHttp(api.port, `${upgrade}GET /positions HTTP/1.1\r\nHost: localhost\r\n\r\n`, 2);
    expect({ closed, timedOut }).toEqual({ closed: true, timedOut: false });
    expect(responses).toMatchObject([{ status: 200, headers: { connection: 'close' }, body: { status: 'ok' } }]);
    // An Upgrade header alone (without Connection: Upgrade) asks for nothing: the connection stays usable.
    const plain = await rawHttp(api.port, 'GET /health/live HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\r\nGET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\n', 2);
    expect(plain.responses.map((r) => r.status)).toEqual([200, 200]);
  });
  it('answers the requests pipelined before a malformed one, then refuses it', async () => {
    const good = 'GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\nGET /hedges?status=filled HTTP/1.1\r\nHost: localhost\r\n\r\n';
    const { responses } = await rawHttp(api.port, `${good}GARBAGE\r\n\r\n`, 3);
    expect(responses.map((r) => [r.status, r.body])).toEqual([[200, { status: 'ok' }], [200, expect.any(Array)], [400, { error: 'bad request', reason: 'Invalid method encountered' }]]);
    // After an Expect: 100-continue, whose interim answer node:http writes at once: the final answers still come.
    const put = await rawHttp(api.port, 'PUT /positions HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}\x01\r\n\r\n', 2);
    expect(put.responses.map((r) => r.status)).toEqual([405, 400]);
  });

  it('accepts a request target in absolute form (http://host/path), as HTTP/1.1 requires of a server', async () => {
    const as = async (target: string, host = 'localhost') => (await rawHttp(api.port, `GET ${target} HTTP/1.1\r\nHost: ${host}\r\n\r\n`)).responses.map((r) => [r.status, r.body]);
    expect(await as(`http://localhost:${api.port}/hedges?status=filled`)).toEqual([[200, await body(api, '/hedges?status=filled')]]);
    expect(await as(`HTTP://127.0.0.1/positions/GME`)).toEqual([[200, await body(api, '/positions/GME')]]);
    expect(await as(`http://localhost:${api.port}/nope`)).toEqual([[404, { error: 'not found', path: '/nope' }]]);
    // Bound to loopback, the target's host is judged like Host.
    expect(await as('http://attacker.example/positions')).toEqual([[403, expect.objectContaining({ error: 'host not allowed', host: 'attacker.example' })]]);
  });

  it('bound to loopback, answers only requests addressed to a loopback name (no DNS rebinding)', async () => {
    for (const host of ['localhost', `localhost:${api.port}`, `127.0.0.1:${api.port}`, '127.1', `[::1]:${api.port}`, 'LOCALHOST']) {
      expect((await getAs(api.url, '/positions', host)).status, host).toBe(200);
    }
    for (const host of [`attacker.example:${api.port}`, '127.0.0.1.attacker.example', 'localhost.attacker.example', '10.0.0.5', 'a b']) {
      expect(await getAs(api.url, '/positions', host), host).toEqual({ status: 403, body: { error: 'host not allowed', host, reason: expect.stringMatching(/loopback/) } });
    }
  });

  it('bound to loopback as an IPv4-mapped IPv6 address (::ffff:127.0.0.1), refuses another Host as well', async () => {
    const mapped = await startHttpApi({ host: '::ffff:127.0.0.1', port: 0, follower, store, metrics: createMetrics(), roles: new Roles(), checkpoints: [], log: silent });
    try {
      expect((await getAs(`http://127.0.0.1:${mapped.port}`, '/positions', `attacker.example:${mapped.port}`)).status).toBe(403);
      for (const host of [`localhost:${mapped.port}`, `[::ffff:127.0.0.1]:${mapped.port}`]) expect((await getAs(`http://127.0.0.1:${mapped.port}`, '/positions', host)).status, host).toBe(200);
    } finally {
      await mapped.close();
    }
  });

  it('bound beyond loopback, answers any Host: names it is reached by are not known', async () => {
    const wide = await startHttpApi({ host: '0.0.0.0', port: 0, follower, store, metrics: createMetrics(), roles: new Roles(), checkpoints: [], log: silent });
    try {
      expect((await getAs(`http://127.0.0.1:${wide.port}`, '/positions', 'hedge-ledger:8080')).status).toBe(200);
    } finally {
      await wide.close();
    }
  });

  it('answers HEAD with the headers of GET and no body', async () => {
    const head = await get(api, '/positions', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBeGreaterThan(2);
    expect(head.body).toBe('');
  });

  it('is live and logs one debug line per request, with its component', async () => {
    expect(await get(api, '/health/live')).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(lines.at(-1)).toMatchObject({ level: 20, component: 'http', msg: 'request', method: 'GET', target: '/health/live', status: 200 });
  });
});

describe('HTTP API readiness, responsiveness and shutdown', () => {
  const metrics = createMetrics();

  it('is not ready until the store answers, the fold has caught up and every role is alive', async () => {
    const store = await openStore('sqlite::memory:');
    await ingest(store, await exampleLogs());
    await runOnce(store, config, new PaperBroker());
    const follower = new LedgerFollower({ store, config, log: silent });
    const roles = new Roles();
    let executor: RoleHealth = { alive: false, detail: 'broker login expired' };
    let lag: number | undefined;
    roles.register('execute', () => executor);
    roles.register('ingest-lag', lagWithin(20, () => lag));
    const api = await startHttpApi({ port: 0, follower, store, metrics, roles, checkpoints: [], log: silent });
    const stop = new AbortController();
    try {
      const notReady = await get(api, '/health/ready');
      expect(notReady).toMatchObject({ status: 503, body: { status: 'not_ready' } });
      expect((notReady.body as { reasons: string[] }).reasons).toEqual([
        `ledger follower at the start, behind the store's head ${await store.headPosition()}`,
        'execute not alive: broker login expired',
        'ingest-lag not alive: lag not measured yet',
      ]);

      // Before it folds, the fold is behind the store's head, and the hedge counts are left out:
      // 0 now and the ledger's counts later would read to Prometheus as a reset (increase() > 0).
      expect(await body(api, '/metrics')).toMatch(/^hedge_ledger_fold_behind_head 1$/m);
      expect(await body(api, '/metrics')).toContain('# TYPE hedge_ledger_hedges gauge');
      expect(await body(api, '/metrics')).not.toMatch(/^hedge_ledger_hedges\{/m);
      follower.start(stop.signal);
      executor = { alive: true };
      lag = 3;
      await expect.poll(async () => (await get(api, '/health/ready')).status, { timeout: 5000, interval: 10 }).toBe(200);
      expect(await body(api, '/health/ready')).toEqual({ status: 'ready', reasons: [] });
      expect(await body(api, '/metrics')).toMatch(/^hedge_ledger_fold_behind_head 0$/m);
      expect(await body(api, '/metrics')).toMatch(/^hedge_ledger_hedges\{status="filled"\} 2$/m);
      expect(await body(api, '/status')).toMatchObject({ roles: { execute: { alive: true, detail: null }, 'ingest-lag': { alive: true, detail: '3 blocks behind (bound 20)' } } });
    } finally {
      await api.close();
      stop.abort();
      await follower.stopped;
      await store.close();
    }
  });

  it('answers 503 when the store is unreachable, and leaves out the gauges it cannot know', async () => {
    const store = await openStore('sqlite::memory:');
    const down = (): Promise<never> => Promise.reject(new StoreUnavailable('connection refused'));
    const unreachable: EventStore = Object.assign(Object.create(store) as EventStore, { headPosition: down, readCheckpoint: down });
    const follower = new LedgerFollower({ store: unreachable, config, log: silent });
    const api = await startHttpApi({ port: 0, follower, store: unreachable, metrics, roles: new Roles(), checkpoints: ['accumulator'], log: silent });
    const unexpose = exposeAccumulator(metrics, down);
    try {
      expect(await get(api, '/health/ready')).toMatchObject({ status: 503, body: { reasons: ['store unreachable: connection refused'] } });
      expect(await get(api, '/status')).toMatchObject({ status: 503, body: { error: 'store unavailable', detail: 'connection refused' } });
      const text = String(await body(api, '/metrics'));
      expect(text).toContain('hedge_ledger_errors_total{component="http",kind="StoreUnavailable"} 1');
      // Unknown, not 0 ("caught up"): the lag gauges while the store is down, the timestamp before the first event.
      const unknown = ['fold_behind_head', 'accumulator_behind_head', 'fold_last_event_timestamp_seconds'].map((name) => `hedge_ledger_${name}`);
      expect(unknown.filter((name) => text.includes(`# TYPE ${name} gauge`))).toEqual(unknown);
      expect(text.split('\n').filter((line) => unknown.some((name) => line.startsWith(`${name} `)))).toEqual([]);
    } finally {
      unexpose();
      await api.close();
      await store.close();
    }
  });

  it('keeps answering while the follower catches up on a long history', async () => {
    const store = await openStore('sqlite::memory:');
    const batches = 50;
    for (let b = 0; b < batches; b++) {
      const resumes = Array.from({ length: 1000 }, (_, i) => ({ id: uuidV5(`resume ${b}:${i}`), type: 'HedgingResumed', data: { symbol: 'GME', reason: 'test', at: '2025-01-01T00:00:00Z' } }));
      await store.append('hedgectl-GME', resumes, b === 0 ? NO_STREAM : BigInt(b * 1000 - 1));
    }
    const follower = new LedgerFollower({ store, config, log: silent });
    const api = await startHttpApi({ port: 0, follower, store, metrics, roles: new Roles(), checkpoints: [], log: silent });
    const stop = new AbortController();
    follower.start(stop.signal);
    expect((await get(api, '/health/live')).status).toBe(200);
    expect(follower.progress().eventsFolded).toBeLessThan(batches * 1000);
    await caughtUp(follower);
    stop.abort();
    await follower.stopped;
    await api.close();
    await store.close();
  });

  it('closes promptly, with a keep-alive connection open and a request still in flight', async () => {
    const store = await openStore('sqlite::memory:');
    const hanging: EventStore = Object.assign(Object.create(store) as EventStore, { readCheckpoint: () => new Promise<never>(() => undefined) });
    const follower = new LedgerFollower({ store: hanging, config, log: silent });
    const api = await startHttpApi({ port: 0, follower, store: hanging, metrics, roles: new Roles(), checkpoints: ['accumulator'], log: silent });
    expect((await get(api, '/health/live')).status).toBe(200); // leaves an idle keep-alive connection in fetch's pool
    const inFlight = new Promise<string>((resolve) => {
      request(`${api.url}/status`, (res) => resolve(`status ${res.statusCode}`)).on('error', (e) => resolve(e.message)).end();
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = performance.now();
    await api.close();
    expect(performance.now() - started).toBeLessThan(1500);
    expect(await inFlight).toMatch(/socket hang up|ECONNRESET/);
    await expect(fetch(`${api.url}/health/live`)).rejects.toThrow();
    await store.close();
  });
});

describe('the run service\'s API', () => {
  /** The store, recording the name of every method called on it. */
  const recording = (store: EventStore, calls: string[]): EventStore =>
    new Proxy(store, {
      get: (target, name) => {
        const value: unknown = Reflect.get(target, name);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => (calls.push(String(name)), value.apply(target, args));
      },
    });

  it('reports the accumulator caught up in /status once it has handled everything, also after another application writes to the database', async () => {
    const store = await openStore('sqlite::memory:');
    await ingest(store, await exampleLogs());
    const stop = new AbortController();
    let url = '';
    const service = runService({
      store, config: { ...settings, httpPort: 0 }, fold: config, broker: new PaperBroker(),
      roles: new Set(['accumulate', 'execute', 'api']), signal: stop.signal, onListening: (u) => (url = u),
    });
    const get = async <T>(path: string): Promise<T> => (await fetch(`${url}${path}`)).json() as Promise<T>;
    try {
      // Both hedges filled: the last events are the executor's, on which the accumulator decides nothing.
      await expect.poll(async () => url && (await get<unknown[]>('/hedges?status=filled')).length, { timeout: 10_000 }).toBe(2);
      const accumulator = async () => (await get<{ checkpoints: Record<string, { caughtUp: boolean }> }>('/status')).checkpoints[ACCUMULATOR_CHECKPOINT];
      await expect.poll(accumulator, { timeout: 10_000 }).toMatchObject({ caughtUp: true });
      expect(await (await fetch(`${url}/metrics`)).text()).toContain('\nhedge_ledger_accumulator_behind_head 0\n');

      // Its newest event is not the ledger's, so not a head to reach: before, /health/ready stayed 503 and the watchdog restarted the accumulator.
      await store.append('inventory-1', [{ id: uuidV5('inventory-1:0'), type: 'StockCounted', data: { sku: 'x' } }], NO_STREAM);
      const { follower } = await get<{ follower: { caughtUp: boolean } }>('/status');
      expect(follower.caughtUp).toBe(true);
      expect(await accumulator()).toMatchObject({ caughtUp: true });
      expect((await fetch(`${url}/health/ready`)).status).toBe(200);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).toContain('\nhedge_ledger_accumulator_behind_head 0\n');
      expect(metrics).toContain('\nhedge_ledger_fold_behind_head 0\n');
    } finally {
      stop.abort();
      await service;
      await store.close();
    }
  });

  it('starts nothing when stopped before it started (a SIGTERM while `run` opened the store)', async () => {
    const store = await openStore(`sqlite:${join(mkdtempSync(join(tmpdir(), 'ledger-http-')), 'ledger.db')}`);
    try {
      await ingest(store, await exampleLogs()); // two hedges for the accumulator to decide, were it to run
      const head = await store.headPosition();
      const service = runService({
        store, config: { ...settings, httpPort: 0 }, fold: config, broker: new PaperBroker(),
        roles: new Set(['accumulate', 'execute', 'api']), signal: AbortSignal.abort(),
      });
      await expect(Promise.race([service, sleep(5_000).then(() => 'still running after 5 s')])).resolves.toBeUndefined();
      expect(await store.headPosition()).toBe(head);
    } finally {
      await store.close();
    }
  });

  /** The image's HEALTHCHECK command, as the Dockerfile gives it, run with `env` (exit code). */
  const healthcheck = (env: Record<string, string>): Promise<number> => {
    const line = /^\s*CMD (\[.*\])$/m.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8').split('HEALTHCHECK')[1]!)![1]!;
    const [command, ...args] = JSON.parse(line) as string[];
    return new Promise((resolve) => execFile(command === 'node' ? process.execPath : command!, args, { env: { ...process.env, ...env } }, (error) => resolve(error ? Number(error.code ?? 1) : 0)));
  };

  it.each(['127.0.0.1', '0.0.0.0', '127.0.0.2', '::', '::1'])("passes the image's HEALTHCHECK while the API listens on %s, and fails it once it stops", async (host) => {
    const store = await openStore('sqlite::memory:');
    const stop = new AbortController();
    let url = '';
    const service = runService({ store, config: { ...settings, httpHost: host, httpPort: 0 }, fold: config, roles: new Set(['api']), signal: stop.signal, onListening: (u) => (url = u) });
    try {
      await expect.poll(() => url).not.toBe('');
      const env = { LEDGER_HTTP_HOST: host, LEDGER_HTTP_PORT: new URL(url).port };
      expect(await healthcheck(env)).toBe(0);
      stop.abort();
      await service;
      expect(await healthcheck(env)).toBe(1);
    } finally {
      stop.abort();
      await store.close();
    }
  });

  it('fails on a busy port before any role starts', async () => {
    const busy: Server = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const store = await openStore('sqlite::memory:');
    const calls: string[] = [];
    try {
      const service = runService({
        store: recording(store, calls), config: { ...settings, httpPort: (busy.address() as AddressInfo).port }, fold: config,
        broker: new PaperBroker(), roles: new Set(['accumulate', 'execute', 'api']), signal: new AbortController().signal,
      });
      await expect(service).rejects.toThrow(/EADDRINUSE/);
      expect(calls).toEqual([]); // no role read the store: nothing is left running on it
    } finally {
      busy.close();
      await store.close();
    }
  });
});
