/**
 * Opening the SQLite file behind the event store, and translating SQLite's errors into the
 * port's typed errors so no raw SqliteError reaches a caller.
 */
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { StoreConfigError, StoreUnavailable } from './errors.ts';
import { migrate } from './sqlite-schema.ts';

/** What an error message names, and how long a locked file was waited for. */
export interface Where {
  readonly label: string;
  readonly busyTimeoutMs: number;
}

/** StoreUnavailable for what a retry may fix (locks, I/O), StoreConfigError for the rest; non-SQLite errors pass through. */
export function translateSqliteError(error: unknown, { label, busyTimeoutMs }: Where): unknown {
  if (!(error instanceof Database.SqliteError)) return error;
  const options = { cause: error };
  // Extended codes (SQLITE_IOERR_WRITE, SQLITE_BUSY_SNAPSHOT…) share their primary code's meaning.
  switch (error.code.split('_', 2).join('_')) {
    case 'SQLITE_BUSY':
    case 'SQLITE_LOCKED':
      return new StoreUnavailable(`${label} is locked by another connection or process (still busy after ${busyTimeoutMs} ms); retry later`, options);
    case 'SQLITE_IOERR':
    case 'SQLITE_FULL':
    case 'SQLITE_NOMEM':
    case 'SQLITE_PROTOCOL':
      return new StoreUnavailable(`${label}: ${error.message} (${error.code})`, options);
    case 'SQLITE_NOTADB':
      return new StoreConfigError(`${label} is not a SQLite database`, options);
    case 'SQLITE_CANTOPEN':
      return new StoreConfigError(`cannot open ${label}: does its directory exist, and may this user write there?`, options);
    default:
      return new StoreConfigError(`${label}: ${error.message} (${error.code})`, options);
  }
}

const WAL_AUTOCHECKPOINT_PAGES = 10_000;

/** A WAL file holding `pages` frames: its 32-byte header, then a 24-byte header and the page for each. */
const walBytes = (pages: number, pageSize: number): number => 32 + pages * (24 + pageSize);

function configure(db: Database.Database, label: string): void {
  // WAL: readers and the single writer never block each other, and commits append to one file.
  // 16 KiB pages (a new file only; an existing one keeps its size): orderbook logs are 2–3.5 KB
  // of JSON, and at 4 KiB each leaf holds one row, so every insert splits a page. Measured on
  // 10k 2.5 KB rows: 185 ms at 4 KiB, 75 ms at 16 KiB; single-row commits ~10% slower.
  db.pragma('page_size = 16384');
  const mode = db.pragma('journal_mode = WAL', { simple: true });
  if (!db.memory && mode !== 'wal') throw new StoreConfigError(`${label}: the file system refused WAL mode (got ${String(mode)})`);
  // FULL fsyncs the WAL at every commit. NORMAL survives a process crash but a power loss may drop
  // the last commits, and callers act on an acknowledged append or checkpoint at once (an executor's
  // Submitting precedes a broker order). Measured on the bench machine: ~7k vs ~70k single-row
  // commits/s; batched appends amortize the fsync.
  db.pragma('synchronous = FULL');
  // Checkpoint every 10,000 pages of WAL (~160 MiB at 16 KiB pages) instead of 1,000: random
  // event-id index pages rewritten by successive commits are copied to the database once, not
  // once per small checkpoint. Measured ~25% less CPU on batched appends.
  db.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
  // SQLite reuses the -wal file from its start after a checkpoint and never shrinks it, so a WAL
  // that outgrew the checkpoint interval (one large append, or checkpoints held back by a reader
  // during a long ingestion) would keep that size until the last connection closes. Once a
  // checkpoint has reset the WAL, the next commit truncates it to this limit: exactly what the
  // auto-checkpoint lets it reach (~164 MB at 16 KiB pages; files created with smaller pages keep
  // them, and their limit). Not less: a WAL cut below that must grow again in every interval, and
  // growing the file costs: a 4 MiB limit took ~40% off single appends and ~1/3 off batched ones,
  // with ~50% more CPU (bench:store). Set per connection; every connection of the store opens here.
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  db.pragma(`journal_size_limit = ${walBytes(WAL_AUTOCHECKPOINT_PAGES, pageSize)}`);
}

/**
 * A copy of a live store taken without its `-wal` file: while a process has the store open, its
 * commits (the schema's first) may all still be in the WAL, and the main file alone is an empty
 * WAL-mode database. Opened as it is, it would become a new, empty ledger (the chain ingested
 * again, every hedge decided and placed again), so it is refused.
 */
function assertNotCopiedWithoutWal(db: Database.Database, label: string): void {
  const tables = db.prepare("SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'").pluck().get() as number;
  if (tables === 0 && db.pragma('user_version', { simple: true }) === 0) {
    throw new EmptyWalWithoutWal(
      `${label} is an empty WAL-mode database without its -wal file: most likely a copy of a live store taken without ` +
        'its -wal file, which holds every event not yet checkpointed. Copy the store with sqlite3 ".backup" or VACUUM INTO ' +
        '(docs/operations.md#backing-up-and-restoring), or delete this file to start a new ledger',
    );
  }
}

/**
 * How long an empty WAL-mode file without its -wal is looked at again before it is refused as a
 * copy: another process creating the store (the roles started as separate processes at once)
 * turns a new file WAL in configure() and commits the schema a moment later, and in between its
 * file looks exactly like such a copy. Once it has committed, the -wal is there (or, closed, the
 * schema is in the file); a copy stays as it is.
 */
const CREATION_GRACE_MS = 2_000;
const CREATION_RECHECK_MS = 25;

class EmptyWalWithoutWal extends StoreConfigError {}

/** Opens (creating if missing) and migrates the store's database; `:memory:` for a private in-memory one. */
export function openDatabase(file: string, where: Where): Database.Database {
  const deadline = Date.now() + CREATION_GRACE_MS;
  for (;;) {
    try {
      return openOnce(file, where);
    } catch (error) {
      if (!(error instanceof EmptyWalWithoutWal) || Date.now() >= deadline) throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, CREATION_RECHECK_MS);
    }
  }
}

function openOnce(file: string, where: Where): Database.Database {
  let db: Database.Database | undefined;
  let found: string | undefined;
  try {
    const withoutWal = file !== ':memory:' && !existsSync(`${file}-wal`);
    db = new Database(file, { timeout: where.busyTimeoutMs });
    // Read before configure() sets WAL: a new file still says `delete` here.
    found = db.pragma('journal_mode', { simple: true }) as string;
    if (withoutWal && found === 'wal') assertNotCopiedWithoutWal(db, where.label);
    configure(db, where.label);
    migrate(db, where.label);
    return db;
  } catch (error) {
    if (found !== undefined && found !== 'wal' && !db!.memory) restoreJournalMode(db!, found);
    db?.close();
    throw translateSqliteError(error, where);
  }
}

/**
 * An open that fails leaves the file in the journal mode it found: another application's database keeps its
 * own, and a new file that could not be given its schema (a full disk, an I/O error) is a new file again.
 * Left WAL, that one would be an empty WAL-mode database without a -wal, refused ever after as a copy taken
 * without it, though the StoreUnavailable asked for a retry. Best effort, without waiting: a process that has
 * the file open (one creating it at the same moment) keeps it WAL.
 */
function restoreJournalMode(db: Database.Database, mode: string): void {
  try {
    db.pragma('busy_timeout = 0');
    db.pragma(`journal_mode = ${mode}`);
  } catch {
    // Left WAL: another process has the file open and gives it its schema, or the disk is still full.
  }
}
