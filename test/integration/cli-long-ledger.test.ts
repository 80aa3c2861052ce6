/** Queries on a long ledger, through the real binary: their memory stays flat (a fill a reorg undid stays out of `trades`, a rejection it withdrew out of `rejected`). */
import { afterAll, describe, expect, it, vi } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXAMPLE, ROOT } from '../support/cli.ts';
import { History, io, takeOrderV2Log, OTHER_OWNER, OUR_OWNER, type RawLog } from '../support/orderbook-logs.ts';
import { encodeEvent, type LedgerEvent } from '../../src/domain/events.ts';
import { openStore } from '../../src/eventstore/url.ts';
import type { Envelope } from '../../src/domain/events.ts';

const TAKES = 30_000;
const execFileAsync = promisify(execFile);

/** Each test's ledger is ~70 MB: removed after the file's tests, not left in the temporary directory. */
const dirs: string[] = [];
afterAll(() => dirs.splice(0).forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** A query in a heap of `heapMb`: its exit code, stdout and the tail of stderr. */
function query(store: string, args: readonly string[], heapMb: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [`--max-old-space-size=${heapMb}`, join(ROOT, 'bin', 'hedge-ledger.js'), ...args, '--config', join(EXAMPLE, 'ledger.json'), '--store', store], {
      cwd: ROOT, env: { ...process.env, LEDGER_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-2000)));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A ledger of TAKES takes of `take`, one per block; the reorg removes the log `removed` (an index), if given. */
async function ledger(take: RawLog, removed?: number): Promise<{ store: string; logs: Envelope[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-long-'));
  dirs.push(dir);
  const store = `sqlite:${join(dir, 'ledger.db')}`;
  const history = new History();
  const stored = (e: Envelope) => encodeEvent(e.id, e as unknown as LedgerEvent);
  const logs = Array.from({ length: TAKES }, (_, i) => history.log(take, { tx: `take ${i}`, logIndex: 0, block: 1_000n + BigInt(i) }));
  const s = await openStore(store);
  try {
    await s.append('token-8453', history.allTokens().map(stored), 'no_stream');
    const events = [...logs.map(stored), ...(removed === undefined ? [] : [stored(history.logRemoved(logs[removed]!))])];
    for (let i = 0; i < events.length; i += 2_000) await s.append(logs[0]!.stream, events.slice(i, i + 2_000), i === 0 ? 'no_stream' : BigInt(i - 1));
  } finally {
    await s.close();
  }
  return { store, logs };
}

/** `trades --json` with debug logs: the process, its stderr so far, and its exit code once it has exited. */
function tradesJson(store: string) {
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'hedge-ledger.js'), 'trades', '--json', '--config', join(EXAMPLE, 'ledger.json'), '--store', store], {
    cwd: ROOT, env: { ...process.env, LEDGER_LOG_LEVEL: 'debug' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  return { stdout: child.stdout, stderr: () => stderr, exited };
}

/** The folds a query's debug log says it ended, in order. */
const foldsEnded = (stderr: string) =>
  stderr.split('\n').filter((l) => l.includes('"fold ended"')).map((l) => JSON.parse(l) as { task: string; events: number; outputClosed: boolean });

describe('queries on a long ledger', () => {
  it(`trades --json lists ${TAKES} fills within a 32 MB heap, in chain order, without the one a reorg removed`, async () => {
    const sell = takeOrderV2Log({ owner: OUR_OWNER, validInputs: [io('USDC')], validOutputs: [io('tGME')] }, { input: 10n ** 17n, output: 2_000_000n });
    const { store, logs } = await ledger(sell, TAKES - 2);
    const removed = logs[TAKES - 2];

    const r = await query(store, ['trades', '--json'], 32);
    expect(r.code, r.stderr).toBe(0);
    const trades = JSON.parse(r.stdout) as { logId: string; side: string; shares: string }[];
    expect(trades).toHaveLength(TAKES - 1);
    expect(trades.map((t) => t.logId)).toEqual(logs.filter((l) => l !== removed).map((l) => l.id));
    expect(trades[0]).toMatchObject({ side: 'SELL', shares: '0.1' });
  }, 30_000);

  it(`the trades table lists ${TAKES} fills within a 20 MB heap, aligned, without the one a reorg removed`, async () => {
    const sell = takeOrderV2Log({ owner: OUR_OWNER, validInputs: [io('USDC')], validOutputs: [io('tGME')] }, { input: 10n ** 17n, output: 2_000_000n });
    const { store, logs } = await ledger(sell, 1);
    const txOf = (i: number) => (logs[i]!.type === 'OrderbookLogRecorded' ? logs[i]!.data.transactionHash : '');

    const r = await query(store, ['trades'], 20); // holding the rows needs more than 24 MB here; streaming runs in 16
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines).toHaveLength(TAKES - 1 + 3); // header, rule, rows and the final newline
    expect(lines[0]).toBe('block  log  tx                                                                  symbol  side  shares  price  usdc  token');
    expect(lines[2]).toBe(`1000   0    ${txOf(0)}  GME     SELL  0.1     20     2     tGME`);
    expect(lines[3]).toBe(`1002   0    ${txOf(2)}  GME     SELL  0.1     20     2     tGME`);
    expect(lines.join('\n')).not.toContain(txOf(1));
  }, 30_000);

  it(`the rejected table lists ${TAKES} foreign takes within a 32 MB heap, aligned, without the one a reorg removed`, async () => {
    const theirs = takeOrderV2Log({ owner: OTHER_OWNER, validInputs: [io('USDC')], validOutputs: [io('tGME')] }, { input: 10n ** 17n, output: 2_000_000n });
    const { store, logs } = await ledger(theirs, 1);
    const txOf = (i: number) => (logs[i]!.type === 'OrderbookLogRecorded' ? logs[i]!.data.transactionHash : '');

    const r = await query(store, ['rejected'], 32);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines).toHaveLength(TAKES - 1 + 3); // header, rule, rows and the final newline
    expect(lines[0]).toBe('block  log  tx                                                                  reason    detail');
    expect(lines[2]).toBe(`1000   0    ${txOf(0)}  not_ours  owner ${OTHER_OWNER} is not ours`);
    expect(lines[3]).toBe(`1002   0    ${txOf(2)}  not_ours  owner ${OTHER_OWNER} is not ours`);
    expect(lines[TAKES]).toMatch(/^30999 {2}0 {4}0x[0-9a-f]{64} {2}not_ours {2}owner 0x2{40} is not ours$/);
    expect(lines.join('\n')).not.toContain(txOf(1));
  }, 30_000);

  it(`rejected --json lists ${TAKES} foreign takes within a 32 MB heap, in chain order, without the one a reorg removed`, async () => {
    const theirs = takeOrderV2Log({ owner: OTHER_OWNER, validInputs: [io('USDC')], validOutputs: [io('tGME')] }, { input: 10n ** 17n, output: 2_000_000n });
    const { store, logs } = await ledger(theirs, TAKES - 2);
    const removed = logs[TAKES - 2];

    const r = await query(store, ['rejected', '--json'], 32);
    expect(r.code, r.stderr).toBe(0);
    const rejected = JSON.parse(r.stdout) as { eventId: string; reason: string }[];
    expect(rejected.map((x) => x.eventId)).toEqual(logs.filter((l) => l !== removed).map((l) => l.id));
    expect(new Set(rejected.map((x) => x.reason))).toEqual(new Set(['not_ours']));
  }, 30_000);

  it('stops folding once the reader has gone away (trades | head), and exits 0', async () => {
    const sell = takeOrderV2Log({ owner: OUR_OWNER, validInputs: [io('USDC')], validOutputs: [io('tGME')] }, { input: 10n ** 17n, output: 2_000_000n });
    const { store } = await ledger(sell);
    const child = tradesJson(store);
    child.stdout.once('data', () => child.stdout.destroy()); // the first rows are all this reader wants
    const code = await child.exited;
    const stderr = child.stderr();

    expect(code, stderr).toBe(0);
    const [first, second, ...more] = foldsEnded(stderr);
    expect(more).toEqual([]);
    expect(first).toMatchObject({ task: 'trades (pass 1 of 2)', outputClosed: false });
    expect(first!.events).toBeGreaterThan(TAKES);
    expect(second).toMatchObject({ task: 'trades (pass 2 of 2)', outputClosed: true });
    expect(second!.events).toBeLessThan(TAKES / 2); // it stopped soon after the pipe closed
    expect(stderr).not.toContain('could not write');
  }, 30_000);

  it('keeps pace with a reader that stops reading: no rows pile up in memory, and none are lost', async () => {
    const sell = takeOrderV2Log({ owner: OUR_OWNER, validInputs: [io('USDC')], validOutputs: [io('tGME')] }, { input: 10n ** 17n, output: 2_000_000n });
    const { store } = await ledger(sell);
    const child = tradesJson(store);
    child.stdout.pause(); // nothing is read until the check below: the pipe fills, and the second pass must wait
    await vi.waitFor(() => expect(foldsEnded(child.stderr())).toHaveLength(1), { timeout: 20_000, interval: 50 });
    await sleep(1_500); // without the wait, streaming 30,000 rows into memory takes well under this
    expect(foldsEnded(child.stderr())).toHaveLength(1);

    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c)).resume();
    expect(await child.exited, child.stderr()).toBe(0);
    expect(JSON.parse(stdout)).toHaveLength(TAKES);
    expect(foldsEnded(child.stderr()).map((f) => f.task)).toEqual(['trades (pass 1 of 2)', 'trades (pass 2 of 2)']);
  }, 30_000);

  it('shows a fold\'s progress on a terminal, and nothing on a pipe', async () => {
    const sell = takeOrderV2Log({ owner: OUR_OWNER, validInputs: [io('USDC')], validOutputs: [io('tGME')] }, { input: 10n ** 17n, output: 2_000_000n });
    const { store } = await ledger(sell);
    const args = ['--config', join(EXAMPLE, 'ledger.json'), '--store', store];

    const piped = await query(store, ['positions'], 256);
    expect(piped.code).toBe(0);
    expect(piped.stderr).toBe('');

    // `script` runs the command on a pseudo-terminal: stdout and stderr are both that terminal.
    const onTerminal = (command: string) => {
      const line = [process.execPath, join(ROOT, 'bin', 'hedge-ledger.js'), command, ...args].join(' ');
      return execFileAsync('script', ['-qec', line, '/dev/null'], { cwd: ROOT, env: { ...process.env, LEDGER_LOG_LEVEL: 'warn' }, maxBuffer: 64 << 20 });
    };
    const positions = (await onTerminal('positions')).stdout;
    expect(positions).toMatch(/\rpositions \[#{6,7}\.{13,14}\] 10000\/3\d{4} \(\d+\/s, eta \d+s\)/);
    const cleared = positions.lastIndexOf('\r\x1b[K'); // the bar is cleared before the table
    expect(cleared).toBeGreaterThan(0);
    expect(positions.indexOf('symbol  net')).toBeGreaterThan(cleared);
    // trades --json streams to the terminal in its second pass: a bar there would tear the JSON.
    const trades = (await onTerminal('trades --json')).stdout;
    expect(trades).toContain('trades (pass 1 of 2) [');
    expect(trades).not.toContain('pass 2 of 2');
    expect(JSON.parse(trades.slice(trades.indexOf('[{')))).toHaveLength(TAKES);
  }, 60_000);
});
