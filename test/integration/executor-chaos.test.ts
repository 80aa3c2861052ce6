/**
 * Chaos, as a property: random onchain fills interleaved with executor rounds, random faults
 * on placement, polling and reconciliation, random order lifecycles. Whatever happens, the
 * simulator holds exactly one order per hedge command, and the fold's final net is the
 * onchain exposure minus what the broker actually filled.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as D from '../../src/domain/decimal.ts';
import { decodeEvent, encodeEvent, type Envelope } from '../../src/domain/events.ts';
import { NO_STREAM } from '../../src/eventstore/port.ts';
import type { Endpoint, Fault, Script } from '../../src/broker/schwab-sim/index.ts';
import { AccumulatorService } from '../../src/services/accumulator.ts';
import { symbolState } from '../../projections/accumulator.ts';
import { Scenario, config } from '../support/scenario.ts';
import { Harness } from '../support/executor-harness.ts';
import { testLog } from '../support/test-log.ts';

const TOKENS = { tGME: 'GME', tAAPL: 'AAPL' } as const;

const FAULTS: readonly Fault[] = [
  { kind: 'drop', applied: true },
  { kind: 'drop' },
  { kind: 'timeout', applied: true },
  { kind: 'timeout' },
  { kind: 'noLocation' },
  { kind: 'status', status: 429 },
  { kind: 'status', status: 429, retryAfterSeconds: 0 },
  { kind: 'status', status: 500 },
  { kind: 'status', status: 503, applied: true },
  { kind: 'gzip', applied: true },
  { kind: 'html' },
];

const SCRIPTS: readonly Script[] = [
  { kind: 'fill' },
  { kind: 'partialThenFill', first: 1, afterMs: 0, laterPrice: '22.7311' },
  { kind: 'partialThenCancel', first: 1, afterMs: 0 },
  { kind: 'asyncReject', afterMs: 0 },
];

const fill = fc.record({
  token: fc.constantFrom(...(Object.keys(TOKENS) as (keyof typeof TOKENS)[])),
  side: fc.constantFrom('oS' as const, 'oB' as const),
  shares: fc.integer({ min: 1, max: 30 }).map((n) => (n / 10).toFixed(1)),
});
const fault = fc.record({ endpoint: fc.constantFrom<Endpoint>('place', 'getOrder', 'listOrders'), fault: fc.constantFrom(...FAULTS), times: fc.integer({ min: 1, max: 2 }) });
const round = fc.record({
  fills: fc.array(fill, { minLength: 1, maxLength: 4 }),
  faults: fc.array(fault, { maxLength: 3 }),
  scripts: fc.array(fc.constantFrom(...SCRIPTS), { maxLength: 2 }),
});
type Round = typeof round extends fc.Arbitrary<infer R> ? R : never;

/** Appends the logs (and token metadata) a Scenario has built since `from` to the store. */
async function appendFacts(harness: Harness, events: readonly Envelope[]): Promise<void> {
  for (const e of events.filter((x) => x.type === 'OrderbookLogRecorded' || x.type === 'TokenMetadataRecorded')) {
    await harness.store.append(e.stream, [encodeEvent(e.id, e)], e.revision === 0n ? NO_STREAM : e.revision - 1n);
  }
}

/** Σ filled by the broker per symbol: BUY adds to net, SELL takes away (the simulator's own books). */
function brokerEffect(harness: Harness, symbol: string): D.Decimal {
  return D.sum(harness.sim.control.orders().filter((o) => o.symbol === symbol).map((o) => (o.instruction === 'BUY' ? D.parse(o.filledQuantity) : D.neg(D.parse(o.filledQuantity)))));
}

async function chaos(rounds: readonly Round[]): Promise<void> {
  const harness = await Harness.start({ requestTimeoutMs: 200 });
  try {
    const scenario = new Scenario();
    const onchain = new Map<string, D.Decimal>();
    const accumulator = new AccumulatorService({ store: harness.store, config, log: testLog('accumulator') });
    const executor = harness.executor();
    let appended = 0;
    for (const r of rounds) {
      for (const f of r.fills) {
        scenario[f.side](f.shares, f.token);
        const symbol = TOKENS[f.token];
        onchain.set(symbol, D.add(onchain.get(symbol) ?? D.ZERO, f.side === 'oB' ? D.parse(f.shares) : D.neg(D.parse(f.shares))));
      }
      await appendFacts(harness, scenario.events.slice(appended));
      appended = scenario.events.length;
      for (const f of r.faults) harness.sim.control.injectFault(f.endpoint, f.fault, { times: f.times });
      for (const s of r.scripts) harness.sim.control.setScript(s, { next: 1 });
      do await accumulator.catchUp();
      while ((await executor.drainOpen()) > 0);
      harness.sim.control.clearFaults();
    }
    const commands = [];
    for await (const recorded of harness.store.readAll({ prefixes: ['hedgecmd-'] })) {
      const decoded = decodeEvent(recorded);
      if (decoded._tag === 'Right' && decoded.right.type === 'HedgeRequested') commands.push(decoded.right.data);
    }
    expect(harness.ordersPlaced()).toBe(commands.length);
    expect(executor.openCommands()).toBe(0);
    for (const symbol of Object.values(TOKENS)) {
      const expected = D.add(onchain.get(symbol) ?? D.ZERO, brokerEffect(harness, symbol));
      expect(D.format(symbolState(accumulator.current.state, symbol).net), symbol).toBe(D.format(expected));
    }
  } finally {
    await harness.close();
  }
}

describe('chaos', () => {
  it('random commands under random faults: one order per command, and net = onchain exposure − broker fills', async () => {
    await fc.assert(fc.asyncProperty(fc.array(round, { minLength: 1, maxLength: 4 }), chaos), { numRuns: 12 });
  }, 60_000);
});
