/**
 * EventStoreDB's expected-revision and idempotency rules, run inside the SQLite store's write
 * transaction (so the checks and the inserts see one state).
 *
 * - exact / NO_STREAM equal to the stream's last revision: write.
 * - exact / NO_STREAM below it: idempotent success, nothing written, when the stream holds exactly
 *   these ids at the following revisions; otherwise WrongExpectedVersion (also when only some match
 *   or the stream ends early, as EventStoreDB's "corrupted idempotency").
 * - ANY: if the first id is already in this stream, the same check from its revision; else write.
 *   Stricter than EventStoreDB, which dedupes ANY only from a cache and may write duplicates.
 * - An event id stored in another stream (or twice in one append): WrongExpectedVersion saying
 *   where; event ids are unique store-wide here (UNIQUE(event_id)), unlike EventStoreDB.
 * - An empty append is only a revision check, as in EventStoreDB: it writes nothing and returns
 *   the current revision (-1 for a missing stream).
 */
import Database from 'better-sqlite3';
import { WrongExpectedVersion } from './errors.ts';
import { ANY, NO_STREAM, type AppendResult, type ExpectedRevision, type NewEvent } from './port.ts';
import type { Statements } from './sqlite-statements.ts';

/** Revision of a missing stream's "last event", as EventStoreDB counts. */
const NONE = -1;

function conflict(stream: string, expected: ExpectedRevision, actual: number): WrongExpectedVersion {
  return new WrongExpectedVersion(stream, expected, actual === NONE ? NO_STREAM : BigInt(actual));
}

/** Does the stream hold exactly these ids, in order, right after revision `after`? */
function storedAfter(sql: Statements, stream: string, after: number, events: readonly NewEvent[]): boolean {
  const ids = sql.idsAfter.all(stream, after, events.length);
  return ids.length === events.length && ids.every((id, i) => id === events[i]?.id);
}

const repeat = (after: number, events: readonly NewEvent[]): AppendResult => ({
  nextRevision: BigInt(after + events.length),
  written: false,
});

const isDuplicateId = (error: unknown): boolean =>
  error instanceof Database.SqliteError && error.code === 'SQLITE_CONSTRAINT_UNIQUE';

function insertAll(sql: Statements, stream: string, events: readonly NewEvent[], expected: ExpectedRevision, actual: number): AppendResult {
  events.forEach((event, i) => {
    const metadata = event.metadata === undefined ? null : JSON.stringify(event.metadata);
    try {
      sql.insert.run(event.id, stream, actual + 1 + i, event.type, JSON.stringify(event.data), metadata);
    } catch (error) {
      if (!isDuplicateId(error)) throw error;
      const owner = sql.locate.get(event.id);
      const e = conflict(stream, expected, actual);
      e.message += ` (event id ${event.id} is already stored in ${owner?.stream}@${owner?.revision})`;
      throw e;
    }
  });
  return { nextRevision: BigInt(actual + events.length), written: events.length > 0 };
}

function appendAny(sql: Statements, stream: string, events: readonly NewEvent[], actual: number): AppendResult {
  const first = events[0] && sql.locate.get(events[0].id);
  if (first?.stream !== stream) return insertAll(sql, stream, events, ANY, actual);
  if (storedAfter(sql, stream, first.revision - 1, events)) return repeat(first.revision - 1, events);
  throw conflict(stream, ANY, actual);
}

/** Call inside an IMMEDIATE transaction. */
export function appendEvents(sql: Statements, stream: string, events: readonly NewEvent[], expected: ExpectedRevision): AppendResult {
  if (typeof expected === 'bigint' && expected < 0n) throw new RangeError(`expected revision must be >= 0, got ${expected}`);
  const actual = sql.lastRevision.get(stream) ?? NONE;
  if (expected === ANY) return appendAny(sql, stream, events, actual);
  const after = expected === NO_STREAM ? NONE : Number(expected);
  if (after === actual) return insertAll(sql, stream, events, expected, actual);
  if (after < actual && events.length > 0 && storedAfter(sql, stream, after, events)) return repeat(after, events);
  throw conflict(stream, expected, actual);
}
