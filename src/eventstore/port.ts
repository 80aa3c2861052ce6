/**
 * The event store port: the only thing services know about storage.
 * Semantics follow EventStoreDB (see shared spec eventstore.md); every adapter passes
 * the same contract suite in test/contract.
 */
import type { StoreUnavailable } from './errors.ts';

/**
 * A global position in the store's total order. Opaque: compare with `comparePositions`,
 * never do arithmetic. Adapters encode it as a fixed-width decimal string so plain string
 * comparison is the store's order (SQLite: 20 digits; EventStoreDB: commit/prepare, 20 digits each).
 */
export type Position = string & { readonly __position: unique symbol };

export const asPosition = (encoded: string): Position => encoded as Position;
export const comparePositions = (a: Position, b: Position): -1 | 0 | 1 => (a < b ? -1 : a > b ? 1 : 0);

/** Where a read or subscription starts; the position itself is excluded. */
export type From = 'start' | Position;

/** JSON that survives a round trip through any store. */
export type Json = null | boolean | string | number | Json[] | { [key: string]: Json };

export interface NewEvent {
  readonly id: string; // UUID, deterministic where the architecture asks for it
  readonly type: string;
  readonly data: Json;
  readonly metadata?: Json;
}

export interface RecordedEvent {
  readonly stream: string;
  readonly type: string;
  readonly id: string;
  readonly revision: bigint;
  readonly position: Position;
  readonly data: Json;
  readonly metadata: Json;
}

export const NO_STREAM = 'no_stream' as const;
export const ANY = 'any' as const;
/** NO_STREAM, ANY, or the exact revision of the stream's last event. */
export type ExpectedRevision = typeof NO_STREAM | typeof ANY | bigint;

export interface AppendResult {
  /** Revision of the stream's last event after the append. */
  readonly nextRevision: bigint;
  /** False when the append was an idempotent repeat that wrote nothing. */
  readonly written: boolean;
}

export interface ReadAllOptions {
  readonly from?: From;
  /** Stream-name prefixes, e.g. `['orderbook-', 'hedgecmd-']`. Empty or absent: all of our streams. */
  readonly prefixes?: readonly string[];
  readonly maxCount?: number;
}

export interface ReadStreamOptions {
  readonly fromRevision?: bigint;
  readonly maxCount?: number;
}

export interface SubscribeOptions {
  readonly from: From;
  /** Stream-name prefixes, as for `readAll`. */
  readonly prefixes?: readonly string[];
  /**
   * Told each time the subscription lost the store and will subscribe again by itself after
   * `delayMs` (EventStoreDB), which the consumer would not notice otherwise; closing the
   * subscription here ends the iteration instead. A SQLite subscription never resubscribes: its
   * iteration ends with the error.
   */
  readonly onResubscribe?: (reason: StoreUnavailable, delayMs: number) => void;
}

/** A catch-up subscription: history, then live, one event at a time (pull with `for await`). */
export interface Subscription extends AsyncIterable<RecordedEvent> {
  close(): Promise<void>;
}

export interface EventStore {
  /** Atomic; consecutive revisions. Same ids at the same exact expected revision: success, nothing written. */
  append(stream: string, events: readonly NewEvent[], expected: ExpectedRevision): Promise<AppendResult>;
  /** Throws StreamNotFound while iterating when the stream does not exist. */
  readStream(stream: string, options?: ReadStreamOptions): AsyncIterable<RecordedEvent>;
  /** The last event of a stream, or undefined when it does not exist. */
  readLastEvent(stream: string): Promise<RecordedEvent | undefined>;
  readAll(options?: ReadAllOptions): AsyncIterable<RecordedEvent>;
  subscribe(options: SubscribeOptions): Subscription;
  /**
   * Position of the last event in the global order of the streams `prefixes` name (empty or absent:
   * any stream of ours), or undefined when there is none. A consumer compares its position with the
   * head of what it reads: another application's streams in the same database are not its to reach.
   */
  headPosition(options?: Pick<ReadAllOptions, 'prefixes'>): Promise<Position | undefined>;
  /** Roughly how many events the store holds, for progress bars; absent where counting is not cheap. */
  estimateEventCount?(): Promise<number | undefined>;
  readCheckpoint(name: string): Promise<Checkpoint | undefined>;
  /** Durable once the promise resolves. */
  saveCheckpoint(name: string, checkpoint: Checkpoint): Promise<void>;
  close(): Promise<void>;
}

/** A named consumer's progress, with an optional snapshot of its fold state (opaque JSON text). */
export interface Checkpoint {
  readonly position: Position;
  readonly snapshot?: string;
}
