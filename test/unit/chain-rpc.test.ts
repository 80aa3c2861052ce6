/**
 * ChainRpc against local HTTP endpoints: whatever viem's messages quote, an endpoint shows by
 * scheme and host only; and one call, over however many fallback endpoints, ends at its deadline.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import * as E from 'fp-ts/lib/Either.js';
import type { AddressInfo } from 'node:net';
import { ChainRpc } from '../../src/chain/rpc.ts';
import { DeadlineExceeded, backoff, retrying } from '../../src/chain/retry.ts';
import { capturedLog, testLog } from '../support/test-log.ts';


describe('ChainRpc', () => {
  const servers: Server[] = [];
  afterAll(() => {
    for (const server of servers) {
      server.closeAllConnections();
      server.close();
    }
  });

  /** An endpoint that serves Base's chain id and never answers anything else. */
  const stalling = async (): Promise<string> => {
    const server = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const call = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id: number; method: string };
      if (call.method === 'eth_chainId') res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: call.id, result: '0x2105' }));
    });
    servers.push(server);
    await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/key`;
  };

  it('masks an endpoint URL that viem quotes in its errors (fetch cannot parse this one)', async () => {
    const { lines, log } = capturedLog('debug');
    const url = 'http://127.0.0.1:99999/v2/SECRETKEY123';
    const error = await ChainRpc.connect({ urls: [url], chainId: 8453, deadlineMs: 300, log }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(DeadlineExceeded);
    expect((error as Error).message).toMatch(/^eth_chainId from <unparsable URL>: still failing .*: HTTP request failed: Failed to parse URL from <unparsable URL>$/);
    expect(lines.length).toBeGreaterThan(0);
    expect([(error as Error).message, ...lines.map((line) => JSON.stringify(line))].filter((text) => text.includes('SECRETKEY123'))).toEqual([]);
  });

  it('masks the path and query of an endpoint that its server quotes back (Express: "Cannot POST /v2/<key>")', async () => {
    let calls = 0;
    const server = createServer((req, res) => {
      const { pathname } = new URL(req.url ?? '/', 'http://x');
      if (calls++ === 0) res.writeHead(429).end(`{"error":"rate limited on ${req.url}"}`); // retried, and logged
      else res.writeHead(404, { 'content-type': 'text/html' }).end(`<pre>Cannot POST ${pathname}</pre>`); // refused, and thrown
    });
    servers.push(server);
    await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
    const { lines, log } = capturedLog('debug');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/SECRETKEY123?apikey=SECRETQUERY`;
    const error = await ChainRpc.connect({ urls: [url], chainId: 8453, deadlineMs: 5_000, log }).catch((e: Error) => e);
    expect((error as Error).message).toMatch(/^eth_chainId from http:\/\/127\.0\.0\.1:\d+: HTTP 404: .*Cannot POST http:\/\/127\.0\.0\.1:\d+/);
    expect(lines).toEqual([expect.objectContaining({ msg: 'RPC call failed; retrying', error: expect.stringMatching(/^HTTP 429: .*rate limited on http:\/\/127\.0\.0\.1:\d+/) })]);
    expect([(error as Error).message, ...lines.map((line) => JSON.stringify(line))].filter((text) => /SECRET/.test(text))).toEqual([]);
  });

  it('says why a request reached no server (ECONNREFUSED: nothing listens on that port), which fetch failed alone does not', async () => {
    const closed = createServer();
    await new Promise<void>((listening) => closed.listen(0, '127.0.0.1', listening));
    const { port } = closed.address() as AddressInfo;
    await new Promise((done) => closed.close(done));
    const { lines, log } = capturedLog('debug');
    const error = await ChainRpc.connect({ urls: [`http://127.0.0.1:${port}/v2/SECRETKEY123`], chainId: 8453, deadlineMs: 300, log }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(DeadlineExceeded);
    expect((error as Error).message).toMatch(/: HTTP request failed: fetch failed \(ECONNREFUSED\)$/);
    expect([(error as Error).message, ...lines.map((line) => JSON.stringify(line))].filter((text) => text.includes('SECRETKEY123'))).toEqual([]);
  });

  it('says an answer past viem\'s 10 MiB limit is one, without an "undefined" for the details viem leaves out', async () => {
    const server = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const call = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id: number; method: string };
      const result = call.method === 'eth_chainId' ? '0x2105' : `0x${'0'.repeat(11 * 2 ** 20)}`;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: call.id, result }));
    });
    servers.push(server);
    await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
    const rpc = await ChainRpc.connect({ urls: [`http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/key`], chainId: 8453, deadlineMs: 1_000, log: testLog() });
    const error = await rpc.request('eth_getCode', [], () => E.right(null)).catch((e: Error) => e);
    expect((error as Error).message).toMatch(/^eth_getCode from http:\/\/127\.0\.0\.1:\d+: HTTP response body exceeded the size limit\.$/);
  });

  it('ends a call at its deadline, though each of three fallback endpoints stalls for as long', async () => {
    const deadlineMs = 1_500;
    const rpc = await ChainRpc.connect({ urls: [await stalling(), await stalling(), await stalling()], chainId: 8453, deadlineMs, log: testLog() });
    const started = performance.now();
    const error = await rpc.blockNumber().catch((e: Error) => e);
    // Each endpoint's own timeout is the deadline: trying them in turn took three deadlines.
    expect(performance.now() - started).toBeLessThan(2.5 * deadlineMs);
    expect(error).toBeInstanceOf(DeadlineExceeded);
    expect((error as Error).message).toMatch(/^eth_blockNumber from http:\/\/127\.0\.0\.1:\d+, .*: still failing after 1 attempts in [\d.]+ s \(deadline\): no answer by the deadline$/);
  });
});

describe('retrying', () => {
  it('gives up on an attempt that ignores its signal once the deadline passes, naming the error before it', async () => {
    let attempts = 0;
    const op = () => (++attempts === 1 ? Promise.reject(new Error('HTTP 503')) : new Promise<never>(() => {}));
    const started = performance.now();
    const failure = retrying('eth_blockNumber', op, { backoff: backoff(300, () => 0), retryable: () => true });
    await expect(failure).rejects.toThrow(/^eth_blockNumber: still failing after 2 attempts in [\d.]+ s \(deadline\): no answer by the deadline \(the attempt before: HTTP 503\)$/);
    expect(performance.now() - started).toBeLessThan(3_000); // the failure it guards against never ends
  });

  it('waits for an answer under a deadline longer than a timer can hold (2^31 ms)', async () => {
    const op = async () => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      return 'answer';
    };
    await expect(retrying('eth_blockNumber', op, { backoff: backoff(3_000_000_000), retryable: () => true })).resolves.toBe('answer');
  });
});
