/**
 * The executor against the Schwab simulator over real HTTP: a simulator, an encrypted token
 * file holding a fresh login, the Schwab adapter with short timeouts, and a store. Commands
 * are appended to `hedgecmd-<SYMBOL>` as the accumulator would write them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testLog } from './test-log.ts';
import { ROOT } from './cli.ts';
import { until } from './until.ts';
import * as D from '../../src/domain/decimal.ts';
import { encodeEvent, streams, type Envelope } from '../../src/domain/events.ts';
import { decodedEvents } from './store-fixtures.ts';
import { hedgeDecisionId } from '../../src/domain/ids.ts';
import { NO_STREAM, type EventStore } from '../../src/eventstore/port.ts';
import { openStore } from '../../src/eventstore/url.ts';
import { startSchwabSim, type SchwabSim, type SchwabSimOptions, type TokenResponse } from '../../src/broker/schwab-sim/index.ts';
import { REFRESH_TOKEN_LIFETIME_MS, createSchwabBroker, EncryptedTokenFile, type SchwabBroker, type SchwabSettings, type StoredTokens } from '../../src/broker/schwab/index.ts';
import { ExecutorService, type ExecutorOptions } from '../../src/services/executor.ts';
import type { Side } from '../../src/domain/codecs.ts';

export const APP = { appKey: 'test-key', appSecret: 'test-secret', callbackUrl: 'https://127.0.0.1' } as const;


/** Tokens as `auth login` stores them, from a login made through the simulator's control API. */
export function storedTokens(login: TokenResponse, now: Date): StoredTokens {
  return {
    accessToken: login.access_token,
    accessExpiresAt: new Date(now.getTime() + login.expires_in * 1000).toISOString(),
    refreshToken: login.refresh_token,
    refreshExpiresAt: new Date(now.getTime() + REFRESH_TOKEN_LIFETIME_MS).toISOString(),
  };
}

/**
 * Appends the HedgeRequested the accumulator derives for a symbol's n-th decision (the same
 * command, with the same id, whenever it is derived again); returns its command id.
 */
export async function appendCommand(store: EventStore, symbol: string, sequence: number, side: Side, quantity: bigint): Promise<string> {
  const commandId = hedgeDecisionId(symbol, sequence);
  const data = { commandId, sequence, symbol, brokerSymbol: symbol, side, quantity: D.fromBigInt(quantity), referencePrice: null, causationId: commandId };
  await store.append(streams.hedgeCommands(symbol), [encodeEvent(commandId, { type: 'HedgeRequested', data })], sequence === 1 ? NO_STREAM : BigInt(sequence - 2));
  return commandId;
}

export interface HarnessOptions {
  readonly sim?: SchwabSimOptions;
  /** In memory (default), or a file other processes can open too. */
  readonly store?: 'memory' | 'file';
  /** The adapter's and the executor's clock: the simulator's (default) or the wall's. */
  readonly clock?: 'sim' | 'wall';
  readonly requestTimeoutMs?: number;
  /** Default 60000, as in production. */
  readonly reconcileSkewMs?: number;
  /** How far the adapter's and the executor's clock runs ahead of the simulator's (negative: behind); default 0. */
  readonly clockAheadOfSchwabMs?: number;
}

export class Harness {
  readonly dir: string;
  readonly tokens: EncryptedTokenFile;
  readonly key = randomBytes(32);
  private sequences = new Map<string, number>();

  private constructor(readonly sim: SchwabSim, readonly store: EventStore, readonly storeUrl: string, dir: string, private readonly options: HarnessOptions) {
    this.dir = dir;
    this.tokens = new EncryptedTokenFile(join(dir, 'tokens.json'), this.key);
  }

  static async start(options: HarnessOptions = {}): Promise<Harness> {
    const dir = mkdtempSync(join(tmpdir(), 'executor-'));
    const storeUrl = options.store === 'file' ? `sqlite:${join(dir, 'ledger.db')}` : 'sqlite::memory:';
    const sim = await startSchwabSim({ ...APP, ...options.sim });
    const harness = new Harness(sim, await openStore(storeUrl), storeUrl, dir, options);
    await harness.login();
    return harness;
  }

  readonly now = (): Date => new Date((this.options.clock === 'wall' ? Date.now() : this.sim.clock.now().getTime()) + (this.options.clockAheadOfSchwabMs ?? 0));

  /** A fresh login written to the token file, as `auth login` would. */
  async login(): Promise<StoredTokens> {
    const tokens = storedTokens(this.sim.control.issueTokens(), this.now());
    await this.tokens.save(tokens);
    return tokens;
  }

  settings(): SchwabSettings {
    return { app: { ...APP, baseUrl: this.sim.baseUrl }, tokens: this.tokens, requestTimeoutMs: this.options.requestTimeoutMs ?? 500, reconcileSkewMs: this.options.reconcileSkewMs ?? 60_000 };
  }

  broker(): SchwabBroker {
    return createSchwabBroker(this.settings(), { now: this.now, log: testLog('broker') });
  }

  executor(options: Partial<ExecutorOptions> = {}): ExecutorService {
    return new ExecutorService({ store: this.store, broker: this.broker(), log: testLog('executor'), now: this.now, pollIntervalMs: 10, backoffMs: { min: 5, max: 40 }, operatorRetryMs: 20, placementSettleMs: 30, ...options });
  }

  /** The environment of a `hedge-ledger` child hedging the example ledger (docs/example) in this harness's store at its simulator. */
  cliEnv(): Record<string, string> {
    return {
      LEDGER_CONFIG: join(ROOT, 'docs/example/ledger.json'),
      LEDGER_STORE: this.storeUrl,
      LEDGER_LOG_LEVEL: 'warn',
      LEDGER_POLL_INTERVAL_MS: '50',
      SCHWAB_BASE_URL: this.sim.baseUrl,
      SCHWAB_APP_KEY: APP.appKey,
      SCHWAB_APP_SECRET: APP.appSecret,
      SCHWAB_TOKEN_FILE: this.tokens.path,
      TOKEN_ENCRYPTION_KEY: this.key.toString('base64'),
    };
  }

  /** Appends the symbol's next HedgeRequested, as the accumulator would; returns its command id. */
  request(symbol: string, side: Side, quantity: bigint): Promise<string> {
    const sequence = (this.sequences.get(symbol) ?? 0) + 1;
    this.sequences.set(symbol, sequence);
    return appendCommand(this.store, symbol, sequence, side, quantity);
  }

  /** The command's order stream, decoded. */
  async orderEvents(commandId: string): Promise<Envelope[]> {
    try {
      return await decodedEvents(this.store.readStream(streams.hedgeOrder(commandId)));
    } catch (e) {
      if ((e as Error).name !== 'StreamNotFound') throw e;
      return [];
    }
  }

  async outcome(commandId: string): Promise<Envelope | undefined> {
    return (await this.orderEvents(commandId)).find((e) => e.type === 'HedgeOrderFilled' || e.type === 'HedgeOrderFailed');
  }

  /** Waits (polling) until `check` holds. */
  async until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
    await until(check, what, timeoutMs, 5);
  }

  requests(endpoint: string): number {
    return this.sim.control.counters().requests[endpoint] ?? 0;
  }

  ordersPlaced(): number {
    return this.sim.control.counters().ordersPlaced;
  }

  async close(): Promise<void> {
    await this.store.close();
    await this.sim.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
