/**
 * The control API: in-process methods on `control`, and the same operations as JSON over
 * HTTP under /__control/ so another process can drive the simulator. Control calls are
 * neither faulted, authenticated nor journaled.
 */
import * as t from 'io-ts';
import * as D from '../../domain/decimal.ts';
import { NonNegativeInt, PositiveInt, PriceText, decode, parsePrice, withOptional } from './codecs.ts';
import { syncToClock, type SimCore } from './core.ts';
import { Fault, type FaultSchedule } from './faults.ts';
import type { Counters, RequestLogEntry } from './journal.ts';
import { ENDPOINTS, type Endpoint, type Instruction } from './model.ts';
import type { TokenResponse } from './oauth.ts';
import type { ScriptTarget, SimOrder } from './orders.ts';
import type { Reply } from './reply.ts';
import { Script } from './scripts.ts';

export const CONTROL_PREFIX = '/__control/';

/** An order as tests see it: exact decimal strings, ISO times. */
export interface OrderSummary {
  readonly orderId: string;
  readonly symbol: string;
  readonly instruction: Instruction;
  readonly quantity: string;
  readonly filledQuantity: string;
  /** Σ(price×qty)/Σqty over the executions, exact; null before the first fill. */
  readonly averagePrice: string | null;
  readonly status: string;
  readonly enteredTime: string;
  readonly closeTime: string | null;
  readonly executions: readonly { readonly quantity: string; readonly price: string; readonly time: string }[];
}

export interface SchwabSimControl {
  /** Price with at most 4 decimals, e.g. "22.7299". Fills from now on use it. */
  setPrice(symbol: string, price: string): void;
  /** true / false pins the market open / closed; null follows New York hours on the sim clock. */
  setMarketOpen(open: boolean | null): void;
  /** Lifecycle for the next orders; `null` clears the target. */
  setScript(script: Script | null, target?: ScriptTarget): void;
  /** How long (sim ms) a cancel stays PENDING_CANCEL before CANCELED. */
  setCancelLatency(ms: number): void;
  injectFault(endpoint: Endpoint, fault: Fault, schedule?: FaultSchedule): void;
  clearFaults(endpoint?: Endpoint): void;
  /** Every issued token stops working: API calls answer 401, refreshes 400. */
  revokeTokens(): void;
  /** A fresh login, skipping the browser round trip. */
  issueTokens(): TokenResponse;
  counters(): Counters;
  requests(): RequestLogEntry[];
  orders(): OrderSummary[];
}

class ControlInputError extends RangeError {}

function decodeOrThrow<A>(codec: t.Decoder<unknown, A>, input: unknown): A {
  const result = decode(codec, input);
  if (!result.ok) throw new ControlInputError(result.errors.join('; '));
  return result.value;
}

const EndpointCodec = t.keyof(Object.fromEntries(ENDPOINTS.map((e) => [e, null])) as Record<Endpoint, null>);

function averagePrice(o: SimOrder): string | null {
  if (o.filled === 0n) return null;
  const cost = D.sum(o.executions.map((e) => D.mul(e.price, D.fromBigInt(e.quantity))));
  return D.format(D.div(cost, D.fromBigInt(o.filled)));
}

function summary(o: SimOrder): OrderSummary {
  return {
    orderId: String(o.orderId),
    symbol: o.symbol,
    instruction: o.instruction,
    quantity: o.quantity.toString(),
    filledQuantity: o.filled.toString(),
    averagePrice: averagePrice(o),
    status: o.status,
    enteredTime: new Date(o.enteredAt).toISOString(),
    closeTime: o.closedAt === undefined ? null : new Date(o.closedAt).toISOString(),
    executions: o.executions.map((e) => ({ quantity: e.quantity.toString(), price: D.format(e.price), time: new Date(e.at).toISOString() })),
  };
}

export function createControl(core: SimCore): SchwabSimControl {
  // Catch up first so that what changes applies from now on, never to steps already due.
  const now = (): number => syncToClock(core);
  return {
    setPrice(symbol, price) {
      const parsed = parsePrice(price);
      now();
      core.book.setPrice(symbol, parsed);
    },
    setMarketOpen: (open) => core.book.setMarketOverride(open, now()),
    setScript(script, target = 'default') {
      const checked = script === null ? null : decodeOrThrow(Script, script);
      now();
      core.book.setScript(checked, target);
    },
    setCancelLatency(ms) {
      core.book.cancelLatencyMs = decodeOrThrow(NonNegativeInt, ms);
    },
    injectFault: (endpoint, fault, schedule) => core.faults.inject(decodeOrThrow(EndpointCodec, endpoint), decodeOrThrow(Fault, fault), schedule),
    clearFaults: (endpoint) => core.faults.clear(endpoint),
    revokeTokens: () => core.oauth.revokeAll(),
    issueTokens: () => core.oauth.login(now()),
    counters: () => core.journal.counters(),
    requests: () => core.journal.entries(),
    orders() {
      now();
      return core.book.all().map(summary);
    },
  };
}

const ClockBody = t.union([t.type({ set: t.string }), t.type({ advanceMs: NonNegativeInt })]);
const PriceBody = t.type({ symbol: t.string, price: PriceText });
const MarketBody = t.type({ open: t.union([t.boolean, t.null]) });
const ScriptBody = withOptional({ script: t.union([Script, t.null]) }, { symbol: t.string, next: PositiveInt });
const FaultBody = withOptional({ endpoint: EndpointCodec, fault: Fault }, { times: PositiveInt, probability: t.number });
const LatencyBody = t.type({ ms: NonNegativeInt });

interface ControlInput {
  readonly body: unknown;
  readonly query: URLSearchParams;
}
type ControlRoute = (core: SimCore, control: SchwabSimControl, input: ControlInput) => unknown;

const clockState = (core: SimCore) => {
  const now = syncToClock(core);
  return { now: new Date(now).toISOString(), marketOpen: core.book.isOpen(now) };
};

function setClock(core: SimCore, body: unknown) {
  const change = decodeOrThrow(ClockBody, body);
  if ('set' in change) core.clock.set(new Date(change.set));
  else core.clock.advance(change.advanceMs);
  return clockState(core);
}

function scriptTarget(body: t.TypeOf<typeof ScriptBody>): ScriptTarget {
  if (body.symbol !== undefined) return { symbol: body.symbol };
  return body.next === undefined ? 'default' : { next: body.next };
}

function faultSchedule(body: t.TypeOf<typeof FaultBody>): FaultSchedule {
  return { ...(body.times === undefined ? {} : { times: body.times }), ...(body.probability === undefined ? {} : { probability: body.probability }) };
}

const CONTROL_ROUTES: Readonly<Record<string, ControlRoute>> = {
  'GET clock': (core) => clockState(core),
  'POST clock': (core, _c, { body }) => setClock(core, body),
  'GET account': (core) => core.account,
  'POST price': (_core, control, { body }) => {
    const { symbol, price } = decodeOrThrow(PriceBody, body);
    control.setPrice(symbol, price);
  },
  'POST market': (_core, control, { body }) => control.setMarketOpen(decodeOrThrow(MarketBody, body).open),
  'POST script': (_core, control, { body }) => {
    const decoded = decodeOrThrow(ScriptBody, body);
    control.setScript(decoded.script, scriptTarget(decoded));
  },
  'POST fault': (_core, control, { body }) => {
    const decoded = decodeOrThrow(FaultBody, body);
    control.injectFault(decoded.endpoint, decoded.fault, faultSchedule(decoded));
  },
  'DELETE faults': (_core, control, { query }) => {
    const endpoint = query.get('endpoint');
    control.clearFaults(endpoint === null ? undefined : decodeOrThrow(EndpointCodec, endpoint));
  },
  'POST cancel-latency': (_core, control, { body }) => control.setCancelLatency(decodeOrThrow(LatencyBody, body).ms),
  'POST revoke': (_core, control) => control.revokeTokens(),
  'POST tokens': (_core, control) => control.issueTokens(),
  'GET counters': (_core, control) => control.counters(),
  'GET requests': (_core, control) => control.requests(),
  'GET orders': (_core, control) => control.orders(),
};

const plainJson = (status: number, value: unknown): Reply => ({
  status,
  headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify(value),
});

/** Bad input (JSON, codec, price, date) is a 400 naming the problem. */
export function handleControl(core: SimCore, control: SchwabSimControl, method: string, url: URL, body: string): Reply {
  const route = CONTROL_ROUTES[`${method} ${url.pathname.slice(CONTROL_PREFIX.length)}`];
  if (route === undefined) return plainJson(404, { error: `no control route ${method} ${url.pathname}` });
  try {
    const result = route(core, control, { body: body === '' ? undefined : JSON.parse(body), query: url.searchParams });
    return plainJson(200, result ?? { ok: true });
  } catch (err) {
    const badInput = err instanceof SyntaxError || err instanceof RangeError || err instanceof D.DecimalFormatError;
    return plainJson(badInput ? 400 : 500, { error: (err as Error).message });
  }
}
