import { describe, expect, it, vi } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { NO_STREAM } from '../../src/eventstore/port.ts';
import { SqliteEventStore } from '../../src/eventstore/sqlite.ts';
import { StoreUnavailable } from '../../src/eventstore/errors.ts';
import { createMetrics } from '../../src/http/metrics.ts';
import { logger } from '../../src/log.ts';
import { RoleFailed, allStopped, supervise } from '../../src/services/supervisor.ts';
import { capturedLog } from '../support/test-log.ts';

const base = { log: logger('test'), backoffMs: { min: 5, max: 20 } };
const aborted = (signal: AbortSignal) => (signal.aborted ? Promise.resolve() : new Promise((resolve) => signal.addEventListener('abort', resolve)));

describe('supervise', () => {
  it('restarts a role after transient store errors, counting them, until it stops cleanly', async () => {
    const metrics = createMetrics();
    const stop = new AbortController();
    let attempts = 0;
    const role = supervise({ ...base, name: 'flaky', metrics, run: async (signal) => {
      if (++attempts < 3) throw new StoreUnavailable('database is locked');
      stop.abort();
      await aborted(signal);
    } }, stop.signal);
    await role.done;
    expect(attempts).toBe(3);
    expect((await metrics.errors.get()).values.find((v) => v.labels['component'] === 'flaky')?.value).toBe(2);
  });

  it('stops for good on any other error, reporting the role dead with the reason', async () => {
    const role = supervise({ ...base, name: 'broken', metrics: createMetrics(), run: async () => { throw new Error('decision 3 diverged'); } }, new AbortController().signal);
    await expect(role.done).rejects.toThrow(RoleFailed);
    await expect(role.done).rejects.toThrow(/broken failed: decision 3 diverged/);
    expect(role.health()).toEqual({ alive: false, detail: 'decision 3 diverged' });
  });

  it('treats a role that returns on its own as failed: a worker must never silently end', async () => {
    const role = supervise({ ...base, name: 'quitter', metrics: createMetrics(), run: async () => {} }, new AbortController().signal);
    await expect(role.done).rejects.toThrow(/quitter stopped on its own/);
  });

  it('doubles the delay while failures follow each other, and starts from min again after a healthy run', async () => {
    vi.useFakeTimers({ toFake: ['Date'] }); // the clock moves only when a run says so; the delays are real (and short)
    try {
      const { lines, log } = capturedLog('warn');
      const stop = new AbortController();
      let attempts = 0;
      const role = supervise({ name: 'blippy', log, metrics: createMetrics(), backoffMs: { min: 1, max: 8 }, run: async () => {
        if (++attempts === 6) vi.setSystemTime(Date.now() + 60_000); // a long healthy run (hours, in production)…
        if (attempts === 8) return stop.abort();
        throw new StoreUnavailable('database is locked'); // …ended by one more blip
      } }, stop.signal);
      await role.done;
      expect(lines.map((l) => l['retryInMs'])).toEqual([1, 2, 4, 8, 8, 1, 2]);
    } finally {
      vi.useRealTimers();
    }
  });

  it.each([
    ['restarts a role that stays behind without progress (the watchdog)', aborted],
    ['restarts a stalled role that throws when the watchdog aborts it (an AbortError from a wait it cut short), rather than fail it', (signal: AbortSignal) => sleep(60_000, undefined, { signal })],
  ] as const)('%s', async (_, wait) => {
    const stop = new AbortController();
    let starts = 0;
    const role = supervise({
      ...base, name: 'stuck', metrics: createMetrics(), stallMs: 200,
      progress: async () => ({ marker: 'same', behind: true }),
      run: async (signal) => {
        if (++starts === 2) stop.abort();
        await wait(signal);
      },
    }, stop.signal);
    await Promise.race([role.done, sleep(5_000).then(() => { throw new Error('watchdog never fired'); })]);
    expect(starts).toBe(2);
  });

  it('stops the watchdog when an attempt ends: backing off after an outage is neither a stall nor a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-supervise-'));
    const file = join(dir, 'ledger.db');
    const store = new SqliteEventStore(file, { busyTimeoutMs: 10 });
    const locker = new Database(file);
    locker.exec('BEGIN IMMEDIATE'); // another connection holds the write lock: every append is StoreUnavailable
    const metrics = createMetrics();
    const { lines, log } = capturedLog('warn');
    const stop = new AbortController();
    let attempts = 0;
    const role = supervise({
      name: 'ingest', log, metrics, backoffMs: { min: 400, max: 400 }, stallMs: 100,
      progress: async () => ({ marker: 'same', behind: true }),
      run: async (signal) => {
        attempts++;
        await store.append('orderbook-1_x', [{ id: '8b1e2f4c-0000-4000-8000-000000000001', type: 'T', data: {} }], NO_STREAM);
        await aborted(signal);
      },
    }, stop.signal);
    try {
      // Each failed attempt waits 200 to 600 ms before the next: much longer than the watchdog's 100 ms stall bound.
      await sleep(2_000);
      expect(attempts).toBeGreaterThanOrEqual(3);
      const stalls = (await metrics.errors.get()).values.filter((v) => v.labels['kind'] === 'Stalled');
      expect(stalls).toEqual([]);
      expect(lines.filter((l) => l.msg.startsWith('watchdog'))).toEqual([]);
      expect(role.health().detail).toMatch(/^(retrying after: .*locked|running)/);
    } finally {
      stop.abort();
      await role.done;
      locker.exec('ROLLBACK');
      locker.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('stopping the roles', () => {
  it('names the roles still running once they have had half the shutdown bound, and waits for all of them', async () => {
    const { lines, log } = capturedLog('warn');
    let release = () => {};
    const stuck = new Promise<void>((resolve) => (release = resolve));
    const stopping = allStopped([{ name: 'ingest', done: Promise.resolve() }, { name: 'execute', done: stuck }, { name: 'api', done: Promise.reject(new Error('failed earlier')) }], 50, log);
    await vi.waitFor(() => expect(lines.map((l) => [l.msg, l['roles']])).toEqual([['still stopping: execute', ['execute']]]), { timeout: 2_000, interval: 10 });
    let done = false;
    void stopping.then(() => (done = true));
    await sleep(20);
    expect(done).toBe(false);
    release();
    await stopping;
  });

  it('says nothing when every role stops in time', async () => {
    const { lines, log } = capturedLog('warn');
    await allStopped([{ name: 'execute', done: sleep(5) }], 200, log);
    await sleep(250);
    expect(lines).toEqual([]);
  });
});
