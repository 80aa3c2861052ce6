/**
 * The newest order event the executor recorded in a SQLite store, kept beside the database
 * (`<db file>.executor.mark`) and so outside every backup of it. The executor writes it after
 * each order event and before acting on it: every order it places is preceded by a mark naming
 * its `Submitting` or a later event. A store that lacks the marked event is therefore an older
 * copy put back (a restored backup) or another ledger put at the path, and the orders placed
 * since are at the broker but not in the ledger: placing the commands it derives again would
 * place them twice. The executor refuses to start on such a store unless told when the copy
 * was taken (LEDGER_RECONCILE_SINCE), from which it adopts those orders instead.
 *
 * The mark also remembers the commands refused at placement (HTTP 400) in the last 60 days,
 * Schwab's reach for reconciliation. Such a command has no order at the broker, so on a restored
 * copy nothing tells it apart from one whose order is there: it would adopt the order of its
 * symbol's next alike command (decided after the refusal), and that one would be placed again.
 */
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import * as t from 'io-ts';
import * as E from 'fp-ts/lib/Either.js';
import { IsoTime, decodeJsonText } from '../domain/codecs.ts';
import { storeSidecarPath } from '../eventstore/store-location.ts';
import type { Logger } from '../log.ts';
import { KeyedQueue } from '../keyed-queue.ts';

const Revision = t.refinement(t.string, (s) => /^\d+$/.test(s), 'a revision');
const Mark = t.type({ commandId: t.string, revision: Revision, at: IsoTime });
/** One order event: the command's order stream, its revision there, and when it was recorded. */
export type OrderMark = t.TypeOf<typeof Mark>;
const Refusal = t.readonly(t.type({ commandId: t.string, reason: t.string, at: IsoTime }));
/** A command's HedgeOrderFailed recorded when the broker refused its placement: no order of it exists. */
export type Refusal = t.TypeOf<typeof Refusal>;
/** Marks written before refusals were kept have none. */
const MarkFile = t.readonly(t.intersection([Mark, t.partial({ refusals: t.readonlyArray(Refusal) })]));
export type MarkFile = t.TypeOf<typeof MarkFile>;

/** How long a refusal is remembered: Schwab's orders list reaches 60 days back, so an older backup cannot be reconciled fully anyway. */
export const REFUSALS_KEPT_MS = 60 * 24 * 60 * 60_000;

export interface OrderMarks {
  readonly path: string;
  /** The mark, or undefined when there is none (or it cannot be read: said in the log, never a reason to stop hedging). */
  read(): Promise<MarkFile | undefined>;
  /**
   * Replaces the mark, keeping the refusals it remembers (and `refusal`, if the event is one); a failure is
   * logged, not thrown (it weakens the restore check, it does not endanger an order).
   */
  write(mark: OrderMark, refusal?: Refusal): Promise<void>;
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

/** The refusals to keep beside `mark`: each command's first, none older than REFUSALS_KEPT_MS before it. */
function keptRefusals(kept: readonly Refusal[], mark: OrderMark, refusal: Refusal | undefined): Refusal[] {
  const all = refusal === undefined || kept.some((r) => r.commandId === refusal.commandId) ? kept : [...kept, refusal];
  return all.filter((r) => Date.parse(mark.at) - Date.parse(r.at) <= REFUSALS_KEPT_MS);
}

function fileMarks(path: string, log: Logger): OrderMarks {
  const temp = `${path}.${process.pid}.tmp`;
  const read = async (): Promise<MarkFile | undefined> => {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') log.warn({ err: e, markPath: path }, 'cannot read the executor mark: the restore check is skipped');
      return undefined;
    }
    const mark = decodeJsonText(MarkFile, text);
    if (E.isRight(mark)) return mark.right;
    log.warn({ markPath: path }, 'the executor mark is not readable JSON of an order event: the restore check is skipped');
    return undefined;
  };
  /** The refusals the file remembers, read at the first write (another process may have written them). */
  let refusals: readonly Refusal[] | undefined;
  const replace = async (mark: OrderMark, refusal: Refusal | undefined): Promise<void> => {
    refusals ??= (await read())?.refusals ?? [];
    const kept = keptRefusals(refusals, mark, refusal);
    try {
      await writeFile(temp, JSON.stringify(kept.length === 0 ? mark : { ...mark, refusals: kept }));
      await rename(temp, path); // never half a mark
      refusals = kept;
    } catch (e) {
      log.warn({ err: e, markPath: path }, 'cannot write the executor mark: a restored backup may go unnoticed');
      await rm(temp, { force: true }).catch(() => undefined);
    }
  };
  return {
    path,
    read,
    write: (mark, refusal) => writing.run(path, () => replace(mark, refusal)),
  };
}
