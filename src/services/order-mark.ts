/**
 * The newest order event the executor recorded in a SQLite store, kept beside the database
 * (`<db file>.executor.mark`) and so outside every backup of it. The executor writes it after
 * each order event and before acting on it: every order it places is preceded by a mark naming
 * its `Submitting` or a later event. A store that lacks the marked event is therefore an older
 * copy put back (a restored backup) or another ledger put at the path, and the orders placed
 * since are at the broker but not in the ledger: placing the commands it derives again would
 * place them twice. The executor refuses to start on such a store unless told when the copy
 * was taken (LEDGER_RECONCILE_SINCE), from which it adopts those orders instead.
 */
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import * as t from 'io-ts';
import * as E from 'fp-ts/lib/Either.js';
import { IsoTime } from '../domain/codecs.ts';
import { storeSidecarPath } from '../eventstore/store-location.ts';
import type { Logger } from '../log.ts';
import { KeyedQueue } from '../keyed-queue.ts';

const Revision = t.refinement(t.string, (s) => /^\d+$/.test(s), 'a revision');
const MarkFile = t.readonly(t.type({ commandId: t.string, revision: Revision, at: IsoTime }));
/** One order event: the command's order stream, its revision there, and when it was recorded. */
export type OrderMark = t.TypeOf<typeof MarkFile>;

export interface OrderMarks {
  readonly path: string;
  /** The mark, or undefined when there is none (or it cannot be read: said in the log, never a reason to stop hedging). */
  read(): Promise<OrderMark | undefined>;
  /** Replaces the mark; a failure is logged, not thrown (it weakens the restore check, it does not endanger an order). */
  write(mark: OrderMark): Promise<void>;
}

/** The marks of the store at `storeUrl`: undefined for memory and EventStoreDB, which no file sits beside. */
export function orderMarksFor(storeUrl: string): ((log: Logger) => OrderMarks) | undefined {
  const path = storeSidecarPath(storeUrl, '.executor.mark');
  return path === undefined ? undefined : (log) => fileMarks(path, log);
}

/**
 * Each mark file's writes in this process, one at a time in the order asked: workers record side by
 * side, and two writes at once would share the temp file (a lost or torn mark) or land out of order
 * (a mark older than the newest event, which a backup taken in between holds).
 */
const writing = new KeyedQueue();

function fileMarks(path: string, log: Logger): OrderMarks {
  const temp = `${path}.${process.pid}.tmp`;
  const replace = async (mark: OrderMark): Promise<void> => {
    try {
      await writeFile(temp, JSON.stringify(mark));
      await rename(temp, path); // never half a mark
    } catch (e) {
      log.warn({ err: e, markPath: path }, 'cannot write the executor mark: a restored backup may go unnoticed');
      await rm(temp, { force: true }).catch(() => undefined);
    }
  };
  return {
    path,
    async read() {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') log.warn({ err: e, markPath: path }, 'cannot read the executor mark: the restore check is skipped');
        return undefined;
      }
      const mark = E.chainW((json: unknown) => MarkFile.decode(json))(E.tryCatch(() => JSON.parse(text) as unknown, (e) => e));
      if (E.isRight(mark)) return mark.right;
      log.warn({ markPath: path }, 'the executor mark is not readable JSON of an order event: the restore check is skipped');
      return undefined;
    },
    write: (mark) => writing.run(path, () => replace(mark)),
  };
}
