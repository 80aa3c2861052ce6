import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { ROOT } from '../support/cli.ts';
import { openStore } from '../../src/eventstore/url.ts';
import type { EventStore, RecordedEvent } from '../../src/eventstore/port.ts';
import { Ingester } from '../../src/services/ingester.ts';
import { tokensOfLog } from '../../src/chain/log-tokens.ts';
import { foldLedger } from '../../src/services/ledger-query.ts';
import { ACCUMULATOR_CHECKPOINT, AccumulatorService, DecisionDiverged } from '../../src/services/accumulator.ts';
import { positionsJson } from '../../projections/queries.ts';
import { symbolState } from '../../projections/accumulator.ts';
import { settingsChanged } from '../../projections/accumulator-snapshot.ts';
import { StoreUnavailable } from '../../src/eventstore/errors.ts';
import { testLog } from '../support/test-log.ts';
import { History, CHAIN_ID, ORDERBOOK, OTHER_OWNER, TOKEN, io, ourTake, takeOrderV2Log } from '../support/orderbook-logs.ts';
import { config } from '../support/scenario.ts';
import { LEDGER_PREFIXES, encodeEvent, streams } from '../../src/domain/events.ts';
import { hedgeDecisionId, orderEventId, uuidV5 } from '../../src/domain/ids.ts';
import * as D from '../../src/domain/decimal.ts';
import { until } from '../support/until.ts';

const CHILD = fileURLToPath(new URL('../support/accumulator-child.ts', import.meta.url));

async function seed(store: EventStore): Promise<void> {
  const history = new History();
  const symbols = new Map<string, string>(Object.entries(TOKEN).map(([name, address]) => [address, name]));
  const ingester = new Ingester({
    store, chainId: CHAIN_ID, orderbook: ORDERBOOK, tokensOf: tokensOfLog,
    tokens: { resolve: async (tokens) => new Map([...tokens.keys()].map((a) => [a, { symbol: symbols.get(a) ?? null, reason: null }])) },
  });
  await ingester.ingest([ourTake(history, 'SELL', 12n, 'tGME', 100n), ourTake(history, 'BUY', 25n, 'tAAPL', 101n)]);
}

function runChild(url: string, mode?: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; appended: { symbol: string; written: boolean }[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, url, ...(mode ? [mode] : [])], { cwd: ROOT, env: { ...process.env, LEDGER_LOG_LEVEL: 'silent' } });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, appended: out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) }));
  });
}

/** The seeded ledger folded (decision 1 of GME pending), then a readable decision 3 stored out of its place, at revision 1 of hedgecmd-GME. */
async function misplacedDecision() {
  const store = await openStore('sqlite::memory:');
  await seed(store);
  const service = new AccumulatorService({ store, config, log: testLog('accumulator') });
  await service.catchUp();
  const pending = symbolState(service.current.state, 'GME').pending!;
  const three = hedgeDecisionId('GME', 3);
  await store.append('hedgecmd-GME', [encodeEvent(three, { type: 'HedgeRequested', data: { commandId: three, sequence: 3, symbol: 'GME', brokerSymbol: 'GME', side: 'SELL', quantity: D.parse('7'), referencePrice: null, causationId: three } })], 0n);
  return { store, service, pending, three };
}

const readAll = async (store: EventStore, prefix: string): Promise<RecordedEvent[]> => {
  const events: RecordedEvent[] = [];
  for await (const e of store.readAll({ prefixes: [prefix] })) events.push(e);
  return events;
};

describe('accumulator service', () => {
  it('re-emits the same decision after a crash between append and checkpoint, writing nothing new', async () => {
    const url = `sqlite:${join(mkdtempSync(join(tmpdir(), 'acc-crash-')), 'ledger.db')}`;
    const store = await openStore(url);
    await seed(store);

    const crashed = await runChild(url, 'crash-after-append');
    expect(crashed.signal).toBe('SIGKILL');
    expect(crashed.appended).toEqual([{ symbol: 'GME', sequence: 1, written: true }]);
    expect(await store.readCheckpoint(ACCUMULATOR_CHECKPOINT)).toBeUndefined();

    const restarted = await runChild(url);
    expect(restarted.code).toBe(0);
    expect(restarted.appended).toEqual([
      { symbol: 'GME', sequence: 1, written: false },
      { symbol: 'AAPL', sequence: 1, written: true },
    ]);
    expect((await readAll(store, 'hedgecmd-')).map((e) => `${e.stream}@${e.revision}`)).toEqual(['hedgecmd-GME@0', 'hedgecmd-AAPL@0']);

    const again = await runChild(url);
    expect(again).toMatchObject({ code: 0, appended: [] });

    const view = await foldLedger(store, config);
    expect(positionsJson(view).map((p) => [p.symbol, p.net, p.pending?.side, p.pending?.quantity])).toEqual([
      ['AAPL', '2.5', 'SELL', '2'],
      ['GME', '-1.2', 'BUY', '1'],
    ]);
    await store.close();
  });

  it('resumes from its checkpointed snapshot to the same state as a fold from scratch', async () => {
    const store = await openStore('sqlite::memory:');
    await seed(store);
    const first = new AccumulatorService({ store, config, log: testLog('accumulator') });
    await first.catchUp();
    const history = new History();
    const ingester = new Ingester({ store, chainId: CHAIN_ID, orderbook: ORDERBOOK, tokensOf: tokensOfLog, tokens: { resolve: async () => new Map() } });
    await ingester.ingest([ourTake(history, 'SELL', 9n, 'tGME', 102n)]);
    const resumed = new AccumulatorService({ store, config, log: testLog('accumulator') });
    await resumed.restore();
    expect(resumed.current.position).toBe((await store.readCheckpoint(ACCUMULATOR_CHECKPOINT))?.position);
    expect(await resumed.catchUp()).toBe(3); // only what followed the checkpoint: the first run's two decisions and the new log
    const scratch = new AccumulatorService({ store, config, log: testLog('accumulator') });
    await scratch.catchUp();
    expect(resumed.current.state).toEqual(scratch.current.state);
    expect(symbolState(resumed.current.state, 'GME').pending?.quantity).toEqual(symbolState(scratch.current.state, 'GME').pending?.quantity);
    await store.close();
  });

  it('a failed decision append is decided again after a restart, not skipped', async () => {
    const store = await openStore('sqlite::memory:');
    await seed(store);
    let failures = 1;
    const flaky: EventStore = Object.assign(Object.create(store) as EventStore, {
      append: (stream: string, events: Parameters<EventStore['append']>[1], expected: Parameters<EventStore['append']>[2]) =>
        stream.startsWith('hedgecmd-') && failures-- > 0 ? Promise.reject(new StoreUnavailable('disk I/O error')) : store.append(stream, events, expected),
    });
    const failing = new AccumulatorService({ store: flaky, config, log: testLog('accumulator') });
    const abort = new AbortController();
    await expect(failing.follow(abort.signal)).rejects.toThrow('disk I/O error'); // its shutdown checkpoint is still taken

    const restarted = new AccumulatorService({ store, config, log: testLog('accumulator') });
    await restarted.restore();
    await restarted.catchUp();
    expect((await readAll(store, 'hedgecmd-')).map((e) => `${e.stream}@${e.revision}`)).toEqual(['hedgecmd-GME@0', 'hedgecmd-AAPL@0']);
    const scratch = new AccumulatorService({ store, config, log: testLog('accumulator') });
    await scratch.catchUp();
    expect(restarted.current.state.symbols).toEqual(scratch.current.state.symbols);
    await store.close();
  });

  it('checkpoints at the head once the store goes quiet, not after every event', async () => {
    const store = await openStore('sqlite::memory:');
    await seed(store);
    let saves = 0;
    const counting: EventStore = Object.assign(Object.create(store) as EventStore, {
      saveCheckpoint: (...args: Parameters<EventStore['saveCheckpoint']>) => (saves++, store.saveCheckpoint(...args)),
    });
    const service = new AccumulatorService({ store: counting, config, log: testLog('accumulator') });
    const stop = new AbortController();
    const following = service.follow(stop.signal);
    // The last events are its own decisions, after which nothing is decided: only the lull checkpoints them.
    await until(async () => (await store.readCheckpoint(ACCUMULATOR_CHECKPOINT))?.position === (await store.headPosition()), 'a checkpoint at the head', 5_000);
    let events = 0;
    for await (const _ of store.readAll({ prefixes: LEDGER_PREFIXES })) events++;
    expect(saves).toBeLessThan(events);
    stop.abort();
    await following;
    await store.close();
  });

  it('yields to I/O while it catches up on a long backlog: a stop (SIGTERM) is seen within it, not after it', async () => {
    // 100k events: folded in one chain of microtasks, they kept every timer, HTTP request and
    // signal handler of the process waiting until the accumulator reached the head.
    const store = await openStore('sqlite::memory:');
    for (let b = 0; b < 100; b++) {
      const resumes = Array.from({ length: 1000 }, (_, i) => ({ id: uuidV5(`backlog ${b}:${i}`), type: 'HedgingResumed', data: { symbol: 'GME', reason: 'test', at: '2025-01-01T00:00:00Z' } }));
      await store.append('hedgectl-GME', resumes, b === 0 ? 'no_stream' : BigInt(b * 1000 - 1));
    }
    const head = await store.headPosition();
    const service = new AccumulatorService({ store, config, log: testLog('accumulator') });
    const stop = new AbortController();
    const following = service.follow(stop.signal);
    await sleep(20);
    const seen = service.current.position;
    stop.abort();
    await following;
    expect(seen).not.toBe(head);
    expect(service.current.position < head!).toBe(true); // stopped at the event it was on, far from the head
    expect((await store.readCheckpoint(ACCUMULATOR_CHECKPOINT))?.position).toBe(service.current.position);
    await store.close();
  });

  it('a catch-up read (run --once) lets timers run meanwhile: the executor lock keeps its heartbeat through a long backlog', async () => {
    const store = await openStore('sqlite::memory:');
    for (let b = 0; b < 50; b++) {
      const resumes = Array.from({ length: 1000 }, (_, i) => ({ id: uuidV5(`read backlog ${b}:${i}`), type: 'HedgingResumed', data: { symbol: 'GME', reason: 'test', at: '2025-01-01T00:00:00Z' } }));
      await store.append('hedgectl-GME', resumes, b === 0 ? 'no_stream' : BigInt(b * 1000 - 1));
    }
    const service = new AccumulatorService({ store, config, log: testLog('accumulator') });
    let ticks = 0;
    const heartbeat = setInterval(() => ticks++, 0);
    try {
      expect(await service.catchUp()).toBe(50_000);
    } finally {
      clearInterval(heartbeat);
    }
    expect(ticks).toBeGreaterThan(0);
    await store.close();
  });

  it('records a corrupt event and folds the events after it', async () => {
    const store = await openStore('sqlite::memory:');
    await store.append('hedgectl-GME', [{ id: '6f1c9a56-0d1e-5c3b-9a55-6a4f1e9e0001', type: 'HedgingResumed', data: { symbol: 42 } }], 'no_stream');
    await seed(store);
    const service = new AccumulatorService({ store, config, log: testLog('accumulator') });
    await service.catchUp();
    expect(symbolState(service.current.state, 'AAPL').pending?.side).toBe('SELL');
    const view = await foldLedger(store, config);
    expect(view.rejectedByReason.get('corrupt_event')).toBe(1);
    await store.close();
  });

  it('a readable decision stored out of its place (decision 3 at revision 1) is corrupt: the pending command stays, its fill counts, and no second command follows', async () => {
    const { store, service, pending, three } = await misplacedDecision();
    await service.catchUp();
    expect(symbolState(service.current.state, 'GME')).toMatchObject({ pending, decisions: 1 });
    const filled = encodeEvent(orderEventId(pending.commandId, 0n), { type: 'HedgeOrderFilled', data: { commandId: pending.commandId, filledQuantity: pending.quantity, averagePrice: D.parse('20'), at: '2025-09-08T14:00:00.000Z' } });
    await store.append(streams.hedgeOrder(pending.commandId), [filled], 'no_stream');
    await service.catchUp();
    expect(symbolState(service.current.state, 'GME')).toMatchObject({ pending: null, decisions: 1, net: D.parse('-0.2') });
    expect((await readAll(store, 'hedgecmd-GME')).map((e) => e.id)).toEqual([pending.commandId, three]);
    const view = await foldLedger(store, config);
    expect(positionsJson(view).find((p) => p.symbol === 'GME')).toMatchObject({ net: '-0.2', pending: null });
    expect(view.rejectedByReason.get('corrupt_event')).toBe(1);
    await store.close();
  });
});

describe('accumulator service: divergence', () => {
  it('stops with DecisionDiverged when an event no accumulator wrote (another id) holds its place, blaming no configuration', async () => {
    const store = await openStore('sqlite::memory:');
    await seed(store);
    await store.append('hedgecmd-GME', [{ id: '6f1c9a56-0d1e-5c3b-9a55-6a4f1e9e0002', type: 'HedgingHalted', data: { sequence: 1, symbol: 'GME', reason: 'x', consecutiveFailures: 3, causationId: '6f1c9a56-0d1e-5c3b-9a55-6a4f1e9e0003' } }], 'no_stream');
    const service = new AccumulatorService({ store, config, log: testLog('accumulator') });
    const stopped = await service.catchUp().then(() => undefined, (e: Error) => e);
    expect(stopped).toBeInstanceOf(DecisionDiverged);
    // Another configuration would have written it under decision 1's id: the store would take it as a repeat, compared below.
    expect(stopped?.message).toMatch(/^decision 1 for GME differs from the one recorded in hedgecmd-GME \(HedgingHalted \{.*\}\), whose id 6f1c9a56-0d1e-5c3b-9a55-6a4f1e9e0002 is not decision 1's: no accumulator wrote it/);
    expect(stopped?.message).not.toMatch(/configuration \(/);
    await store.close();
  });

  it('stops naming the corrupt event when its append conflicts with one stored at its place (a decision 3 at revision 1)', async () => {
    const { store, service, pending } = await misplacedDecision();
    await rejected(store, pending.commandId); // re-arms: decision 2 goes to revision 1
    const stopped = await service.catchUp().then(() => undefined, (e: Error) => e);
    expect(stopped).toBeInstanceOf(DecisionDiverged);
    expect(stopped?.message).toMatch(/^decision 2 for GME cannot be checked against the one recorded, which is corrupt \(corrupt event hedgecmd-GME@1 at data\.sequence: decision 3 stored at revision 1, not 2\); restore the store from a backup/);
    expect((await readAll(store, 'hedgecmd-GME')).length).toBe(2);
    await store.close();
  });

  it('stops saying decisions are missing when the stream ends before the place of its decision', async () => {
    const store = await openStore('sqlite::memory:');
    await seed(store);
    // Decision 1 is acknowledged but lost (as a stream deleted after it was written).
    const losing: EventStore = Object.assign(Object.create(store) as EventStore, {
      append: (stream: string, events: Parameters<EventStore['append']>[1], expected: Parameters<EventStore['append']>[2]) =>
        stream === 'hedgecmd-GME' ? Promise.resolve({ written: true, nextRevision: 0n }) : store.append(stream, events, expected),
    });
    const service = new AccumulatorService({ store: losing, config, log: testLog('accumulator') });
    await service.catchUp();
    await rejected(store, symbolState(service.current.state, 'GME').pending!.commandId);
    const again = new AccumulatorService({ store, config, log: testLog('accumulator') });
    await again.restore();
    const stopped = await again.catchUp().then(() => undefined, (e: Error) => e);
    expect(stopped?.message).toMatch(/^decision 2 for GME cannot be appended to hedgecmd-GME: the stream ends at revision no_stream, short of decision 1, which was recorded: decisions are missing from the store; restore/);
    await store.close();
  });

  it('stops naming the corrupt event, not the configuration, when the recorded decision cannot be read', async () => {
    const store = await openStore('sqlite::memory:');
    await seed(store);
    const id = hedgeDecisionId('GME', 1);
    await store.append('hedgecmd-GME', [{ id, type: 'HedgeRequested', data: { commandId: id, sequence: 1, symbol: 'GME', brokerSymbol: 'GME', side: 'BUY', quantity: '1.5', referencePrice: null, causationId: id } }], 'no_stream');
    const service = new AccumulatorService({ store, config, log: testLog('accumulator') });
    const stopped = await service.catchUp().then(() => undefined, (e: Error) => e);
    expect(stopped).toBeInstanceOf(DecisionDiverged);
    expect(stopped?.message).toMatch(/^decision 1 for GME cannot be checked against the one recorded, which is corrupt \(corrupt event hedgecmd-GME@0 at data\.quantity: expected a whole, non-negative number of shares, got "1\.5"\); restore the store from a backup/);
    expect(stopped?.message).not.toMatch(/configuration/);
    await store.close();
  });

  const rejected = (store: EventStore, commandId: string) =>
    store.append(streams.hedgeOrder(commandId), [encodeEvent(orderEventId(commandId, 0n), { type: 'HedgeOrderFailed', data: { commandId, reason: 'REJECTED', filledQuantity: D.ZERO, averagePrice: null, at: '2025-09-08T14:00:00.000Z' } })], 'no_stream');

  it('stops with DecisionDiverged when a fold under another failure limit derives another decision at the same place (same id, same revision)', async () => {
    const store = await openStore('sqlite::memory:');
    await seed(store);
    const first = new AccumulatorService({ store, config, log: testLog('accumulator') }); // halts after 3 failures
    await first.catchUp();
    for (let i = 0; i < 3; i++) {
      await rejected(store, symbolState(first.current.state, 'GME').pending!.commandId);
      await first.catchUp();
    }
    expect((await readAll(store, 'hedgecmd-GME')).map((e) => e.type)).toEqual(['HedgeRequested', 'HedgeRequested', 'HedgeRequested', 'HedgingHalted']);
    const laxer = new AccumulatorService({ store, config: { ...config, maxConsecutiveFailures: 5 }, log: testLog('accumulator') });
    await expect(laxer.catchUp()).rejects.toThrow(/decision 4 for GME is not the one recorded \(HedgingHalted/);
    await store.close();
  });

  const filled = (store: EventStore, commandId: string, shares: string) =>
    store.append(streams.hedgeOrder(commandId), [encodeEvent(orderEventId(commandId, 0n), { type: 'HedgeOrderFilled', data: { commandId, filledQuantity: D.parse(shares), averagePrice: D.parse('20'), at: '2025-09-08T14:00:00.000Z' } })], 'no_stream');

  it('stops with DecisionDiverged when a decision is recorded that its fold never derives (fewer owners), rather than adopting it and hedging its fill back', async () => {
    const store = await openStore('sqlite::memory:');
    await seed(store);
    const first = new AccumulatorService({ store, config, log: testLog('accumulator') });
    await first.catchUp(); // GME: oS 1.2 → BUY 1, filled
    await filled(store, symbolState(first.current.state, 'GME').pending!.commandId, '1');
    const fewerOwners = { ...config, fills: { ...config.fills, owners: new Set([OTHER_OWNER]) } };
    const narrowed = new AccumulatorService({ store, config: fewerOwners, log: testLog('accumulator') });
    const stopped = await narrowed.catchUp().then(() => undefined, (e: Error) => e);
    expect(stopped).toBeInstanceOf(DecisionDiverged);
    expect(stopped?.message).toMatch(/^decision 1 for GME is recorded .*, but this fold decides no such decision/);
    // Adopted, its fill (BUY 1 of a sale this fold never saw) would be hedged back with a SELL 1.
    expect((await readAll(store, 'hedgecmd-GME')).map((e) => e.type)).toEqual(['HedgeRequested']);
    await store.close();
  });

  it('leaves the checkpoint of the configuration that wrote the ledger until a fold under another has passed it: stopped by a decision that differs, it is as it was', async () => {
    const store = await openStore('sqlite::memory:');
    await seed(store); // GME decided, then AAPL
    await new AccumulatorService({ store, config, log: testLog('accumulator') }).catchUp();
    const written = await store.readCheckpoint(ACCUMULATOR_CHECKPOINT);
    // GME's decision agrees (a checkpoint after it would name the new symbol map), AAPL's does not.
    const renamed = new AccumulatorService({ store, config: { ...config, brokerSymbols: { AAPL: 'XAAPL' } }, log: testLog('accumulator') });
    await renamed.restore();
    await expect(renamed.catchUp()).rejects.toThrow(/decision 1 for AAPL is not the one recorded/);
    expect(await store.readCheckpoint(ACCUMULATOR_CHECKPOINT)).toEqual(written);
    expect(settingsChanged(written!.snapshot!, config)).toEqual([]);
    // A fold under a map that changes no decision passes it, and checkpoints under its own configuration.
    const unused = { ...config, brokerSymbols: { MSFT: 'XMSFT' } };
    const other = new AccumulatorService({ store, config: unused, log: testLog('accumulator') });
    await other.restore();
    await other.catchUp();
    expect(settingsChanged((await store.readCheckpoint(ACCUMULATOR_CHECKPOINT))!.snapshot!, unused)).toEqual([]);
    await store.close();
  });

  it('a checkpoint taken under another configuration is not resumed from: the log is folded again', async () => {
    const store = await openStore('sqlite::memory:');
    await seed(store);
    // A fill of OTHER_OWNER's order: not ours under `config`, ours under `moreOwners`.
    const theirs = takeOrderV2Log({ owner: OTHER_OWNER, validInputs: [io('USDC')], validOutputs: [io('tGME')] }, { input: 15n * 10n ** 17n, output: 30_000_000n });
    await new Ingester({ store, chainId: CHAIN_ID, orderbook: ORDERBOOK, tokensOf: tokensOfLog, tokens: { resolve: async () => new Map() } }).ingest([new History().log(theirs, { tx: 'tx 102', logIndex: 0, block: 102n }).data]);
    await new AccumulatorService({ store, config, log: testLog('accumulator') }).catchUp();
    const same = new AccumulatorService({ store, config, log: testLog('accumulator') });
    await same.restore();
    expect(same.current.position).not.toBe('start'); // under the same configuration the checkpoint is used
    const moreOwners = { ...config, fills: { ...config.fills, owners: new Set([...config.fills.owners, OTHER_OWNER]) } };
    const restarted = new AccumulatorService({ store, config: moreOwners, log: testLog('accumulator') });
    await restarted.restore();
    expect(restarted.current.position).toBe('start');
    await restarted.catchUp();
    const scratch = new AccumulatorService({ store, config: moreOwners, log: testLog('accumulator') });
    await scratch.catchUp();
    expect(restarted.current.state).toEqual(scratch.current.state);
    expect(D.format(symbolState(restarted.current.state, 'GME').net)).toBe('-2.7'); // their 1.5 sold counts now
    await store.close();
  });
});
