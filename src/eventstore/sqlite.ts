/**
 * The embedded event store: one SQLite file (WAL), EventStoreDB's semantics behind the same port.
 * better-sqlite3 is synchronous, so every operation runs to completion inside one call; the
 * promises only keep the port's shape. Writers serialize on `BEGIN IMMEDIATE` across connections
 * and processes.
 */
import { realpathSync, statSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { StoreConfigError, StoreUnavailable } from './errors.ts';
import {
  asPosition,
  type AppendResult, type Checkpoint, type EventStore, type ExpectedRevision, type From, type NewEvent, type Position,
  type ReadAllOptions, type ReadStreamOptions, type RecordedEvent,
} from './port.ts';
import { appendEvents } from './sqlite-append.ts';
import { openDatabase, translateSqliteError, type Where } from './sqlite-connection.ts';
import { globalPages, PageReader, streamPages, type PageSource } from './sqlite-pages.ts';
import { decodeFrom, encodePosition, prefixRanges, prepareStatements, toRecorded, type Statements } from './sqlite-statements.ts';
import { signalAppend, SqliteSubscription } from './sqlite-subscription.ts';
import { MEMORY } from './store-location.ts';

export interface SqliteStoreOptions {
  /** How long an operation waits for another writer's lock before StoreUnavailable. */
  readonly busyTimeoutMs?: number;
  /** Rows per read statement. */
  readonly pageSize?: number;
  /** Backoff bounds for noticing appends made by other processes. */
  readonly pollMs?: { readonly min: number; readonly max: number };
}

const DEFAULTS = { busyTimeoutMs: 5_000, pageSize: 1_000, pollMs: { min: 25, max: 1_000 } } as const;

let memoryStores = 0;

export class SqliteEventStore implements EventStore {
  private readonly db: Database.Database;
  private readonly sql: Statements;
  private readonly where: Where;
  private readonly options: Required<SqliteStoreOptions>;
  /** Identifies the database for in-process append signals. */
  private readonly key: string;
  private readonly subscriptions = new Set<SqliteSubscription>();
  private readonly appendTx: Database.Transaction<typeof appendEvents>;
  /** The path and identity (device, inode) of the file opened; undefined in memory. */
  private readonly file: { readonly path: string; readonly id: string } | undefined;

  /** Opens or creates `file` (its directory must exist); throws StoreConfigError or StoreUnavailable. */
  constructor(file: string, options: SqliteStoreOptions = {}) {
    this.options = { ...DEFAULTS, ...options };
    const memory = file === MEMORY;
    this.where = { label: memory ? 'in-memory SQLite store' : `SQLite store ${file}`, busyTimeoutMs: this.options.busyTimeoutMs };
    this.db = openDatabase(file, this.where);
    this.key = memory ? `${MEMORY}#${++memoryStores}` : realpathSync(file);
    this.file = memory ? undefined : { path: file, id: fileId(file) ?? '' };
    this.sql = prepareStatements(this.db);
    this.appendTx = this.db.transaction(appendEvents);
  }

  append(stream: string, events: readonly NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    return this.run(() => {
      this.assertSameFile();
      const result = this.appendTx.immediate(this.sql, stream, events, expected);
      if (result.written) signalAppend(this.key);
      return result;
    });
  }

  readStream(stream: string, options: ReadStreamOptions = {}): AsyncIterable<RecordedEvent> {
    const from = Number(options.fromRevision ?? 0n);
    return this.reader(() => streamPages(this.sql, stream, from), options.maxCount);
  }

  readLastEvent(stream: string): Promise<RecordedEvent | undefined> {
    return this.run(() => {
      const row = this.sql.lastEvent.get(stream);
      return row && toRecorded(row);
    });
  }

  readAll(options: ReadAllOptions = {}): AsyncIterable<RecordedEvent> {
    return this.reader(() => this.globalSource(options.from ?? 'start', options.prefixes), options.maxCount);
  }

  subscribe(options: { readonly from: From; readonly prefixes?: readonly string[] }): SqliteSubscription {
    this.assertOpen();
    const source = this.lazySource(() => this.globalSource(options.from, options.prefixes));
    const subscription = new SqliteSubscription(source, {
      key: this.key,
      pageSize: this.options.pageSize,
      pollMs: this.options.pollMs,
      onClose: (s) => this.subscriptions.delete(s),
    });
    this.subscriptions.add(subscription);
    return subscription;
  }

  /** Positions are dense row ids, so the head is the number of events stored. */
  estimateEventCount(): Promise<number | undefined> {
    return this.run(() => this.sql.head.get() ?? 0);
  }

  headPosition(options: Pick<ReadAllOptions, 'prefixes'> = {}): Promise<Position | undefined> {
    return this.run(() => {
      this.assertSameFile();
      const ranges = prefixRanges(options.prefixes);
      const head = ranges.length === 0 ? this.sql.head.get() : this.sql.lastPositionIn(ranges.length / 2).get(...ranges);
      return head == null ? undefined : encodePosition(head);
    });
  }

  readCheckpoint(name: string): Promise<Checkpoint | undefined> {
    return this.run(() => {
      const row = this.sql.readCheckpoint.get(name);
      if (!row) return undefined;
      const position = asPosition(row.position);
      return row.snapshot === null ? { position } : { position, snapshot: row.snapshot };
    });
  }

  saveCheckpoint(name: string, checkpoint: Checkpoint): Promise<void> {
    return this.run(() => {
      // Validated so a foreign position never becomes a checkpoint that cannot be resumed from.
      decodeFrom(checkpoint.position);
      this.assertSameFile();
      this.sql.saveCheckpoint.run(name, checkpoint.position, checkpoint.snapshot ?? null);
    });
  }

  async close(): Promise<void> {
    await Promise.all([...this.subscriptions].map((s) => s.close()));
    if (this.db.open) this.db.close();
  }

  private globalSource(from: From, prefixes?: readonly string[]): PageSource {
    return globalPages(this.sql, decodeFrom(from), prefixRanges(prefixes));
  }

  /** A re-iterable read; each iteration starts lazily, so errors (StreamNotFound…) surface while iterating. */
  private reader(make: () => PageSource, maxCount?: number): AsyncIterable<RecordedEvent> {
    return { [Symbol.asyncIterator]: () => new PageReader(this.lazySource(make), this.options.pageSize, maxCount) };
  }

  /** Creates the source on the first page, inside the guard like every page after it. */
  private lazySource(make: () => PageSource): PageSource {
    let source: PageSource | undefined;
    return this.guard((limit: number) => (source ??= make())(limit));
  }

  /**
   * SQLite goes on reading and writing a file deleted or replaced under it (a restore copied over
   * a running store, a cleanup): what this process writes then reaches no other process and is
   * gone when it exits, while the others see another ledger at the path. Writes and the head
   * (health, watchdog) check that the path still names the file opened, and stop if not.
   */
  private assertSameFile(): void {
    if (this.file === undefined || fileId(this.file.path) === this.file.id) return;
    throw new StoreConfigError(
      `${this.where.label} was deleted or replaced since this process opened it: what it writes now would reach no other ` +
        'process and be lost at exit. Stop every process using the store, put the right file back, then restart',
    );
  }

  private assertOpen(): void {
    if (!this.db.open) throw new StoreUnavailable(`${this.where.label} is closed`);
  }

  /** Wraps a synchronous database call: checks the store is open and translates SQLite errors. */
  private guard<A extends unknown[], T>(work: (...args: A) => T): (...args: A) => T {
    return (...args) => {
      try {
        this.assertOpen();
        return work(...args);
      } catch (error) {
        throw translateSqliteError(error, this.where);
      }
    };
  }

  private run<T>(work: () => T): Promise<T> {
    try {
      return Promise.resolve(this.guard(work)());
    } catch (error) {
      return Promise.reject(error);
    }
  }
}

/** Device and inode of the file at `path`; undefined when there is none. */
function fileId(path: string): string | undefined {
  const stat = statSync(path, { bigint: true, throwIfNoEntry: false });
  return stat && `${stat.dev}:${stat.ino}`;
}
