/**
 * The end-to-end stack (test/integration/e2e.test.ts, test/bench/e2e.ts): anvil with the test
 * orderbook and tokens, the Schwab simulator in this process (wall clock, market pinned open),
 * an encrypted token file holding a fresh login, a SQLite file, and the real service as child
 * processes — `node bin/hedge-ledger.js run --broker schwab`, configured through env only.
 *
 * Every child, anvil and the simulator are stopped by `close()`; children still alive when this
 * process exits are SIGKILLed synchronously, so nothing outlives a failed run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, type WriteStream } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { until } from './until.ts';
import { createPublicClient, http, type Address } from 'viem';
import * as D from '../../src/domain/decimal.ts';
import { logEventId } from '../../src/domain/ids.ts';
import type { Envelope } from '../../src/domain/events.ts';
import { decodedEvents } from './store-fixtures.ts';
import type { EventStore, ReadAllOptions } from '../../src/eventstore/port.ts';
import { SqliteEventStore } from '../../src/eventstore/sqlite.ts';
import { createSimClock, startSchwabSim, type SchwabSim } from '../../src/broker/schwab-sim/index.ts';
import { EncryptedTokenFile } from '../../src/broker/schwab/index.ts';
import { startAnvil, deployDevnet, createTrader, type Anvil, type DevnetDeployment, type DevTokenName, type Fill, type Trader } from '../../src/chain/devnet/index.ts';
import { ROOT } from './cli.ts';
import { storedTokens } from './executor-harness.ts';

/** Anvil's second default account: our order's owner. */
export const OUR_OWNER: Address = '0x70997970c51812dc3a010c7d01b50e0d17dc79c8';
/** Anvil's third: someone else's order. */
export const TAKER: Address = '0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc';

/** The devnet's tokenized equities by base ticker (every one of them maps to a simulator symbol with a price). */
export const EQUITY_TOKENS: Readonly<Record<string, readonly DevTokenName[]>> = {
  GME: ['tGME', 'GME0x', 'GMEs1'],
  AAPL: ['tAAPL', 'AAPL0x'],
  SPLG: ['tSPLG'],
};
export const SYMBOLS = Object.keys(EQUITY_TOKENS);
export const PRICES: Readonly<Record<string, string>> = { GME: '22.7299', AAPL: '230.11', SPLG: '80.25' };

const APP = { appKey: 'e2e-app-key', appSecret: 'e2e-app-secret', callbackUrl: 'https://127.0.0.1' } as const;

export interface Exited {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** ms from the signal sent (or from the spawn when none was) to the exit. */
  readonly ms: number;
}

// ---- children never outlive this process ----

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** A free TCP port on 127.0.0.1 (released for the child to bind). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** One `hedge-ledger run` child process. */
export class ServiceProcess {
  readonly api: string;
  readonly exited: Promise<Exited>;
  private signalledAt: number | undefined;
  private stderrTail = '';
  private readonly waiters = new Set<() => void>();

  constructor(private readonly child: ChildProcess, port: number, readonly logFile: string) {
    this.api = `http://127.0.0.1:${port}`;
    const started = Date.now();
    const log: WriteStream = createWriteStream(logFile);
    child.stdout?.pipe(log, { end: false });
    child.stderr?.on('data', (chunk: Buffer) => {
      log.write(chunk);
      this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-8_000);
      this.waiters.forEach((w) => w());
    });
    this.exited = new Promise<Exited>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, signal) => {
        children.delete(child);
        log.end();
        this.waiters.forEach((w) => w());
        resolve({ code, signal, ms: Date.now() - (this.signalledAt ?? started) });
      });
    });
    this.exited.catch(() => undefined);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The last lines the service logged (stderr), for failure messages. */
  get logTail(): string {
    return this.stderrTail;
  }

  /** Resolves when the service logs a line containing `text` (false if it exits first, or after `timeoutMs`). */
  logged(text: string, timeoutMs = 30_000): Promise<boolean> {
    return new Promise((resolve) => {
      const check = () => {
        const found = this.stderrTail.includes(text);
        if (!found && this.alive && Date.now() < deadline) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve(found);
      };
      const deadline = Date.now() + timeoutMs;
      const timer = setTimeout(check, timeoutMs + 1);
      this.waiters.add(check);
      check();
    });
  }

  /** Sends `signal` (once) and resolves when the process has exited. */
  stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<Exited> {
    if (this.alive) {
      this.signalledAt = Date.now();
      this.child.kill(signal);
    }
    return this.exited;
  }

  async get<T>(path: string): Promise<T> {
    const response = await fetch(`${this.api}${path}`, { signal: AbortSignal.timeout(5_000) });
    if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
    return (await response.json()) as T;
  }

  /** Status and body text, whatever the status. */
  async fetch(path: string): Promise<{ status: number; body: string; contentType: string | null }> {
    const response = await fetch(`${this.api}${path}`, { signal: AbortSignal.timeout(5_000) });
    return { status: response.status, body: await response.text(), contentType: response.headers.get('content-type') };
  }

  /** Resolves once /health/ready answers 200; throws with the log tail if the process dies first. */
  async ready(timeoutMs = 30_000): Promise<void> {
    await until(async () => {
      if (!this.alive) throw new Error(`the service exited before it was ready:\n${this.stderrTail}`);
      return (await this.fetch('/health/ready')).status === 200;
    }, 'GET /health/ready to answer 200', timeoutMs, 100).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}\n--- service log tail ---\n${this.stderrTail}`);
    });
  }
}

export interface StackOptions {
  /** Use anvil's ws:// endpoint as LEDGER_RPC_URL (newHeads wakes the ingester). */
  readonly websocket?: boolean;
  /** Extra env for every child. */
  readonly env?: Readonly<Record<string, string>>;
  /** Log level of the children (default info: the log files are kept until close). */
  readonly logLevel?: string;
  /** Seeds the simulator's probabilistic faults. */
  readonly simSeed?: number;
}

export interface HedgeCommand {
  readonly commandId: string;
  readonly symbol: string;
  readonly sequence: number;
  readonly side: string;
  readonly quantity: string;
  readonly causationId: string;
}

export class E2eStack {
  readonly storeFile: string;
  private readonly key = randomBytes(32);
  private readonly tokens: EncryptedTokenFile;
  private spawned = 0;
  private readonly running = new Set<ServiceProcess>();
  private reader: EventStore | undefined;

  private constructor(
    readonly dir: string,
    readonly anvil: Anvil,
    readonly deployment: DevnetDeployment,
    readonly sim: SchwabSim,
    readonly trader: Trader,
    private readonly options: StackOptions,
  ) {
    this.storeFile = join(dir, 'ledger.db');
    this.tokens = new EncryptedTokenFile(join(dir, 'schwab-tokens.json'), this.key);
  }

  static async start(options: StackOptions = {}): Promise<E2eStack> {
    const dir = mkdtempSync(join(tmpdir(), 'hedge-ledger-e2e-'));
    let anvil: Anvil | undefined;
    let sim: SchwabSim | undefined;
    try {
      anvil = await startAnvil();
      const deployment = await deployDevnet(anvil.rpcUrl);
      sim = await startSchwabSim({ ...APP, clock: createSimClock({ start: new Date(), followWallClock: true }), prices: PRICES, ...(options.simSeed !== undefined && { seed: options.simSeed }) });
      sim.control.setMarketOpen(true);
      const stack = new E2eStack(dir, anvil, deployment, sim, createTrader(anvil.rpcUrl, deployment), options);
      await stack.tokens.save(storedTokens(sim.control.issueTokens(), new Date()));
      return stack;
    } catch (error) {
      await sim?.stop();
      await anvil?.stop();
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
  }

  /** The service's whole configuration, as env (nothing from this process's LEDGER_* / SCHWAB_* leaks in). */
  env(port: number, extra: Readonly<Record<string, string>> = {}): Record<string, string> {
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([k, v]) => v !== undefined && !/^(LEDGER_|SCHWAB_|TOKEN_ENCRYPTION_KEY)/.test(k))) as Record<string, string>;
    return {
      ...inherited,
      LEDGER_STORE: `sqlite:${this.storeFile}`,
      LEDGER_CHAIN_ID: String(this.deployment.chainId),
      LEDGER_ORDERBOOK: this.deployment.orderbook.toLowerCase(),
      LEDGER_OWNERS: OUR_OWNER,
      LEDGER_RPC_URL: this.options.websocket ? this.anvil.wsUrl : this.anvil.rpcUrl,
      LEDGER_DEPLOYMENT_BLOCK: String(this.deployment.deploymentBlock),
      LEDGER_CONFIRMATIONS: '0',
      LEDGER_CHAIN_POLL_INTERVAL_MS: '100',
      LEDGER_POLL_INTERVAL_MS: '50',
      LEDGER_HTTP_PORT: String(port),
      LEDGER_SHUTDOWN_TIMEOUT_MS: '10000',
      LEDGER_LOG_LEVEL: this.options.logLevel ?? 'info',
      SCHWAB_BASE_URL: this.sim.baseUrl,
      SCHWAB_APP_KEY: APP.appKey,
      SCHWAB_APP_SECRET: APP.appSecret,
      SCHWAB_TOKEN_FILE: this.tokens.path,
      SCHWAB_REQUEST_TIMEOUT_MS: '5000',
      TOKEN_ENCRYPTION_KEY: this.key.toString('base64'),
      ...this.options.env,
      ...extra,
    };
  }

  /** Starts `hedge-ledger run --broker schwab` as a child process on a free HTTP port. */
  async spawn(extra: Readonly<Record<string, string>> = {}): Promise<ServiceProcess> {
    const port = await freePort();
    const child = spawn(process.execPath, ['bin/hedge-ledger.js', 'run', '--broker', 'schwab'], { cwd: ROOT, env: this.env(port, extra), stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    const service = new ServiceProcess(child, port, join(this.dir, `service-${++this.spawned}.log`));
    this.running.add(service);
    void service.exited.finally(() => this.running.delete(service));
    return service;
  }

  /** The token file's path (its lock file is `<path>.lock`). */
  get tokenFile(): string {
    return this.tokens.path;
  }

  /** Rewrites the stored login so its access token expires in `ms`: the next process refreshes before its first broker call. */
  async expireAccessToken(ms = 30_000): Promise<void> {
    const stored = await this.tokens.load();
    if (stored === undefined) throw new Error('no token file');
    await this.tokens.save({ ...stored, accessExpiresAt: new Date(Date.now() + ms).toISOString() });
  }

  /** A reading handle on the service's SQLite file (this process never writes to it). */
  store(): EventStore {
    this.reader ??= new SqliteEventStore(this.storeFile);
    return this.reader;
  }

  /** Every stored event of the given prefixes, decoded (a corrupt one throws). */
  events(options: ReadAllOptions = {}): Promise<Envelope[]> {
    return decodedEvents(this.store().readAll(options));
  }

  /** How many events the store holds (all streams). */
  async eventCount(): Promise<number> {
    let n = 0;
    for await (const _ of this.store().readAll()) n++;
    return n;
  }

  /** Every HedgeRequested in the hedgecmd streams, in store order. */
  async commands(): Promise<HedgeCommand[]> {
    return (await this.events({ prefixes: ['hedgecmd-'] })).flatMap((e) => (e.type === 'HedgeRequested' ? [{ ...e.data, quantity: D.format(e.data.quantity) }] : []));
  }

  /**
   * Deterministic ids of every log the orderbook emitted on chain (eth_getLogs), in chain order.
   * Asked 1000 blocks at a time: viem refuses an answer over 10 MB, which one request for the
   * ~4,500 logs of a 45-minute soak exceeds.
   */
  async onchainLogIds(): Promise<string[]> {
    const client = createPublicClient({ transport: http(this.anvil.rpcUrl) });
    const head = await client.getBlockNumber();
    const ids: string[] = [];
    for (let from = this.deployment.deploymentBlock; from <= head; from += 1000n) {
      const to = from + 999n < head ? from + 999n : head;
      const logs = await client.getLogs({ address: this.deployment.orderbook, fromBlock: from, toBlock: to });
      ids.push(...logs.map((l) => logEventId(this.deployment.chainId, l.transactionHash!, l.logIndex!)));
    }
    return ids;
  }

  /** Every JSON line the children logged, in spawn order. */
  async serviceLogs(): Promise<{ msg: string; level: number; component?: string; [key: string]: unknown }[]> {
    const { readFile } = await import('node:fs/promises');
    const lines: { msg: string; level: number }[] = [];
    for (let i = 1; i <= this.spawned; i++) {
      const text = await readFile(join(this.dir, `service-${i}.log`), 'utf8').catch(() => '');
      for (const line of text.split('\n')) if (line.startsWith('{')) lines.push(JSON.parse(line) as { msg: string; level: number });
    }
    return lines;
  }

  /**
   * Stops every child still running (SIGKILL), the simulator and anvil; removes the directory unless `keep`, else
   * prints where it is. Under vitest it is inside the run's temporary directory, which E2E_KEEP=1 keeps too
   * (test/support/run-temp-dir.ts).
   */
  async close(keep = false): Promise<void> {
    await Promise.allSettled([...this.running].map((s) => s.stop('SIGKILL')));
    await this.reader?.close().catch(() => undefined);
    await this.sim.stop().catch(() => undefined);
    await this.anvil.stop().catch(() => undefined);
    if (keep) console.info(`kept the e2e stack's directory ${this.dir}`);
    else rmSync(this.dir, { recursive: true, force: true });
  }
}

// ---- trades ----

/** A fill of `shares` (decimal text) of the symbol at its price, seen from `owner`'s order. */
export function fillOf(owner: Address, side: 'sell' | 'buy', token: DevTokenName, symbol: string, shares: D.Decimal): Fill {
  const usdc = D.mul(shares, D.parse(PRICES[symbol]!), 'floor');
  return { owner, side, equityToken: token, shares: shares.units, usdc: usdc.units / 10n ** 12n };
}

/** A random trade like the demo's: mostly takes of our order, some clears with us as bob, some other owners' takes. */
export async function randomTrade(trader: Trader, random: () => number): Promise<'ours' | 'other'> {
  const symbol = SYMBOLS[Math.floor(random() * SYMBOLS.length)]!;
  const tokens = EQUITY_TOKENS[symbol]!;
  const token = tokens[Math.floor(random() * tokens.length)]!;
  const shares = D.div(D.fromBigInt(BigInt(5 + Math.floor(random() * 145))), D.fromBigInt(100n)); // 0.05 to 1.49
  const side = random() < 0.5 ? 'sell' : 'buy';
  const roll = random();
  const ours = fillOf(OUR_OWNER, side, token, symbol, shares);
  if (roll < 0.7) await trader.take(ours);
  else if (roll < 0.9) await trader.clear({ alice: { ...ours, owner: TAKER, side: side === 'sell' ? 'buy' : 'sell' }, bob: ours });
  else {
    await trader.take({ ...ours, owner: TAKER });
    return 'other';
  }
  return 'ours';
}

