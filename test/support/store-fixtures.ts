/** Small builders shared by the store contract suite and the adapter-specific store tests. */
import { randomUUID } from 'node:crypto';
import * as D from '../../src/domain/decimal.ts';
import { decodeEvent, encodeEvent, type Envelope } from '../../src/domain/events.ts';
import { hedgeDecisionId } from '../../src/domain/ids.ts';
import type { Json, NewEvent, RecordedEvent } from '../../src/eventstore/port.ts';

export const event = (type = 'Tested', data: Json = {}, metadata?: Json): NewEvent =>
  metadata === undefined ? { id: randomUUID(), type, data } : { id: randomUUID(), type, data, metadata };

export const events = (n: number): NewEvent[] => Array.from({ length: n }, (_, i) => event('Tested', { i }));

export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/**
 * Gives a pending next() time to find nothing more and start waiting, so the append that follows is
 * delivered live rather than by catch-up. Not a bound on delivery: tests then just await the event.
 */
export const waitingForLive = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 50));

export const idsOf = (list: readonly { id: string }[]): string[] => list.map((e) => e.id);

/**
 * Decision `n` of `symbol` as the accumulator stores it (revision n - 1 of its `hedgecmd-` stream),
 * or, given a `quantity` text, the same with that quantity written as is (e.g. '1.5', which is not
 * whole shares, so it fails at data.quantity).
 */
export function hedgeRequested(symbol: string, n: number, quantity?: string): NewEvent {
  const id = hedgeDecisionId(symbol, n);
  const valid = encodeEvent(id, {
    type: 'HedgeRequested',
    data: { commandId: id, sequence: n, symbol, brokerSymbol: symbol, side: 'SELL', quantity: D.parse('3'), referencePrice: null, causationId: randomUUID() },
  });
  return quantity === undefined ? valid : { ...valid, data: { ...(valid.data as Record<string, Json>), quantity } };
}

/** Stored events, decoded; a corrupt one throws (the tests expect none). */
export async function decodedEvents(records: AsyncIterable<RecordedEvent>): Promise<Envelope[]> {
  const out: Envelope[] = [];
  for await (const recorded of records) {
    const decoded = decodeEvent(recorded);
    if (decoded._tag === 'Left') throw decoded.left;
    out.push(decoded.right);
  }
  return out;
}
