/**
 * Page sources over the SQLite store and a pull-based reader over them: one statement per page,
 * one event per `next()`, so memory stays flat however long the read.
 */
import { setImmediate as yieldToIo } from 'node:timers/promises';
import { StreamNotFound } from './errors.ts';
import type { RecordedEvent } from './port.ts';
import { toRecorded, type Row, type Statements } from './sqlite-statements.ts';

/** Up to `limit` rows after the previous page; fewer means there was nothing more (for now). */
export type PageSource = (limit: number) => Row[];

export const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

/** Stands in for a row already delivered, so the page array keeps its shape. */
const EMPTY_ROW: Row = [0, '', '', 0, '', '', null];

/**
 * One page of rows, handed out in order as events. Each row is let go once delivered (its data
 * is kilobytes of JSON text): otherwise every young-generation GC during the page would copy the
 * rows already read along with the rest.
 */
export class PageCursor {
  private rows: Row[] = [];
  private index = 0;

  /** Starts on a new page; returns how many rows it has. */
  load(rows: Row[]): number {
    this.rows = rows;
    this.index = 0;
    return rows.length;
  }

  /**
   * A page with rows has been handed out in full, so the next read is another page of a long read.
   * Rows come from memory as microtasks alone: readers give the event loop one turn there, which keeps
   * the process's timers (the executor lock's heartbeat), HTTP requests and signals answered meanwhile.
   */
  pageDone(): boolean {
    return this.rows.length > 0 && this.index >= this.rows.length;
  }

  /** The next row as an event; undefined at the end of the page. */
  next(): RecordedEvent | undefined {
    const row = this.rows[this.index];
    if (row === undefined) return undefined;
    this.rows[this.index++] = EMPTY_ROW;
    return toRecorded(row);
  }
}

/** A stream's rows by revision; StreamNotFound when the first page is empty and the stream does not exist. */
export function streamPages(sql: Statements, stream: string, fromRevision: number): PageSource {
  let next = fromRevision;
  let checked = false;
  return (limit) => {
    const rows = sql.streamPage.all(stream, next, limit);
    if (rows.length === 0 && !checked && sql.streamExists.get(stream) === undefined) throw new StreamNotFound(stream);
    checked = true;
    next += rows.length;
    return rows;
  };
}

/**
 * Rows in global order after `after`, filtered by prefix ranges. Each page is bounded by the head
 * read just before it, so a short page proves nothing is left up to that head and the next page
 * starts there: a selective filter does not rescan the rows it skipped. A start past the head (a
 * checkpoint from a store restored since) stays where it is: the start is exclusive.
 */
export function globalPages(sql: Statements, after: number, ranges: readonly string[]): PageSource {
  const statement = sql.globalPage(ranges.length / 2);
  return (limit) => {
    const head = sql.head.get() ?? 0;
    const rows = statement.all(after, head, ...ranges, limit);
    // A page of LIMIT 0 (readAll with maxCount 0) has no last row and proves nothing.
    after = rows.length < limit ? Math.max(after, head) : (rows.at(-1)?.[0] ?? after);
    return rows;
  };
}

/** Reads pages on demand; `maxCount` caps the events delivered. */
export class PageReader implements AsyncIterableIterator<RecordedEvent> {
  private readonly cursor = new PageCursor();
  private exhausted = false;
  private remaining: number;

  constructor(
    private readonly source: PageSource,
    private readonly pageSize: number,
    maxCount = Infinity,
  ) {
    this.remaining = Math.max(0, maxCount); // a negative SQL LIMIT would mean "no limit"
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<RecordedEvent, undefined>> {
    if (this.cursor.pageDone() && !this.exhausted) return yieldToIo().then(() => this.settle());
    return this.settle();
  }

  private settle(): Promise<IteratorResult<RecordedEvent, undefined>> {
    try {
      return Promise.resolve(this.step());
    } catch (error) {
      this.exhausted = true;
      return Promise.reject(error);
    }
  }

  return(): Promise<IteratorResult<RecordedEvent, undefined>> {
    this.exhausted = true;
    this.cursor.load([]);
    return Promise.resolve(DONE);
  }

  private step(): IteratorResult<RecordedEvent, undefined> {
    const event = this.cursor.next() ?? (this.exhausted ? undefined : this.fill());
    if (event === undefined) return DONE;
    this.remaining--;
    return { value: event, done: false };
  }

  /** Reads the next page and returns its first event. */
  private fill(): RecordedEvent | undefined {
    const limit = Math.min(this.pageSize, this.remaining);
    const rows = this.cursor.load(this.source(limit));
    this.exhausted = rows < limit || rows === this.remaining;
    return this.cursor.next();
  }
}
