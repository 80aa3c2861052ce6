/**
 * The order book and its lifecycle engine. No I/O and no clock of its own: callers pass
 * epoch-ms times, and advanceTo(t) plays every due script step, market open and market
 * close up to t, in time order. State therefore moves only when the caller's clock moves.
 */
import * as D from '../../domain/decimal.ts';
import { isMarketOpen, nextCloseAfter, nextOpenAfter } from '../market-hours.ts';
import type { Instruction } from './model.ts';
import type { Fill } from './positions.ts';
import { INSTANT_FILL, planOf, type Plan, type Script, type Step } from './scripts.ts';

export interface Execution {
  readonly activityId: number;
  readonly quantity: bigint;
  readonly price: D.Decimal;
  readonly at: number;
  readonly remainingAfter: bigint;
}

interface BookOrder {
  readonly orderId: number;
  readonly symbol: string;
  readonly instruction: Instruction;
  readonly quantity: bigint;
  readonly enteredAt: number;
  readonly plan: Plan;
  readonly executions: Execution[];
  status: string;
  filled: bigint;
  nextStep: number;
  closedAt?: number;
  statusDescription?: string;
  /** When the market let the order work; undefined while it waits for the open. */
  activatedAt?: number;
  cancelDueAt?: number;
}

export type SimOrder = Readonly<Omit<BookOrder, 'executions'>> & { readonly executions: readonly Execution[] };

export interface PlaceRequest {
  readonly symbol: string;
  readonly instruction: Instruction;
  readonly quantity: bigint;
}

export interface OrderQuery {
  readonly from: number;
  readonly to: number;
  readonly status?: string;
  readonly maxResults: number;
}

/** Which orders a script applies to: all by default, one symbol, or the next N placed (first). */
export type ScriptTarget = 'default' | { readonly symbol: string } | { readonly next: number };

export type CancelOutcome = 'accepted' | 'notFound' | 'notCancelable';

/** Ids shaped like Schwab's (13 digits), still exact as JSON doubles. */
const FIRST_ORDER_ID = 1004055538153;
const FIRST_ACTIVITY_ID = 95000000001;

export class OrderBook {
  private readonly orders = new Map<number, BookOrder>();
  private readonly open = new Set<BookOrder>();
  private readonly prices = new Map<string, D.Decimal>();
  private readonly symbolScripts = new Map<string, Script>();
  private readonly nextScripts: Script[] = [];
  private defaultScript: Script = INSTANT_FILL;
  private marketOverride: boolean | null = null;
  private nextOrderId = FIRST_ORDER_ID;
  private nextActivityId = FIRST_ACTIVITY_ID;
  private cursor: number;
  /** How long a cancel stays PENDING_CANCEL; a fill due within it wins the race. */
  cancelLatencyMs: number;

  constructor(start: number, cancelLatencyMs: number) {
    this.cursor = start;
    this.cancelLatencyMs = cancelLatencyMs;
  }

  setPrice(symbol: string, price: D.Decimal): void {
    this.prices.set(symbol, price);
  }

  priceOf(symbol: string): D.Decimal | undefined {
    return this.prices.get(symbol);
  }

  /** `null` clears the target (the default returns to instant fill). */
  setScript(script: Script | null, target: ScriptTarget = 'default'): void {
    if (target === 'default') this.defaultScript = script ?? INSTANT_FILL;
    else if ('symbol' in target) {
      if (script === null) this.symbolScripts.delete(target.symbol);
      else this.symbolScripts.set(target.symbol, script);
    } else if (script === null) this.nextScripts.length = 0;
    else for (let i = 0; i < target.next; i++) this.nextScripts.push(script);
  }

  isOpen(at: number): boolean {
    return this.marketOverride ?? isMarketOpen(at);
  }

  /** `null` returns to the clock's hours. Flipping the state opens or closes the market now. */
  setMarketOverride(open: boolean | null, at: number): void {
    this.advanceTo(at);
    const before = this.isOpen(at);
    this.marketOverride = open;
    if (this.isOpen(at) !== before) this.applyMarketState(at);
    this.advanceTo(at);
  }

  place(request: PlaceRequest, at: number): SimOrder {
    this.advanceTo(at);
    const order: BookOrder = {
      ...request,
      orderId: this.nextOrderId++,
      enteredAt: at,
      plan: planOf(this.takeScript(request.symbol)),
      executions: [],
      status: 'QUEUED',
      filled: 0n,
      nextStep: 0,
    };
    this.orders.set(order.orderId, order);
    this.open.add(order);
    if (this.isOpen(at)) this.activate(order, at);
    this.advanceTo(at);
    return order;
  }

  get(orderId: number): SimOrder | undefined {
    return this.orders.get(orderId);
  }

  /** Newest first, like Schwab. */
  list(query: OrderQuery): SimOrder[] {
    return [...this.orders.values()]
      .filter((o) => o.enteredAt >= query.from && o.enteredAt <= query.to && (query.status === undefined || o.status === query.status))
      .sort((a, b) => b.enteredAt - a.enteredAt || b.orderId - a.orderId)
      .slice(0, query.maxResults);
  }

  all(): SimOrder[] {
    return [...this.orders.values()];
  }

  cancel(orderId: number, at: number): CancelOutcome {
    this.advanceTo(at);
    const order = this.orders.get(orderId);
    if (order === undefined) return 'notFound';
    if (!this.open.has(order) || order.status === 'PENDING_CANCEL') return 'notCancelable';
    order.status = 'PENDING_CANCEL';
    order.cancelDueAt = at + this.cancelLatencyMs;
    this.advanceTo(at);
    return 'accepted';
  }

  /** Every execution in the order it happened. */
  fills(): Fill[] {
    return [...this.orders.values()]
      .flatMap((o) => o.executions.map((e) => ({ symbol: o.symbol, instruction: o.instruction, quantity: e.quantity, price: e.price, activityId: e.activityId })))
      .sort((a, b) => a.activityId - b.activityId);
  }

  /** Plays every market boundary and script step due at or before `target`, in time order. */
  advanceTo(target: number): void {
    for (;;) {
      const boundary = this.nextBoundary();
      const due = this.nextDue();
      if (boundary !== undefined && boundary <= target && (due === undefined || boundary <= due.at)) {
        this.cursor = boundary;
        this.applyMarketState(boundary);
      } else if (due !== undefined && due.at <= target) {
        this.cursor = Math.max(this.cursor, due.at);
        this.runDue(due.order, due.at);
      } else break;
    }
    this.cursor = target;
  }

  private takeScript(symbol: string): Script {
    return this.nextScripts.shift() ?? this.symbolScripts.get(symbol) ?? this.defaultScript;
  }

  /** The next open (if an order waits for it) or close (if one would expire at it); none under an override. */
  private nextBoundary(): number | undefined {
    if (this.marketOverride !== null) return undefined;
    const orders = [...this.open];
    const candidates = [
      ...(orders.some((o) => o.activatedAt === undefined) ? [nextOpenAfter(this.cursor)] : []),
      ...(orders.some((o) => o.activatedAt !== undefined && o.plan.expiresAtClose) ? [nextCloseAfter(this.cursor)] : []),
    ];
    return candidates.length === 0 ? undefined : Math.min(...candidates);
  }

  private applyMarketState(at: number): void {
    const open = this.isOpen(at);
    for (const order of [...this.open]) {
      if (open && order.activatedAt === undefined) this.activate(order, at);
      else if (!open && order.activatedAt !== undefined && order.plan.expiresAtClose) this.finish(order, 'EXPIRED', at);
    }
  }

  private activate(order: BookOrder, at: number): void {
    order.activatedAt = at;
    if (order.status === 'QUEUED') order.status = 'WORKING';
  }

  private stepDueAt(order: BookOrder): number {
    const step = order.plan.steps[order.nextStep];
    return step === undefined || order.activatedAt === undefined ? Infinity : order.activatedAt + step.at;
  }

  private nextDue(): { order: BookOrder; at: number } | undefined {
    let next: { order: BookOrder; at: number } | undefined;
    for (const order of this.open) {
      const at = Math.min(this.stepDueAt(order), order.cancelDueAt ?? Infinity);
      if (at !== Infinity && (next === undefined || at < next.at)) next = { order, at };
    }
    return next;
  }

  /** A step due no later than a pending cancel runs first: that is how a cancel loses the race. */
  private runDue(order: BookOrder, at: number): void {
    const step = order.plan.steps[order.nextStep];
    if (step === undefined || this.stepDueAt(order) > at) {
      this.finish(order, 'CANCELED', at);
      return;
    }
    order.nextStep++;
    this.applyStep(order, step, at);
  }

  private applyStep(order: BookOrder, step: Step, at: number): void {
    switch (step.do) {
      case 'fill':
        return this.fill(order, step.quantity, step.price, at);
      case 'status':
        if (order.status !== 'PENDING_CANCEL') order.status = step.status;
        return;
      case 'reject':
        order.statusDescription = step.reason;
        return this.finish(order, 'REJECTED', at);
      case 'cancel':
        return this.finish(order, 'CANCELED', at);
    }
  }

  private fill(order: BookOrder, wanted: bigint | undefined, price: D.Decimal | undefined, at: number): void {
    const remaining = order.quantity - order.filled;
    const quantity = wanted === undefined || wanted > remaining ? remaining : wanted;
    if (quantity <= 0n) return;
    const fillPrice = price ?? this.prices.get(order.symbol);
    if (fillPrice === undefined) throw new Error(`no price for ${order.symbol}`);
    order.filled += quantity;
    order.executions.push({ activityId: this.nextActivityId++, quantity, price: fillPrice, at, remainingAfter: order.quantity - order.filled });
    if (order.filled === order.quantity) this.finish(order, 'FILLED', at);
    else if (order.status !== 'PENDING_CANCEL') order.status = 'WORKING';
  }

  private finish(order: BookOrder, status: string, at: number): void {
    order.status = status;
    order.closedAt = at;
    delete order.cancelDueAt;
    this.open.delete(order);
  }
}
