/**
 * A Schwab Trader API simulator over real HTTP: OAuth with the real token lifetimes,
 * the order endpoints, positions, New York market hours, scripted order lifecycles,
 * fault injection and a control API. Time is the SimClock's: order lifecycles move only
 * when that clock moves (eagerly on set/advance), never because an order was read.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSimClock, type SimClock } from './clock.ts';
import { parsePrice } from './codecs.ts';
import { createControl, type SchwabSimControl } from './control.ts';
import { createCore } from './core.ts';
import type { AccountInfo } from './model.ts';
import { createRequestListener } from './server.ts';
import { hostPort } from '../../host-port.ts';

export { createSimClock, DEFAULT_SIM_START, type SimClock, type SimClockOptions } from './clock.ts';
export type { SchwabSimControl, OrderSummary } from './control.ts';
export type { Fault, FaultSchedule } from './faults.ts';
export type { Counters, RequestLogEntry, Outcome } from './journal.ts';
export { ORDER_STATUSES, ENDPOINTS, type Endpoint, type AccountInfo, type Instruction } from './model.ts';
export type { TokenResponse } from './oauth.ts';
export type { ScriptTarget } from './orders.ts';
export type { Script } from './scripts.ts';

export interface SchwabSimOptions {
  /** 0 (default) picks a free port. */
  readonly port?: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default: a manual clock at Wednesday 2025-09-10 10:00 New York. */
  readonly clock?: SimClock;
  readonly appKey?: string;
  readonly appSecret?: string;
  /** The registered callback; authorize requires an exact match. Default https://127.0.0.1. */
  readonly callbackUrl?: string;
  readonly accountNumber?: string;
  /** Initial prices (at most 4 decimals); default DEFAULT_PRICES. Unpriced symbols are refused. */
  readonly prices?: Readonly<Record<string, string>>;
  /** Seeds the PRNG behind probabilistic faults. */
  readonly seed?: number;
  /** How long a cancel stays PENDING_CANCEL (sim ms); default 1000. */
  readonly cancelLatencyMs?: number;
}

export interface SchwabSim {
  /** e.g. http://127.0.0.1:53121; the adapter's base URL. */
  readonly baseUrl: string;
  readonly port: number;
  readonly clock: SimClock;
  readonly control: SchwabSimControl;
  readonly account: AccountInfo;
  /** Closes the server and destroys every connection, including ones held by a timeout fault. */
  stop(): Promise<void>;
}

export const DEFAULT_PRICES: Readonly<Record<string, string>> = {
  GME: '22.7299',
  AAPL: '230.11',
  TSLA: '346.4',
  NVDA: '177.33',
  MSFT: '498.2',
  SPY: '650.33',
};

/** Wildcard binds are reached through loopback. */
const reachable = (host: string): string => (host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host);

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export async function startSchwabSim(options: SchwabSimOptions = {}): Promise<SchwabSim> {
  const host = options.host ?? '127.0.0.1';
  const clock = options.clock ?? createSimClock();
  const core = createCore({
    clock,
    appKey: options.appKey ?? 'sim-app-key',
    appSecret: options.appSecret ?? 'sim-app-secret',
    callbackUrl: options.callbackUrl ?? 'https://127.0.0.1',
    accountNumber: options.accountNumber ?? '12345678',
    seed: options.seed ?? 1,
    cancelLatencyMs: options.cancelLatencyMs ?? 1000,
  });
  for (const [symbol, price] of Object.entries(options.prices ?? DEFAULT_PRICES)) core.book.setPrice(symbol, parsePrice(price));
  const control = createControl(core);
  const server = createServer(createRequestListener(core, control));
  const port = await listen(server, options.port ?? 0, host);
  core.baseUrl = `http://${hostPort(reachable(host), port)}`;
  const unsubscribe = clock.onChange((now) => core.book.advanceTo(now.getTime()));
  let stopped: Promise<void> | undefined;
  return {
    baseUrl: core.baseUrl,
    port,
    clock,
    control,
    account: core.account,
    stop() {
      unsubscribe();
      stopped ??= close(server);
      return stopped;
    },
  };
}
