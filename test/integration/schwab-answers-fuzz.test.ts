/**
 * Schwab's answer bodies mutated at random, as a property: a proxy between the adapter and the
 * simulator rewrites what getOrder, listOrders, accountNumbers and the token endpoint answer
 * (fields dropped, wrong types, nulls, numbers as strings, odd quantities and times, foreign and
 * duplicated orders, HTML, truncated or empty bodies, a gzip header without gzip), while the
 * simulator also makes placements ambiguous so that reconciliation reads the list. Whatever
 * happens: at most one order per command, every recorded outcome is the simulator's, a command
 * whose answers stay garbage is reported naming the field while the others complete, and once
 * the garbage stops every command reaches its true outcome.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as D from '../../src/domain/decimal.ts';
import type { Envelope } from '../../src/domain/events.ts';
import type { Fault, Script } from '../../src/broker/schwab-sim/index.ts';
import { checkLogin, createSchwabBroker } from '../../src/broker/schwab/index.ts';
import { BrokerNeedsOperator } from '../../src/broker/port.ts';
import { JsonNumber, parseJsonText, stringifyJson, type JsonValue } from '../../src/broker/schwab/json-text.ts';
import { Harness, storedTokens } from '../support/executor-harness.ts';
import { rewriteProxy, type ProxiedAnswer, type ProxiedEndpoint } from '../support/rewrite-proxy.ts';
import { capturedLog, testLog } from '../support/test-log.ts';
import { until } from '../support/until.ts';
import type { Side } from '../../src/domain/codecs.ts';

type Json = JsonValue;
type Path = readonly (string | number)[];
const DROP = Symbol('drop');

/** Sets (or drops) the value at `path`; a path that is not there leaves the value as it was. */
function setAt(value: Json, path: Path, to: Json | typeof DROP): void {
  let at: Json | undefined = value;
  for (const key of path.slice(0, -1)) at = at !== null && typeof at === 'object' ? (at as Record<string | number, Json>)[key] : undefined;
  const last = path[path.length - 1]!;
  if (at === null || typeof at !== 'object' || !(last in at)) return;
  if (to === DROP) {
    if (Array.isArray(at)) at.splice(Number(last), 1);
    else delete (at as Record<string, Json>)[last];
  } else (at as Record<string | number, Json>)[last] = to;
}

function getAt(value: Json, path: Path): Json | undefined {
  let at: Json | undefined = value;
  for (const key of path) at = at !== null && typeof at === 'object' ? (at as Record<string | number, Json>)[key] : undefined;
  return at;
}

const LEG: Path = ['orderLegCollection', 0];
const EXEC: Path = ['orderActivityCollection', 0, 'executionLegs', 0];

/** Order fields whose absence or bad value makes the order unreadable. */
const REQUIRED_ORDER_PATHS: readonly Path[] = [
  ['orderId'],
  ['status'],
  ['orderType'],
  ['enteredTime'],
  ['orderLegCollection'],
  [...LEG, 'instruction'],
  [...LEG, 'quantity'],
  [...LEG, 'instrument'],
  [...EXEC, 'quantity'],
  [...EXEC, 'price'],
];
const NUMBER_PATHS: readonly Path[] = [['orderId'], [...LEG, 'quantity'], ['filledQuantity'], [...EXEC, 'quantity'], [...EXEC, 'price']];
const SHARE_PATHS: readonly Path[] = [[...LEG, 'quantity'], [...EXEC, 'quantity']];

/** What one mutation does to an order object (in place). */
type OrderEdit =
  | { readonly kind: 'drop'; readonly path: Path }
  | { readonly kind: 'null'; readonly path: Path }
  | { readonly kind: 'wrongType'; readonly path: Path; readonly to: 'object' | 'array' | 'bool' }
  | { readonly kind: 'numberAsString'; readonly path: Path }
  | { readonly kind: 'shares'; readonly path: Path; readonly text: string }
  | { readonly kind: 'price'; readonly text: string }
  | { readonly kind: 'filledAboveOrdered' }
  | { readonly kind: 'remainingInconsistent' }
  | { readonly kind: 'status'; readonly status: string }
  | { readonly kind: 'orderId'; readonly to: 'string' | 'tooLarge' | 'fraction' | 'negative' }
  | { readonly kind: 'enteredTime'; readonly text: string };

function editOrder(order: Json, edit: OrderEdit): void {
  switch (edit.kind) {
    case 'drop':
      return setAt(order, edit.path, DROP);
    case 'null':
      return setAt(order, edit.path, null);
    case 'wrongType':
      return setAt(order, edit.path, edit.to === 'object' ? {} : edit.to === 'array' ? [] : true);
    case 'numberAsString': {
      const v = getAt(order, edit.path);
      if (v instanceof JsonNumber) setAt(order, edit.path, v.text);
      return;
    }
    case 'shares':
      return setAt(order, edit.path, new JsonNumber(edit.text));
    case 'price':
      return setAt(order, [...EXEC, 'price'], new JsonNumber(edit.text));
    case 'filledAboveOrdered': {
      const q = getAt(order, [...LEG, 'quantity']);
      if (q instanceof JsonNumber) setAt(order, ['filledQuantity'], new JsonNumber(`${Number(q.text) + 7}.0`));
      return;
    }
    case 'remainingInconsistent':
      return setAt(order, ['remainingQuantity'], new JsonNumber('-3.0'));
    case 'status': {
      const s = getAt(order, ['status']);
      if (typeof s === 'string') setAt(order, ['status'], edit.status === 'lower' ? s.toLowerCase() : edit.status);
      return;
    }
    case 'orderId': {
      const id = getAt(order, ['orderId']);
      if (!(id instanceof JsonNumber)) return;
      const to = { string: id.text, tooLarge: `${id.text}${id.text}`, fraction: `${id.text}.0`, negative: `-${id.text}` }[edit.to];
      return setAt(order, ['orderId'], edit.to === 'string' ? to : new JsonNumber(to));
    }
    case 'enteredTime':
      return setAt(order, ['enteredTime'], edit.text);
  }
}

/** A whole-body or per-endpoint mutation. */
type Mutation =
  | { readonly kind: 'html' }
  | { readonly kind: 'truncated' }
  | { readonly kind: 'empty' }
  | { readonly kind: 'gzipHeader' }
  | { readonly kind: 'order'; readonly edit: OrderEdit }
  | { readonly kind: 'foreignOrder'; readonly change: 'symbol' | 'side' | 'quantity' }
  | { readonly kind: 'duplicated' }
  | { readonly kind: 'field'; readonly path: Path; readonly to: 'drop' | 'null' | 'number' | 'empty' | 'object' };

const ODD_TIMES = ['2025-09-10 14:00:00', '1757512800', '10/09/2025 14:00', '2025-09-10T14:00:00+00', '', '2025-09-10T25:61:61Z'];

const orderEdit: fc.Arbitrary<OrderEdit> = fc.oneof(
  fc.record({ kind: fc.constant('drop' as const), path: fc.constantFrom(...REQUIRED_ORDER_PATHS) }),
  fc.record({ kind: fc.constant('null' as const), path: fc.constantFrom(...REQUIRED_ORDER_PATHS, ['filledQuantity'], ['orderActivityCollection']) }),
  fc.record({ kind: fc.constant('wrongType' as const), path: fc.constantFrom(...REQUIRED_ORDER_PATHS), to: fc.constantFrom('object' as const, 'array' as const, 'bool' as const) }),
  fc.record({ kind: fc.constant('numberAsString' as const), path: fc.constantFrom(...NUMBER_PATHS) }),
  fc.record({ kind: fc.constant('shares' as const), path: fc.constantFrom(...SHARE_PATHS, ['filledQuantity']), text: fc.constantFrom('1e400', '-1.0', '0.5', '2.25', '1.0E-30') }),
  fc.record({ kind: fc.constant('price' as const), text: fc.constantFrom('0', '-22.7299', '0.0', '1e400', '22.1234567890123456789', '-0.0') }),
  fc.constant({ kind: 'filledAboveOrdered' as const }),
  fc.constant({ kind: 'remainingInconsistent' as const }),
  fc.record({ kind: fc.constant('status' as const), status: fc.constantFrom('lower', 'SOMETHING_ELSE', '') }),
  fc.record({ kind: fc.constant('orderId' as const), to: fc.constantFrom('string' as const, 'tooLarge' as const, 'fraction' as const, 'negative' as const) }),
  fc.record({ kind: fc.constant('enteredTime' as const), text: fc.constantFrom(...ODD_TIMES, '1970-01-01T00:00:00+0000', '2999-01-01T00:00:00+0000') }),
);

const bodyMutation: fc.Arbitrary<Mutation> = fc.constantFrom<Mutation>({ kind: 'html' }, { kind: 'truncated' }, { kind: 'empty' }, { kind: 'gzipHeader' });

const MUTATIONS: Record<Exclude<ProxiedEndpoint, 'other'>, fc.Arbitrary<Mutation>> = {
  getOrder: fc.oneof(bodyMutation, orderEdit.map((edit) => ({ kind: 'order' as const, edit }))),
  listOrders: fc.oneof(
    bodyMutation,
    orderEdit.map((edit) => ({ kind: 'order' as const, edit })),
    fc.record({ kind: fc.constant('foreignOrder' as const), change: fc.constantFrom('symbol' as const, 'side' as const, 'quantity' as const) }),
    fc.constant({ kind: 'duplicated' as const }),
  ),
  accountNumbers: fc.oneof(
    bodyMutation,
    fc.record({ kind: fc.constant('field' as const), path: fc.constantFrom<Path>([0, 'accountNumber'], [0, 'hashValue'], [0]), to: fc.constantFrom('drop' as const, 'null' as const, 'number' as const, 'empty' as const, 'object' as const) }),
  ),
  token: fc.oneof(
    bodyMutation,
    fc.record({
      kind: fc.constant('field' as const),
      path: fc.constantFrom<Path>(['access_token'], ['refresh_token'], ['expires_in'], ['token_type']),
      to: fc.constantFrom('drop' as const, 'null' as const, 'number' as const, 'empty' as const, 'object' as const),
    }),
  ),
};

let nextForeignId = 9_000_000_000_000;

function mutateJson(endpoint: ProxiedEndpoint, json: Json, m: Mutation): Json {
  const orders = endpoint === 'listOrders' && Array.isArray(json) ? json : endpoint === 'getOrder' ? [json] : [];
  switch (m.kind) {
    case 'order':
      orders.forEach((o) => editOrder(o, m.edit));
      return json;
    case 'foreignOrder': {
      const model = orders[0];
      if (model === undefined || !Array.isArray(json)) return json;
      const copy = parseJsonText(stringifyJson(model));
      setAt(copy, ['orderId'], new JsonNumber(String(nextForeignId++)));
      if (m.change === 'symbol') setAt(copy, [...LEG, 'instrument', 'symbol'], 'ZZZZ');
      if (m.change === 'side') setAt(copy, [...LEG, 'instruction'], getAt(copy, [...LEG, 'instruction']) === 'BUY' ? 'SELL' : 'BUY');
      if (m.change === 'quantity') setAt(copy, [...LEG, 'quantity'], new JsonNumber('999.0'));
      return [copy, ...json];
    }
    case 'duplicated':
      return Array.isArray(json) ? [...json, ...json.map((o) => parseJsonText(stringifyJson(o)))] : json;
    case 'field': {
      const to = m.to === 'drop' ? DROP : m.to === 'null' ? null : m.to === 'number' ? new JsonNumber('12345678') : m.to === 'empty' ? '' : {};
      setAt(json, m.path, to);
      return json;
    }
    default:
      return json;
  }
}

function mutate(endpoint: ProxiedEndpoint, answer: ProxiedAnswer, m: Mutation): ProxiedAnswer {
  switch (m.kind) {
    case 'html':
      return { ...answer, headers: { ...answer.headers, 'content-type': 'text/html' }, body: Buffer.from('<HTML><BODY>Access Denied</BODY></HTML>') };
    case 'truncated':
      return { ...answer, body: answer.body.subarray(0, Math.floor(answer.body.length / 2)) };
    case 'empty':
      return { ...answer, body: Buffer.alloc(0) };
    case 'gzipHeader':
      return { ...answer, headers: { ...answer.headers, 'content-encoding': 'gzip' } };
    default: {
      const json = parseJsonText(answer.body.toString('utf8'));
      return { ...answer, body: Buffer.from(stringifyJson(mutateJson(endpoint, json, m))) };
    }
  }
}

interface Armed {
  readonly endpoint: Exclude<ProxiedEndpoint, 'other'>;
  readonly mutation: Mutation;
  /** Answers it spoils; for a permanent one, only getOrder answers about `symbol`. */
  remaining: number;
  readonly symbol?: string;
}

const COMMANDS: readonly { symbol: string; side: Side; quantity: bigint }[] = [
  { symbol: 'GME', side: 'BUY', quantity: 3n },
  { symbol: 'AAPL', side: 'SELL', quantity: 2n },
  { symbol: 'TSLA', side: 'BUY', quantity: 4n },
];
/** The symbol whose getOrder answers a permanent mutation spoils. */
const STUCK_SYMBOL = 'TSLA';

const SIM_FAULTS: readonly Fault[] = [{ kind: 'drop', applied: true }, { kind: 'timeout', applied: true }, { kind: 'noLocation' }, { kind: 'status', status: 503, applied: true }, { kind: 'drop' }];
const SCRIPTS: readonly Script[] = [
  { kind: 'fill' },
  { kind: 'partialThenFill', first: 1, afterMs: 0, laterPrice: '22.7311' },
  { kind: 'partialThenCancel', first: 1, afterMs: 0 },
  { kind: 'asyncReject', afterMs: 0 },
];

const endpointArb = fc.constantFrom<Exclude<ProxiedEndpoint, 'other'>>('getOrder', 'listOrders', 'accountNumbers', 'token');
const transient = endpointArb.chain((endpoint) => fc.record({ endpoint: fc.constant(endpoint), mutation: MUTATIONS[endpoint], times: fc.integer({ min: 1, max: 3 }) }));
/** Permanent garbage a decoder must refuse (not a plausible order): what reports the command. */
const permanentEdit = fc.oneof(
  fc.record({ kind: fc.constant('drop' as const), path: fc.constantFrom(...REQUIRED_ORDER_PATHS.slice(0, 8)) }),
  fc.record({ kind: fc.constant('numberAsString' as const), path: fc.constantFrom<Path>([...LEG, 'quantity'], ['orderId']) }),
  fc.record({ kind: fc.constant('shares' as const), path: fc.constant<Path>([...LEG, 'quantity']), text: fc.constantFrom('-1.0', '0.5', '1e400') }),
  fc.record({ kind: fc.constant('enteredTime' as const), text: fc.constantFrom(...ODD_TIMES) }),
);
const run = fc.record({
  transients: fc.array(transient, { minLength: 1, maxLength: 6 }),
  permanent: fc.option(permanentEdit, { nil: undefined }),
  simFaults: fc.array(fc.record({ endpoint: fc.constantFrom('place' as const, 'getOrder' as const, 'listOrders' as const), fault: fc.constantFrom(...SIM_FAULTS) }), { maxLength: 3 }),
  scripts: fc.array(fc.constantFrom(...SCRIPTS), { minLength: COMMANDS.length, maxLength: COMMANDS.length }),
  expiredAccessToken: fc.boolean(),
});
type Run = typeof run extends fc.Arbitrary<infer R> ? R : never;

const FIELD_NAMES = /orderId|status|orderType|enteredTime|orderLegCollection|instruction|quantity|instrument|symbol/;

async function fuzz(r: Run): Promise<void> {
  // 1 s, not 200 ms: on a loaded machine a slow answer's timeout would be the last error reported, not the garbage.
  const harness = await Harness.start({ requestTimeoutMs: 1_000 });
  const armed: Armed[] = r.transients.map((t) => ({ endpoint: t.endpoint, mutation: t.mutation, remaining: t.times }));
  if (r.permanent !== undefined) armed.unshift({ endpoint: 'getOrder', mutation: { kind: 'order', edit: r.permanent }, remaining: Infinity, symbol: STUCK_SYMBOL });
  let mutating = true;
  const proxy = await rewriteProxy(harness.sim.port, (endpoint, answer) => {
    if (!mutating || endpoint === 'other' || answer.status !== 200) return answer;
    const text = answer.body.toString('utf8');
    const hit = armed.find((a) => a.endpoint === endpoint && a.remaining > 0 && (a.symbol === undefined || text.includes(`"symbol":"${a.symbol}"`)));
    if (hit === undefined) return answer;
    hit.remaining--;
    return mutate(endpoint, answer, hit.mutation);
  });
  const abort = new AbortController();
  const captured = capturedLog(process.env['FUZZ_DEBUG'] === undefined ? 'warn' : 'debug');
  try {
    if (r.expiredAccessToken) await harness.tokens.save({ ...storedTokens(harness.sim.control.issueTokens(), harness.now()), accessExpiresAt: new Date(harness.now().getTime() - 1000).toISOString() });
    r.scripts.forEach((s, i) => harness.sim.control.setScript(s, { symbol: COMMANDS[i]!.symbol }));
    for (const f of r.simFaults) harness.sim.control.injectFault(f.endpoint, f.fault);
    const broker = createSchwabBroker({ ...harness.settings(), app: { ...harness.settings().app, baseUrl: proxy.baseUrl } }, { now: harness.now, log: captured.log });
    const executor = harness.executor({ broker, log: captured.log });
    const ids = new Map<string, string>();
    for (const c of COMMANDS) ids.set(c.symbol, await harness.request(c.symbol, c.side, c.quantity));
    const following = executor.follow(abort.signal);
    const done = async (symbol: string) => (await harness.outcome(ids.get(symbol)!)) !== undefined;
    const others = COMMANDS.filter((c) => r.permanent === undefined || c.symbol !== STUCK_SYMBOL);
    // Commands whose answers are not spoiled for good complete, whatever the others' answers are.
    await until(async () => (await Promise.all(others.map((c) => done(c.symbol)))).every(Boolean), 'the commands without permanent garbage to complete', 15_000, 10);
    if (r.permanent !== undefined) {
      const placedId = await until(async () => {
        const placed = (await harness.orderEvents(ids.get(STUCK_SYMBOL)!)).find((e) => e.type === 'HedgeOrderPlaced');
        return placed?.type === 'HedgeOrderPlaced' ? placed.data.brokerOrderId : undefined;
      }, 'the command with garbage answers to be placed', 10_000, 10);
      // The spoiled command is reported, naming the field, once its trouble has lasted (5 min of the executor's clock).
      const failing = await until(
        () => {
          harness.sim.clock.advance(60_000);
          // Its poll's problem, not an earlier blip of its placement that happened to last while the clock ran.
          const problem = executor.failing();
          return problem !== undefined && problem.includes(`order ${placedId}`) ? problem : undefined;
        },
        'the command with garbage answers to be reported (naming its order)',
        5_000,
        20,
      );
      expect(failing).toMatch(FIELD_NAMES);
      expect(failing).not.toMatch(/TypeError|undefined|Cannot read/);
      expect(await done(STUCK_SYMBOL)).toBe(false);
    }
    mutating = false;
    await until(async () => (await Promise.all(COMMANDS.map((c) => done(c.symbol)))).every(Boolean), 'every command to reach its outcome once the garbage stops', 15_000, 10);
    abort.abort();
    await following;

    // At most one order per command, ever: here, exactly one, as every command placed.
    const orders = harness.sim.control.orders();
    expect(orders.length, JSON.stringify(orders.map((o) => [o.orderId, o.symbol, o.instruction, o.quantity]))).toBe(COMMANDS.length);
    for (const c of COMMANDS) {
      const events: Envelope[] = await harness.orderEvents(ids.get(c.symbol)!);
      const placed = events.find((e) => e.type === 'HedgeOrderPlaced');
      const outcome = events.find((e) => e.type === 'HedgeOrderFilled' || e.type === 'HedgeOrderFailed')!;
      const mine = orders.filter((o) => o.symbol === c.symbol);
      expect(mine, c.symbol).toHaveLength(1);
      const order = mine[0]!;
      expect(order.instruction).toBe(c.side);
      expect(order.quantity).toBe(c.quantity.toString());
      expect(placed?.type === 'HedgeOrderPlaced' && placed.data.brokerOrderId, c.symbol).toBe(order.orderId);
      // The recorded outcome is the simulator's: its status, shares and average price.
      if (outcome.type === 'HedgeOrderFilled') {
        expect(order.status, c.symbol).toBe('FILLED');
        expect(D.format(outcome.data.filledQuantity)).toBe(order.filledQuantity);
        expect(D.format(outcome.data.averagePrice)).toBe(order.averagePrice);
      } else if (outcome.type === 'HedgeOrderFailed') {
        expect(order.status, `${c.symbol}: ${outcome.data.reason}`).not.toBe('FILLED');
        expect(D.format(outcome.data.filledQuantity), c.symbol).toBe(order.filledQuantity);
        expect(outcome.data.averagePrice === null ? null : D.format(outcome.data.averagePrice), c.symbol).toBe(order.averagePrice);
      }
    }
    // Garbage is named, never a crash.
    const EXPECTED = ['BrokerUnavailable', 'AmbiguousPlacement', 'ReauthRequired', 'BrokerNeedsOperator', 'TrackMoved', undefined];
    const crashes = captured.lines.filter((l) => {
      const err = l['err'] as { type?: string; message?: string } | undefined;
      return !EXPECTED.includes(err?.type) || /Cannot read|is not a function|undefined \(reading/.test(err?.message ?? '');
    });
    expect(crashes.map((l) => JSON.stringify(l).slice(0, 300))).toEqual([]);
  } catch (e) {
    if (process.env['FUZZ_DEBUG'] !== undefined) {
      const seen = new Map<string, number>();
      for (const l of captured.lines) seen.set(`${String(l.msg)} ${JSON.stringify(l['err'] ?? l['problem'] ?? '').slice(0, 400)}`, (seen.get(`${String(l.msg)} ${JSON.stringify(l['err'] ?? l['problem'] ?? '').slice(0, 400)}`) ?? 0) + 1);
      console.log([...seen].map(([k, n]) => `${n}x ${k}`).join('\n'));
      console.log(JSON.stringify(harness.sim.control.orders()), harness.sim.clock.now().toISOString(), captured.lines.slice(-12).map((l) => JSON.stringify(l).slice(0, 400)), captured.lines.length);
    }
    throw e;
  } finally {
    abort.abort();
    await proxy.close();
    await harness.close();
  }
}

describe('Schwab answers fuzz', () => {
  it('mutated answer bodies: one order per command, true outcomes, garbage named and never blocking others', async () => {
    // Stopped by fast-check before the test's timeout, a run that takes too long still names its seed and plan.
    const budget = { interruptAfterTimeLimit: 100_000, markInterruptAsFailure: true };
    await fc.assert(fc.asyncProperty(run, fuzz), { numRuns: Number(process.env['FUZZ_RUNS'] ?? 25), endOnFailure: process.env['FUZZ_NOSHRINK'] !== undefined, ...(process.env['FUZZ_SEED'] === undefined ? budget : { seed: Number(process.env['FUZZ_SEED']) }), ...(process.env['FUZZ_PATH'] === undefined ? {} : { path: process.env['FUZZ_PATH'] }) });
  }, 120_000);
});

describe('an account list Schwab answers empty', () => {
  it('says Schwab lists no account, not that the login sees several', async () => {
    const harness = await Harness.start();
    const proxy = await rewriteProxy(harness.sim.port, (endpoint, answer) => (endpoint === 'accountNumbers' ? { ...answer, body: Buffer.from('[]') } : answer));
    try {
      const settings = { ...harness.settings(), app: { ...harness.settings().app, baseUrl: proxy.baseUrl } };
      const check = checkLogin(settings, { now: harness.now, log: testLog('broker') });
      await expect(check).rejects.toThrow(BrokerNeedsOperator);
      await expect(check).rejects.toThrow(/^Schwab lists no account for this login \(accountNumbers answered an empty list\)/);
    } finally {
      await proxy.close();
      await harness.close();
    }
  });
});
