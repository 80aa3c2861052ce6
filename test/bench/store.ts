/**
 * `npm run bench:store`: the SQLite event store's throughput on this machine (a script, not a test).
 *
 * On a fresh file in a temp dir: 200k small events as single appends (exact expected revisions,
 * a handful of streams), 200k more in appends of 1000, then everything read back with readAll
 * (and a subscription's catch-up), against the raw baseline: better-sqlite3 SELECT over the same
 * rows with JSON.parse of the data. Reads run three times each, interleaved; the best counts.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { NO_STREAM, type AppendResult, type ExpectedRevision, type NewEvent } from '../../src/eventstore/port.ts';
import { SqliteEventStore } from '../../src/eventstore/sqlite.ts';
import { machine, peakRssMb } from './machine.ts';

const EVENTS = 200_000;
const BATCH = 1_000;
const STREAMS = 8;
const READ_RUNS = 3;

const smallEvent = (seq: number): NewEvent => ({
  id: randomUUID(),
  type: 'BenchRecorded',
  data: { seq, symbol: 'tGME', side: 'BUY', amount: '12.5', block: '0x1b4' },
});

interface Result {
  readonly phase: string;
  readonly events: number;
  readonly ms: number;
  /** This process's user + system CPU: on a busy machine, wall time also counts other processes. */
  readonly cpuMs: number;
  /** Resident set size right after the phase. */
  readonly rssMiB: number;
}

async function timed(phase: string, run: () => Promise<number>): Promise<Result> {
  const start = performance.now();
  const cpu = process.cpuUsage();
  const events = await run();
  const { user, system } = process.cpuUsage(cpu);
  const rssMiB = process.memoryUsage().rss / 2 ** 20;
  return { phase, events, ms: performance.now() - start, cpuMs: (user + system) / 1000, rssMiB };
}

/** Appends `EVENTS` events in appends of `size` to STREAMS streams, each at its exact expected revision. */
async function appendAll(store: SqliteEventStore, category: string, size: number): Promise<number> {
  const next: ExpectedRevision[] = Array.from({ length: STREAMS }, () => NO_STREAM);
  for (let seq = 0; seq < EVENTS; seq += size) {
    const s = (seq / size) % STREAMS;
    const batch = Array.from({ length: size }, (_, i) => smallEvent(seq + i));
    const result: AppendResult = await store.append(`${category}-${s}`, batch, next[s]!);
    next[s] = result.nextRevision;
  }
  return EVENTS;
}

async function countAll(events: AsyncIterable<{ data: unknown }>, stopAt = Infinity): Promise<number> {
  let n = 0;
  let checksum = 0;
  for await (const e of events) {
    checksum += (e.data as { seq: number }).seq;
    if (++n === stopAt) break;
  }
  if (Number.isNaN(checksum)) throw new Error('unreadable data');
  return n;
}

const SELECT = 'SELECT position, event_id, stream, revision, type, data, metadata FROM events ORDER BY position';

/** The baseline: one SELECT over every row, JSON.parse of each row's data; rows as objects or as arrays (`.raw()`). */
function rawBaseline(file: string, arrays: boolean): number {
  const db = new Database(file, { readonly: true });
  let n = 0;
  let checksum = 0;
  const statement = db.prepare<[], { data: string } | unknown[]>(SELECT).raw(arrays);
  for (const row of statement.iterate()) {
    const data = arrays ? (row as unknown[])[5] : (row as { data: string }).data;
    checksum += (JSON.parse(data as string) as { seq: number }).seq;
    n++;
  }
  db.close();
  if (Number.isNaN(checksum)) throw new Error('unreadable data');
  return n;
}

const RAW_OBJECTS = 'raw SELECT + JSON.parse';
const RAW_ARRAYS = 'raw SELECT .raw() + JSON.parse';

const best = (results: Result[]): Result => results.reduce((a, b) => (b.ms < a.ms ? b : a));
const rate = (r: Result): number => (r.events / r.ms) * 1000;

async function readPhases(store: SqliteEventStore, file: string, total: number): Promise<Result[]> {
  const runs: Record<string, Result[]> = {};
  const record = (r: Result): void => void (runs[r.phase] ??= []).push(r);
  for (let i = 0; i < READ_RUNS; i++) {
    record(await timed(RAW_OBJECTS, async () => rawBaseline(file, false)));
    record(await timed(RAW_ARRAYS, async () => rawBaseline(file, true)));
    record(await timed('readAll', () => countAll(store.readAll())));
    record(await timed('readAll, prefix batch-', () => countAll(store.readAll({ prefixes: ['batch-'] }))));
    const subscription = store.subscribe({ from: 'start' });
    record(await timed('subscribe, catch-up', () => countAll(subscription, total)));
  }
  return Object.values(runs).map(best);
}

function print(results: Result[]): void {
  const widths = [30, 8, 8, 11, 8, 8];
  const row = (cells: string[]): string => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  console.log(row(['phase', 'events', 'seconds', 'events/s', 'CPU s', 'RSS MiB']));
  console.log(row(widths.map((w) => '-'.repeat(w))).replace(/ /g, '-'));
  const fixed = (ms: number): string => (ms / 1000).toFixed(2);
  for (const r of results) console.log(row([r.phase, String(r.events), fixed(r.ms), Math.round(rate(r)).toLocaleString('en-US'), fixed(r.cpuMs), r.rssMiB.toFixed(0)]));
  const find = (phase: string): Result => results.find((r) => r.phase === phase)!;
  const ratio = (baseline: string): string => `${((rate(find('readAll')) / rate(find(baseline))) * 100).toFixed(0)}%`;
  console.log(`\nreadAll / raw: ${ratio(RAW_OBJECTS)} of "${RAW_OBJECTS}", ${ratio(RAW_ARRAYS)} of "${RAW_ARRAYS}"`);
  console.log(`peak RSS: ${peakRssMb()} MiB (process.resourceUsage().maxRSS)`);
  console.log(`${machine()}; load average at the end ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hedge-ledger-bench-'));
  const file = join(dir, 'bench.db');
  const store = new SqliteEventStore(file);
  try {
    const results = [
      await timed('append, single (exact rev.)', () => appendAll(store, 'single', 1)),
      await timed(`append, batches of ${BATCH}`, () => appendAll(store, 'batch', BATCH)),
    ];
    results.push(...(await readPhases(store, file, 2 * EVENTS)));
    print(results);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
