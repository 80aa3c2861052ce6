/** One HTTP exchange with Schwab: how Retry-After is read, against a real HTTP server. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { TransportError, exchange } from '../../src/broker/schwab/http.ts';
import { testLog } from '../support/test-log.ts';

let server: Server;
let baseUrl: string;

beforeAll(async () => {
  // Answers 429 with the Retry-After the query names (absent when there is none).
  server = createServer((req, res) => {
    const retryAfter = new URL(req.url ?? '/', 'http://x').searchParams.get('retryAfter');
    res.writeHead(429, retryAfter === null ? {} : { 'Retry-After': retryAfter });
    res.end('{"message":"Too many requests"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const retryAfterMs = async (header: string | null): Promise<number | undefined> => {
  const query = header === null ? '' : `?${new URLSearchParams({ retryAfter: header })}`;
  return (await exchange({ method: 'GET', url: `${baseUrl}/${query}`, headers: {} }, 2000, testLog())).retryAfterMs;
};

describe('Retry-After', () => {
  it('reads seconds, and an HTTP date as the time left until it', async () => {
    expect(await retryAfterMs('120')).toBe(120_000);
    expect(await retryAfterMs('0')).toBe(0);
    const inAMinute = new Date(Math.ceil(Date.now() / 1000) * 1000 + 60_000).toUTCString();
    expect(await retryAfterMs(inAMinute)).toBeGreaterThan(55_000);
    expect(await retryAfterMs(inAMinute)).toBeLessThanOrEqual(61_000);
    expect(await retryAfterMs('Wed, 21 Oct 2015 07:28:00 GMT')).toBe(0); // already past
    const asctime = new Date(Math.ceil(Date.now() / 1000) * 1000 + 60_000).toUTCString().replace(/^(\w{3}), (\d{2}) (\w{3}) (\d{4}) ([\d:]{8}) GMT$/, '$1 $3 $2 $5 $4');
    expect(await retryAfterMs(asctime)).toBeGreaterThan(55_000); // asctime: GMT without saying so
    expect(await retryAfterMs(asctime)).toBeLessThanOrEqual(61_000);
    expect(await retryAfterMs('Sunday, 06-Nov-94 08:49:37 GMT')).toBe(0); // RFC 850
    expect(await retryAfterMs(null)).toBeUndefined();
  });

  it('reads fractional seconds as a wait, rounded up to the millisecond', async () => {
    expect(await retryAfterMs('1.5')).toBe(1500);
    expect(await retryAfterMs('0.25')).toBe(250);
  });

  it('takes a wait of more than 5 minutes for 5 minutes: days (digits run together, a date years ahead) would stall every order write, and past 2^31 ms Node would not wait at all', async () => {
    expect(await retryAfterMs('300')).toBe(300_000);
    expect(await retryAfterMs('3000000')).toBe(300_000);
    expect(await retryAfterMs('9'.repeat(400))).toBe(300_000); // Infinity as a number
    expect(await retryAfterMs('Fri, 31 Dec 2100 23:59:59 GMT')).toBe(300_000);
  });

  it('ignores what it cannot read (the pause then doubles per 429), rather than taking it for a date long past: no wait at all', async () => {
    for (const header of ['-1', '+5', '5.', 'soon', '1e3', '30 seconds', 'Jan 5']) expect([header, await retryAfterMs(header)]).toEqual([header, undefined]);
  });
});

describe('a request fetch refuses to send', () => {
  it('is a TransportError that quotes neither the header fetch refused nor carries fetch\'s error, which does (a token Schwab sent with a control character)', async () => {
    const request = { method: 'GET' as const, url: `${baseUrl}/trader/v1/accounts/accountNumbers`, headers: { Authorization: 'Bearer at-SECRET\u0000x' } };
    const error = await exchange(request, 2000, testLog()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransportError);
    expect((error as Error).message).toMatch(/^GET \/trader\/v1\/accounts\/accountNumbers: fetch refused to send the request \(a malformed URL or header\)$/);
    expect(JSON.stringify(pino.stdSerializers.err(error as Error))).not.toContain('SECRET');
  });
});

describe('an answer cut off in its body', () => {
  it('is a TransportError naming the dropped connection, not a request fetch refused to send (fetch had sent it: the server answered)', async () => {
    const cutting = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Length': '1000' });
      res.write('{"orderId":');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    await new Promise<void>((resolve) => cutting.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(cutting.address() as AddressInfo).port}/trader/v1/orders`;
      const error = await exchange({ method: 'GET', url, headers: {} }, 2000, testLog()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TransportError);
      expect((error as Error).message).not.toMatch(/refused to send/);
      expect((error as Error).message).toMatch(/^GET \/trader\/v1\/orders: .*other side closed/);
    } finally {
      await new Promise<void>((resolve) => cutting.close(() => resolve()));
    }
  });
});
