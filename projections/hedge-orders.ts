/**
 * The executor's view: every hedge command and how far its order has got, folded from
 * `hedgecmd-*` and `hedgeorder-*`. Deterministic and I/O-free; O(commands). An order event
 * at or before the revision a track already holds is a no-op, so the executor can apply its
 * own appends at once and read them back later without harm.
 */
import type { Envelope, EventData, LedgerEvent } from '../src/domain/events.ts';

export type OrderStage = 'new' | 'submitting' | 'placed' | 'done';

export interface OrderTrack {
  readonly command: EventData<'HedgeRequested'>;
  readonly stage: OrderStage;
  /** Revision of the command's `hedgeorder-` stream, or null while it does not exist. */
  readonly revision: bigint | null;
  /** When the intent was recorded (Submitting). */
  readonly submittingAt: string | null;
  readonly brokerOrderId: string | null;
  readonly placedAt: string | null;
  /** Set once the executor has asked the broker to cancel. */
  readonly cancelRequested: EventData<'HedgeOrderCancelRequested'> | null;
}

const ORDER_EVENTS = ['HedgeOrderSubmitting', 'HedgeOrderPlaced', 'HedgeOrderCancelRequested', 'HedgeOrderFilled', 'HedgeOrderFailed'] as const;
export type OrderEvent = Extract<LedgerEvent, { type: (typeof ORDER_EVENTS)[number] }>;

export const isOrderEvent = (event: LedgerEvent): event is OrderEvent => (ORDER_EVENTS as readonly string[]).includes(event.type);

function evolve(track: OrderTrack, event: OrderEvent): OrderTrack {
  switch (event.type) {
    case 'HedgeOrderSubmitting':
      return { ...track, stage: 'submitting', submittingAt: event.data.at };
    case 'HedgeOrderPlaced':
      return { ...track, stage: 'placed', brokerOrderId: event.data.brokerOrderId, placedAt: event.data.at };
    case 'HedgeOrderCancelRequested':
      return { ...track, cancelRequested: event.data };
    case 'HedgeOrderFilled':
    case 'HedgeOrderFailed':
      return { ...track, stage: 'done' };
  }
}

export class HedgeOrderBook {
  private readonly tracks = new Map<string, OrderTrack>();
  private readonly linked = new Set<string>();

  /** Broker order ids linked to some command: reconciliation never adopts them for another. */
  get linkedOrderIds(): ReadonlySet<string> {
    return this.linked;
  }

  apply(event: Envelope): void {
    if (event.type === 'HedgeRequested' && !this.tracks.has(event.data.commandId)) {
      this.tracks.set(event.data.commandId, { command: event.data, stage: 'new', revision: null, submittingAt: null, brokerOrderId: null, placedAt: null, cancelRequested: null });
    } else if (isOrderEvent(event)) this.applyOrderEvent(event, event.revision);
  }

  /** Folds one event of a command's order stream stored at `revision`; returns the track as it is now. */
  applyOrderEvent(event: OrderEvent, revision: bigint): OrderTrack | undefined {
    const track = this.tracks.get(event.data.commandId);
    if (track === undefined || (track.revision !== null && revision <= track.revision)) return track;
    const next = evolve({ ...track, revision }, event);
    this.tracks.set(event.data.commandId, next);
    if (event.type === 'HedgeOrderPlaced') this.linked.add(event.data.brokerOrderId);
    return next;
  }

  track(commandId: string): OrderTrack | undefined {
    return this.tracks.get(commandId);
  }

  open(): OrderTrack[] {
    return [...this.tracks.values()].filter((t) => t.stage !== 'done');
  }
}
