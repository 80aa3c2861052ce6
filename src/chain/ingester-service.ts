/**
 * The chain ingester as a service: RPC (chain id checked), log scanner, token resolver and the
 * ingestion path, stepped by a ChainFollower. `catchUp` goes to the confirmed head once (the
 * `ingest` command); `run` keeps following until its signal aborts (the `run` service).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { requireSettings, type ResolvedConfig } from '../config.ts';
import type { EventStore } from '../eventstore/port.ts';
import { StoreUnavailable } from '../eventstore/errors.ts';
import { logger, type Logger } from '../log.ts';
import { Ingester, LogConflict, StreamMovedOn } from '../services/ingester.ts';
import { ChainFollower, ChainUnsettled, isNothingYet, nothingYetText, type Confirmations, type FollowObserver, type NothingYet, type StepOutcome, type StepProgress } from './follower.ts';
import { tokensOfLog } from './log-tokens.ts';
import { LogScanner } from './log-scanner.ts';
import { NewHeads } from './new-heads.ts';
import { ChainRpc, isWebSocket } from './rpc.ts';
import { ChainTokenResolver } from './token-symbols.ts';

export interface IngesterSettings {
  readonly chainId: number;
  readonly orderbook: string;
  /** The first is preferred; the others are fallbacks. */
  readonly rpcUrls: readonly string[];
  readonly deploymentBlock: bigint;
  readonly confirmations: Confirmations;
  readonly pollIntervalMs: number;
  readonly concurrency: number;
  readonly maxBlockRange: number;
  readonly deadlineMs: number;
  /** Backoff jitter; seeded in tests. */
  readonly random?: () => number;
  /** Logs of the stream's tail kept indexed (default 5,000); small in tests. */
  readonly recentLogs?: number;
  /** The last blocks of each scan read one by one, by hash (default LAG_HORIZON in log-scanner.ts); small in tests. */
  readonly lagHorizon?: number;
}

export function ingesterSettings(config: ResolvedConfig, command: string): IngesterSettings {
  requireSettings(config, ['orderbook', 'rpcUrl'], command);
  return {
    chainId: config.chainId,
    orderbook: config.orderbook!,
    rpcUrls: [config.rpcUrl!, ...(config.rpcUrls ?? [])],
    deploymentBlock: BigInt(config.deploymentBlock),
    confirmations: config.confirmations,
    pollIntervalMs: config.chainPollIntervalMs,
    concurrency: config.rpcConcurrency,
    maxBlockRange: config.maxBlockRange,
    deadlineMs: config.rpcDeadlineMs,
  };
}

/** Where the service reports progress: the `run` service's Prometheus metrics fit. Block numbers fit a JS number. */
export interface IngestGauges {
  readonly logsIngested: { inc(value: number): void };
  readonly chainHead: { set(value: number): void };
  readonly ingestedBlock: { set(value: number): void };
  /** RPC attempts that failed and are retried, by the error's name. */
  readonly errors: { inc(labels: { component: string; kind: string }): void };
}

const observing = (gauges: IngestGauges): FollowObserver => ({
  head: (block) => gauges.chainHead.set(Number(block)),
  ingested: (block, appended) => {
    gauges.ingestedBlock.set(Number(block));
    if (appended > 0) gauges.logsIngested.inc(appended);
  },
});

/**
 * How often a step is tried again after meeting another ingester's work: a node lagging behind a
 * reorg the other saw can report a log the ledger removed (re-read the chain after a pause), and
 * an ingester far ahead leaves this one's index behind (follow the stream from its tail).
 */
const CONFLICT_RETRIES = 3;

export class IngesterService {
  private constructor(
    private readonly settings: IngesterSettings,
    private readonly rpc: ChainRpc,
    private readonly follower: ChainFollower,
    private readonly log: Logger,
  ) {}

  /** Connects (checking the chain id) and builds the ingester; `gauges` (chainHead is the confirmed head) follow its progress. */
  static async start(store: EventStore, settings: IngesterSettings, log: Logger = logger('ingester'), signal?: AbortSignal, gauges?: IngestGauges): Promise<IngesterService> {
    const rpc = await ChainRpc.connect({
      urls: settings.rpcUrls,
      chainId: settings.chainId,
      deadlineMs: settings.deadlineMs,
      log,
      ...(settings.random && { random: settings.random }),
      ...(signal && { signal }),
      ...(gauges && { onRetry: (error: unknown) => gauges.errors.inc({ component: 'rpc', kind: error instanceof Error ? error.name : 'Error' }) }),
    });
    const { chainId } = settings;
    const orderbook = settings.orderbook.toLowerCase();
    const scanner = new LogScanner(rpc, { chainId, orderbook, concurrency: settings.concurrency, maxBlockRange: settings.maxBlockRange, log, ...(settings.lagHorizon !== undefined && { lagHorizon: settings.lagHorizon }) });
    const ingester = new Ingester({ store, chainId, orderbook, tokens: new ChainTokenResolver(rpc, log), tokensOf: tokensOfLog, ...(settings.recentLogs && { recentLogs: settings.recentLogs }) });
    const follower = new ChainFollower({
      rpc, scanner, ingester, log,
      confirmations: settings.confirmations,
      deploymentBlock: settings.deploymentBlock,
      ...(gauges && { observer: observing(gauges) }),
    });
    log.info({ endpoints: rpc.label, chainId, orderbook, confirmations: settings.confirmations }, 'ingester connected');
    return new IngesterService(settings, rpc, follower, log);
  }

  /** Closes the endpoints' websockets, if any (HTTP needs nothing). */
  close(): void {
    this.rpc.close();
  }

  /** Up to the confirmed head as of now; null when the ledger was there already, or why there is nothing to ingest yet. */
  catchUp(onProgress?: (progress: StepProgress) => void): Promise<StepOutcome> {
    return this.step(undefined, onProgress);
  }

  /** Follows the chain until `signal` aborts (then resolves); throws, after logging, when ingestion cannot go on. */
  async run(signal: AbortSignal): Promise<void> {
    const heads = new NewHeads(this.rpc.urls.find(isWebSocket), this.log);
    let waiting: NothingYet['nothingYet'] | undefined;
    try {
      while (!signal.aborted) {
        waiting = this.logStep(await this.step(signal).catch((error: unknown) => this.unsettled(error)), waiting);
        await heads.next(this.settings.pollIntervalMs, signal);
      }
    } catch (error) {
      if (signal.aborted) return;
      // A store outage is the supervisor's to retry and log (warn); anything else ends ingestion.
      // The message only: a cause may carry the RPC URL.
      if (!(error instanceof StoreUnavailable)) this.log.error({ error: (error as Error).message }, 'ingestion stopped');
      throw error;
    } finally {
      heads.close();
    }
  }

  /** A chain that did not settle during a step is tried again at the next poll; anything else stops the service. */
  private unsettled(error: unknown): null {
    if (!(error instanceof ChainUnsettled)) throw error;
    this.log.warn({ error: error.message }, 'the chain keeps reorganising; trying again at the next poll');
    return null;
  }

  /** Logs what a step did; why there is nothing to ingest yet only when that changes, not at every poll. Returns the reason waited on. */
  private logStep(outcome: StepOutcome, waiting: NothingYet['nothingYet'] | undefined): NothingYet['nothingYet'] | undefined {
    if (!isNothingYet(outcome)) {
      if (outcome !== null) this.log.info({ ...outcome }, 'ingested');
      return undefined;
    }
    if (outcome.nothingYet !== waiting) this.log.info({ ...outcome }, nothingYetText(outcome));
    return outcome.nothingYet;
  }

  private async step(signal?: AbortSignal, onProgress?: (progress: StepProgress) => void): Promise<StepOutcome> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.follower.step(onProgress);
      } catch (error) {
        if (attempt > CONFLICT_RETRIES || !(error instanceof LogConflict || error instanceof StreamMovedOn)) throw error;
        if (error instanceof StreamMovedOn) {
          this.log.info({ error: error.message }, 'another ingester is ahead; following the stream from its tail');
          this.follower.restartFromStream();
          continue;
        }
        this.log.warn({ attempt, error: error.message }, 'log conflict; reading the chain again');
        await sleep(this.settings.pollIntervalMs, undefined, { signal });
      }
    }
  }
}
