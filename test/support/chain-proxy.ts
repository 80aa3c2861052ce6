/**
 * A JSON-RPC proxy in front of anvil that misbehaves like a real provider, reproducibly (a
 * seeded generator decides each call's fate): answers 500, drops connections, delays calls,
 * refuses wide eth_getLogs ranges, rewrites answers. Faults can be changed while it runs.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mulberry32 } from '../../src/seeded-random.ts';

export interface ProxyFaults {
  /** Share of calls answered with HTTP 500. */
  error500?: number;
  /** Share of calls whose connection is destroyed without an answer. */
  drop?: number;
  /** Share of calls delayed by up to `delayMs`. */
  delay?: number;
  delayMs?: number;
  /** eth_getLogs over more blocks than this is refused the way Infura refuses it. */
  maxLogRange?: number;
  /** Every call answers HTTP 503. */
  down?: boolean;
  /** Rewrites a successful answer's `result`; an RpcErrorAnswer returned answers with that JSON-RPC error instead. */
  rewrite?: (method: string, result: unknown, call: JsonRpcCall) => unknown;
  /** Sends the calls to this node instead (an endpoint that starts serving another network under its URL). */
  target?: string;
  /** Runs once the node has answered a call, before the answer goes back: the chain can change in between. */
  answered?: (call: JsonRpcCall) => Promise<void>;
}

export interface RpcProxy {
  readonly url: string;
  faults: ProxyFaults;
  /** Calls seen, by method. */
  readonly calls: Map<string, number>;
  /** How many calls each fault hit. */
  readonly injected: Map<string, number>;
  /** The most eth_getLogs calls the proxy held at once. */
  readonly peakLogCalls: () => number;
  close(): Promise<void>;
}

export interface JsonRpcCall {
  readonly id: unknown;
  readonly method: string;
  readonly params?: readonly { fromBlock?: string; toBlock?: string; blockHash?: string; to?: string }[];
}

/** What a `rewrite` returns to answer with a JSON-RPC error (a revert, a refusal) instead of a result, under an HTTP status (default 200). */
export class RpcErrorAnswer {
  constructor(
    readonly error: { readonly code: number; readonly message: string; readonly data?: string },
    readonly status = 200,
  ) {}
}

const body = async (req: IncomingMessage): Promise<string> => {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
};

/** Blocks an eth_getLogs call asks for: one by block hash. */
const rangeOf = (call: JsonRpcCall): bigint => {
  const filter = call.params?.[0];
  if (filter?.blockHash) return 1n;
  return filter?.fromBlock && filter.toBlock ? BigInt(filter.toBlock) - BigInt(filter.fromBlock) + 1n : 0n;
};

export async function startRpcProxy(target: string, seed: number, faults: ProxyFaults = {}): Promise<RpcProxy> {
  const random = mulberry32(seed);
  const calls = new Map<string, number>();
  const injected = new Map<string, number>();
  const count = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);
  const hit = (share: number | undefined, fault: string): boolean => {
    const yes = random() < (share ?? 0);
    if (yes) count(injected, fault);
    return yes;
  };

  let logCalls = 0;
  let peakLogCalls = 0;
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const text = await body(req);
    const call = JSON.parse(text) as JsonRpcCall;
    count(calls, call.method);
    if (call.method !== 'eth_getLogs') return answer(call, text, req, res);
    peakLogCalls = Math.max(peakLogCalls, ++logCalls);
    try {
      await answer(call, text, req, res);
    } finally {
      logCalls--;
    }
  };

  const answer = async (call: JsonRpcCall, text: string, req: IncomingMessage, res: ServerResponse) => {
    const f = proxy.faults;
    if (f.down || hit(f.error500, 'error500')) return void res.writeHead(f.down ? 503 : 500).end('unavailable');
    if (hit(f.drop, 'drop')) return void req.socket.destroy();
    if (hit(f.delay, 'delay')) await new Promise((r) => setTimeout(r, random() * (f.delayMs ?? 50)));
    if (call.method === 'eth_getLogs' && f.maxLogRange !== undefined && rangeOf(call) > BigInt(f.maxLogRange)) {
      count(injected, 'rangeRefused');
      const error = { code: -32005, message: 'query returned more than 10000 results' };
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: call.id, error }));
    }
    const upstream = (await (await fetch(f.target ?? target, { method: 'POST', headers: { 'content-type': 'application/json' }, body: text })).json()) as { result?: unknown; error?: unknown };
    let status = 200;
    if (f.rewrite && 'result' in upstream) {
      const rewritten = f.rewrite(call.method, upstream.result, call);
      if (rewritten instanceof RpcErrorAnswer) {
        delete upstream.result;
        upstream.error = rewritten.error;
        status = rewritten.status;
      } else upstream.result = rewritten;
    }
    await f.answered?.(call);
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(upstream));
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: Error) => res.writeHead(502).end(error.message));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const proxy: RpcProxy = {
    url: `http://127.0.0.1:${port}/v2/secret-api-key`,
    faults,
    calls,
    injected,
    peakLogCalls: () => peakLogCalls,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return proxy;
}
