/**
 * The orderbook stream's recent logs, indexed by the log's deterministic id (logEventId): what the
 * ingester dedupes against and reconciles a reorg with. A log a reorg removed and the chain mined
 * again has several generations in the stream (recorded, removed, recorded again, …): the index
 * holds its latest. Bounded: it holds the stream's last `limit` logs, and `floor` says from which
 * block on it holds every stored log.
 */
import { NO_STREAM, type EventStore, type ExpectedRevision, type RecordedEvent } from '../eventstore/port.ts';
import { decodeEvent, type Envelope } from '../domain/events.ts';
import { CorruptEvent } from '../eventstore/errors.ts';
import { compareLogMarks, type LogMark } from '../domain/log-order.ts';
import { recordedLogId, type RecordedLog } from './rpc-log.ts';
import * as t from 'io-ts';
import * as E from 'fp-ts/lib/Either.js';
import { BigIntString, Hash32, SafeHexQuantity, decodeJsonText, struct } from '../domain/codecs.ts';

export interface StoredLog {
  /** The log's deterministic id (chainId:txHash:logIndex), the same in every generation. */
  readonly id: string;
  /** The log as its latest generation recorded it. */
  readonly log: RecordedLog;
  /** Id of the latest generation's OrderbookLogRecorded: `id` for the first, a logRecordedAgainEventId after. What a removal names. */
  readonly recordedId: string;
  /** Id of the OrderbookLogRemoved that compensates the latest generation, or null while the ledger counts it. */
  readonly removalId: string | null;
}

/** A reorg removed the log's latest generation: the ledger does not count it. */
export const isRemoved = (stored: StoredLog): boolean => stored.removalId !== null;

export interface BlockHash {
  readonly block: bigint;
  readonly hash: `0x${string}`;
}

/** The block an event relies on, and whether the event removed its log (see `RecentLogs.lastAppended`). */
export type EventPlace = BlockHash & { readonly removed: boolean };

/**
 * Logs indexed. Not to be raised on a ledger written with a smaller index: the places of re-mined logs past its tail
 * are dropped once the floor passes them, so a larger index would hold those logs again at their recorded blocks.
 */
const DEFAULT_RECENT_LOGS = 5_000;

/**
 * `movedText`'s list: [generation's event id, block number (decimal), block hash], and 'unvouched' for a place
 * whose rescan was not appended through its block yet (see `RecentLogs.vouch`).
 */
const MovedPlaces = t.array(t.union([t.tuple([t.string, BigIntString, Hash32, t.literal('unvouched')]), t.tuple([t.string, BigIntString, Hash32])]));

/**
 * `floorText`'s mark: every log the stream's events before revision `before` name (recorded or removed) is in a
 * block below `floor`. True of the stream for good once written (its events never change), so a restart reads on
 * from it instead of from the stream's start, and racing writers cannot make it wrong.
 */
const FloorMark = t.type({ before: BigIntString, floor: BigIntString });
type FloorMark = t.TypeOf<typeof FloorMark>;

/**
 * What an index saved for the next `load`: its `floorText`, and a read of its `movedText`. That is read after the
 * tail: places are saved before the events that rely on them are appended, so a read after the tail has them all.
 */
export interface SavedIndex {
  readonly floor?: string | undefined;
  readonly moved?: () => Promise<string | undefined>;
}

/** The block of the log a stored event names, recorded or removed. */
const LogBlock = struct({ blockNumber: SafeHexQuantity });

export class RecentLogs {
  private readonly logs = new Map<string, StoredLog>();
  /**
   * Where a rescan last found a stored log re-mined into another block (the event keeps the block it
   * was recorded in), by the id of the generation's OrderbookLogRecorded: a generation recorded later
   * is recorded where the chain had it. A later reorg that takes that block away must find the log among
   * its candidates for removal even when it starts above the recorded block. The ingester keeps it in a
   * checkpoint (`movedText`, `restoreMoved`), as a restart would otherwise know only the recorded block.
   */
  private readonly moved = new Map<string, BlockHash>();
  /**
   * Generations of `moved` whose place the stream does not vouch for yet: the rescan that found it is saved
   * before its events are appended, and until they are, logs the chain has below that place may be missing
   * from the stream. `blocks()` gives their recorded block instead (which the chain no longer has), so that a
   * restart after a crash there rescans rather than take the place for a block the ledger holds.
   */
  private readonly unvouched = new Set<string>();
  /**
   * Places of `moved` whose logs are past the index's tail now (evicted, or before the tail a restart read):
   * such a log may come back from its new block, above the block it was recorded in, so the floor must be
   * above that place too, and stay there after a restart (`movedText` keeps them). Dropped once the logs
   * recorded past the tail put the floor above them anyway.
   */
  private readonly pastTail = new Map<string, BlockHash>();
  /** The stream's last event: the generation it recorded, or removed (see `removalCut`, `lastAppended`). */
  private last: StoredLog | null = null;
  /**
   * Logs whose latest generation is a removal, past the index's tail (evicted by newer logs, or found by
   * `readRemovedBefore`): a transaction mined again long after a reorg dropped it is recorded again, under
   * the id its removal gives, not appended under its first id, which the stream holds.
   */
  private readonly removedBefore = new Map<string, StoredLog>();
  /** Revision of the first event `load` read; the stream's events before it are read only by `readRemovedBefore`. */
  private indexedFrom = 0n;
  /** The floor the events before `indexedFrom` set, as `floorText` saves it. */
  private floorBefore = 0n;
  /** The floor the blocks logs past the tail were recorded in set (their places in `pastTail` may raise `floor` above it). */
  private recordedFloor = 0n;
  private readBefore = false;
  /** Revision of the stream's last event, as the next append expects it. */
  revision: ExpectedRevision = NO_STREAM;
  /** Every stored log at or above this block is indexed; 0 while the index holds the whole stream. */
  floor = 0n;

  private constructor(private readonly limit: number) {}

  /**
   * Indexes the stream's last `limit` events. The floor is set by every log before them: after a reorg the
   * stream is not in block order (a log the reorg kept, in a higher block, comes before the new logs below it),
   * so the first indexed event's block does not bound them. They are read once, on from `saved.floor` (a
   * `floorText` of an earlier load) when it is still below the tail.
   */
  static async load(store: EventStore, stream: string, limit = DEFAULT_RECENT_LOGS, saved: SavedIndex = {}): Promise<RecentLogs> {
    const recent = new RecentLogs(limit);
    const last = await store.readLastEvent(stream);
    if (last === undefined) return recent;
    const fromRevision = last.revision - BigInt(limit) + 1n;
    if (fromRevision > 0n) {
      recent.indexedFrom = fromRevision;
      recent.floorBefore = await floorBefore(store, stream, fromRevision, saved.floor);
      recent.floor = recent.recordedFloor = recent.floorBefore;
    }
    // Every generation the tail names: a place of another one is of a log past the tail.
    const generations = new Set<string>();
    for await (const event of store.readStream(stream, { fromRevision: recent.indexedFrom })) generations.add(recent.apply(event).recordedId);
    const moved = await saved.moved?.();
    if (moved !== undefined) recent.restoreMoved(moved, generations);
    return recent;
  }

  /**
   * The floor the events before the index's tail set, as text for a checkpoint that the next `load` reads on
   * from; null while the index holds the whole stream (a mark of nothing would replace one that says more).
   */
  floorText(): string | null {
    return this.indexedFrom === 0n ? null : JSON.stringify(FloorMark.encode({ before: this.indexedFrom, floor: this.floorBefore }));
  }

  /** Folds in events appended by someone else (a racing ingester) since `revision`. */
  async refresh(store: EventStore, stream: string): Promise<void> {
    const fromRevision = this.revision === NO_STREAM ? 0n : (this.revision as bigint) + 1n;
    const last = await store.readLastEvent(stream);
    if (last === undefined || last.revision < fromRevision) return;
    for await (const event of store.readStream(stream, { fromRevision })) this.apply(event);
  }

  /**
   * Reads the stream's events before the index's tail once, for logs whose latest generation there is a
   * removal. A full read: only for a plan the store refused though nobody appended (an id it holds before the
   * tail); nothing when it was read already or the index holds the whole stream.
   */
  async readRemovedBefore(store: EventStore, stream: string): Promise<void> {
    if (this.readBefore || this.indexedFrom === 0n) return;
    this.readBefore = true;
    const latest = new Map<string, StoredLog>();
    for await (const event of store.readStream(stream, { maxCount: Number(this.indexedFrom) })) {
      const decoded = decodeEvent(event);
      if (decoded._tag === 'Left') continue; // a corrupt event names no log the chain could bring back
      const stored = toStoredLog(decoded.right);
      latest.set(stored.id, stored);
    }
    for (const [id, stored] of latest) if (isRemoved(stored) && !this.logs.has(id)) this.removedBefore.set(id, stored);
  }

  get(id: string): StoredLog | undefined {
    return this.logs.get(id) ?? this.removedBefore.get(id);
  }

  /** A generation of log `id` appended as `recordedId`: the first, or one recorded again after a removal. */
  recorded(id: string, recordedId: string, log: RecordedLog): void {
    this.put((this.last = { id, log, recordedId, removalId: null }));
  }

  /** `stored`'s latest generation compensated by the removal `removalId`. */
  removed(stored: StoredLog, removalId: string): void {
    this.forgetMoved(stored.recordedId);
    this.put((this.last = { ...stored, removalId }));
  }

  /** The chain has this stored log at `log`'s block: remembered when that is another block than the one it was recorded in. */
  seenAt(id: string, log: RecordedLog): void {
    const stored = this.logs.get(id);
    if (stored === undefined || isRemoved(stored)) return; // a removed log counts nowhere until recorded again
    if (stored.log.blockHash === log.blockHash) this.forgetMoved(stored.recordedId);
    else if (this.moved.get(stored.recordedId)?.hash !== log.blockHash) {
      this.moved.set(stored.recordedId, { block: log.blockNumber, hash: log.blockHash });
      this.unvouched.add(stored.recordedId);
    }
  }

  /** Every log the chain has up to block `through` is in the stream now: the places found up to there are vouched for. */
  vouch(through: bigint): void {
    for (const id of this.unvouched) if (this.moved.get(id)!.block <= through) this.unvouched.delete(id);
  }

  private forgetMoved(recordedId: string): void {
    this.moved.delete(recordedId);
    this.unvouched.delete(recordedId);
  }

  /** The places of the logs found re-mined elsewhere, as text for a checkpoint (stable: the same places, the same text). */
  movedText(): string {
    const places = [...this.moved, ...this.pastTail]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([id, { block, hash }]): t.TypeOf<typeof MovedPlaces>[number] => (this.unvouched.has(id) ? [id, block, hash, 'unvouched'] : [id, block, hash]));
    return JSON.stringify(MovedPlaces.encode(places));
  }

  /**
   * Places `movedText` wrote: for the generations this index holds live, and for logs past its tail (which raise
   * the floor); the others (removed, or recorded again since) are no longer where the chain has a counted log.
   * An unreadable list is as none: the logs it named are known by the blocks they were recorded in.
   */
  private restoreMoved(text: string, generations: ReadonlySet<string>): void {
    const decoded = decodeJsonText(MovedPlaces, text);
    if (E.isLeft(decoded)) return;
    const held = new Map([...this.logs.values()].map((s) => [s.recordedId, s]));
    for (const [id, block, hash, unvouched] of decoded.right) {
      const stored = held.get(id);
      if (stored === undefined && this.indexedFrom > 0n && !generations.has(id)) this.passedTail(id, { block, hash });
      else if (stored !== undefined && !isRemoved(stored)) {
        this.moved.set(id, { block, hash });
        if (unvouched !== undefined) this.unvouched.add(id);
      }
    }
  }

  /** The block where the chain last had a stored log: the one it was recorded in, unless a rescan found it re-mined elsewhere. */
  private placeOf(stored: StoredLog): BlockHash {
    return this.moved.get(stored.recordedId) ?? { block: stored.log.blockNumber, hash: stored.log.blockHash };
  }

  /**
   * The logs of a transaction whose removals the stream began and did not finish (a crash or a store failure
   * between two batches of a plan): the stream's last event removes a log of it, and the ledger still counts
   * others it recorded in the same block (a plan removes them all). Empty when there are none.
   */
  removalCut(): StoredLog[] {
    // The fold's removals pass is inside that transaction, and pairs its clears only if the removals of its other logs come next.
    if (this.last === null || !isRemoved(this.last)) return [];
    const { transactionHash, blockHash } = this.last.log;
    return this.liveOfTransaction(transactionHash).filter((s) => s.log.blockHash === blockHash);
  }

  /**
   * The stream's last event as the block it relies on: where its log is (a place not vouched for yet counts as the
   * recorded block), or for a removal the block it was removed from; null for an empty stream. A restart checks it
   * besides the window's top: after a rescan to a shorter fork, the top can be a block of the other fork, left above
   * the shorter one's head, which checks out again once that fork comes back.
   */
  lastAppended(): EventPlace | null {
    if (this.last === null) return null;
    const removed = isRemoved(this.last);
    const { block, hash } = removed ? { block: this.last.log.blockNumber, hash: this.last.log.blockHash } : this.vouchedPlace(this.last);
    return { block, hash, removed };
  }

  /** The stored logs of transaction `hash` the ledger still counts (a transaction is rewritten as a whole). */
  liveOfTransaction(hash: string): StoredLog[] {
    return [...this.logs.values()].filter((s) => !isRemoved(s) && s.log.transactionHash === hash);
  }

  /** The last log still on chain, in chain order: file deliveries append after it. */
  lastLive(): LogMark | null {
    let last: RecordedLog | null = null;
    for (const stored of this.logs.values()) if (!isRemoved(stored) && (last === null || compareLogMarks(stored.log, last) > 0)) last = stored.log;
    return last;
  }

  /**
   * Logs still on chain whose block is in [from, to]: the block where the chain last had them, so a log a
   * rescan found re-mined into a block in the range is one even if it was recorded below.
   */
  liveIn(from: bigint, to: bigint): StoredLog[] {
    return [...this.logs.values()].filter((s) => {
      const { block } = this.placeOf(s);
      return !isRemoved(s) && block >= from && block <= to;
    });
  }

  /**
   * `logs` in the order their removals go: by where the chain last had them, each transaction's logs
   * together and in log order, since the fold pairs a removed ClearV2 with the removed AfterClear after
   * it. (The stored events keep the block they were recorded in, which another transaction may have
   * filled since one was re-mined elsewhere: by those places alone, two clears' removals could interleave.)
   */
  inRemovalOrder(logs: readonly StoredLog[], first: string | null = null): StoredLog[] {
    const place = (s: StoredLog): LogMark => ({ blockNumber: this.placeOf(s).block, logIndex: s.log.logIndex });
    const byTransaction = new Map<string, StoredLog[]>();
    // The transaction the stream's removals are inside of (removalCut) goes first, so that its removals run on.
    if (first !== null) byTransaction.set(first, []);
    for (const stored of [...logs].sort((a, b) => compareLogMarks(place(a), place(b)))) {
      const ofTransaction = byTransaction.get(stored.log.transactionHash);
      if (ofTransaction === undefined) byTransaction.set(stored.log.transactionHash, [stored]);
      else ofTransaction.push(stored);
    }
    return [...byTransaction.values()].flatMap((ofTransaction) => ofTransaction.sort((a, b) => (a.log.logIndex < b.log.logIndex ? -1 : 1)));
  }

  /**
   * The block hash of each live log's block (where the chain last had it, once the stream vouches for that place),
   * one per block (the latest recorded), ascending.
   */
  blocks(): BlockHash[] {
    const hashes = new Map<bigint, `0x${string}`>();
    for (const { block, hash } of this.livePlaces()) hashes.set(block, hash);
    return [...hashes].map(([block, hash]) => ({ block, hash })).sort((a, b) => (a.block < b.block ? -1 : 1));
  }

  /**
   * The lowest block in which two live logs have different hashes, or null. One chain has one block of a number, so
   * one of them is not where the index says: a place a racer's checkpoint dropped (its node on another fork), or one
   * not vouched for yet. The block window holds one hash per block and would check only the other one.
   */
  conflicted(): bigint | null {
    const hashes = new Map<bigint, `0x${string}`>();
    let lowest: bigint | null = null;
    for (const { block, hash } of this.livePlaces()) {
      const seen = hashes.get(block);
      if (seen === undefined) hashes.set(block, hash);
      else if (seen !== hash && (lowest === null || block < lowest)) lowest = block;
    }
    return lowest;
  }

  /** Where each live log is, as far as the stream vouches. */
  private *livePlaces(): Iterable<BlockHash> {
    for (const stored of this.logs.values()) if (!isRemoved(stored)) yield this.vouchedPlace(stored);
  }

  /** Where a log is, as far as the stream vouches: a place not vouched for yet counts as its recorded block. */
  private vouchedPlace(stored: StoredLog): BlockHash {
    return this.unvouched.has(stored.recordedId) ? { block: stored.log.blockNumber, hash: stored.log.blockHash } : this.placeOf(stored);
  }

  private apply(event: RecordedEvent): StoredLog {
    this.revision = event.revision;
    const decoded = decodeEvent(event);
    if (decoded._tag === 'Left') throw decoded.left;
    const stored = toStoredLog(decoded.right);
    this.put((this.last = stored));
    return stored;
  }

  private put(stored: StoredLog): void {
    this.logs.delete(stored.id); // re-inserted last: the map stays in append order
    this.removedBefore.delete(stored.id);
    this.logs.set(stored.id, stored);
    for (const [id, oldest] of this.logs) {
      if (this.logs.size <= this.limit) break;
      this.logs.delete(id);
      if (isRemoved(oldest)) this.removedBefore.set(id, oldest);
      this.recordedFloor = above(this.recordedFloor, oldest.log.blockNumber);
      this.raiseFloor(oldest.log.blockNumber);
      const place = this.moved.get(oldest.recordedId);
      this.forgetMoved(oldest.recordedId);
      if (place !== undefined) this.passedTail(oldest.recordedId, place);
      for (const [recordedId, { block }] of this.pastTail) if (block < this.recordedFloor) this.pastTail.delete(recordedId);
    }
  }

  /** A log the chain has at `place` is past the index's tail. */
  private passedTail(recordedId: string, place: BlockHash): void {
    this.raiseFloor(place.block);
    if (place.block >= this.recordedFloor) this.pastTail.set(recordedId, place);
  }

  /** A log in `block` is not indexed. */
  private raiseFloor(block: bigint): void {
    this.floor = above(this.floor, block);
  }
}

/** The floor once a log in `block` is not indexed: above it. */
const above = (floor: bigint, block: bigint): bigint => (block >= floor ? block + 1n : floor);

/** 1 + the highest block a log of the events before revision `before` is in (0 for none), read on from a saved mark below it. */
async function floorBefore(store: EventStore, stream: string, before: bigint, savedFloor: string | undefined): Promise<bigint> {
  // An unreadable mark is as none: the stream is read from its start.
  const saved = savedFloor === undefined ? E.left(undefined) : decodeJsonText(FloorMark, savedFloor);
  const from: FloorMark = E.isRight(saved) && saved.right.before <= before ? saved.right : { before: 0n, floor: 0n };
  let floor = from.floor;
  if (before === from.before) return floor;
  for await (const event of store.readStream(stream, { fromRevision: from.before, maxCount: Number(before - from.before) })) {
    const log = LogBlock.decode(event.data);
    // A corrupt event names no log the chain could bring back (as in readRemovedBefore).
    if (E.isRight(log)) floor = above(floor, log.right.blockNumber);
  }
  return floor;
}

/** The log's latest generation as of `event`: keyed by what the log is, since a generation recorded again has another event id. */
function toStoredLog(event: Envelope): StoredLog {
  switch (event.type) {
    case 'OrderbookLogRecorded':
      return { id: recordedLogId(event.data), log: event.data, recordedId: event.id, removalId: null };
    case 'OrderbookLogRemoved': {
      const { logId, reason: _reason, ...log } = event.data;
      return { id: recordedLogId(log), log, recordedId: logId, removalId: event.id };
    }
    default:
      throw new CorruptEvent(event.stream, event.revision, 'type', `${event.type} does not belong in an orderbook stream`);
  }
}
