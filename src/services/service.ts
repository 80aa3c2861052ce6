/**
 * `hedge-ledger run`: the roles of one process — ingest (chain → orderbook stream), accumulate
 * (fold → hedge commands), execute (commands → broker orders) and api (read-only HTTP) — each
 * supervised: transient errors retry with backoff, anything else stops the whole process with
 * a clear error. Several processes can share one EventStoreDB, one writer per role.
 */
import { comparePositions, type EventStore, type From } from '../eventstore/port.ts';
import type { ResolvedConfig } from '../config.ts';
import type { Broker } from '../broker/port.ts';
import type { AccumulatorConfig } from '../../projections/accumulator.ts';
import { logger } from '../log.ts';
import { LEDGER_PREFIXES } from '../domain/events.ts';
import { createMetrics, exposeAccumulator, type Metrics } from '../http/metrics.ts';
import { Roles, lagWithin } from '../http/health.ts';
import { startHttpApi } from '../http/server.ts';
import { LedgerFollower } from './ledger-follower.ts';
import { ACCUMULATOR_CHECKPOINT, AccumulatorService } from './accumulator.ts';
import { ExecutorService, executorTuning } from './executor.ts';
import { unlocked, type ExecutorLock } from './executor-lock.ts';
import { instrumented } from '../broker/instrumented.ts';
import { IngesterService, type IngesterSettings } from '../chain/ingester-service.ts';
import { allStopped, supervise, type RoleProgress, type RunningRole, type SuperviseOptions } from './supervisor.ts';
import { hostPort } from '../host-port.ts';

const ROLES = ['ingest', 'accumulate', 'execute', 'api'] as const;
export type Role = (typeof ROLES)[number];

export interface ServiceOptions {
  readonly store: EventStore;
  readonly config: ResolvedConfig;
  readonly fold: AccumulatorConfig;
  /** With the ingest role: `ingesterSettings(config, …)`, resolved by the caller so a missing setting stops it before anything starts. */
  readonly ingest?: IngesterSettings | undefined;
  /** With the execute role: the broker it hedges at (the others need none, nor its secrets). */
  readonly broker?: Broker | undefined;
  /**
   * With the execute role: takes the store's executor lock (`lockExecutor`), waiting until `signal` aborts at most, and
   * calling `onWait` when it waits for a live holder; none when omitted.
   */
  readonly lockExecutor?: ((signal: AbortSignal, onWait: (waiting: string) => void) => Promise<ExecutorLock>) | undefined;
  readonly roles: ReadonlySet<Role>;
  readonly signal: AbortSignal;
  /** Called once the HTTP API listens (tests and the demo read the port from it). */
  readonly onListening?: (url: string) => void;
  readonly metrics?: Metrics;
}

/** node's `listen EADDRINUSE: address already in use 127.0.0.1:8080`, with the setting that changes it. */
function listenFailure(error: unknown, config: ResolvedConfig): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  const port = 'set another port (env LEDGER_HTTP_PORT or config file key "httpPort"; 0 picks a free one)';
  const why =
    code === 'EADDRINUSE' ? `the port is in use (EADDRINUSE): stop what holds it, or ${port}` :
    code === 'EACCES' ? `permission denied (EACCES; ports below 1024 need privileges): ${port}` :
    code === 'EADDRNOTAVAIL' ? 'no interface of this host has that address (EADDRNOTAVAIL): check env LEDGER_HTTP_HOST or config file key "httpHost"' :
    undefined;
  return why === undefined ? error : new Error(`the HTTP API cannot listen on ${hostPort(config.httpHost, config.httpPort)}: ${why}`, { cause: error });
}

/** Runs until the signal aborts (resolves) or a role fails for good (rejects, after stopping the others). */
export async function runService(options: ServiceOptions): Promise<void> {
  const { store, config, roles, signal } = options;
  const ingest = roles.has('ingest') ? given(options.ingest, 'ingest') : undefined;
  const broker = roles.has('execute') ? given(options.broker, 'execute') : undefined;
  // Stopped before it started (a SIGTERM while `run` opened the store): an abort listener added now would never fire.
  if (signal.aborted) return;
  const log = logger('service');
  const metrics = options.metrics ?? createMetrics();
  const health = new Roles();
  const stopAll = new AbortController();
  signal.addEventListener('abort', () => stopAll.abort(), { once: true });
  /** Every role started, and the API's fold as `api`. */
  const running: RunningRole[] = [];
  const unexpose: (() => void)[] = [];
  const start: StartRole = (name, run, extra = {}) => {
    const role = supervise({ name, log: logger(name), metrics, run, ...extra }, stopAll.signal);
    health.register(name, role.health);
    running.push({ name, done: role.done });
  };
  const follower = roles.has('api') ? new LedgerFollower({ store, config: options.fold, log: logger('api'), retention: config.httpRetention, onRetry: (e) => metrics.errors.inc({ component: 'api', kind: e.name }) }) : undefined;
  // The API listens before any role starts: a busy port then fails the service with nothing to stop.
  const api = follower && (await startHttpApi({ host: config.httpHost, port: config.httpPort, follower, store, metrics, roles: health, checkpoints: [ACCUMULATOR_CHECKPOINT], log: logger('http') })
    .catch((error: unknown) => { throw listenFailure(error, config); }));

  if (ingest) startIngest(start, store, ingest, config, metrics);
  if (roles.has('accumulate')) unexpose.push(startAccumulate(start, store, options.fold, metrics));
  const executorLock = broker && startExecute(start, health, { store, config, broker, metrics, lockExecutor: options.lockExecutor }, stopAll.signal);
  if (follower) {
    follower.start(stopAll.signal);
    running.push({ name: 'api', done: follower.stopped });
    if (ingest) health.register('ingest-lag', lagWithin(config.maxIngestLagBlocks, () => ingestLag(metrics)));
  }
  log.info({ url: api?.url, roles: [...roles] }, 'service running');
  if (api) options.onListening?.(api.url);

  try {
    // Roles end only when stopped (the signal) or when one fails for good, which stops the rest.
    await Promise.race(running.map((r) => r.done));
  } catch (error) {
    log.fatal({ err: error }, 'a role failed; stopping the service');
    throw error;
  } finally {
    stopAll.abort();
    await allStopped(running, config.shutdownTimeoutMs / 2, log);
    // Only once the executor has stopped: no order may be placed after another process could take the store.
    await (await executorLock?.catch(() => undefined))?.release();
    await api?.close();
    unexpose.forEach((remove) => remove());
    log.info('service stopped');
  }
}

/** Starts a role under the supervisor, its health registered and its end awaited by runService. */
type StartRole = (name: Role, run: (signal: AbortSignal) => Promise<void>, extra?: Partial<SuperviseOptions>) => void;

/**
 * A new ingester per attempt: its RPC retries follow the attempt's signal, which the watchdog
 * aborts, and its view of the stream's tail is re-read after a store outage.
 */
function startIngest(start: StartRole, store: EventStore, settings: IngesterSettings, config: ResolvedConfig, metrics: Metrics): void {
  start('ingest', async (s) => {
    const ingester = await IngesterService.start(store, settings, logger('ingester'), s, metrics);
    try {
      await ingester.run(s);
    } finally {
      ingester.close();
    }
  }, { progress: async () => ingestProgress(metrics), stallMs: config.ingestStallMs });
}

/** The accumulator, resumed from its checkpoint at every attempt; returns what removes its metric. */
function startAccumulate(start: StartRole, store: EventStore, fold: AccumulatorConfig, metrics: Metrics): () => void {
  let accumulator: AccumulatorService | undefined;
  const progress = () => foldProgress(store, accumulator?.current.position ?? 'start');
  start('accumulate', async (s) => {
    accumulator = new AccumulatorService({ store, config: fold, log: logger('accumulator') });
    await accumulator.restore();
    await accumulator.follow(s);
  }, { progress, stallMs: 60_000 });
  return exposeAccumulator(metrics, async () => (await progress()).behind);
}

interface ExecuteRole {
  readonly store: EventStore;
  readonly config: ResolvedConfig;
  readonly broker: Broker;
  readonly metrics: Metrics;
  readonly lockExecutor: ServiceOptions['lockExecutor'];
}

/**
 * The executor, behind the store's executor lock; returns the lock, which runService releases once
 * every role has stopped. The broker's health is registered beside the role's.
 */
function startExecute(start: StartRole, health: Roles, { store, config, broker, metrics, lockExecutor }: ExecuteRole, stopAll: AbortSignal): Promise<ExecutorLock> {
  const measured = instrumented(broker, metrics);
  // The executor keeps running while the broker needs a login (orders already placed keep
  // working), but is not ready; the problem outlives a restart of the role.
  let operatorProblem: string | undefined;
  const onOperatorProblem = (problem: string | undefined) => void (operatorProblem = problem);
  // Taken once for the process, not per attempt: a restart after a store blip keeps the lock instead of waiting for itself.
  // The other roles run meanwhile (only placing is exclusive), but the execute role is not ready while it waits:
  // it may never start (the holder keeps renewing), and then this process exits 1.
  let waiting: string | undefined;
  const lock = (lockExecutor ?? unlocked)(stopAll, (w) => (waiting = w));
  // Its workers retry a failing step forever (a full disk may clear): not ready while some keep failing.
  let executor: ExecutorService | undefined;
  start('execute', async (s) => {
    const { lost } = await lock;
    waiting = undefined;
    executor = new ExecutorService({ store, broker: measured, log: logger('executor'), onOperatorProblem, ...executorTuning(config) });
    await executor.follow(AbortSignal.any([s, lost]));
    lost.throwIfAborted(); // another executor took the store over: fail-stop, not a quiet restart
  }, { impeded: () => waiting ?? executor?.failing() });
  health.register('broker', () => (operatorProblem === undefined ? { alive: true } : { alive: false, detail: `needs an operator: ${operatorProblem}` }));
  return lock;
}

/** A role's settings, which the caller resolves before calling runService. */
function given<T>(settings: T | undefined, role: Role): T {
  if (settings === undefined) throw new TypeError(`runService: the ${role} role needs its settings`);
  return settings;
}

/** The watchdog's view of the accumulator: its position, and whether the store holds events past it. */
async function foldProgress(store: EventStore, position: From): Promise<RoleProgress> {
  const head = await store.headPosition({ prefixes: LEDGER_PREFIXES });
  return { marker: position, behind: head !== undefined && (position === 'start' || comparePositions(position, head) < 0) };
}

/** Blocks from the last ingested one to the confirmed head, as the ingester last reported them; undefined before its first step. */
const ingestLag = ({ chainHead: head, ingestedBlock: ingested }: Metrics): number | undefined =>
  head.value === undefined || ingested.value === undefined ? undefined : Math.max(0, head.value - ingested.value);

/** The watchdog's view of the ingester: the block it reached, and whether the chain head is past it. */
const ingestProgress = (metrics: Metrics): RoleProgress => ({ marker: String(metrics.ingestedBlock.value), behind: (ingestLag(metrics) ?? 0) > 0 });

export function parseRoles(text: string | undefined): Set<Role> {
  if (text === undefined) return new Set(ROLES);
  const names = text.split(',').map((r) => r.trim()).filter(Boolean);
  const unknown = names.filter((n) => !(ROLES as readonly string[]).includes(n));
  if (unknown.length > 0 || names.length === 0) throw new RangeError(`--roles takes a comma-separated subset of ${ROLES.join(',')} (got ${JSON.stringify(text)})`);
  return new Set(names as Role[]);
}
