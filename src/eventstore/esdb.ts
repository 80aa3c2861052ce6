/**
 * The event store port on EventStoreDB / KurrentDB, through `@eventstore/db-client` 6.x.
 * Semantics: shared spec eventstore.md. Operating it: docs/eventstoredb.md.
 */
import { backoffDelay } from '../backoff.ts';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AccessDeniedError,
  ANY as ESDB_ANY,
  BACKWARDS,
  CancelledError,
  convertToCommandError,
  DeadlineExceededError,
  END,
  EventStoreDBClient,
  InvalidArgumentError,
  jsonEvent,
  MaxAppendSizeExceededError,
  NO_STREAM as ESDB_NO_STREAM,
  NotLeaderError,
  START,
  StreamDeletedError,
  StreamNotFoundError,
  streamNameFilter,
  TimeoutError,
  UnavailableError,
  UnknownError,
  WrongExpectedVersionError,
  type AllStreamResolvedEvent,
  type AllStreamSubscription,
  type AppendExpectedRevision,
  type CurrentRevision,
  type EventData,
  type Filter,
  type JSONType,
  type ReadPosition,
  type ReadStreamOptions as EsdbReadStreamOptions,
  type RecordedEvent as EsdbRecordedEvent,
  type StreamingRead,
} from '@eventstore/db-client';
import * as t from 'io-ts';
import { isLeft } from 'fp-ts/lib/Either.js';
import { describeErrors } from '../domain/codecs.ts';
import { decodePosition, encodePosition, isEncodedPosition, type LogPosition } from './esdb-position.ts';
import { CorruptEvent, isStoreError, StoreConfigError, StoreUnavailable, StreamNotFound, WrongExpectedVersion } from './errors.ts';
import {
  ANY,
  asPosition,
  comparePositions,
  NO_STREAM,
  type AppendResult,
  type Checkpoint,
  type EventStore,
  type ExpectedRevision,
  type From,
  type Json,
  type NewEvent,
  type Position,
  type ReadAllOptions,
  type ReadStreamOptions,
  type RecordedEvent,
  type SubscribeOptions,
  type Subscription,
} from './port.ts';

/** Checkpoints live in streams of ours, outside every read of the ledger's own events. */
const CHECKPOINT_PREFIX = 'ledgercheckpoint-';
const CHECKPOINT_SAVED = 'CheckpointSaved';
/** The last few checkpoints stay readable; a scavenge removes older ones. */
const CHECKPOINTS_KEPT = 3;
const utf8 = new TextEncoder();
const utf8Text = new TextDecoder();
/** Server-side twin of `isOurs` when no prefixes are asked for (.NET regex). */
const OUR_STREAMS = `^(?!\\$|${CHECKPOINT_PREFIX})`;
/** Resubscribing: 100 ms, 200 ms … 5 s, jittered so consumers dropped together do not reconnect in lockstep. */
const RESUBSCRIBE_BACKOFF = { min: 100, max: 5_000 };
/** What the server sends for an event whose log position it does not know (Position.End's commit). */
const NO_LOG_POSITION = 2n ** 64n - 1n;

export class EsdbEventStore implements EventStore {
  readonly #client: EventStoreDBClient;
  readonly #subscriptions = new Set<EsdbSubscription>();
  /** Checkpoint streams whose retention metadata is known to be set. */
  readonly #retained = new Set<string>();
  /** Per set of prefixes, `headPosition`'s last walk: where it began, and the head it knew then. */
  readonly #heads = new Map<string, { readonly walkedFrom: Position; readonly head: Position | undefined }>();

  constructor(connectionString: string) {
    try {
      // Connects lazily: a server that is down surfaces as StoreUnavailable on first use.
      this.#client = EventStoreDBClient.connectionString(connectionString);
    } catch (error) {
      // The parse error names the offending fragment only; its `cause` would carry credentials.
      throw new StoreConfigError(`bad EventStoreDB connection string: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  async append(stream: string, events: readonly NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    if (events.length === 0) return checkEmptyAppend(stream, expected, (await this.readLastEvent(stream))?.revision);
    // The server acknowledges an idempotent repeat exactly like a fresh write (same revision; the
    // position is the original one, or absent on older servers), also to a racer whose identical batch
    // another connection wrote a moment before. So each append tags its events' metadata with an id of
    // its own, and reads the last event back: "written" means the stored events carry this append's id.
    const appendId = randomUUID();
    try {
      const result = await this.#client.appendToStream(stream, events.map((e) => toEventData(e, appendId)), { expectedRevision: toExpectedRevision(expected) });
      // Only with `throwOnAppendFailure=false` in the connection string; the client's revision is then unreliable.
      if (!result.success) throw conflict(stream, expected, (await this.readLastEvent(stream))?.revision ?? NO_STREAM);
      return { nextRevision: result.nextExpectedRevision, written: (await this.#appendIdAt(stream, result.nextExpectedRevision)) === appendId };
    } catch (error) {
      if (error instanceof WrongExpectedVersionError) throw conflict(stream, expected, error.actualVersion);
      throw translate(error, stream);
    }
  }

  async *readStream(stream: string, options: ReadStreamOptions = {}): AsyncGenerator<RecordedEvent> {
    const { fromRevision = START, maxCount = Number.MAX_SAFE_INTEGER } = options;
    if (maxCount <= 0) {
      // The server's index reader refuses a count below 1; a missing stream is still reported.
      if ((await this.readLastEvent(stream)) === undefined) throw new StreamNotFound(stream);
      return;
    }
    yield* this.#read(stream, { fromRevision, maxCount });
  }

  async readLastEvent(stream: string): Promise<RecordedEvent | undefined> {
    try {
      for await (const event of this.#read(stream, { direction: BACKWARDS, fromRevision: END, maxCount: 1 })) return event;
      return undefined;
    } catch (error) {
      if (error instanceof StreamNotFound) return undefined;
      throw error;
    }
  }

  async *readAll(options: ReadAllOptions = {}): AsyncGenerator<RecordedEvent> {
    const { from = 'start', prefixes = [], maxCount = Infinity } = options;
    if (maxCount <= 0) return;
    let count = 0;
    // v6 reads of $all take no filter: everything comes over the wire and is filtered here.
    for await (const resolved of drain(this.#client.readAll({ fromPosition: toReadPosition(from) }))) {
      const event = ours(resolved, prefixes);
      // A forward read of $all includes the event at its start; the port's start is exclusive.
      if (!event || !isAfter(event, from)) continue;
      yield event;
      if (++count >= maxCount) return;
    }
  }

  subscribe(options: SubscribeOptions): Subscription {
    const subscription = new EsdbSubscription(this.#client, options.from, options.prefixes ?? [], {
      onResubscribe: options.onResubscribe,
      onClosed: () => this.#subscriptions.delete(subscription),
    });
    this.#subscriptions.add(subscription);
    return subscription;
  }

  async headPosition(options: Pick<ReadAllOptions, 'prefixes'> = {}): Promise<Position | undefined> {
    // Walk $all backwards to the newest event of those streams, or to where the previous walk began:
    // what lies before that was looked at then. The read streams and is cancelled where it stops, so
    // the cost is what was written since that event or since the previous call, whichever is less:
    // system events (stats, projection links), checkpoints, another application's events.
    const prefixes = options.prefixes ?? [];
    const previous = this.#heads.get(prefixes.join('\n'));
    let head = previous?.head;
    let walkedFrom: Position | undefined;
    for await (const resolved of drain(this.#client.readAll({ direction: BACKWARDS, fromPosition: END }))) {
      if (!resolved.event) continue;
      const position = encodePosition(resolved.event.position);
      walkedFrom ??= position;
      if (previous && comparePositions(position, previous.walkedFrom) <= 0) break;
      const event = ours(resolved, prefixes);
      if (event) {
        head = event.position;
        break;
      }
    }
    if (walkedFrom !== undefined) this.#heads.set(prefixes.join('\n'), { walkedFrom, head });
    return head;
  }

  async readCheckpoint(name: string): Promise<Checkpoint | undefined> {
    const last = await this.readLastEvent(checkpointStream(name));
    if (!last) return undefined;
    const decoded = CheckpointData.decode(last.data);
    if (isLeft(decoded)) {
      const { path, reason } = describeErrors(decoded.left);
      throw new CorruptEvent(last.stream, last.revision, path, reason);
    }
    const { position, snapshot } = decoded.right;
    return snapshot === undefined ? { position: asPosition(position) } : { position: asPosition(position), snapshot };
  }

  async saveCheckpoint(name: string, checkpoint: Checkpoint): Promise<void> {
    decodePosition(checkpoint.position); // refuse another store's position before it is persisted
    const stream = checkpointStream(name);
    await this.#retainFew(stream);
    const data: Json = checkpoint.snapshot === undefined ? { position: checkpoint.position } : { position: checkpoint.position, snapshot: checkpoint.snapshot };
    try {
      // Last writer wins, so ANY; the server acknowledges only once the event is committed.
      await this.#client.appendToStream(stream, toEventData({ id: randomUUID(), type: CHECKPOINT_SAVED, data }), { expectedRevision: ESDB_ANY });
    } catch (error) {
      throw translate(error, stream);
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.#subscriptions].map((subscription) => subscription.close()));
    await this.#client.dispose();
  }

  async *#read(stream: string, options: EsdbReadStreamOptions): AsyncGenerator<RecordedEvent> {
    for await (const resolved of drain(this.#client.readStream(stream, options), stream)) {
      if (!resolved.event) continue;
      // Stream reads carry positions only from server 22.6 on. Without one the server sends Position.End
      // (2^64-1 twice), which the client hands over as a position: at the end of the log, after everything.
      const { position } = resolved.event;
      if (!position || position.commit === NO_LOG_POSITION) throw new StoreConfigError('EventStoreDB older than 22.6: stream reads carry no log position');
      yield toRecorded(resolved.event, position);
    }
  }

  /** The id of the append that wrote the event at `revision` (undefined for events written before appends were tagged). */
  async #appendIdAt(stream: string, revision: bigint): Promise<string | undefined> {
    // From the leader, which acknowledged the append: a lagging follower might not hold the batch yet.
    for await (const resolved of drain(this.#client.readStream(stream, { fromRevision: revision, maxCount: 1, requiresLeader: true }), stream)) {
      if (resolved.event) return unwrapMetadata(metadataOf(resolved.event)).appendId;
    }
    return undefined;
  }

  /** Caps a checkpoint stream once: the metastream is written only if it does not exist yet. */
  async #retainFew(stream: string): Promise<void> {
    if (this.#retained.has(stream)) return;
    try {
      await this.#client.setStreamMetadata(stream, { maxCount: CHECKPOINTS_KEPT }, { expectedRevision: ESDB_NO_STREAM });
    } catch (error) {
      // An earlier run (or an operator) set it already; keep what is there.
      if (!(error instanceof WrongExpectedVersionError)) throw translate(error, stream);
    }
    this.#retained.add(stream);
  }
}

interface SubscriptionHooks {
  readonly onResubscribe: SubscribeOptions['onResubscribe'];
  readonly onClosed: () => void;
}

/**
 * A catch-up subscription to $all that survives drops: it resubscribes from the last delivered
 * position (exclusive on the server, so nothing repeats and nothing is skipped), with backoff.
 * Single use: ending the iteration closes it.
 */
class EsdbSubscription implements Subscription {
  readonly #client: EventStoreDBClient;
  readonly #prefixes: readonly string[];
  readonly #hooks: SubscriptionHooks;
  readonly #stop = new AbortController();
  #from: From;
  #current: AllStreamSubscription | undefined;

  constructor(client: EventStoreDBClient, from: From, prefixes: readonly string[], hooks: SubscriptionHooks) {
    this.#client = client;
    this.#from = from;
    this.#prefixes = prefixes;
    this.#hooks = hooks;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<RecordedEvent> {
    const { signal } = this.#stop;
    try {
      for (let failures = 0; !signal.aborted; failures++) {
        let reason = new StoreUnavailable('EventStoreDB subscription ended without an error');
        try {
          for await (const event of this.#session()) {
            failures = 0;
            yield event;
          }
        } catch (error) {
          if (signal.aborted) return;
          reason = retryableOrThrow(error);
        }
        if (signal.aborted) return;
        const delay = backoffDelay(failures, RESUBSCRIBE_BACKOFF);
        this.#hooks.onResubscribe?.(reason, delay);
        await sleep(delay, undefined, { signal }).catch(() => undefined); // aborted by close()
      }
    } finally {
      await this.close();
    }
  }

  async close(): Promise<void> {
    if (this.#stop.signal.aborted) return;
    this.#stop.abort();
    this.#hooks.onClosed();
    const current = this.#current;
    if (!current) return;
    // destroy() ends a pending `for await` at once, even while the connection is still being set up;
    // unsubscribe() then cancels the gRPC call.
    current.destroy();
    await current.unsubscribe().catch(() => undefined); // rejects only if the call never started
  }

  async *#session(): AsyncGenerator<RecordedEvent> {
    const subscription = this.#client.subscribeToAll({ fromPosition: toReadPosition(this.#from), filter: serverFilter(this.#prefixes) });
    this.#current = subscription;
    try {
      for await (const resolved of subscription) {
        const event = ours(resolved, this.#prefixes);
        // From a start past the end of $all the server goes live at once and passes on every new
        // event: it compares positions with the events it delivered, never with the start.
        if (!event || !isAfter(event, this.#from)) continue;
        this.#from = event.position;
        yield event;
      }
    } finally {
      this.#current = undefined;
      await subscription.unsubscribe().catch(() => undefined);
    }
  }
}

/** One flat codec (not an intersection) so a failure's path reads `position`, not `0.position`. */
const CheckpointData = t.type({
  position: t.refinement(t.string, isEncodedPosition, 'EsdbPosition'),
  snapshot: t.union([t.string, t.undefined]),
});

const checkpointStream = (name: string): string => `${CHECKPOINT_PREFIX}${name}`;

/** Our events: no system streams or types (`$>` links included), no checkpoints, within the prefixes. */
function isOurs(event: EsdbRecordedEvent, prefixes: readonly string[]): boolean {
  if (event.streamId.startsWith('$') || event.type.startsWith('$') || event.streamId.startsWith(CHECKPOINT_PREFIX)) return false;
  return prefixes.length === 0 || prefixes.some((prefix) => event.streamId.startsWith(prefix));
}

function ours(resolved: AllStreamResolvedEvent, prefixes: readonly string[]): RecordedEvent | undefined {
  const { event } = resolved;
  return event && isOurs(event, prefixes) ? toRecorded(event, event.position) : undefined;
}

const isAfter = (event: RecordedEvent, from: From): boolean => from === 'start' || comparePositions(event.position, from) > 0;

/** Filtered on the server to spare the wire; `isOurs` still checks every event it lets through. */
const serverFilter = (prefixes: readonly string[]): Filter =>
  prefixes.length > 0 ? streamNameFilter({ prefixes: [...prefixes] }) : streamNameFilter({ regex: OUR_STREAMS });

const toReadPosition = (from: From): ReadPosition => (from === 'start' ? START : decodePosition(from));

function toExpectedRevision(expected: ExpectedRevision): AppendExpectedRevision {
  if (expected === NO_STREAM) return ESDB_NO_STREAM;
  if (expected === ANY) return ESDB_ANY;
  return expected;
}

function toEventData(event: NewEvent, appendId?: string): EventData {
  const metadata = appendId === undefined ? event.metadata : wrapMetadata(event.metadata, appendId);
  return jsonEvent({
    id: event.id,
    type: event.type,
    // The client writes `JSON.stringify(data)`, so scalars and null are fine despite its narrower type.
    data: event.data as JSONType,
    // Pre-encoded: the client silently drops falsy metadata (0, false, ''), which would not round-trip.
    metadata: metadata === undefined ? undefined : utf8.encode(JSON.stringify(metadata)),
  });
}

/** The key under which an append's id travels in the stored metadata, beside the caller's metadata. */
const APPEND_ID = 'hedgeLedgerAppendId';

const wrapMetadata = (metadata: Json | undefined, appendId: string): Json =>
  metadata === undefined ? { [APPEND_ID]: appendId } : { [APPEND_ID]: appendId, metadata };

/** The caller's metadata and the append's id, from metadata as stored (untagged: all of it is the caller's). */
function unwrapMetadata(stored: Json): { metadata: Json; appendId?: string } {
  if (stored === null || typeof stored !== 'object' || Array.isArray(stored)) return { metadata: stored };
  const appendId = stored[APPEND_ID];
  if (typeof appendId !== 'string') return { metadata: stored };
  return { metadata: stored['metadata'] ?? null, appendId };
}

const metadataOf = (event: EsdbRecordedEvent): Json => (event.metadata === undefined ? null : payload(event.metadata));

function toRecorded(event: EsdbRecordedEvent, position: LogPosition): RecordedEvent {
  return {
    stream: event.streamId,
    type: event.type,
    id: event.id,
    revision: event.revision,
    position: encodePosition(position),
    data: payload(event.data),
    metadata: unwrapMetadata(metadataOf(event)).metadata,
  };
}

/**
 * The client parses JSON events and hands back malformed JSON as its raw text; binary content
 * becomes text here too. Either way a corrupt payload reaches the codec layer as a string, which
 * reports it without stopping the stream.
 */
const payload = (value: JSONType | Uint8Array): Json => (value instanceof Uint8Array ? utf8Text.decode(value) : (value as Json));

/** An append with no events writes nothing on any server; only the expected revision is checked. */
function checkEmptyAppend(stream: string, expected: ExpectedRevision, last: bigint | undefined): AppendResult {
  const actual = last ?? NO_STREAM;
  if (expected !== ANY && expected !== actual) throw conflict(stream, expected, actual);
  return { nextRevision: last ?? -1n, written: false };
}

const conflict = (stream: string, expected: ExpectedRevision, actual: CurrentRevision): WrongExpectedVersion =>
  // A missing stream can arrive as revision -1 (the error-metadata path of older servers).
  new WrongExpectedVersion(stream, expected, typeof actual === 'bigint' && actual >= 0n ? actual : NO_STREAM);

/** Iterates a client read with our errors; a consumer that stops early gets the call released. */
async function* drain<E>(read: StreamingRead<E>, stream?: string): AsyncGenerator<E> {
  const events = read[Symbol.asyncIterator]();
  let ended = false;
  try {
    for (let next = await events.next(); !next.done; next = await events.next()) yield next.value;
    ended = true;
  } catch (error) {
    ended = true;
    throw translate(error, stream);
  } finally {
    if (!ended) await release(read, events);
  }
}

/**
 * Cancels the gRPC call, then reads what it had already buffered to the end. Merely dropping the
 * iterator would leave the call unfinished, and the client's `dispose()` waits for every call to
 * finish: `close()` would hang.
 */
async function release<E>(read: StreamingRead<E>, events: AsyncIterator<E>): Promise<void> {
  await read.cancel();
  try {
    while (!(await events.next()).done);
  } catch {
    // The call was cancelled; whatever it reports now is of no interest.
  }
}

/** gRPC's status code INVALID_ARGUMENT. */
const GRPC_INVALID_ARGUMENT = 3;

/** The client reports a failed cluster discovery as a plain Error (Client/discovery.js). */
const DISCOVERY_FAILED = /^Failed to discover after \d+ attempts/;

/** The client's errors as our typed errors; anything unrecognised (a bug) passes through unchanged. */
function translate(error: unknown, stream?: string): unknown {
  if (!(error instanceof Error) || isStoreError(error)) return error;
  // Some paths (the capability probe before an append) reject with a raw gRPC error.
  const e = convertToCommandError(error);
  if (e instanceof StreamNotFoundError || e instanceof StreamDeletedError) return new StreamNotFound(stream ?? e.streamName);
  // The server refuses what it cannot serve (a read of $all from a position that is no record of its log) with
  // the gRPC status INVALID_ARGUMENT and no error type, which the client reports as UnknownError: no retry helps.
  const refused = e instanceof UnknownError && e.code === GRPC_INVALID_ARGUMENT;
  if (e instanceof AccessDeniedError || e instanceof MaxAppendSizeExceededError || e instanceof InvalidArgumentError || refused) {
    return new StoreConfigError(`EventStoreDB: ${e.message}`, { cause: e });
  }
  const transient =
    e instanceof UnavailableError || e instanceof DeadlineExceededError || e instanceof TimeoutError ||
    e instanceof NotLeaderError || e instanceof CancelledError || e instanceof UnknownError || DISCOVERY_FAILED.test(e.message);
  return transient ? new StoreUnavailable(`EventStoreDB unavailable: ${e.message}`, { cause: e }) : e;
}

/** Subscriptions retry what is transient and rethrow the rest (bad credentials, bugs). */
function retryableOrThrow(error: unknown): StoreUnavailable {
  const translated = translate(error);
  if (translated instanceof StoreUnavailable) return translated;
  throw translated;
}

