/**
 * An HTTP proxy in front of the Schwab simulator that may rewrite the answer bodies of the
 * reading endpoints (getOrder, listOrders, accountNumbers, token): the adapter sees whatever
 * `rewrite` makes of the simulator's real answer. Requests pass unchanged.
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type ProxiedEndpoint = 'token' | 'accountNumbers' | 'getOrder' | 'listOrders' | 'other';

export interface ProxiedAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export type Rewrite = (endpoint: ProxiedEndpoint, answer: ProxiedAnswer) => ProxiedAnswer;

export function endpointOf(method: string, path: string): ProxiedEndpoint {
  const pathname = path.split('?')[0] ?? '';
  if (method === 'POST' && pathname === '/v1/oauth/token') return 'token';
  if (method === 'GET' && pathname === '/trader/v1/accounts/accountNumbers') return 'accountNumbers';
  if (method === 'GET' && /^\/trader\/v1\/accounts\/[^/]+\/orders$/.test(pathname)) return 'listOrders';
  if (method === 'GET' && /^\/trader\/v1\/accounts\/[^/]+\/orders\/[^/]+$/.test(pathname)) return 'getOrder';
  return 'other';
}

const PASSED = ['content-type', 'content-encoding', 'location', 'date', 'retry-after', 'schwab-client-correlid'];

function kept(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of PASSED) {
    const value = headers[name];
    if (typeof value === 'string') out[name] = value;
  }
  return out;
}

export interface RewriteProxy {
  readonly baseUrl: string;
  close(): Promise<void>;
}

export async function rewriteProxy(targetPort: number, rewrite: Rewrite): Promise<RewriteProxy> {
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers = { ...req.headers };
      delete headers.host;
      const upstream = httpRequest({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers }, (answer) => {
        const body: Buffer[] = [];
        answer.on('data', (c: Buffer) => body.push(c));
        answer.on('end', () => {
          const original: ProxiedAnswer = { status: answer.statusCode ?? 502, headers: kept(answer.headers), body: Buffer.concat(body) };
          let out: ProxiedAnswer;
          try {
            out = rewrite(endpointOf(req.method ?? 'GET', req.url ?? '/'), original);
          } catch {
            out = original;
          }
          res.writeHead(out.status, { ...out.headers, 'content-length': String(out.body.length) });
          res.end(out.body);
        });
        answer.on('error', () => res.destroy());
      });
      // The simulator's timeout and drop faults: the client sees the connection fail, as it would without the proxy.
      upstream.on('error', () => res.destroy());
      res.on('close', () => {
        if (!res.writableFinished) upstream.destroy();
      });
      upstream.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((closed) => {
        server.close(() => closed());
        server.closeAllConnections();
      }),
  };
}
