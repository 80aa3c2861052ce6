/**
 * Corrupt stored events, over a real SQLite file: the example ledger (ingest-file, run --once) with
 * k of its stored events damaged in place (a field dropped, a wrong type, text that is not JSON,
 * another type's data, an unknown type, another stream's event, huge numbers, non-hex hashes,
 * 40-digit decimals…). Every fold (replay, the queries, the accumulator service, the API's follower)
 * goes on past them, reports each one decodeEvent refuses (its codec, or its place: a type, command,
 * symbol or decision number not its stream's) as a `corrupt_event` naming it, gives the same answers
 * every time, and folds the good logs around a corrupt orderbook log as if it had never been stored.
 */
import { afterAll, describe, expect, it, beforeAll } from 'vitest';
import fc from 'fast-check';
import Database from 'better-sqlite3';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXAMPLE, runCli } from '../support/cli.ts';
import { openStore } from '../../src/eventstore/url.ts';
import { decodeEvent } from '../../src/domain/events.ts';
import { foldLedger } from '../../src/services/ledger-query.ts';
import { stateHash } from '../../src/services/state-hash.ts';
import { AccumulatorService } from '../../src/services/accumulator.ts';
import { LedgerFollower } from '../../src/services/ledger-follower.ts';
import { accumulatorConfig } from '../../src/cli/context.ts';
import { loadConfig } from '../../src/config.ts';
import { testLog } from '../support/test-log.ts';
import { positionsJson, hedgesJson, tradeJson, rejectionJson } from '../../projections/queries.ts';
import type { Fill, Rejection } from '../../projections/fill.ts';
import type { RecordedEvent } from '../../src/eventstore/port.ts';
import { until } from '../support/until.ts';

const CONFIG_FILE = join(EXAMPLE, 'ledger.json');
const fold = accumulatorConfig(loadConfig({ file: CONFIG_FILE }), 'test');
const dir = mkdtempSync(join(tmpdir(), 'corrupt-events-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const BASE = join(dir, 'base.db');

interface Row { position: number; stream: string; type: string; data: string }

/** A damage to one stored event: the new type and data text (data is written as is, JSON or not). */
type Damage = (row: Row, rows: readonly Row[], pick: number) => { type: string; data: string };

const obj = (row: Row): Record<string, unknown> => JSON.parse(row.data) as Record<string, unknown>;
const keyOf = (o: Record<string, unknown>, pick: number): string => Object.keys(o)[pick % Object.keys(o).length]!;
const set = (row: Row, key: string | undefined, value: unknown): { type: string; data: string } => {
  const o = obj(row);
  const k = key !== undefined && key in o ? key : keyOf(o, key?.length ?? 0);
  return { type: row.type, data: JSON.stringify({ ...o, [k]: value }) };
};

const DAMAGES: Record<string, Damage> = {
  dropField: (row, _rows, pick) => {
    const o = obj(row);
    delete o[keyOf(o, pick)];
    return { type: row.type, data: JSON.stringify(o) };
  },
  wrongType: (row, _rows, pick) => set(row, keyOf(obj(row), pick), pick % 2 ? 42 : { nested: true }),
  invalidJson: (row) => ({ type: row.type, data: row.data.slice(0, -7) }),
  otherTypesData: (row, rows, pick) => {
    const others = rows.filter((r) => r.type !== row.type);
    return { type: row.type, data: others[pick % others.length]!.data };
  },
  unknownType: (row) => ({ type: 'HedgeOrderAmended', data: row.data }),
  anotherStreamsEvent: (row, rows, pick) => {
    const category = (r: Row) => r.stream.slice(0, r.stream.indexOf('-'));
    const others = rows.filter((r) => category(r) !== category(row));
    const other = others[pick % others.length]!;
    return { type: other.type, data: other.data };
  },
  hugeNumber: (row, _rows, pick) => {
    const o = obj(row);
    const k = ['sequence', 'chainId', 'consecutiveFailures'].find((key) => key in o);
    if (k) return { type: row.type, data: JSON.stringify(o).replace(`"${k}":${JSON.stringify(o[k])}`, `"${k}":${pick % 2 ? '1e400' : '1e300'}`) };
    const hex = ['logIndex', 'blockNumber', 'transactionIndex'].find((key) => key in o);
    if (hex) return set(row, hex, `0x${'f'.repeat(40)}`);
    return set(row, ['quantity', 'filledQuantity', 'averagePrice'].find((key) => key in o), '9'.repeat(80));
  },
  nonHexHash: (row) => {
    const o = obj(row);
    const k = ['transactionHash', 'blockHash', 'address', 'commandId', 'causationId'].find((key) => key in o);
    return set(row, k, `0x${'zz'.repeat(32)}`);
  },
  decimal40: (row) => {
    const o = obj(row);
    return set(row, ['quantity', 'filledQuantity', 'averagePrice', 'referencePrice'].find((key) => key in o), `1.${'3'.repeat(40)}`);
  },
  negativeQuantity: (row) => {
    const o = obj(row);
    return set(row, ['quantity', 'filledQuantity', 'averagePrice'].find((key) => key in o), '-3');
  },
  nonWholeQuantity: (row) => {
    const o = obj(row);
    return row.type === 'HedgeRequested' ? set(row, 'quantity', '1.5') : set(row, ['filledQuantity', 'quantity'].find((k) => k in o), '0.5');
  },
  unknownCommand: (row) => {
    const o = obj(row);
    return 'commandId' in o ? set(row, 'commandId', '00000000-0000-5000-8000-000000000001') : set(row, keyOf(o, 0), null);
  },
};

const view = async (url: string) => {
  const store = await openStore(url);
  const fills: Fill[] = [];
  const rejections: Rejection[] = [];
  try {
    const v = await foldLedger(store, fold, { listener: { onFill: (f) => fills.push(f), onRejection: (r) => rejections.push(r) } });
    return { hash: stateHash(v), positions: positionsJson(v), hedges: hedgesJson(v), fills: fills.map(tradeJson), rejections: [...rejections, ...v.awaitingAfterClear()].map(rejectionJson) };
  } finally {
    await store.close();
  }
};

/** The state hash of the API's follower once at the head (still following: no corrupt event stops it). */
async function followed(url: string): Promise<string> {
  const store = await openStore(url);
  try {
    const follower = new LedgerFollower({ store, config: fold, log: testLog('ledger-follower') });
    const stop = new AbortController();
    follower.start(stop.signal);
    try {
      await until(async () => (await follower.status()).caughtUp, 'the follower at the head');
      expect(follower.progress().state).toBe('following');
      return stateHash(follower.view);
    } finally {
      stop.abort();
      await follower.stopped;
    }
  } finally {
    await store.close();
  }
}

function corrupt(path: string, damages: readonly (readonly [number, string, number])[]): Row[] {
  const db = new Database(path);
  try {
    const rows = db.prepare('SELECT position, stream, type, data FROM events ORDER BY position').all() as Row[];
    const update = db.prepare('UPDATE events SET type = ?, data = ? WHERE position = ?');
    const damaged: Row[] = [];
    for (const [index, kind, pick] of damages) {
      const row = rows[index % rows.length]!;
      if (damaged.some((d) => d.position === row.position)) continue;
      const { type, data } = DAMAGES[kind]!(row, rows, pick);
      update.run(type, data, row.position);
      damaged.push({ ...row, type, data });
    }
    db.prepare('DELETE FROM checkpoints').run();
    return damaged;
  } finally {
    db.close();
  }
}

function remove(path: string, positions: readonly number[]): void {
  const db = new Database(path);
  try {
    const del = db.prepare('DELETE FROM events WHERE position = ?');
    for (const p of positions) del.run(p);
    db.prepare('DELETE FROM checkpoints').run();
  } finally {
    db.close();
  }
}

async function storedEvents(url: string): Promise<RecordedEvent[]> {
  const store = await openStore(url);
  const out: RecordedEvent[] = [];
  try {
    for await (const e of store.readAll({})) out.push(e);
  } finally {
    await store.close();
  }
  return out;
}

let copies = 0;
const copyOf = (from: string): string => {
  const path = join(dir, `copy-${copies++}.db`);
  copyFileSync(from, path);
  return path;
};
const copy = (): string => copyOf(BASE);

beforeAll(async () => {
  const common = ['--config', CONFIG_FILE, '--store', `sqlite:${BASE}`];
  expect((await runCli(['ingest-file', join(EXAMPLE, 'logs.jsonl'), '--tokens', join(EXAMPLE, 'tokens.json'), ...common])).code).toBe(0);
  expect((await runCli(['run', '--once', '--broker', 'paper', ...common])).code).toBe(0);
});

/** Campaign sizes: RUNS=300 CLI_RUNS=30 SEED=n for a longer search. */
const RUNS = Number(process.env['RUNS'] ?? 40);
const CLI_RUNS = Number(process.env['CLI_RUNS'] ?? 3);

const damageArb = fc.array(fc.tuple(fc.nat(), fc.constantFrom(...Object.keys(DAMAGES)), fc.nat()), { minLength: 1, maxLength: 4 });

describe('corrupt stored events', () => {
  it('every fold goes on past them, names each, answers the same every time', async () => {
    await fc.assert(
      fc.asyncProperty(damageArb, async (damages) => {
        const path = copy();
        const damaged = corrupt(path, damages);
        const url = `sqlite:${path}`;
        const stored = await storedEvents(url);
        const failing = stored.filter((e) => decodeEvent(e)._tag === 'Left');

        const a = await view(url);
        const b = await view(url);
        expect(b).toEqual(a);
        // Every event decodeEvent refuses is one corrupt_event rejection naming it and the failing path.
        const corruptRejections = a.rejections.filter((r) => r.reason === 'corrupt_event');
        expect(corruptRejections.map((r) => r.eventId).sort()).toEqual(failing.map((e) => e.id).sort());
        for (const r of corruptRejections) expect(r.detail).toMatch(/^corrupt event \S+@\d+ at (type|data\S*): ./);

        // Corrupt orderbook and token logs: the good ones around them fold as if the corrupt ones had never been stored.
        const ledgerFailing = failing.filter((e) => /^(orderbook|token)-/.test(e.stream));
        if (ledgerFailing.length === failing.length && damaged.every((d) => failing.some((f) => f.position === `${d.position}`.padStart(20, '0')))) {
          const without = copy();
          remove(without, ledgerFailing.map((e) => Number(e.position)));
          const w = await view(`sqlite:${without}`);
          expect(a.fills).toEqual(w.fills);
          expect(a.positions.map(({ symbol, net, onchainBought, onchainSold }) => ({ symbol, net, onchainBought, onchainSold })))
            .toEqual(w.positions.map(({ symbol, net, onchainBought, onchainSold }) => ({ symbol, net, onchainBought, onchainSold })));
        }

        // The accumulator service folds them the same way every time: done, or stopped with a named reason (no TypeError).
        const outcomes: string[] = [];
        for (let i = 0; i < 2; i++) {
          const store = await openStore(`sqlite:${copyOf(path)}`);
          try {
            const service = new AccumulatorService({ store, config: fold, log: testLog('accumulator') });
            outcomes.push(await service.catchUp().then((n) => `folded ${n}`, (e: Error) => `${e.name}: ${e.message}`));
          } finally {
            await store.close();
          }
        }
        if (process.env['TRACE']) console.log(JSON.stringify(damaged.map((d) => [d.type, d.data.slice(0, 200)])), outcomes[0]);
        expect(outcomes[1]).toBe(outcomes[0]);
        expect(outcomes[0]).toMatch(/^(folded \d+|DecisionDiverged: )/);
        // The API's follower folds them too, to the same view.
        expect(await followed(url)).toBe(a.hash);
        return true;
      }),
      { numRuns: RUNS, seed: Number(process.env['SEED'] ?? 7) },
    );
  }, 20_000 + RUNS * 200);
});

describe('corrupt stored events, through the real binary', () => {
  it('replay gives the same state hash twice and the queries answer, exit 0 and no stack trace', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(), fc.constantFrom(...Object.keys(DAMAGES)), fc.nat()), { minLength: 1, maxLength: 3 }), async (damages) => {
        const path = copy();
        corrupt(path, damages);
        const common = ['--config', CONFIG_FILE, '--store', `sqlite:${path}`, '--json'];
        const expected = await view(`sqlite:${path}`);
        const [a, b, positions, hedges, trades, rejected] = await Promise.all(
          [['replay'], ['replay'], ['positions'], ['hedges'], ['trades'], ['rejected']].map((command) => runCli([...command, ...common])),
        );
        for (const r of [a, b, positions, hedges, trades, rejected]) {
          expect(r!.code).toBe(0);
          expect(r!.stderr).not.toMatch(/^\s+at |TypeError|RangeError/m);
        }
        expect(JSON.parse(a!.stdout).stateHash).toBe(expected.hash);
        expect(JSON.parse(b!.stdout).stateHash).toBe(expected.hash);
        expect(JSON.parse(positions!.stdout)).toEqual(expected.positions);
        expect(JSON.parse(hedges!.stdout)).toEqual(expected.hedges);
        expect(JSON.parse(trades!.stdout)).toEqual(expected.fills);
        expect(JSON.parse(rejected!.stdout)).toEqual(expected.rejections);
      }),
      { numRuns: CLI_RUNS, seed: Number(process.env['SEED'] ?? 7) },
    );
  }, 20_000 + CLI_RUNS * 3_000);
});

describe('a corrupt hedge command', () => {
  /** The example ledger with its two commands decided (not executed), then the GME one damaged by `sql`. */
  async function decidedThenDamaged(name: string, sql: string): Promise<string[]> {
    const path = join(dir, `${name}.db`);
    const common = ['--config', CONFIG_FILE, '--store', `sqlite:${path}`];
    expect((await runCli(['ingest-file', join(EXAMPLE, 'logs.jsonl'), '--tokens', join(EXAMPLE, 'tokens.json'), ...common])).code).toBe(0);
    const store = await openStore(`sqlite:${path}`);
    try {
      await new AccumulatorService({ store, config: fold, log: testLog('accumulator') }).catchUp(); // decides BUY 1 GME and SELL 2 AAPL
    } finally {
      await store.close();
    }
    const db = new Database(path);
    db.prepare(sql).run();
    db.close();
    return common;
  }

  const statuses = async (common: string[]) =>
    (JSON.parse((await runCli(['hedges', '--json', ...common])).stdout) as { symbol: string; status: string }[]).map((h) => [h.symbol, h.status]);

  it('run --once places the readable commands, then stops naming the unreadable one (not exit 0 with its symbol pending for ever)', async () => {
    const common = await decidedThenDamaged('unreadable', `UPDATE events SET data = json_set(data, '$.quantity', '1.5') WHERE stream = 'hedgecmd-GME'`);
    const run = await runCli(['run', '--once', '--broker', 'paper', ...common]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^hedge-ledger run: hedge command hedgecmd-GME@0 cannot be read \(corrupt event hedgecmd-GME@0 at data\.quantity: expected a whole, non-negative number of shares, got "1\.5"\): no order is placed for it/m);
    expect(run.stderr).not.toMatch(/^\s+at /m);
    expect(await statuses(common)).toEqual([['GME', 'requested'], ['AAPL', 'filled']]);
  });

  it('a readable command with another id than its decision gets no order: it is not the command the accumulator waits for', async () => {
    const common = await decidedThenDamaged('misplaced', `UPDATE events SET data = json_set(data, '$.commandId', '00000000-0000-5000-8000-000000000001') WHERE stream = 'hedgecmd-GME'`);
    const run = await runCli(['run', '--once', '--broker', 'paper', ...common]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^hedge-ledger run: hedge command hedgecmd-GME@0 cannot be read \(corrupt event hedgecmd-GME@0 at data\.commandId: 00000000-0000-5000-8000-000000000001 is not the id of decision 1 of GME\)/m);
    expect(await statuses(common)).toEqual([['GME', 'requested'], ['AAPL', 'filled']]);
  });
});

describe('a corrupt order event', () => {
  it('one of another command in an order stream is a corrupt_event in replay, the queries and the follower, the outcome of neither command', async () => {
    const path = copy();
    const db = new Database(path);
    const commandOf = (symbol: string) => (db.prepare(`SELECT json_extract(data, '$.commandId') AS id FROM events WHERE stream = ?`).get(`hedgecmd-${symbol}`) as { id: string }).id;
    const [gme, aapl] = [commandOf('GME'), commandOf('AAPL')];
    db.prepare(`UPDATE events SET data = json_set(data, '$.commandId', ?) WHERE stream = ? AND type = 'HedgeOrderFilled'`).run(aapl, `hedgeorder-${gme}`);
    db.close();
    const url = `sqlite:${path}`;
    const expected = await view(url);
    expect(expected.rejections).toContainEqual(expect.objectContaining({ reason: 'corrupt_event', detail: `corrupt event hedgeorder-${gme}@2 at data.commandId: an event of command ${aapl} in the order stream of ${gme}` }));
    expect(expected.hedges.map((h) => [h.symbol, h.status])).toEqual([['GME', 'placed'], ['AAPL', 'filled']]);
    const common = ['--config', CONFIG_FILE, '--store', url, '--json'];
    const [replay, hedges, rejected] = await Promise.all([['replay'], ['hedges'], ['rejected']].map((command) => runCli([...command, ...common])));
    expect(JSON.parse(replay!.stdout).stateHash).toBe(expected.hash);
    expect(JSON.parse(hedges!.stdout)).toEqual(expected.hedges);
    expect(JSON.parse(rejected!.stdout)).toEqual(expected.rejections);
    expect(await followed(url)).toBe(expected.hash);
  });

  it('one of another command in an order stream stops run --once naming it, instead of retrying behind it for ever', async () => {
    const path = copy();
    const db = new Database(path);
    db.prepare(`UPDATE events SET data = json_set(data, '$.commandId', '00000000-0000-5000-8000-000000000001')
                WHERE position = (SELECT max(position) FROM events WHERE type = 'HedgeOrderFilled')`).run();
    db.close();
    const run = await runCli(['run', '--once', '--broker', 'paper', '--config', CONFIG_FILE, '--store', `sqlite:${path}`], { timeoutMs: 20_000 });
    expect(run.stderr).toMatch(/^hedge-ledger run: the order steps of command \S+ keep failing: corrupt event hedgeorder-\S+@2 at data\.commandId: an event of command 00000000-0000-5000-8000-000000000001 in the order stream of \S+$/m);
    expect(run.code).toBe(1);
  });
});
