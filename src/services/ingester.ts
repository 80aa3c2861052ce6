/**
 * The one ingestion path. Whatever delivers logs (a file, eth_getLogs backfill, a new head),
 * they come here: sorted into chain order, token metadata recorded first, then appended at the
 * orderbook stream's exact revision with deterministic ids. The stream itself is the
 * checkpoint; a repeat or a racing ingester writes nothing twice.
 *
 * Three ways in:
 * - `ingest`: a file's logs, appended after the stream's last log still on chain.
 * - `appendCanonical`: a chain scan's logs; the ones already stored are skipped by id.
 * - `reconcile`: a rescan of blocks a reorg changed; stored logs the chain no longer has get
 *   an `OrderbookLogRemoved` (in chain order, before the canonical logs that follow).
 *
 * A log a reorg removed that comes back (its transaction mined again: same transaction, log index
 * and content) is recorded again, as a new event whose id derives from the removal it follows. So is
 * other content a chain scan finds at a stored log's place from another block (the transaction
 * re-executed, or its logs at other indexes), after the stored log is removed.
 */
import { NO_STREAM, type EventStore, type ExpectedRevision, type NewEvent } from '../eventstore/port.ts';
import { WrongExpectedVersion } from '../eventstore/errors.ts';
import { decodeEvent, encodeEvent, streams, type EventData } from '../domain/events.ts';
import { logRecordedAgainEventId, logRemovedAgainEventId, logRemovedEventId, tokenEventId } from '../domain/ids.ts';
import * as E from 'fp-ts/lib/Either.js';
import { inChainOrder, recordedLogId, sameContent, type RecordedLog } from '../chain/rpc-log.ts';
import { RecentLogs, isRemoved, type BlockHash, type EventPlace, type StoredLog } from '../chain/recent-logs.ts';
import type { BlockRange } from '../chain/log-scanner.ts';
import { isAfter } from '../domain/log-order.ts';

export type TokenMetadata = Pick<EventData<'TokenMetadataRecorded'>, 'symbol' | 'reason'>;

/** Reads ERC20 symbols (from the chain, or a file); never throws for one bad token: it answers symbol null and a reason. */
export interface TokenResolver {
  /** `tokens`: address → block of the first log that mentions it (the chain may be asked there). */
  resolve(tokens: ReadonlyMap<string, bigint>): Promise<ReadonlyMap<string, TokenMetadata>>;
}

export interface IngestReport {
  readonly appended: number;
  /** Already stored, or delivered twice. */
  readonly alreadyIngested: number;
  readonly tokensRecorded: number;
}

export interface FileIngestReport extends IngestReport {
  /** Not stored, but at or before the stream's last log: appending them now would break chain order. */
  readonly outOfOrder: number;
}

export interface ReconcileReport extends IngestReport {
  /** Stored logs the chain no longer has, compensated with OrderbookLogRemoved. */
  readonly removed: number;
}

export interface IngesterOptions {
  readonly store: EventStore;
  readonly chainId: number;
  readonly orderbook: string;
  readonly tokens: TokenResolver;
  /** Token addresses a log mentions (from its decoded IO structs); [] for logs that cannot be decoded. */
  readonly tokensOf: (log: RecordedLog) => readonly string[];
  /** Most events per append call (default 500); appends also stay under ~512 KiB, well within EventStoreDB's 1 MiB limit. */
  readonly batchSize?: number;
  /** Logs of the stream's tail kept indexed for dedupe and reorgs. */
  readonly recentLogs?: number;
}

/** The chain has a log the ledger cannot record: its deterministic id is taken by other content (removed or not). */
export class LogConflict extends Error {
  override readonly name = 'LogConflict';
}

/** A rescan reaches below the stream's indexed tail: the ledger cannot tell which stored logs it changed. */
export class ReorgTooDeep extends Error {
  override readonly name = 'ReorgTooDeep';
}

/**
 * Another ingester appended so far past a chain delivery that the index no longer reaches its
 * oldest logs: whether they are stored cannot be told here. Follow the stream from its new tail.
 */
export class StreamMovedOn extends Error {
  override readonly name = 'StreamMovedOn';
}

const MAX_RACE_RETRIES = 5;
const MAX_APPEND_BYTES = 512 * 1024;
const REORG_REASON = 'reorg: the canonical chain no longer contains this log';

/** Throws StreamMovedOn for a delivered log below the index's floor that the index does not hold (see there). */
function assertIndexed(recent: RecentLogs, ordered: readonly Delivered[]): void {
  const unknown = ordered.find(({ id, log }) => log.blockNumber < recent.floor && recent.get(id) === undefined);
  if (unknown === undefined) return;
  throw new StreamMovedOn(`another ingester appended past block ${unknown.log.blockNumber}: the stream's logs are indexed only from block ${recent.floor}`);
}

/** A delivered log with its deterministic id, computed once. */
type Delivered = Pick<StoredLog, 'id' | 'log'>;

/** A log to append, under `eventId`: its deterministic id, or a logRecordedAgainEventId when a reorg removed it before. */
interface Fresh extends Delivered {
  readonly eventId: string;
}

/** What one delivery appends: compensations first, then new logs (and logs recorded again), each list in chain order. */
interface Plan {
  readonly removals: readonly StoredLog[];
  readonly fresh: readonly Fresh[];
  readonly skipped: number;
}

export class Ingester {
  readonly stream: string;
  private readonly tokenStream: string;
  private recent: RecentLogs | null = null;
  private knownTokens: Set<string> | null = null;
  private tokenRevision: ExpectedRevision = NO_STREAM;
  /** The checkpoint naming where re-mined stored logs are now, and its text as last read or saved. */
  private readonly movedCheckpoint: string;
  private savedMoved = '[]';
  /** The checkpoint marking how far the index's floor was read (`RecentLogs.floorText`). */
  private readonly floorCheckpoint: string;

  constructor(private readonly options: IngesterOptions) {
    this.stream = streams.orderbook(options.chainId, options.orderbook);
    this.tokenStream = streams.tokens(options.chainId);
    this.movedCheckpoint = `ingester_moved_${options.chainId}_${options.orderbook.toLowerCase()}`;
    this.floorCheckpoint = `ingester_floor_${options.chainId}_${options.orderbook.toLowerCase()}`;
  }

  /** Block hashes of the stream's recent logs, ascending, the block from which the index is complete, the lowest block two of them place under different hashes, and the block the stream's last event relies on. */
  async recentBlocks(): Promise<{ readonly blocks: BlockHash[]; readonly floor: bigint; readonly conflicted: bigint | null; readonly lastAppended: EventPlace | null }> {
    const recent = await this.loadRecent();
    return { blocks: recent.blocks(), floor: recent.floor, conflicted: recent.conflicted(), lastAppended: recent.lastAppended() };
  }

  /** The block from which the index is complete, as it is now: appends (this ingester's, and a racer's it read) raise it. */
  async floor(): Promise<bigint> {
    return (await this.loadRecent()).floor;
  }

  /**
   * A file's logs: appends those after the stream's last log still on chain, in chain order.
   * Repeats count as already ingested; logs not stored but at or before that last log are
   * counted as out of order and not appended (the stream cannot take them in chain order).
   * A log a reorg removed is recorded again like on the chain path, unless the file has it in the
   * very block it was removed from: the ledger knows that block left the chain, so the file predates
   * the reorg, and the log counts as already ingested.
   */
  async ingest(logs: readonly RecordedLog[]): Promise<FileIngestReport> {
    let outOfOrder = 0;
    const report = await this.append(logs, null, (recent, ordered) => {
      const last = recent.lastLive();
      assertSameContent(recent, ordered);
      const sorted = this.sortOut(recent, ordered, NOTHING_REMOVED);
      const unseen = sorted.fresh.filter((d) => !removedFrom(recent, d));
      const fresh = unseen.filter(({ log }) => last === null || isAfter(log, last));
      outOfOrder = unseen.length - fresh.length;
      return { removals: [], fresh, skipped: ordered.length - unseen.length };
    });
    return { appended: report.appended, alreadyIngested: report.alreadyIngested, outOfOrder, tokensRecorded: report.tokensRecorded };
  }

  /** Canonical logs of a chain scan: appends the ones not stored yet, records again the ones a reorg removed, rewrites changed transactions (sortOutCanonical). */
  appendCanonical(logs: readonly RecordedLog[]): Promise<ReconcileReport> {
    const through = logs.reduce<bigint | null>((top, log) => (top === null || log.blockNumber > top ? log.blockNumber : top), null);
    return this.append(logs, through, (recent, ordered) => {
      assertIndexed(recent, ordered);
      return this.sortOutCanonical(recent, ordered, []);
    });
  }

  /** Forgets what it read of the streams: the next delivery starts from their tails as they are now. */
  forget(): void {
    this.recent = null;
    this.knownTokens = null;
  }

  /**
   * The canonical logs of every block in `range`, after a reorg: stored logs in the range that
   * the chain no longer has are compensated, then the canonical logs not stored yet appended.
   */
  reconcile(range: BlockRange, logs: readonly RecordedLog[]): Promise<ReconcileReport> {
    return this.append(logs, range.to, (recent, ordered) => {
      if (range.from < recent.floor) {
        throw new ReorgTooDeep(`blocks from ${range.from} changed, but the ingester indexes the stream's logs only from block ${recent.floor}`);
      }
      const canonical = new Set(ordered.map((d) => d.id));
      return this.sortOutCanonical(recent, ordered, recent.liveIn(range.from, range.to).filter((stored) => !canonical.has(stored.id)));
    });
  }

  /**
   * The plan for a chain scan's canonical logs, after `gone` (stored logs the chain no longer has) are
   * removed. A transaction the chain has with other content at a stored log's place (transaction, log
   * index), from another block, is rewritten as a whole: a reorg re-executed it, or mined it behind more
   * or fewer logs, so its logs sit at other indexes (a clear's ClearV2 where its AfterClear was). Its
   * stored logs still counted are removed and all its logs recorded again, so that on both sides each
   * ClearV2 pairs with its own AfterClear. Removals go in chain order.
   */
  private sortOutCanonical(recent: RecentLogs, ordered: readonly Delivered[], gone: readonly StoredLog[]): Plan {
    const rewritten = rewrittenTransactions(recent, ordered);
    const ofRewritten = [...rewritten].flatMap((hash) => recent.liveOfTransaction(hash));
    // A transaction whose removals a crash cut between two batches is removed to its end first (the fold's removals
    // pass pairs its clears only with removals of its own that follow), and what the chain has of it recorded again.
    const cut = recent.removalCut();
    const removals = recent.inRemovalOrder([...new Map([...cut, ...gone, ...ofRewritten].map((stored) => [stored.id, stored])).values()], cut[0]?.log.transactionHash ?? null);
    const sorted = this.sortOut(recent, ordered, new Set(removals.map((stored) => stored.id)));
    seenOnChain(recent, sorted.kept);
    return { removals, fresh: sorted.fresh, skipped: ordered.length - sorted.fresh.length };
  }

  /**
   * What to record: new logs, logs a reorg removed that are on chain again (recorded again under an id
   * derived from their removal, so racing ingesters agree on it), and logs whose stored generation the plan
   * removes (`removing`: a rewritten transaction's, recorded again under the id of that removal). The rest
   * is `kept`: stored already with the same content.
   */
  private sortOut(recent: RecentLogs, ordered: readonly Delivered[], removing: ReadonlySet<string>): { fresh: Fresh[]; kept: Delivered[] } {
    const fresh: Fresh[] = [];
    const kept: Delivered[] = [];
    for (const delivered of ordered) {
      const { id, log } = delivered;
      const stored = recent.get(id);
      // Literals, not spreads: a backfill makes one per log (docs/performance.md).
      if (stored === undefined) fresh.push({ id, log, eventId: id });
      else if (stored.removalId !== null) fresh.push({ id, log, eventId: logRecordedAgainEventId(stored.removalId) });
      else if (removing.has(id)) fresh.push({ id, log, eventId: logRecordedAgainEventId(removalIdOf(this.options.chainId, stored)) });
      else kept.push(delivered);
    }
    return { fresh, kept };
  }

  /**
   * Plans `logs` (in chain order, repeats counted as already ingested) against the stream's
   * current tail and appends; another ingester appending first means: refresh, plan again.
   * `through`: the block up to which the delivery holds every log the chain has (null: not a chain scan).
   * Where the plan found stored logs re-mined is saved before its events are appended, and vouched for
   * (up to `through`) once they are: a crash in between must not have a restart take those blocks for ingested.
   */
  private async append(logs: readonly RecordedLog[], through: bigint | null, plan: (recent: RecentLogs, ordered: readonly Delivered[]) => Plan): Promise<ReconcileReport> {
    const ordered = delivered(logs);
    const repeats = logs.length - ordered.length;
    // What every attempt wrote: a racer's append may interrupt one after some batches.
    const written = { appended: 0, removed: 0, tokensRecorded: 0 };
    for (let attempt = 0; ; attempt++) {
      const recent = await this.loadRecent();
      try {
        const planned = plan(recent, ordered);
        await this.saveMoved(recent);
        written.tokensRecorded += await this.recordTokens(planned.fresh.map((d) => d.log));
        await this.appendEvents(recent, planned, written);
        if (through !== null) {
          recent.vouch(through);
          await this.saveMoved(recent);
        }
        // The last plan counts the logs earlier attempts wrote as stored: subtract them once.
        return { ...written, alreadyIngested: repeats + planned.skipped + planned.fresh.length - written.appended };
      } catch (e) {
        if (!(e instanceof WrongExpectedVersion) || attempt >= MAX_RACE_RETRIES) throw e;
        const revision = recent.revision;
        await recent.refresh(this.options.store, this.stream);
        // Nobody appended to the stream, yet it refused the plan: an id it holds before the index's tail (a log
        // removed long ago, its transaction mined again). The index learns those removals, and the plan is made again.
        if (e.stream === this.stream && recent.revision === revision) await recent.readRemovedBefore(this.options.store, this.stream);
        this.knownTokens = null;
      }
    }
  }

  /** Appends in batches at the exact revision; adds what each batch wrote to `written` (a racer may have written the same batch first). */
  private async appendEvents(recent: RecentLogs, { removals, fresh }: Plan, written: { appended: number; removed: number }): Promise<void> {
    const { chainId } = this.options;
    const events: Outgoing[] = [
      ...removals.map((stored) => {
        const removalId = removalIdOf(chainId, stored);
        return { event: removalEvent(removalId, stored), bytes: approxBytes(stored.log), removal: true, index: () => recent.removed(stored, removalId) };
      }),
      ...fresh.map(({ id, eventId, log }) => ({ event: encodeEvent(eventId, { type: 'OrderbookLogRecorded', data: log }), bytes: approxBytes(log), removal: false, index: () => recent.recorded(id, eventId, log) })),
    ];
    for (const batch of batches(events, this.options.batchSize ?? 500)) {
      const result = await this.options.store.append(this.stream, batch.map((b) => b.event), recent.revision);
      recent.revision = result.nextRevision;
      batch.forEach((b) => b.index());
      if (!result.written) continue;
      const removed = batch.filter((b) => b.removal).length;
      written.removed += removed;
      written.appended += batch.length - removed;
    }
  }

  private async loadRecent(): Promise<RecentLogs> {
    if (this.recent) return this.recent;
    const { store } = this.options;
    const floor = await store.readCheckpoint(this.floorCheckpoint);
    const moved = async () => (await store.readCheckpoint(this.movedCheckpoint))?.snapshot;
    const recent = await RecentLogs.load(store, this.stream, this.options.recentLogs, { floor: floor?.snapshot, moved });
    const floorText = recent.floorText();
    if (floorText !== null && floorText !== floor?.snapshot) await this.saveText(this.floorCheckpoint, floorText);
    this.savedMoved = recent.movedText();
    this.recent = recent;
    return recent;
  }

  /**
   * Where the chain now has stored logs a rescan found re-mined into another block, kept in a checkpoint
   * before anything of the delivery is appended: a restart must not take them for logs of the blocks they
   * were recorded in (a reorg of their new block, starting above the old one, would miss them).
   */
  private async saveMoved(recent: RecentLogs): Promise<void> {
    const text = recent.movedText();
    if (text === this.savedMoved) return;
    if (await this.saveText(this.movedCheckpoint, text)) this.savedMoved = text;
  }

  /** Saves `text` as checkpoint `name`, at the store's head; false for an empty store, which holds no log it could be about. */
  private async saveText(name: string, text: string): Promise<boolean> {
    const position = await this.options.store.headPosition();
    if (position === undefined) return false;
    await this.options.store.saveCheckpoint(name, { position, snapshot: text });
    return true;
  }

  /** Records metadata for every token the logs mention that the ledger has not seen, before the logs. */
  private async recordTokens(logs: readonly RecordedLog[]): Promise<number> {
    const known = await this.loadKnownTokens();
    const firstMentions = this.firstMentions(logs, known);
    const unseen = [...firstMentions.keys()];
    if (unseen.length === 0) return 0;
    const resolved = await this.options.tokens.resolve(firstMentions);
    const events = unseen.map((address) => {
      const meta = resolved.get(address) ?? { symbol: null, reason: 'resolver returned no answer' };
      return encodeEvent(tokenEventId(this.options.chainId, address), {
        type: 'TokenMetadataRecorded',
        data: { chainId: this.options.chainId, address: address as `0x${string}`, symbol: meta.symbol, reason: meta.reason },
      });
    });
    const result = await this.options.store.append(this.tokenStream, events, this.tokenRevision);
    this.tokenRevision = result.nextRevision;
    unseen.forEach((a) => known.add(a));
    return result.written ? unseen.length : 0;
  }

  /**
   * Each token the logs mention that is not `known`, in address order, with the block of the
   * first log (they come in chain order) that mentions it: there the token's contract must exist.
   */
  private firstMentions(logs: readonly RecordedLog[], known: ReadonlySet<string>): Map<string, bigint> {
    const first = new Map<string, bigint>();
    for (const log of logs) {
      for (const token of this.options.tokensOf(log)) {
        const address = token.toLowerCase();
        if (!known.has(address) && !first.has(address)) first.set(address, log.blockNumber);
      }
    }
    return new Map([...first].sort(([a], [b]) => (a < b ? -1 : 1)));
  }

  private async loadKnownTokens(): Promise<Set<string>> {
    if (this.knownTokens) return this.knownTokens;
    const known = new Set<string>();
    let revision: ExpectedRevision = NO_STREAM;
    const last = await this.options.store.readLastEvent(this.tokenStream);
    if (last !== undefined) {
      for await (const event of this.options.store.readStream(this.tokenStream)) {
        const decoded = decodeEvent(event);
        if (decoded._tag === 'Right' && decoded.right.type === 'TokenMetadataRecorded') known.add(decoded.right.data.address);
        revision = event.revision;
      }
    }
    this.tokenRevision = revision;
    this.knownTokens = known;
    return known;
  }
}

interface Outgoing {
  readonly event: NewEvent;
  readonly bytes: number;
  readonly removal: boolean;
  /** Records the event in the ingester's index once appended. */
  readonly index: () => void;
}

/** A log's JSON size, roughly: its data and topics dominate, the other fields are ~400 bytes. */
const approxBytes = (log: RecordedLog): number => log.data.length + 70 * log.topics.length + 400;

/** Consecutive batches of at most `maxCount` events and MAX_APPEND_BYTES (a lone bigger event goes alone). */
function batches(events: readonly Outgoing[], maxCount: number): Outgoing[][] {
  const out: Outgoing[][] = [];
  let batch: Outgoing[] = [];
  let bytes = 0;
  for (const event of events) {
    if (batch.length > 0 && (batch.length >= maxCount || bytes + event.bytes > MAX_APPEND_BYTES)) {
      out.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(event);
    bytes += event.bytes;
  }
  if (batch.length > 0) out.push(batch);
  return out;
}

/** The logs in chain order, repeats dropped, each with its id; logs that contradict each other are a LogConflict. */
function delivered(logs: readonly RecordedLog[]): Delivered[] {
  const ordered = inChainOrder(logs);
  if (E.isLeft(ordered)) throw new LogConflict(`${ordered.left}; nothing was appended`);
  return ordered.right.map((log) => ({ id: recordedLogId(log), log }));
}

/** The ledger holds this log removed from this very block: the block left the chain (a file with it predates the reorg). */
function removedFrom(recent: RecentLogs, { id, log }: Delivered): boolean {
  const stored = recent.get(id);
  return stored !== undefined && isRemoved(stored) && stored.log.blockHash === log.blockHash;
}

/** Canonical logs of a chain scan the ledger holds already: the chain may have them in another block now (RecentLogs.liveIn). */
function seenOnChain(recent: RecentLogs, kept: readonly Delivered[]): void {
  for (const { id, log } of kept) recent.seenAt(id, log);
}

const NOTHING_REMOVED: ReadonlySet<string> = new Set();

/** A file's logs: one at a stored log's place with other content is a LogConflict (a file cannot say which is current). */
function assertSameContent(recent: RecentLogs, ordered: readonly Delivered[]): void {
  for (const { id, log } of ordered) {
    const stored = recent.get(id);
    if (stored !== undefined && !sameContent(stored.log, log)) throw conflict(stored, log);
  }
}

/**
 * Transactions a chain scan has with other content at a stored log's place, from another block than the
 * stored one (see sortOutCanonical). From the same block it is a LogConflict: one block cannot hold both.
 */
function rewrittenTransactions(recent: RecentLogs, ordered: readonly Delivered[]): Set<string> {
  const rewritten = new Set<string>();
  for (const { id, log } of ordered) {
    const stored = recent.get(id);
    if (stored === undefined || sameContent(stored.log, log)) continue;
    if (stored.log.blockHash === log.blockHash) throw conflict(stored, log);
    rewritten.add(log.transactionHash);
  }
  return rewritten;
}

/**
 * The id of the removal of a stored log's latest generation. A first removal keeps the id stored ledgers
 * have (by block hash); a later one derives from the generation it compensates, since a chain flipping
 * back to a fork would have the block hash repeat.
 */
const removalIdOf = (chainId: number, { id, recordedId, log }: StoredLog): string =>
  recordedId === id ? logRemovedEventId(chainId, log.transactionHash, Number(log.logIndex), log.blockHash) : logRemovedAgainEventId(recordedId);

const removalEvent = (removalId: string, { recordedId, log }: StoredLog): NewEvent =>
  encodeEvent(removalId, { type: 'OrderbookLogRemoved', data: { ...log, logId: recordedId, reason: REORG_REASON } });

const where = (log: RecordedLog): string => `block ${log.blockNumber} (${log.blockHash}), log index ${log.logIndex}`;

/** The chain has other content at a stored log's place than the ledger can take. */
function conflict(stored: StoredLog, log: RecordedLog): LogConflict {
  const id = `log ${stored.id} (transaction ${log.transactionHash}, log index ${log.logIndex})`;
  const was = isRemoved(stored) ? 'was stored, until a reorg removed it,' : 'is stored';
  return new LogConflict(`${id} ${was} from ${where(stored.log)} with other content than the chain now has at ${where(log)}; ingestion stops (see docs/chain-ingestion.md)`);
}
