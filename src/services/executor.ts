/**
 * The executor: the only writer of `hedgeorder-<commandId>`. It folds `hedgecmd-*` and
 * `hedgeorder-*` and runs one worker per command without a terminal outcome (see
 * executor-worker.ts): Submitting before any broker call that could place an order, then
 * Placed, polling, Filled or Failed. A `Submitting` with no order id (a crash, an ambiguous
 * answer) is reconciled against the broker's orders before anything is placed again: one
 * command, at most one order. Every append is at the exact expected revision with the
 * deterministic id `orderEventId(commandId, revision)`.
 *
 * Two ways to run: `drainOpen` (for `run --once`: finish what is open, then return) and
 * `follow` (the service: catch up, then work on each command as it is appended).
 */
import { setMaxListeners } from 'node:events';
import { NO_STREAM, type EventStore, type From, type RecordedEvent } from '../eventstore/port.ts';
import { CorruptEvent, StreamNotFound, WrongExpectedVersion } from '../eventstore/errors.ts';
import { decodeEvent, encodeEvent, streams } from '../domain/events.ts';
import { orderEventId } from '../domain/ids.ts';
import { HedgeOrderBook, isOrderEvent, type OrderEvent, type OrderTrack } from '../../projections/hedge-orders.ts';
import type { Broker, BrokerNeedsOperator } from '../broker/port.ts';
import { CommandHeld, OrderWorker, TrackMoved, type WorkerContext, type WorkerSettings } from './executor-worker.ts';
import type { Logger } from '../log.ts';
import { KeyedQueue } from '../keyed-queue.ts';
import { orderMarksFor, type OrderMark, type OrderMarks, type Refusal } from './order-mark.ts';
import type { ResolvedConfig } from '../config.ts';

const ORDER_PREFIXES = ['hedgecmd-', 'hedgeorder-'] as const;

export interface ExecutorOptions {
  readonly store: EventStore;
  readonly broker: Broker;
  readonly log: Logger;
  readonly now?: () => Date;
  /** How often each open order is polled (±20% jitter); default 2000. */
  readonly pollIntervalMs?: number;
  /** Backoff bounds for transient broker and store errors; default 250 ms to 30 s. */
  readonly backoffMs?: { readonly min: number; readonly max: number };
  /** Trading-hours time an order may stay open before it is cancelled and reported; default 15 min. */
  readonly openOrderDeadlineMs?: number;
  /** After an attempt that may have placed an order, how long the orders list gets to show it before placing again (see WorkerSettings); default 10 s. */
  readonly placementSettleMs?: number;
  /** After a restore: adopt broker orders entered since this instant (see WorkerSettings); default none. */
  readonly reconcileSince?: Date | undefined;
  /** The store's order marks (order-mark.ts): with them, the executor refuses to start on a restored copy; none for memory and EventStoreDB, nor with the paper broker. */
  readonly marks?: ((log: Logger) => OrderMarks) | undefined;
  /** How often to try again while the broker needs an operator (re-auth); default 30 s. */
  readonly operatorRetryMs?: number;
  /** Told what the broker needs an operator for (e.g. a new login), and told `undefined` once it answers again. */
  readonly onOperatorProblem?: (problem: string | undefined) => void;
}

/**
 * The store lacks the newest order event this executor recorded in it: an older copy (see
 * order-mark.ts). With `since`: LEDGER_RECONCILE_SINCE is later than that event, so later than the copy.
 */
export class LedgerRewound extends Error {
  override readonly name = 'LedgerRewound';
  constructor(marks: OrderMarks, mark: OrderMark, newestOrderEventAt: string | undefined, since?: Date) {
    const safe = newestOrderEventAt === undefined ? '' : ` (if that is not known, ${newestOrderEventAt}, the newest order event this copy holds, is safe)`;
    const lacks = `this store lacks order event ${mark.revision} of command ${mark.commandId}, which its executor recorded at ${mark.at} (${marks.path})`;
    super(
      since === undefined
        ? `${lacks}: it is an older copy (a restored backup) or another ledger. Orders placed since are at the broker but not in this ledger, and would be placed again. ` +
            `Set LEDGER_RECONCILE_SINCE to the time the backup was taken${safe} and start again (docs/operations.md, Backing up and restoring); ` +
            `for a new ledger on purpose, delete ${marks.path}`
        : `${lacks}, so the copy was taken before then, and LEDGER_RECONCILE_SINCE=${since.toISOString()} is later: orders placed in between would be placed again. ` +
            `Set it to the time the backup was taken${safe} and start again (docs/operations.md, Backing up and restoring)`,
    );
  }
}

/** Executor settings a caller may tune (poll interval, deadline, clock…). */
export type ExecutorTuning = Omit<ExecutorOptions, 'store' | 'broker' | 'log'>;

/** The executor's settings from the configuration (`run --once` and the service alike). */
export const executorTuning = (config: ResolvedConfig): ExecutorTuning => ({
  pollIntervalMs: config.pollIntervalMs,
  openOrderDeadlineMs: config.openOrderDeadlineMs,
  placementSettleMs: config.placementSettleMs,
  reconcileSince: config.reconcileSince === undefined ? undefined : new Date(config.reconcileSince),
  // The paper broker's order ids derive from the command: a restored ledger places nothing there twice, and needs no check.
  marks: config.broker === 'paper' ? undefined : orderMarksFor(config.store),
});

/** A command's order steps keep failing (3 in a row, or the broker's trouble for 5 minutes): `run --once` stops rather than wait for ever. */
export class OrderStepsStuck extends Error {
  override readonly name = 'OrderStepsStuck';
}

/**
 * A stored hedge command that cannot be read (a corrupt event in `hedgecmd-<SYMBOL>`): no order can be
 * placed for it, while the accumulator, which decided it, waits for its outcome and issues nothing more
 * for the symbol. `run --once` stops with it once the readable commands are done; the service reports it.
 */
export class UnreadableCommand extends Error {
  override readonly name = 'UnreadableCommand';
  constructor(readonly corrupt: CorruptEvent) {
    super(
      `hedge command ${corrupt.stream}@${corrupt.revision} cannot be read (${corrupt.message}): no order is placed for it, ` +
        'and its symbol gets no further hedge; restore the store from a backup (docs/operations.md, Backing up and restoring)',
    );
  }
}

/** What to do when the broker needs a human or a command's steps keep failing: the service waits (and keeps saying so), `run --once` stops. */
export type OperatorPolicy = 'wait' | 'fail';

export class ExecutorService {
  private readonly book = new HedgeOrderBook();
  private position: From = 'start';
  private readonly workers = new Map<string, Promise<void>>();
  private readonly settings: WorkerSettings;
  /** The problem being logged while the broker needs an operator (any successful broker call clears it). */
  private operatorProblem: string | undefined;
  /** The commands held for an operator (CommandHeld), by command id: cleared only by their own worker. */
  private readonly held = new Map<string, string>();
  /** What onOperatorProblem was last told: the broker's problem, else the first held command's. */
  private reportedProblem: string | undefined;
  /** Placement steps, one symbol's at a time. */
  private readonly placing = new KeyedQueue();
  private readonly marks: OrderMarks | undefined;
  /** When the newest order event folded was recorded (the stream is in global order). */
  private newestOrderEventAt: string | undefined;
  /** Why each worker whose steps keep failing is stuck, by command id. */
  private readonly stuck = new Map<string, string>();
  /** Restore mode: the refusals at placement since LEDGER_RECONCILE_SINCE that the marks remember, by command id. */
  private refusals = new Map<string, Refusal>();
  /** Commands that could not be read, in stream order (see UnreadableCommand). */
  private readonly unreadable: UnreadableCommand[] = [];

  constructor(private readonly options: ExecutorOptions) {
    this.settings = {
      now: options.now ?? (() => new Date()),
      pollIntervalMs: options.pollIntervalMs ?? 2000,
      backoffMs: options.backoffMs ?? { min: 250, max: 30_000 },
      openOrderDeadlineMs: options.openOrderDeadlineMs ?? 15 * 60_000,
      reconcileSince: options.reconcileSince ?? null,
      placementSettleMs: options.placementSettleMs ?? 10_000,
    };
    this.marks = options.marks?.(options.log);
    if (options.reconcileSince !== undefined) {
      options.log.warn({ reconcileSince: options.reconcileSince.toISOString() }, 'restore mode: every command without a recorded order first adopts a matching broker order entered since this time; unset LEDGER_RECONCILE_SINCE once the ledger has caught up');
    }
  }

  /** Folds the command and order streams stored since the last sync. */
  private async sync(): Promise<void> {
    for await (const recorded of this.options.store.readAll({ from: this.position, prefixes: ORDER_PREFIXES })) this.fold(recorded);
  }

  openCommands(): number {
    return this.book.open().length;
  }

  /** Why order steps keep failing (the store refusing writes, a bug, the broker's trouble for 5 minutes), while any do. */
  failing(): string | undefined {
    const [problem] = this.stuck.values();
    if (problem !== undefined) return `order steps keep failing (${this.stuck.size} order(s)), retrying: ${problem}`;
    return this.unreadable[0]?.message;
  }

  /**
   * Drives every open command to a terminal outcome (unless `signal` aborts first); returns how
   * many were open. With the 'fail' policy, a broker that needs an operator, or a command whose
   * steps keep failing, stops every worker and the call rejects with that problem.
   */
  async drainOpen(signal?: AbortSignal, policy: OperatorPolicy = 'fail'): Promise<number> {
    await this.sync();
    await this.checkNotRewound();
    const open = this.book.open();
    await this.supervise(signal, (inner) => Promise.all(open.map((track) => this.start(track, inner, policy))));
    // The readable commands first: one bad command never holds back the others.
    if (policy === 'fail' && this.unreadable[0] !== undefined) throw this.unreadable[0];
    return open.length;
  }

  /** The service: works on every open command, then on each new one as it is appended, until `signal` aborts. */
  async follow(signal: AbortSignal): Promise<void> {
    await this.sync(); // the whole history first: no worker may start before its order stream is folded
    await this.checkNotRewound();
    await this.supervise(signal, async (inner) => {
      // A worker stops only for what retrying cannot mend (the store's file replaced under this process): so does the executor.
      const failed = new AbortController();
      const launch = (track: OrderTrack) => void this.start(track, inner, 'wait').catch((err: unknown) => failed.abort(err));
      this.book.open().forEach(launch);
      const subscription = this.options.store.subscribe({ from: this.position, prefixes: ORDER_PREFIXES });
      const stop = () => void subscription.close();
      const stopping = AbortSignal.any([inner, failed.signal]);
      stopping.addEventListener('abort', stop, { once: true });
      // Stopped before it got here (a SIGTERM while the lock was taken or the history read): that
      // abort event has fired already, and the subscription would be followed for ever.
      if (stopping.aborted) stop();
      try {
        for await (const recorded of subscription) {
          const appeared = this.fold(recorded);
          if (appeared !== undefined) launch(appeared);
        }
      } finally {
        stopping.removeEventListener('abort', stop);
        await subscription.close();
      }
      failed.signal.throwIfAborted();
    });
  }

  /** Before any worker starts: a store without the marked order event is an older copy, where placing could place twice. */
  private async checkNotRewound(): Promise<void> {
    const mark = await this.marks?.read();
    const since = this.settings.reconcileSince;
    // One recorded before `since` is in the copy: the command has its outcome there.
    if (since !== null) this.refusals = new Map((mark?.refusals ?? []).filter((r) => Date.parse(r.at) >= since.getTime()).map((r) => [r.commandId, r]));
    if (mark === undefined || (this.book.track(mark.commandId)?.revision ?? -1n) >= BigInt(mark.revision)) return;
    if (since === null) throw new LedgerRewound(this.marks!, mark, this.newestOrderEventAt);
    // The copy lacks an event recorded at mark.at: it was taken before, and a later time would miss what was placed in between.
    if (since.getTime() > Date.parse(mark.at)) throw new LedgerRewound(this.marks!, mark, this.newestOrderEventAt, since);
    this.options.log.warn({ mark, markPath: this.marks!.path }, 'this store lacks the newest order event its executor recorded (a restored backup): reconciling since LEDGER_RECONCILE_SINCE');
  }

  /** Runs `body` with a signal that also aborts when it ends, then waits for every worker to stop. */
  private async supervise(signal: AbortSignal | undefined, body: (inner: AbortSignal) => Promise<unknown>): Promise<void> {
    const inner = new AbortController();
    setMaxListeners(0, inner.signal); // every waiting worker listens to it
    const abort = () => inner.abort();
    signal?.addEventListener('abort', abort, { once: true });
    if (signal?.aborted) abort();
    try {
      await body(inner.signal);
    } finally {
      abort();
      signal?.removeEventListener('abort', abort);
      await Promise.allSettled(this.workers.values());
    }
  }

  /** Folds one stored event; returns the track of a command that just appeared. */
  private fold(recorded: RecordedEvent): OrderTrack | undefined {
    this.position = recorded.position;
    const decoded = decodeEvent(recorded);
    if (decoded._tag === 'Left') {
      // A halt is no work for the executor; anything else unreadable in a command stream may be a command
      // (one that is not where and what the accumulator writes too: placing it would hedge what nothing decided).
      if (recorded.stream.startsWith('hedgecmd-') && recorded.type !== 'HedgingHalted') return this.unreadableCommand(decoded.left);
      this.options.log.error({ err: decoded.left }, 'skipping corrupt order event');
      return undefined;
    }
    const event = decoded.right;
    if (event.type !== 'HedgeRequested') {
      if (isOrderEvent(event)) this.newestOrderEventAt = event.data.at;
      this.book.apply(event);
      return undefined;
    }
    const isNew = this.book.track(event.data.commandId) === undefined;
    this.book.apply(event);
    return isNew ? this.book.track(event.data.commandId) : undefined;
  }

  /** Notes a command no order may be placed for (see UnreadableCommand); it starts no worker. */
  private unreadableCommand(corrupt: CorruptEvent): undefined {
    const unreadable = new UnreadableCommand(corrupt);
    this.unreadable.push(unreadable);
    this.options.log.error({ err: corrupt }, unreadable.message);
    return undefined;
  }

  /** One worker per command: a second call joins the running one. */
  private start(track: OrderTrack, signal: AbortSignal, policy: OperatorPolicy): Promise<void> {
    const id = track.command.commandId;
    let worker = this.workers.get(id);
    if (worker === undefined) {
      worker = new OrderWorker(this.context(policy), track, signal).run().finally(() => {
        this.workers.delete(id);
        this.stuck.delete(id);
        // Its command done (another writer finished it): no longer held. Stopped, it is still held, as the broker's problem outlives a restart.
        if (!signal.aborted && this.held.delete(id)) this.reportOperatorProblem();
      });
      this.workers.set(id, worker);
    }
    return worker;
  }

  private context(policy: OperatorPolicy): WorkerContext {
    return {
      broker: this.options.broker,
      book: this.book,
      log: this.options.log,
      settings: this.settings,
      record: (commandId, after, event) => this.record(commandId, after, event),
      reload: (commandId) => this.reload(commandId),
      oneAtATime: (symbol, step) => this.placing.run(symbol, step),
      operatorNeeded: (commandId, problem) => this.operatorNeeded(commandId, problem, policy),
      brokerAnswered: (commandId) => this.brokerAnswered(commandId),
      stuck: (commandId, problem) => this.noteStuck(commandId, problem, policy),
      refusedBefore: (commandId) => this.refusals.get(commandId),
    };
  }

  /**
   * At the revision the worker's own view ends, not the book's: the book also folds what other
   * writers append (the subscription), and appending after that would stack this worker's event,
   * decided without it, on top of theirs (a second Placed, a second outcome).
   */
  private async record(commandId: string, after: bigint | null, event: OrderEvent): Promise<OrderTrack> {
    const revision = after === null ? 0n : after + 1n;
    const stream = streams.hedgeOrder(commandId);
    let written: boolean;
    try {
      ({ written } = await this.options.store.append(stream, [encodeEvent(orderEventId(commandId, revision), event)], after ?? NO_STREAM));
    } catch (e) {
      if (e instanceof WrongExpectedVersion) throw new TrackMoved(`${stream} is past revision ${after ?? 'none'}`, { cause: e });
      throw e;
    }
    // Written before by someone (a process that died before we read its event): what it wrote is unknown here.
    if (!written) throw new TrackMoved(`${stream} already holds revision ${revision}`);
    // Before the worker acts on the event (a Submitting: before it places). A failure without an order is a refusal at placement.
    const refused = event.type === 'HedgeOrderFailed' && this.book.track(commandId)?.brokerOrderId === null;
    await this.marks?.write({ commandId, revision: String(revision), at: event.data.at }, refused ? { commandId, reason: event.data.reason, at: event.data.at } : undefined);
    return this.book.applyOrderEvent(event, revision)!;
  }

  private async reload(commandId: string): Promise<OrderTrack> {
    try {
      for await (const recorded of this.options.store.readStream(streams.hedgeOrder(commandId))) {
        const decoded = decodeEvent(recorded);
        // Skipped, an event this version cannot read (a newer one wrote it), or one of another command, would leave
        // the worker behind the stream: every write it makes then moves the track again, and it would re-read and retry at once, forever.
        if (decoded._tag === 'Left') throw decoded.left;
        if (isOrderEvent(decoded.right)) this.book.applyOrderEvent(decoded.right, recorded.revision);
      }
    } catch (e) {
      if (!(e instanceof StreamNotFound)) throw e;
    }
    return this.book.track(commandId)!;
  }

  private noteStuck(commandId: string, problem: string | undefined, policy: OperatorPolicy): void {
    if (problem === undefined) this.stuck.delete(commandId);
    else if (policy === 'fail') throw new OrderStepsStuck(`the order steps of command ${commandId} keep failing: ${problem}`);
    else this.stuck.set(commandId, problem);
  }

  private operatorNeeded(commandId: string, problem: BrokerNeedsOperator, policy: OperatorPolicy): number {
    if (policy === 'fail') throw problem;
    const retryMs = this.options.operatorRetryMs ?? 30_000;
    // A held command is its own: another command's successful broker call says nothing about it.
    const isHeld = problem instanceof CommandHeld;
    const known = isHeld ? this.held.get(commandId) : this.operatorProblem;
    if (isHeld) this.held.set(commandId, problem.message);
    else this.operatorProblem = problem.message;
    if (known !== problem.message) {
      const meanwhile = isHeld ? 'other commands go on' : 'Nothing is placed until then; orders already at the broker keep working there';
      this.options.log.error({ problem: problem.message, retryEveryMs: retryMs, ...(isHeld ? { commandId } : {}) }, `broker needs an operator: ${problem.message}. ${meanwhile}`);
    }
    this.reportOperatorProblem();
    return retryMs;
  }

  private brokerAnswered(commandId: string): void {
    const wasHeld = this.held.delete(commandId);
    if (this.operatorProblem === undefined && !wasHeld) return;
    if (this.operatorProblem !== undefined) this.options.log.info('broker answers again: resuming');
    else this.options.log.info({ commandId }, 'the command held for an operator is no longer held: resuming');
    this.operatorProblem = undefined;
    this.reportOperatorProblem();
  }

  /** Tells onOperatorProblem when what needs an operator changes: the broker's problem first, else a held command's. */
  private reportOperatorProblem(): void {
    const [held] = this.held.values();
    const problem = this.operatorProblem ?? held;
    if (problem === this.reportedProblem) return;
    this.reportedProblem = problem;
    this.options.onOperatorProblem?.(problem);
  }
}
