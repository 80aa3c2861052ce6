/**
 * The executor's view: every hedge command and how far its order has got, folded from
 * `hedgecmd-*` and `hedgeorder-*`. Deterministic and I/O-free; O(commands).
 */
import type { Envelope, EventData } from '../src/domain/events.ts';

export type OrderStage = 'new' | 'submitting' | 'placed' | 'done';

export interface OrderTrack {
  readonly command: EventData<'HedgeRequested'>;
  stage: OrderStage;
  /** Revision of the command's `hedgeorder-` stream, or null while it does not exist. */
  revision: bigint | null;
  submittingAt: string | null;
  brokerOrderId: string | null;
}

export class HedgeOrderBook {
  readonly tracks = new Map<string, OrderTrack>();
  /** Broker order ids linked to some command: reconciliation never adopts them for another. */
  readonly linkedOrderIds = new Set<string>();

  apply(event: Envelope): void {
    if (event.type === 'HedgeRequested') {
      if (!this.tracks.has(event.data.commandId)) {
        this.tracks.set(event.data.commandId, { command: event.data, stage: 'new', revision: null, submittingAt: null, brokerOrderId: null });
      }
      return;
    }
    if (!event.type.startsWith('HedgeOrder')) return;
    const track = this.tracks.get((event.data as { commandId: string }).commandId);
    if (!track) return;
    track.revision = event.revision;
    switch (event.type) {
      case 'HedgeOrderSubmitting':
        track.stage = 'submitting';
        track.submittingAt = event.data.at;
        break;
      case 'HedgeOrderPlaced':
        track.stage = 'placed';
        track.brokerOrderId = event.data.brokerOrderId;
        this.linkedOrderIds.add(event.data.brokerOrderId);
        break;
      case 'HedgeOrderFilled':
      case 'HedgeOrderFailed':
        track.stage = 'done';
        break;
    }
  }

  open(): OrderTrack[] {
    return [...this.tracks.values()].filter((t) => t.stage !== 'done');
  }
}
