/**
 * The SQLite store's schema, versioned with `PRAGMA user_version`: migration i brings a file from
 * version i to i+1. Append new migrations at the end; never edit a released one.
 */
import type Database from 'better-sqlite3';
import { StoreConfigError } from './errors.ts';

const MIGRATIONS: readonly string[] = [
  // v1. position is the rowid, so the global order costs no extra index; UNIQUE(stream, revision)
  // doubles as the index for stream reads and last-revision lookups.
  `CREATE TABLE events (
     position INTEGER PRIMARY KEY,
     event_id TEXT NOT NULL UNIQUE,
     stream   TEXT NOT NULL,
     revision INTEGER NOT NULL,
     type     TEXT NOT NULL,
     data     TEXT NOT NULL,
     metadata TEXT,
     UNIQUE (stream, revision)
   ) STRICT;
   CREATE TABLE checkpoints (
     name     TEXT PRIMARY KEY,
     position TEXT NOT NULL,
     snapshot TEXT
   ) STRICT;`,
];

const SCHEMA_VERSION = MIGRATIONS.length;

const userVersion = (db: Database.Database): number => db.pragma('user_version', { simple: true }) as number;

function assertKnown(version: number, label: string): void {
  if (version > SCHEMA_VERSION) {
    throw new StoreConfigError(
      `${label} was created by a newer hedge-ledger (schema v${version}, this build knows v${SCHEMA_VERSION}); upgrade hedge-ledger`,
    );
  }
}

function assertOurs(db: Database.Database, label: string): void {
  const tables = db.prepare("SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'").pluck().get() as number;
  if (tables > 0) throw new StoreConfigError(`${label} is a SQLite database, but not a hedge-ledger event store`);
}

/** Brings the file to SCHEMA_VERSION; refuses files from newer builds and foreign databases. */
export function migrate(db: Database.Database, label: string): void {
  const found = userVersion(db);
  assertKnown(found, label);
  if (found === SCHEMA_VERSION) return;
  db.transaction(() => {
    // Re-read under the write lock: another process may have migrated since.
    const version = userVersion(db);
    assertKnown(version, label);
    if (version === 0) assertOurs(db, label);
    for (const sql of MIGRATIONS.slice(version)) db.exec(sql);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}
