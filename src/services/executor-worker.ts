/**
 * One command's order, driven to a terminal outcome: record the intent, place (after
 * reconciling whenever an earlier attempt may have left an order behind), poll at a
 * jittered interval, cancel past the deadline, record the outcome. Transient trouble is
 * retried with exponential backoff and jitter, never sooner than the broker's Retry-After.
 */
import { backoffDelay } from '../backoff.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import * as D from '../domain/decimal.ts';
import { AmbiguousPlacement, BrokerNeedsOperator, BrokerUnavailable, OrderRejected, type Broker, type BrokerOrderState, type HedgeOrderIntent } from '../broker/port.ts';
import { tradingMsBetween } from '../broker/market-hours.ts';
import { StoreConfigError } from '../eventstore/errors.ts';
import type { HedgeOrderBook, OrderEvent, OrderTrack } from '../../projections/hedge-orders.ts';
import type { Logger } from '../log.ts';
import type { Refusal } from './order-mark.ts';

export interface WorkerSettings {
  readonly now: () => Date;
  readonly pollIntervalMs: number;
  readonly backoffMs: { readonly min: number; readonly max: number };
  /** Trading-hours time an order may stay open before it is cancelled. */
  readonly openOrderDeadlineMs: number;
  /**
   * After a restore: the instant the backup was taken. The ledger forgot every order placed since,
   * the broker did not, so every command without a recorded order first looks for one entered since.
   */
  readonly reconcileSince: Date | null;
  /**
   * After an attempt that may have left an order (an ambiguous answer, a restart mid-placement):
   * how long the broker's orders list gets to show that order, as a request still in flight when
   * the answer was lost may land later. Until then a reconciliation that finds none asks again
   * rather than place: two orders are worse than a hedge a few seconds late.
   */
  readonly placementSettleMs: number;
}

/** What a worker shares with the executor: the broker, the fold, the store, the operator gate. */
export interface WorkerContext {
  readonly broker: Broker;
  readonly book: HedgeOrderBook;
  readonly log: Logger;
  readonly settings: WorkerSettings;
  /**
   * Appends the event right after `after`, the last revision of the command's order stream this
   * worker has folded (null: none); throws TrackMoved if the stream holds more (another writer).
   */
  record(commandId: string, after: bigint | null, event: OrderEvent): Promise<OrderTrack>;
  /** Re-folds the command's order stream from the store. */
  reload(commandId: string): Promise<OrderTrack>;
  /**
   * Runs a placement step (reconcile, place, record Placed) with no other step for the same
   * symbol in between, so reconciliation never mistakes an order another worker has placed
   * but not yet recorded for its own.
   */
  oneAtATime<T>(symbol: string, step: () => Promise<T>): Promise<T>;
  /** A human must act (for the broker, or for this command: CommandHeld): returns how long to wait before trying again, or throws to stop. */
  operatorNeeded(commandId: string, problem: BrokerNeedsOperator): number;
  /** The broker answered this command's step: whatever the broker needed an operator for is solved, and this command is no longer held. */
  brokerAnswered(commandId: string): void;
  /** This worker's steps keep failing for `problem` (3 in a row, or the broker's trouble for 5 minutes); undefined once a step succeeds. */
  stuck(commandId: string, problem: string | undefined): void;
  /** Restore mode: the command's refusal at placement, recorded in the newer ledger since the backup (order-mark.ts). */
  refusedBefore(commandId: string): Refusal | undefined;
}

/**
 * One command needs an operator, not the broker: it stays reported (and not ready) until this command's own
 * step gets past it, whatever the broker answers other commands meanwhile.
 */
export class CommandHeld extends BrokerNeedsOperator {
  override readonly name = 'CommandHeld';
}

/** The order stream holds events this worker did not know about (a restart raced it, or another writer). */
export class TrackMoved extends Error {
  override readonly name = 'TrackMoved';
}

/** Failed steps in a row after which a worker reports it is stuck: one blip must not flap readiness. */
const STUCK_AFTER_FAILURES = 3;
/** The broker's trouble (5xx, 429, timeouts, an orders list it cannot read) is reported once it has lasted this long. */
const STUCK_ON_BROKER_MS = 5 * 60_000;

/** The poll interval ±20%, so many pollers do not fire in step. */
export const jittered = (intervalMs: number): number => intervalMs * (0.8 + 0.4 * Math.random());

const minutes = (ms: number): string => `${Math.round(ms / 6_000) / 10} min`;

export class OrderWorker {
  private track: OrderTrack;
  /** Once a placement may have happened, every later attempt asks the broker first. */
  private reconcileFirst: boolean;
  private cancelSent = false;
  /** The order stream holds events this worker has not folded: re-read it before anything else. */
  private stale = false;
  /** When an attempt that may have placed an order last ended (performance.now(): the broker's lag is real time); a restart mid-placement counts as one. */
  private lastAttemptAt: number | undefined;
  private failures = 0;
  /** When the current run of failed steps began (the settings' clock). */
  private failingSince: number | undefined;
  private readonly log: Logger;

  constructor(private readonly ctx: WorkerContext, track: OrderTrack, private readonly signal: AbortSignal) {
    this.track = track;
    this.reconcileFirst = track.stage !== 'new' || ctx.settings.reconcileSince !== null;
    if (track.stage === 'submitting') this.lastAttemptAt = performance.now();
    this.log = ctx.log.child({ commandId: track.command.commandId, symbol: track.command.brokerSymbol });
  }

  async run(): Promise<void> {
    while (this.track.stage !== 'done' && !this.signal.aborted) {
      let pause: number;
      try {
        pause = await this.step();
        if (this.failures > 0) this.ctx.stuck(this.commandId, undefined);
        this.failures = 0;
        this.failingSince = undefined;
      } catch (e) {
        pause = this.recover(e);
      }
      await sleep(pause, undefined, { signal: this.signal }).catch(() => {});
    }
  }

  /** One stage's work; returns how long to wait before the next. */
  private step(): Promise<number> {
    if (this.stale) return this.resync();
    switch (this.track.stage) {
      case 'new':
        return this.recordIntent();
      case 'submitting':
        return this.ctx.oneAtATime(this.track.command.brokerSymbol, () => (this.signal.aborted ? Promise.resolve(0) : this.submit()));
      case 'placed':
        return this.poll();
      case 'done':
        return Promise.resolve(0);
    }
  }

  private async resync(): Promise<number> {
    this.track = await this.ctx.reload(this.commandId);
    this.stale = false;
    this.reconcileFirst = true;
    // A Submitting this worker did not know of: its writer's POST may be on its way, as after a restart mid-placement.
    if (this.track.stage === 'submitting') this.lastAttemptAt = performance.now();
    return 0;
  }

  private get commandId(): string {
    return this.track.command.commandId;
  }

  private now(): string {
    return this.ctx.settings.now().toISOString();
  }

  private intent(): HedgeOrderIntent {
    const { commandId, brokerSymbol, side, quantity, referencePrice } = this.track.command;
    return { commandId, symbol: brokerSymbol, side, quantity: D.toBigInt(quantity), referencePrice, intentAt: new Date(this.track.submittingAt ?? this.now()) };
  }

  private async record(event: OrderEvent): Promise<number> {
    this.track = await this.ctx.record(this.commandId, this.track.revision, event);
    return 0;
  }

  /** Before any broker call that could place an order, the intent is in the log. */
  private recordIntent(): Promise<number> {
    const { commandId, brokerSymbol, side, quantity } = this.track.command;
    return this.record({ type: 'HedgeOrderSubmitting', data: { commandId, broker: this.ctx.broker.name, symbol: brokerSymbol, side, quantity, at: this.now() } });
  }

  private async submit(): Promise<number> {
    // The book also folds what another writer appended (a second executor that adopted the order):
    // reconciling now would skip that order, linked to this very command, and place another.
    if (this.ctx.book.track(this.commandId)?.revision !== this.track.revision) throw new TrackMoved(`the order stream of ${this.commandId} holds events this worker has not folded`);
    const intent = this.intent();
    const refused = this.ctx.refusedBefore(this.commandId);
    if (refused !== undefined) {
      // No order of it exists; adopting one would take its symbol's next alike command's order, decided after this refusal.
      this.log.warn({ refusedAt: refused.at }, 'refused at placement before the restore (the executor mark remembers it): recording that outcome again');
      return this.recordFailed({ status: 'failed', reason: refused.reason, filledQuantity: D.ZERO, averagePrice: null });
    }
    if (this.reconcileFirst) {
      const found = await this.ctx.broker.findPlaced(this.searchFrom(intent), this.ctx.book.linkedOrderIds);
      if (found === undefined) await this.refuseBesideUnknownOrders(intent);
      this.ctx.brokerAnswered(this.commandId);
      if (found !== undefined) {
        this.log.info({ brokerOrderId: found }, 'reconciled: adopting the order already placed for this command');
        return this.recordPlaced(found);
      }
      const settling = this.lastAttemptAt === undefined ? 0 : this.lastAttemptAt + this.ctx.settings.placementSettleMs - performance.now();
      if (settling > 0) {
        this.log.info({ askAgainInMs: settling }, 'reconciled: the broker lists no order for this command yet; asking again before placing');
        return settling;
      }
      this.log.info('reconciled: the broker has no order for this command; placing');
    }
    this.reconcileFirst = true;
    let brokerOrderId: string;
    try {
      brokerOrderId = (await this.ctx.broker.place(intent, this.signal)).brokerOrderId;
    } catch (e) {
      if (!(e instanceof OrderRejected)) throw e;
      this.ctx.brokerAnswered(this.commandId);
      return this.recordFailed({ status: 'failed', reason: `rejected at placement: ${e.message}`, filledQuantity: D.ZERO, averagePrice: null });
    } finally {
      // The settle time runs from when the client gave up (a timeout as long as it would otherwise use it all up), not from the send.
      this.lastAttemptAt = performance.now();
    }
    // An order another command is linked to cannot be the one this POST made (a garbled Location): adopted, its outcome
    // would be recorded twice and the new order's lost. The new order is found the way any ambiguous placement's is.
    if (this.ctx.book.linkedOrderIds.has(brokerOrderId)) throw new AmbiguousPlacement(`place: the answer names order ${brokerOrderId}, which another command is linked to`);
    this.ctx.brokerAnswered(this.commandId);
    this.log.info({ brokerOrderId, side: intent.side, quantity: intent.quantity.toString() }, 'order placed');
    return this.recordPlaced(brokerOrderId);
  }

  /**
   * After a restore, a command that adopts no order may still be hedged already: decided again over every
   * fill since the backup, it can be larger than the orders placed for the commands it replaces, which then
   * match nothing. While the broker holds orders for its symbol since the backup that no command is linked
   * to, placing would hedge their shares twice: an operator must compare them with the ledger first.
   */
  private async refuseBesideUnknownOrders(intent: HedgeOrderIntent): Promise<void> {
    const since = this.ctx.settings.reconcileSince;
    if (since === null) return;
    const unknown = await this.ctx.broker.unlinkedOrders(intent.symbol, since, this.ctx.book.linkedOrderIds);
    if (unknown.length === 0) return;
    throw new CommandHeld(
      `after the restore, ${intent.side} ${intent.quantity} ${intent.symbol} (command ${this.commandId}) matches no broker order, but orders ` +
        `${unknown.join(', ')} for ${intent.symbol} entered since the backup are linked to no command: the ledger would hedge their shares again. ` +
        'Offset them at the broker (one order the other way for their net fill), then, once no other command is still to adopt its order, unset ' +
        `LEDGER_RECONCILE_SINCE and restart; until then nothing is placed for this command (docs/operations.md, "Where adoption cannot help")`,
    );
  }

  /** The intent as reconciliation sees it: entered since the intent, or since the restored backup if earlier. */
  private searchFrom(intent: HedgeOrderIntent): HedgeOrderIntent {
    const since = this.ctx.settings.reconcileSince;
    return since !== null && since < intent.intentAt ? { ...intent, intentAt: since } : intent;
  }

  private recordPlaced(brokerOrderId: string): Promise<number> {
    return this.record({ type: 'HedgeOrderPlaced', data: { commandId: this.commandId, brokerOrderId, at: this.now() } });
  }

  private async poll(): Promise<number> {
    const brokerOrderId = this.track.brokerOrderId!;
    const state = await this.ctx.broker.status(brokerOrderId, this.intent());
    this.ctx.brokerAnswered(this.commandId);
    if (state.status === 'filled') {
      this.log.info({ brokerOrderId, filledQuantity: D.format(state.filledQuantity), averagePrice: D.format(state.averagePrice) }, 'order filled');
      const { filledQuantity, averagePrice } = state;
      return this.record({ type: 'HedgeOrderFilled', data: { commandId: this.commandId, filledQuantity, averagePrice, at: this.now() } });
    }
    if (state.status === 'failed') return this.recordFailed(state);
    await this.enforceDeadline(brokerOrderId, state);
    return jittered(this.ctx.settings.pollIntervalMs);
  }

  /** Past the deadline: record the request, then ask the broker (again after a restart: a repeated cancel is harmless). */
  private async enforceDeadline(brokerOrderId: string, state: Extract<BrokerOrderState, { status: 'open' }>): Promise<void> {
    if (this.track.cancelRequested === null) {
      const { openOrderDeadlineMs, now } = this.ctx.settings;
      const open = tradingMsBetween(Date.parse(this.track.placedAt ?? this.now()), now().getTime());
      if (open <= openOrderDeadlineMs) return;
      const reason = `open ${minutes(open)} of trading time, past the ${minutes(openOrderDeadlineMs)} deadline (broker status ${state.brokerStatus}, ${D.format(state.filledQuantity)} filled)`;
      this.log.warn({ brokerOrderId, brokerStatus: state.brokerStatus, filledQuantity: D.format(state.filledQuantity) }, 'order open past its deadline: cancelling');
      await this.record({ type: 'HedgeOrderCancelRequested', data: { commandId: this.commandId, brokerOrderId, reason, at: this.now() } });
    }
    if (this.cancelSent) return;
    await this.ctx.broker.cancel(brokerOrderId, this.signal);
    this.cancelSent = true;
  }

  private recordFailed(state: Extract<BrokerOrderState, { status: 'failed' }>): Promise<number> {
    const cancelled = this.track.cancelRequested;
    const reason = cancelled === null ? state.reason : `${state.reason} (cancelled by the executor: ${cancelled.reason})`;
    this.log.warn({ reason, filledQuantity: D.format(state.filledQuantity) }, 'order failed');
    return this.record({ type: 'HedgeOrderFailed', data: { commandId: this.commandId, reason, filledQuantity: state.filledQuantity, averagePrice: state.averagePrice, at: this.now() } });
  }

  /** Classifies a failed step; returns how long to wait before the next try. */
  private recover(e: unknown): number {
    // Stopping (the service shuts down): the step was cut short, e.g. waiting for the rate limit;
    // the stage it left is recorded, so the next process picks it up from there.
    if (this.signal.aborted) return 0;
    // The store's file is no longer the one this process opened (deleted, replaced): whatever it wrote now nobody would see.
    if (e instanceof StoreConfigError) throw e;
    if (e instanceof BrokerNeedsOperator) {
      // The wait for a login is the broker check's to report: after it, the broker's trouble is timed afresh.
      this.failingSince = undefined;
      return this.ctx.operatorNeeded(this.commandId, e);
    }
    if (e instanceof TrackMoved) {
      this.log.warn({ err: e }, 'the order stream moved under this worker: re-reading it, then reconciling');
      this.stale = true;
      return 0;
    }
    const delay = backoffDelay(this.failures++, this.ctx.settings.backoffMs, e instanceof BrokerUnavailable ? e.retryAfterMs : undefined);
    const context = { err: e, stage: this.track.stage, retryInMs: Math.round(delay) };
    const now = this.ctx.settings.now().getTime();
    this.failingSince ??= now;
    if (e instanceof BrokerUnavailable) {
      this.log.warn(context, e instanceof AmbiguousPlacement ? 'placement outcome unknown: reconciling with the broker before any new placement' : 'broker unavailable: retrying');
      // An outage of minutes is the broker's; one that lasts, or an answer it can never read, needs eyes.
      if (now - this.failingSince >= STUCK_ON_BROKER_MS) this.ctx.stuck(this.commandId, `broker unavailable for ${minutes(now - this.failingSince)}: ${e.message}`);
    } else {
      this.log.error(context, 'executor step failed: retrying');
      if (this.failures >= STUCK_AFTER_FAILURES) this.ctx.stuck(this.commandId, (e as Error).message);
    }
    return delay;
  }
}
