/**
 * Prometheus metrics on a registry of our own (never prom-client's global one). Services
 * update the typed `Metrics` they are handed; the ledger's gauges are read from the
 * follower's view at scrape time (`exposeLedger`). Block numbers fit a JS number; no money
 * goes into metrics.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type GaugeConfiguration } from 'prom-client';
import type { LedgerFollower } from '../services/ledger-follower.ts';
import { HedgeStatus } from './query.ts';

const PREFIX = 'hedge_ledger_';

export interface Metrics {
  readonly registry: Registry;
  /** Orderbook logs appended by the ingester: `logsIngested.inc(n)`. */
  readonly logsIngested: Counter;
  /** The confirmed head the ingester works towards: `chainHead.set(Number(block))`; absent until set. */
  readonly chainHead: BlockGauge;
  /** The newest block whose logs are ingested; absent until set. */
  readonly ingestedBlock: BlockGauge;
  /** Broker request latency: `brokerLatency.observe({ operation: 'place' }, seconds)` or `startTimer({ operation })`. */
  readonly brokerLatency: Histogram<'operation'>;
  /** Errors, transient or not: `errors.inc({ component: 'ingester', kind: 'StoreUnavailable' })`. */
  readonly errors: Counter<'component' | 'kind'>;
}

/** A block number a service sets; undefined until it does. */
export interface BlockGauge {
  readonly value: number | undefined;
  set(block: number): void;
}

/** A gauge a service sets, absent from the scrape until it does: a 0 would read as block 0, and as no lag. */
function blockGauge(name: string, help: string, registers: Registry[]): BlockGauge {
  const gauge: { value: number | undefined; set(block: number): void } = { value: undefined, set: (block) => void (gauge.value = block) };
  new ReadGauge({ name, help, registers, read: () => gauge.value });
  return gauge;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    logsIngested: new Counter({ name: `${PREFIX}logs_ingested_total`, help: 'Orderbook logs appended to the store by the ingester', registers }),
    chainHead: blockGauge(`${PREFIX}chain_head_block`, 'Confirmed chain head the ingester works towards (latest minus confirmations, or safe/finalized)', registers),
    ingestedBlock: blockGauge(`${PREFIX}ingested_block`, 'Newest block number whose logs are ingested', registers),
    brokerLatency: new Histogram({
      name: `${PREFIX}broker_latency_seconds`,
      help: 'Latency of broker requests by operation',
      labelNames: ['operation'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    errors: new Counter({ name: `${PREFIX}errors_total`, help: 'Errors by component and kind (retried or fatal)', labelNames: ['component', 'kind'], registers }),
  };
}

/** What the ledger gauges read from the follower. */
export type LedgerSource = Pick<LedgerFollower, 'view' | 'status' | 'progress'>;

/** A label-less gauge whose value is read at scrape time; `read` answers undefined while the value is unknown. */
interface Reading {
  readonly name: string;
  readonly help: string;
  read(): number | undefined | Promise<number | undefined>;
}

/**
 * A `Reading` as a gauge, absent from the scrape while unknown. prom-client prints a label-less
 * gauge as 0 before its first set and after reset(), and 0 says "caught up" on a lag gauge.
 */
class ReadGauge extends Gauge {
  readonly #read: Reading['read'];

  constructor({ read, ...config }: Reading & { readonly registers: Registry[] }) {
    super(config);
    this.#read = read;
  }

  override async get(): ReturnType<Gauge['get']> {
    const value = await this.#read();
    if (value !== undefined) this.set(value);
    const metric = await super.get();
    return value === undefined ? { ...metric, values: [] } : metric;
  }
}

/** 1 while behind, 0 once caught up, unknown while the store cannot tell. */
const lag = (behind: () => Promise<boolean>): Promise<number | undefined> => behind().then((b) => (b ? 1 : 0), () => undefined);

function hedgeCounts(follower: LedgerSource): Map<string, number> {
  const counts = new Map(Object.keys(HedgeStatus.keys).map((s) => [s, 0]));
  for (const hedge of follower.view.hedges.values()) counts.set(hedge.status, (counts.get(hedge.status) ?? 0) + 1);
  return counts;
}

/**
 * The hedge counts, left out of the scrape until the fold has reached the store's head once. While
 * a new process folds the log again they would climb from 0 to the counts the previous process
 * exported, and Prometheus takes a drop in a series for a reset: `increase(…{status="failed"}[1h])`
 * would count every failed hedge of the ledger again after each restart scraped while catching up.
 * Once caught up, the fold only moves forward, and so does each terminal status's count.
 */
function hedgesGauge(follower: LedgerSource): GaugeConfiguration<string> {
  let reachedHead = false;
  return {
    name: `${PREFIX}hedges`,
    help: "Hedge commands by status (absent until the API's fold has reached the store's head)",
    labelNames: ['status'],
    async collect() {
      this.reset();
      reachedHead ||= await follower.status().then(({ caughtUp }) => caughtUp, () => false);
      if (reachedHead) hedgeCounts(follower).forEach((n, status) => this.set({ status }, n));
    },
  };
}

const ledgerGauges = (follower: LedgerSource): GaugeConfiguration<string>[] => [
  hedgesGauge(follower),
  {
    name: `${PREFIX}fold_events`,
    help: "Events folded by the API's ledger fold: its position, counted in events",
    collect() {
      this.set(follower.progress().eventsFolded);
    },
  },
];

const ledgerReadings = (follower: LedgerSource): Reading[] => [
  {
    name: `${PREFIX}fold_behind_head`,
    help: "1 while the API's ledger fold has not reached the store's head position, else 0 (absent when the store is unreachable)",
    read: () => lag(async () => !(await follower.status()).caughtUp),
  },
  {
    name: `${PREFIX}fold_last_event_timestamp_seconds`,
    help: "When the API's ledger fold last folded an event, in Unix seconds (absent before the first)",
    read() {
      const at = follower.progress().lastEventAt;
      return at === null ? undefined : Date.parse(at) / 1000;
    },
  },
];

/** Registers the gauges computed from the follower at scrape time; returns what unregisters them. */
export function exposeLedger(metrics: Metrics, follower: LedgerSource): () => void {
  const registers = [metrics.registry];
  const gauges = ledgerGauges(follower);
  const readings = ledgerReadings(follower);
  gauges.forEach((config) => new Gauge({ ...config, registers }));
  readings.forEach((reading) => new ReadGauge({ ...reading, registers }));
  return () => [...gauges, ...readings].forEach(({ name }) => metrics.registry.removeSingleMetric(name));
}

/** Registers the accumulator role's lag (its own fold, not the API's), read at scrape time from `behind`; returns what unregisters it. */
export function exposeAccumulator(metrics: Metrics, behind: () => Promise<boolean>): () => void {
  const name = `${PREFIX}accumulator_behind_head`;
  new ReadGauge({
    name,
    help: "1 while the accumulator has not folded up to the store's newest ledger event, else 0 (absent when the store is unreachable)",
    registers: [metrics.registry],
    read: () => lag(behind),
  });
  return () => metrics.registry.removeSingleMetric(name);
}
