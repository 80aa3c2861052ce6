/**
 * The executor: the only writer of `hedgeorder-<commandId>`. For each command without a
 * terminal outcome it records `Submitting` before any broker call that could place an order,
 * places, records `Placed`, polls to a terminal state and records `Filled` or `Failed`.
 * A `Submitting` with no order id (a crash, an ambiguous answer) is reconciled against the
 * broker's orders before anything is placed again: one command, at most one order.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { NO_STREAM, type EventStore, type ExpectedRevision, type From } from '../eventstore/port.ts';
import { decodeEvent, encodeEvent, streams, type LedgerEvent } from '../domain/events.ts';
import { uuidV5 } from '../domain/ids.ts';
import { ZERO, format, toBigInt } from '../domain/decimal.ts';
import { HedgeOrderBook, type OrderTrack } from '../../projections/hedge-orders.ts';
import { AmbiguousPlacement, OrderRejected, type Broker, type BrokerOrderState, type HedgeOrderIntent } from '../broker/port.ts';
import type { Logger } from '../log.ts';

const ORDER_PREFIXES = ['hedgecmd-', 'hedgeorder-'] as const;

export interface ExecutorOptions {
  readonly store: EventStore;
  readonly broker: Broker;
  readonly log: Logger;
  readonly now?: () => Date;
  readonly pollIntervalMs?: number;
  /** Retry delay bounds for transient broker and store errors. */
  readonly backoffMs?: { readonly min: number; readonly max: number };
  /** Open orders older than this are cancelled and reported. */
  readonly openOrderDeadlineMs?: number;
}

/** Id of the n-th event (0-based revision) of a command's order stream. */
export const orderEventId = (commandId: string, revision: bigint): string => uuidV5(`hedgeorder:${commandId}:${revision}`);

export class ExecutorService {
  private readonly book = new HedgeOrderBook();
  private position: From = 'start';
  private readonly working = new Map<string, Promise<void>>();

  constructor(private readonly options: ExecutorOptions) {}

  private now(): Date {
    return this.options.now?.() ?? new Date();
  }

  /** Folds the command and order streams stored since the last sync. */
  async sync(): Promise<void> {
    for await (const recorded of this.options.store.readAll({ from: this.position, prefixes: ORDER_PREFIXES })) {
      const decoded = decodeEvent(recorded);
      if (decoded._tag === 'Right') this.book.apply(decoded.right);
      else this.options.log.error({ err: decoded.left }, 'skipping corrupt order event');
      this.position = recorded.position;
    }
  }

  openCommands(): number {
    return this.book.open().length;
  }

  /** Drives every open command to a terminal outcome; returns how many it finished. */
  async drainOpen(signal?: AbortSignal): Promise<number> {
    await this.sync();
    const open = this.book.open();
    await Promise.all(open.map((track) => this.ensureWorker(track, signal)));
    return open.length;
  }

  private ensureWorker(track: OrderTrack, signal?: AbortSignal): Promise<void> {
    const id = track.command.commandId;
    let worker = this.working.get(id);
    if (!worker) {
      worker = this.drive(track, signal).finally(() => this.working.delete(id));
      this.working.set(id, worker);
    }
    return worker;
  }

  private intent(track: OrderTrack): HedgeOrderIntent {
    const { commandId, brokerSymbol, side, quantity, referencePrice } = track.command;
    return { commandId, symbol: brokerSymbol, side, quantity: toBigInt(quantity), referencePrice, intentAt: new Date(track.submittingAt ?? this.now().toISOString()) };
  }

  /** One command's state machine, resumable from whatever stage was recorded. */
  private async drive(track: OrderTrack, signal?: AbortSignal): Promise<void> {
    const log = this.options.log.child({ commandId: track.command.commandId, symbol: track.command.brokerSymbol });
    let resumed = track.stage !== 'new';
    while (track.stage !== 'done' && !signal?.aborted) {
      try {
        if (track.stage === 'new') await this.recordSubmitting(track);
        else if (track.stage === 'submitting') await this.placeOnce(track, resumed, log);
        else await this.awaitOutcome(track, log, signal);
      } catch (e) {
        if (e instanceof AmbiguousPlacement) {
          log.warn({ err: e }, 'placement outcome unknown; reconciling with the broker before any new placement');
          resumed = true;
        } else {
          log.warn({ err: e }, 'executor step failed; retrying');
        }
        await this.backoff(signal);
      }
    }
  }

  private async recordSubmitting(track: OrderTrack): Promise<void> {
    const { commandId, brokerSymbol, side, quantity } = track.command;
    const at = this.now().toISOString();
    await this.record(track, { type: 'HedgeOrderSubmitting', data: { commandId, broker: this.options.broker.name, symbol: brokerSymbol, side, quantity, at } });
    track.stage = 'submitting';
    track.submittingAt = at;
  }

  /** Places the order, unless reconciliation finds one already placed for this intent. */
  private async placeOnce(track: OrderTrack, reconcile: boolean, log: Logger): Promise<void> {
    const intent = this.intent(track);
    let brokerOrderId = reconcile ? await this.options.broker.findPlaced(intent, this.book.linkedOrderIds) : undefined;
    if (brokerOrderId !== undefined) log.info({ brokerOrderId }, 'reconciled: adopting the order already placed');
    else {
      try {
        brokerOrderId = (await this.options.broker.place(intent)).brokerOrderId;
      } catch (e) {
        if (!(e instanceof OrderRejected)) throw e;
        await this.recordFailed(track, { status: 'failed', reason: `rejected at placement: ${e.message}`, filledQuantity: ZERO, averagePrice: null });
        return;
      }
    }
    await this.record(track, { type: 'HedgeOrderPlaced', data: { commandId: intent.commandId, brokerOrderId, at: this.now().toISOString() } });
    track.stage = 'placed';
    track.brokerOrderId = brokerOrderId;
    this.book.linkedOrderIds.add(brokerOrderId);
    log.info({ brokerOrderId, side: intent.side, quantity: intent.quantity.toString() }, 'order placed');
  }

  private async awaitOutcome(track: OrderTrack, log: Logger, signal?: AbortSignal): Promise<void> {
    const intent = this.intent(track);
    const brokerOrderId = track.brokerOrderId!;
    let cancelled = false;
    for (;;) {
      const state = await this.options.broker.status(brokerOrderId, intent);
      if (state.status === 'filled') {
        await this.record(track, { type: 'HedgeOrderFilled', data: { commandId: intent.commandId, filledQuantity: state.filledQuantity, averagePrice: state.averagePrice, at: this.now().toISOString() } });
        track.stage = 'done';
        log.info({ filledQuantity: format(state.filledQuantity), averagePrice: format(state.averagePrice) }, 'order filled');
        return;
      }
      if (state.status === 'failed') return this.recordFailed(track, state);
      if (!cancelled && this.pastDeadline(intent)) {
        log.warn({ brokerOrderId, brokerStatus: state.brokerStatus }, 'order open past its deadline; cancelling');
        await this.options.broker.cancel(brokerOrderId);
        cancelled = true;
      }
      await this.pollDelay(signal);
      if (signal?.aborted) return;
    }
  }

  private async recordFailed(track: OrderTrack, state: Extract<BrokerOrderState, { status: 'failed' }>): Promise<void> {
    const { commandId } = track.command;
    await this.record(track, { type: 'HedgeOrderFailed', data: { commandId, reason: state.reason, filledQuantity: state.filledQuantity, averagePrice: state.averagePrice, at: this.now().toISOString() } });
    track.stage = 'done';
    this.options.log.warn({ commandId, reason: state.reason, filledQuantity: format(state.filledQuantity) }, 'order failed');
  }

  /** Appends the next event of the command's order stream at its exact revision. */
  private async record(track: OrderTrack, event: LedgerEvent): Promise<void> {
    const expected: ExpectedRevision = track.revision ?? NO_STREAM;
    const revision = track.revision === null ? 0n : track.revision + 1n;
    const result = await this.options.store.append(streams.hedgeOrder(track.command.commandId), [encodeEvent(orderEventId(track.command.commandId, revision), event)], expected);
    track.revision = result.nextRevision;
  }

  private pastDeadline(intent: HedgeOrderIntent): boolean {
    const deadline = this.options.openOrderDeadlineMs;
    return deadline !== undefined && this.now().getTime() - intent.intentAt.getTime() > deadline;
  }

  private async pollDelay(signal?: AbortSignal): Promise<void> {
    const base = this.options.pollIntervalMs ?? 1000;
    await sleep(base * (0.8 + 0.4 * Math.random()), undefined, signal ? { signal } : {}).catch(() => {});
  }

  private async backoff(signal?: AbortSignal): Promise<void> {
    const { min, max } = this.options.backoffMs ?? { min: 200, max: 10_000 };
    await sleep(min + Math.random() * (max - min), undefined, signal ? { signal } : {}).catch(() => {});
  }
}

