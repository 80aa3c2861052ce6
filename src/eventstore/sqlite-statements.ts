/**
 * The SQLite store's prepared statements and its row <-> port conversions. Reads use `.raw()`
 * rows (arrays, no per-row key objects) in pages of `.all()`, so no cursor outlives a call.
 */
import type Database from 'better-sqlite3';
import { StoreConfigError } from './errors.ts';
import { asPosition, type From, type Json, type Position, type RecordedEvent } from './port.ts';

export type Row = [position: number, id: string, stream: string, revision: number, type: string, data: string, metadata: string | null];

const COLUMNS = 'position, event_id, stream, revision, type, data, metadata';

// ---- positions: the rowid, written as 20 zero-padded digits so string order is numeric order ----

const POSITION = /^\d{20}$/;

export const encodePosition = (position: number): Position => asPosition(String(position).padStart(20, '0'));

/** The rowid a read starts after (exclusive). */
export function decodeFrom(from: From): number {
  if (from === 'start') return 0;
  if (!POSITION.test(from)) throw new StoreConfigError(`not a position of the SQLite store: ${JSON.stringify(from)}`);
  return Number(from);
}

// ---- rows ----

/** Text that is not JSON comes back as a JSON string, so decodeEvent reports a CorruptEvent and reading goes on. */
function parseJson(text: string): Json {
  try {
    return JSON.parse(text) as Json;
  } catch {
    return text;
  }
}

export const toRecorded = (row: Row): RecordedEvent => ({
  stream: row[2],
  type: row[4],
  id: row[1],
  revision: BigInt(row[3]),
  position: encodePosition(row[0]),
  data: parseJson(row[5]),
  metadata: row[6] === null ? null : parseJson(row[6]),
});

// ---- stream-name prefixes as [from, to) ranges (SQLite compares UTF-8 bytes, i.e. code points) ----

function prefixEnd(prefix: string): string {
  const points = Array.from(prefix);
  const last = points.pop()?.codePointAt(0) ?? 0;
  if (last >= 0x10ffff) throw new RangeError(`unsupported stream prefix ${JSON.stringify(prefix)}`);
  return points.join('') + String.fromCodePoint(last === 0xd7ff ? 0xe000 : last + 1);
}

/** Flat [from1, to1, from2, to2…]; empty when any prefix is '' (everything matches). */
export function prefixRanges(prefixes: readonly string[] = []): string[] {
  if (prefixes.includes('')) return [];
  return prefixes.flatMap((p) => [p, prefixEnd(p)]);
}

// ---- statements ----

const rangesSql = (rangeCount: number): string => Array.from({ length: rangeCount }, () => '(stream >= ? AND stream < ?)').join(' OR ');

function globalPageSql(rangeCount: number): string {
  const ranges = rangesSql(rangeCount);
  // NOT INDEXED keeps the planner on the rowid range (the global order) instead of the
  // (stream, revision) index, which would need a sort of every matching row per page.
  return `SELECT ${COLUMNS} FROM events NOT INDEXED
          WHERE position > ? AND position <= ?${ranges ? ` AND (${ranges})` : ''}
          ORDER BY position LIMIT ?`;
}

const lastPositionSql = (rangeCount: number): string =>
  `SELECT position FROM events NOT INDEXED WHERE ${rangesSql(rangeCount)} ORDER BY position DESC LIMIT 1`;

/** A statement per number of prefix ranges, prepared on first use. */
function perRangeCount<S>(prepare: (rangeCount: number) => S): (rangeCount: number) => S {
  const prepared = new Map<number, S>();
  return (rangeCount) => {
    let statement = prepared.get(rangeCount);
    if (!statement) prepared.set(rangeCount, (statement = prepare(rangeCount)));
    return statement;
  };
}

export function prepareStatements(db: Database.Database) {
  const rows = <P extends unknown[]>(sql: string) => db.prepare<P, Row>(sql).raw(true);
  return {
    lastRevision: db.prepare<[string], number | null>('SELECT max(revision) FROM events WHERE stream = ?').pluck(),
    idsAfter: db.prepare<[string, number, number], string>(
      'SELECT event_id FROM events WHERE stream = ? AND revision > ? ORDER BY revision LIMIT ?',
    ).pluck(),
    locate: db.prepare<[string], { stream: string; revision: number }>('SELECT stream, revision FROM events WHERE event_id = ?'),
    insert: db.prepare<[string, string, number, string, string, string | null]>(
      'INSERT INTO events (event_id, stream, revision, type, data, metadata) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    streamPage: rows<[string, number, number]>(`SELECT ${COLUMNS} FROM events WHERE stream = ? AND revision >= ? ORDER BY revision LIMIT ?`),
    streamExists: db.prepare<[string], number>('SELECT 1 FROM events WHERE stream = ? LIMIT 1').pluck(),
    lastEvent: rows<[string]>(`SELECT ${COLUMNS} FROM events WHERE stream = ? ORDER BY revision DESC LIMIT 1`),
    head: db.prepare<[], number | null>('SELECT max(position) FROM events').pluck(),
    /** Params: ...ranges. The newest event of those streams, found walking back the global order. */
    lastPositionIn: perRangeCount((rangeCount) => db.prepare<string[], number>(lastPositionSql(rangeCount)).pluck()),
    /** Params: after, upTo, ...ranges, limit. */
    globalPage: perRangeCount((rangeCount) => rows<unknown[]>(globalPageSql(rangeCount))),
    readCheckpoint: db.prepare<[string], { position: string; snapshot: string | null }>(
      'SELECT position, snapshot FROM checkpoints WHERE name = ?',
    ),
    saveCheckpoint: db.prepare<[string, string, string | null]>(
      `INSERT INTO checkpoints (name, position, snapshot) VALUES (?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET position = excluded.position, snapshot = excluded.snapshot`,
    ),
  };
}

export type Statements = ReturnType<typeof prepareStatements>;
