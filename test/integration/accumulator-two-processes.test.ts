/**
 * Two accumulators at once (`run --roles accumulate`, real processes) folding one SQLite file
 * while trades arrive in bursts, one executor (`run --roles execute`) hedges them at the Schwab
 * simulator over HTTP, one symbol's orders are all rejected until it halts, and two operators
 * resume it at the same moment. operations.md says two accumulators are wasteful but safe (the
 * store dedupes their decisions); this checks it: every decision is in its stream exactly once,
 * is the one a fold from scratch derives, was written by exactly one of them, and both keep
 * running.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { createSimClock } from '../../src/broker/schwab-sim/index.ts';
import { LEDGER_PREFIXES, encodeEvent, streams, type Envelope } from '../../src/domain/events.ts';
import { hedgeDecisionId } from '../../src/domain/ids.ts';
import * as D from '../../src/domain/decimal.ts';
import { Ingester } from '../../src/services/ingester.ts';
import { tokensOfLog } from '../../src/chain/log-tokens.ts';
import { foldLedger } from '../../src/services/ledger-query.ts';
import { initialState, react, type Decision } from '../../projections/accumulator.ts';
import { positionsJson } from '../../projections/queries.ts';
import { Harness } from '../support/executor-harness.ts';
import type { ServiceProcess } from '../support/e2e-stack.ts';
import { roleEnv, spawnRoles } from '../support/role-process.ts';
import { runCli } from '../support/cli.ts';
import { config } from '../support/scenario.ts';
import { History, CHAIN_ID, ORDERBOOK, TOKEN, ourTake } from '../support/orderbook-logs.ts';
import { mulberry32 } from '../../src/seeded-random.ts';
import { decodedEvents } from '../support/store-fixtures.ts';


let harness: Harness;
const running: ServiceProcess[] = [];
afterEach(async () => {
  await Promise.allSettled(running.splice(0).map((p) => p.stop('SIGKILL')));
  await harness.close();
});

const decoded = (prefixes: readonly string[]): Promise<Envelope[]> => decodedEvents(harness.store.readAll({ prefixes }));

/** `decision appended` lines of a process's log: `symbol#sequence` → written. */
function appended(service: ServiceProcess): { key: string; written: boolean }[] {
  return readFileSync(service.logFile, 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; symbol: string; sequence: number; written: boolean })
    .filter((l) => l.msg === 'decision appended').map((l) => ({ key: `${l.symbol}#${l.sequence}`, written: l.written }));
}

const positions = async () => positionsJson(await foldLedger(harness.store, config));

describe('two accumulators at once', () => {
  it('write every decision exactly once, the one a fold from scratch derives, and both keep running; resumes meanwhile', { timeout: 120_000 }, async () => {
    harness = await Harness.start({ store: 'file', clock: 'wall', sim: { clock: createSimClock({ start: new Date(), followWallClock: true }) } });
    harness.sim.control.setMarketOpen(true);
    harness.sim.control.setScript({ kind: 'asyncReject', afterMs: 0, reason: 'not tradable' }, { symbol: 'AAPL' });
    const accumulators = [await spawnRoles(harness, 'accumulate-1', 'accumulate'), await spawnRoles(harness, 'accumulate-2', 'accumulate')];
    running.push(...accumulators, await spawnRoles(harness, 'execute', 'execute'));

    // Bursts of trades at random moments: GME sold onchain (BUY hedges, filled), AAPL bought (SELL hedges, rejected).
    const symbols = new Map<string, string>(Object.entries(TOKEN).map(([name, address]) => [address, name]));
    const ingester = new Ingester({
      store: harness.store, chainId: CHAIN_ID, orderbook: ORDERBOOK, tokensOf: tokensOfLog,
      tokens: { resolve: async (tokens) => new Map([...tokens.keys()].map((a) => [a, { symbol: symbols.get(a) ?? null, reason: null }])) },
    });
    const history = new History();
    const random = mulberry32(7);
    for (let block = 100n; block < 130n; block++) {
      await ingester.ingest([ourTake(history, 'SELL', 3n + BigInt(Math.floor(random() * 6)), 'tGME', block, 0), ourTake(history, 'BUY', 4n, 'tAAPL', block, 1)]);
      await sleep(Math.floor(random() * 120));
    }
    await harness.until(async () => {
      const [aapl, gme] = await positions();
      return aapl?.halted === true && gme?.pending === null && harness.sim.control.orders().every((o) => o.status === 'FILLED' || o.status === 'REJECTED');
    }, 'AAPL to halt and every GME hedge to fill', 60_000);

    // Two operators resume AAPL at once while both accumulators fold: one HedgingResumed, one refusal.
    harness.sim.control.setScript(null, { symbol: 'AAPL' });
    const resumes = await Promise.all([1, 2].map((n) => runCli(['resume', 'AAPL', '--reason', `operator ${n}`], { env: roleEnv(harness, { LEDGER_LOG_LEVEL: 'warn' }) })));
    // The later one either conflicts at the revision it read or, reading after the first, finds AAPL no longer halted.
    const [won, lost, ...none] = [...resumes].sort((a, b) => a.code - b.code);
    expect([won?.code, none], JSON.stringify(resumes)).toEqual([0, []]);
    expect(lost?.code, JSON.stringify(lost)).not.toBe(0);
    expect(lost?.stderr).toMatch(/someone else wrote to hedgectl-AAPL|AAPL is not halted/);
    expect((await decoded([streams.hedgeControl('AAPL')])).map((e) => e.type)).toEqual(['HedgingResumed']);
    await harness.until(async () => (await positions()).every((p) => !p.halted && p.pending === null && D.abs(D.parse(p.net)).units < D.fromBigInt(1n).units), 'AAPL to be hedged after the resume', 30_000);
    // Every decision stream is dense, with the deterministic ids, and holds what a fold from scratch decides.
    const recorded = await decoded(['hedgecmd-']);
    let state = initialState;
    const derived: Decision[] = [];
    for (const event of await decoded(LEDGER_PREFIXES)) {
      const reaction = react(config, state, event);
      state = reaction.state;
      derived.push(...reaction.decisions);
    }
    const keyOf = (d: Decision) => `${d.data.symbol}#${d.data.sequence}`;
    // Both accumulators have caught up: each has logged every decision (they poll the file at most every second).
    await harness.until(() => accumulators.every((a) => derived.every((d) => appended(a).some((x) => x.key === keyOf(d)))), 'both accumulators to log every decision', 30_000);
    const revisions = new Map<string, bigint[]>();
    for (const e of recorded) revisions.set(e.stream, [...(revisions.get(e.stream) ?? []), e.revision]);
    for (const [stream, rs] of revisions) expect(rs, stream).toEqual(rs.map((_, i) => BigInt(i)));
    for (const e of recorded) expect(e.id).toBe(hedgeDecisionId((e.data as { symbol: string }).symbol, Number(e.revision) + 1));
    expect(recorded.map((e) => JSON.stringify(encodeEvent(e.id, e as Decision)))).toEqual(derived.map((d) => JSON.stringify(encodeEvent(hedgeDecisionId(d.data.symbol, d.data.sequence), d))));
    expect(derived.filter((d) => d.type === 'HedgingHalted').map((d) => d.data.symbol)).toEqual(['AAPL']);
    expect(derived.length).toBeGreaterThan(5);

    // Each decision was written by exactly one accumulator; the other found it recorded (written: false). Both still run.
    const logs = accumulators.map(appended);
    for (const d of derived) {
      const key = keyOf(d);
      const seen = logs.map((l) => l.filter((x) => x.key === key));
      expect(seen.map((s) => s.length), key).toEqual([1, 1]);
      expect(seen.flat().filter((s) => s.written).length, key).toBe(1);
    }
    expect(accumulators.every((a) => a.alive)).toBe(true);
    expect(harness.ordersPlaced()).toBe(derived.filter((d) => d.type === 'HedgeRequested').length);
  });
});
