/**
 * Page sources over the SQLite store and a pull-based reader over them: one statement per page,
 * one event per `next()`, so memory stays flat however long the read.
 */
import { StreamNotFound } from './errors.ts';
import type { RecordedEvent } from './port.ts';
import { toRecorded, type Row, type Statements } from './sqlite-statements.ts';

/** Up to `limit` rows after the previous page; fewer means there was nothing more (for now). */
export type PageSource = (limit: number) => Row[];

export const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

/** Stands in for a row already delivered, so the page array keeps its shape (see PageReader.step). */
const EMPTY_ROW: Row = [0, '', '', 0, '', '', null];

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
 * starts there: a selective filter does not rescan the rows it skipped.
 */
export function globalPages(sql: Statements, after: number, ranges: readonly string[]): PageSource {
  const statement = sql.globalPage(ranges.length / 2);
  return (limit) => {
    const head = sql.head.get() ?? 0;
    const rows = statement.all(after, head, ...ranges, limit);
    after = rows.length < limit ? head : (rows[rows.length - 1] as Row)[0];
    return rows;
  };
}

/** Reads pages on demand; `maxCount` caps the events delivered. */
export class PageReader implements AsyncIterableIterator<RecordedEvent> {
  private page: Row[] = [];
  private index = 0;
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
    try {
      return Promise.resolve(this.step());
    } catch (error) {
      this.exhausted = true;
      return Promise.reject(error);
    }
  }

  return(): Promise<IteratorResult<RecordedEvent, undefined>> {
    this.exhausted = true;
    this.page = [];
    this.index = 0;
    return Promise.resolve(DONE);
  }

  private step(): IteratorResult<RecordedEvent, undefined> {
    if (this.index === this.page.length) {
      if (this.exhausted) return DONE;
      this.fill();
    }
    const row = this.page[this.index];
    if (row === undefined) return DONE;
    // Let go of the delivered row (its data is kilobytes of JSON text): otherwise every
    // young-generation GC during the page copies the rows already read along with the rest.
    this.page[this.index] = EMPTY_ROW;
    this.index++;
    this.remaining--;
    return { value: toRecorded(row), done: false };
  }

  private fill(): void {
    const limit = Math.min(this.pageSize, this.remaining);
    this.page = this.source(limit);
    this.index = 0;
    this.exhausted = this.page.length < limit || this.page.length === this.remaining;
  }
}
