/**
 * The HTTP API's read side: follows the store live (one catch-up subscription from the start),
 * folds every event into a `LedgerView`, and keeps the most recent trades and rejections in
 * bounded buffers. Only the tail is kept in memory; the full lists come from the CLI
 * (`trades --json`, `rejected --json`), which folds the whole log on demand.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { comparePositions, type EventStore, type Position, type RecordedEvent } from '../eventstore/port.ts';
import { StoreUnavailable } from '../eventstore/errors.ts';
import { LEDGER_PREFIXES } from '../domain/events.ts';
import { LedgerView } from '../../projections/ledger.ts';
import type { AccumulatorConfig } from '../../projections/accumulator.ts';
import type { Fill, Rejection } from '../../projections/fill.ts';
import { rejectionKey, tradeKey } from '../../projections/queries.ts';
import type { Logger } from '../log.ts';
import { LULL, withLulls } from './lulls.ts';

const DEFAULT_RETENTION = 10_000;
const DEFAULT_BACKOFF_MS = { min: 250, max: 10_000 } as const;
const COMPONENT = 'ledger-follower';
/** A subscription quiet this long has read all it could: after an outage, time to ask whether the fold is back at the head. */
const QUIET_MS = 100;

export interface LedgerFollowerOptions {
  readonly store: Pick<EventStore, 'subscribe' | 'headPosition'>;
  readonly config: AccumulatorConfig;
  readonly log: Logger;
  /** Most recent trades and rejections kept, each; default 10,000. */
  readonly retention?: number;
  /** Resubscription delays after a transient store error: doubling from min to max. */
  readonly backoffMs?: { readonly min: number; readonly max: number };
  /** Told about every transient error it retries (e.g. to count it in metrics). */
  readonly onRetry?: (error: StoreUnavailable) => void;
}

export type FollowerState = 'idle' | 'following' | 'retrying' | 'stopped' | 'failed';

export interface FollowerProgress {
  readonly state: FollowerState;
  /** Position of the last event folded; null before the first. */
  readonly position: Position | null;
  readonly eventsFolded: number;
  /** When the last event was folded (ISO-8601), null before the first. */
  readonly lastEventAt: string | null;
}

export interface FollowerStatus extends FollowerProgress {
  /** The store's head position; null when the store is empty. */
  readonly head: Position | null;
  /** Whether the fold has reached the head: the view answers for everything stored. */
  readonly caughtUp: boolean;
}

/** The follower stopped for a reason retrying cannot fix; `cause` holds the original error. */
export class FollowerFailed extends Error {
  override readonly name = 'FollowerFailed';
}

/** Whether a consumer at `position` has reached `head` (nothing stored counts as reached). */
export const reached = (position: Position | null, head: Position | null): boolean =>
  head === null || (position !== null && comparePositions(position, head) >= 0);

/** Insertion-ordered and bounded: adding past the limit drops the oldest entry. */
class Recent<K, V> {
  private readonly entries = new Map<K, V>();

  constructor(private readonly limit: number) {}

  add(key: K, value: V): void {
    this.entries.set(key, value);
    if (this.entries.size > this.limit) this.entries.delete(this.entries.keys().next().value as K);
  }

  remove(key: K): void {
    this.entries.delete(key);
  }

  /** The newest `limit` values that pass `keep`, oldest first. */
  tail(limit: number, keep: (value: V) => boolean): V[] {
    return [...this.entries.values()].filter(keep).slice(-limit);
  }
}

export class LedgerFollower {
  readonly view: LedgerView;
  readonly retention: number;
  /** Resolves once stopped by the signal; rejects with FollowerFailed on an unrecoverable error. */
  stopped: Promise<void> = Promise.resolve();
  private readonly recentTrades: Recent<string, Fill>;
  private readonly recentRejections: Recent<string, Rejection>;
  private state: FollowerState = 'idle';
  private position: Position | null = null;
  /** Epoch ms: a number, not a Date, to keep the per-event cost flat during a long catch-up. */
  private lastEventAt: number | null = null;
  private readonly backoffRange: { readonly min: number; readonly max: number };
  private backoff: number;
  /** When the current subscription was opened (ms): one that stayed up longer than the backoff's ceiling starts it over. */
  private subscribedAt = 0;

  constructor(private readonly options: LedgerFollowerOptions) {
    this.retention = options.retention ?? DEFAULT_RETENTION;
    this.recentTrades = new Recent(this.retention);
    this.recentRejections = new Recent(this.retention);
    this.backoffRange = options.backoffMs ?? DEFAULT_BACKOFF_MS;
    this.backoff = this.backoffRange.min;
    this.view = new LedgerView(options.config, {
      onFill: (f) => this.recentTrades.add(tradeKey(f), f),
      onReversal: (f) => this.recentTrades.remove(tradeKey(f)),
      onRejection: (r) => this.recentRejections.add(rejectionKey(r), r),
      onRejectionWithdrawn: (r) => this.recentRejections.remove(rejectionKey(r)),
    });
  }

  /** The newest trades (chain order, oldest first), optionally of one base symbol. */
  trades(limit: number = this.retention, symbol?: string): Fill[] {
    return this.recentTrades.tail(limit, (f) => symbol === undefined || f.symbol === symbol);
  }

  /**
   * The newest rejections (fold order, oldest first), optionally of one reason; the newest of all are the
   * ClearV2s that no AfterClear has followed yet at the ledger's end, which the fold rejects only once a
   * later log closes their transaction (as `rejected` lists them).
   */
  rejections(limit: number = this.retention, reason?: Rejection['reason']): Rejection[] {
    const wanted = (r: Rejection) => reason === undefined || r.reason === reason;
    const all = [...this.recentRejections.tail(limit, wanted), ...this.view.awaitingAfterClear().filter(wanted)];
    return all.slice(Math.max(0, all.length - limit));
  }

  progress(): FollowerProgress {
    return { state: this.state, position: this.position, eventsFolded: this.view.events, lastEventAt: this.lastEventAt === null ? null : new Date(this.lastEventAt).toISOString() };
  }

  /** Progress and whether it has reached the store's head; throws when the store cannot be read. */
  async status(): Promise<FollowerStatus> {
    const head = (await this.options.store.headPosition({ prefixes: LEDGER_PREFIXES })) ?? null;
    const progress = this.progress();
    return { ...progress, head, caughtUp: reached(progress.position, head) };
  }

  /** Starts following until `signal` aborts; see `stopped`. */
  start(signal: AbortSignal): void {
    if (this.state !== 'idle') throw new Error(`${COMPONENT} already started`);
    this.state = 'following';
    this.options.log.info({ retention: this.retention }, 'following the ledger');
    this.stopped = this.run(signal).then(
      () => void (this.state = 'stopped'),
      (error: unknown) => {
        this.state = 'failed';
        throw error;
      },
    );
  }

  private async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.follow(signal);
      } catch (error) {
        if (!(error instanceof StoreUnavailable)) throw new FollowerFailed(`${COMPONENT} stopped: ${(error as Error).message}`, { cause: error });
        await this.retryLater(error, signal);
      }
    }
  }

  private async follow(signal: AbortSignal): Promise<void> {
    let dropped: StoreUnavailable | undefined;
    this.subscribedAt = Date.now();
    const subscription = this.options.store.subscribe({
      from: this.position ?? 'start',
      prefixes: LEDGER_PREFIXES,
      // Resubscribing by itself (EventStoreDB), it would hide the outage: end it and retry here, seen like any other.
      onResubscribe: (reason) => void ((dropped = reason), subscription.close()),
    });
    const close = (): void => void subscription.close();
    signal.addEventListener('abort', close, { once: true });
    try {
      for await (const recorded of withLulls(subscription, QUIET_MS)) {
        if (recorded === LULL) {
          await this.confirmRecovery();
        } else {
          this.fold(recorded);
        }
      }
    } finally {
      signal.removeEventListener('abort', close);
      await subscription.close();
    }
    if (!signal.aborted) throw dropped ?? new Error('the subscription ended by itself');
  }

  private fold(recorded: RecordedEvent): void {
    const corrupt = this.view.applyStored(recorded);
    if (corrupt) this.options.log.warn({ err: corrupt, stream: recorded.stream, revision: recorded.revision.toString() }, 'corrupt event counted as rejected');
    this.position = recorded.position;
    this.lastEventAt = Date.now();
    this.following();
  }

  /**
   * After an outage a quiet store delivers no event to show it is back: the fold having reached
   * its head does. A store still away throws here, and is retried like a failed subscription.
   * The backoff stays: a subscription still connecting is quiet too, and may yet fail.
   */
  private async confirmRecovery(): Promise<void> {
    if (this.state === 'retrying' && (await this.status()).caughtUp) this.state = 'following';
  }

  private following(): void {
    this.state = 'following';
    this.backoff = this.backoffRange.min;
  }

  private async retryLater(error: StoreUnavailable, signal: AbortSignal): Promise<void> {
    this.state = 'retrying';
    if (Date.now() - this.subscribedAt > this.backoffRange.max) this.backoff = this.backoffRange.min;
    this.options.onRetry?.(error);
    this.options.log.warn({ err: error, retryInMs: this.backoff, position: this.position }, 'store unavailable; resubscribing');
    await sleep(this.backoff, undefined, { signal }).catch(() => undefined);
    this.backoff = Math.min(this.backoff * 2, this.backoffRange.max);
  }
}
