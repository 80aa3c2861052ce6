/** The request log and counters tests assert on ("exactly one order was placed"). */
import type { Endpoint } from './model.ts';

/** A status code, or what happened instead of a response. */
export type Outcome = number | 'timeout' | 'dropped';

export interface RequestLogEntry {
  readonly seq: number;
  /** Sim-clock time, ISO-8601. */
  readonly time: string;
  readonly method: string;
  readonly path: string;
  readonly endpoint: Endpoint | 'unknown';
  readonly status: Outcome;
  readonly correlId: string;
  readonly fault?: string;
}

export interface Counters {
  readonly ordersPlaced: number;
  readonly ordersPlacedBySymbol: Readonly<Record<string, number>>;
  readonly requests: Readonly<Record<string, number>>;
  /** Per endpoint, per status code (or "timeout" / "dropped"). */
  readonly responses: Readonly<Record<string, Readonly<Record<string, number>>>>;
}

/** Old entries fall off so a long-running sim stays bounded; counters keep counting. */
const LOG_CAPACITY = 10_000;

export class Journal {
  private readonly log: RequestLogEntry[] = [];
  private seq = 0;
  private ordersPlaced = 0;
  private readonly bySymbol: Record<string, number> = {};
  private readonly requests: Record<string, number> = {};
  private readonly responses: Record<string, Record<string, number>> = {};

  record(entry: Omit<RequestLogEntry, 'seq'>): void {
    this.log.push({ seq: ++this.seq, ...entry });
    if (this.log.length > LOG_CAPACITY) this.log.shift();
    this.requests[entry.endpoint] = (this.requests[entry.endpoint] ?? 0) + 1;
    const statuses = (this.responses[entry.endpoint] ??= {});
    statuses[String(entry.status)] = (statuses[String(entry.status)] ?? 0) + 1;
  }

  orderPlaced(symbol: string): void {
    this.ordersPlaced++;
    this.bySymbol[symbol] = (this.bySymbol[symbol] ?? 0) + 1;
  }

  counters(): Counters {
    return structuredClone({ ordersPlaced: this.ordersPlaced, ordersPlacedBySymbol: this.bySymbol, requests: this.requests, responses: this.responses });
  }

  entries(): RequestLogEntry[] {
    return [...this.log];
  }
}
