/**
 * The executor lock's rules on real files: which left-over locks are taken over at once, which
 * are waited for and then refused, the heartbeat, the release, and a lock taken over from
 * under its holder. Locks "of other processes" are written here as those processes would.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ExecutorLockHeld, ExecutorLockLost, executorLockPath, lockExecutor, type ExecutorLock } from '../../src/services/executor-lock.ts';
import { capturedLog } from '../support/test-log.ts';
import { until } from '../support/until.ts';

const dir = realpathSync(mkdtempSync(join(tmpdir(), 'executor-lock-'))); // the lock is named after the real path
const store = `sqlite:${join(dir, 'ledger.db')}`;
const lockFile = `${join(dir, 'ledger.db')}.executor.lock`;
const taken: ExecutorLock[] = [];
afterEach(async () => {
  await Promise.all(taken.splice(0).map((l) => l.release()));
  rmSync(lockFile, { force: true });
});

const since = '2025-01-02T03:04:05.000Z';
/** A lock as another process writes it, last renewed `ageMs` ago. */
function writeLock(holder: { pid: number; host: string } | '', ageMs = 0): void {
  writeFileSync(lockFile, holder === '' ? '' : JSON.stringify({ ...holder, since }));
  const renewed = new Date(Date.now() - ageMs);
  utimesSync(lockFile, renewed, renewed);
}

/** Takes the lock; resolves with how long that took. */
async function take(staleMs: number, log = capturedLog('info').log): Promise<number> {
  const started = Date.now();
  taken.push(await lockExecutor(store, { staleMs, log }));
  return Date.now() - started;
}

const ours = () => JSON.parse(readFileSync(lockFile, 'utf8')) as { pid: number; host: string };

describe('the executor lock', () => {
  it('is a file next to a SQLite store, and there is none for memory or EventStoreDB', () => {
    expect(executorLockPath(store)).toBe(lockFile);
    writeFileSync(join(dir, 'ledger.db'), '');
    symlinkSync(join(dir, 'ledger.db'), join(dir, 'link.db'));
    expect(executorLockPath(`sqlite:${join(dir, 'link.db')}`)).toBe(lockFile); // one database, one lock, whatever path names it
    expect(executorLockPath('sqlite::memory:')).toBeUndefined();
    expect(executorLockPath('esdb://localhost:2113?tls=false')).toBeUndefined();
  });

  it('is created holding this pid and host, renewed while held (past the stale age) and removed on release', async () => {
    await take(1_000);
    expect(ours()).toMatchObject({ pid: process.pid, host: hostname() });
    await sleep(1_600);
    expect(Date.now() - statSync(lockFile).mtimeMs).toBeLessThan(500); // renewed every ~170 ms
    await taken.pop()!.release();
    expect(existsSync(lockFile)).toBe(false);
  });

  it('takes over at once the lock of a dead pid on this host', async () => {
    writeLock({ pid: 999_999_999, host: hostname() });
    expect(await take(10_000)).toBeLessThan(1_000);
    expect(ours().pid).toBe(process.pid);
  });

  it('takes over at once a lock naming this pid that this process does not hold (a restart with the same pid)', async () => {
    writeLock({ pid: process.pid, host: hostname() });
    expect(await take(10_000)).toBeLessThan(1_000);
  });

  it('refuses a second lock in the process that holds it, as the pid is its own', async () => {
    await take(1_000);
    await expect(take(1_000)).rejects.toThrow(ExecutorLockHeld);
  });

  it('takes over at once a lock naming another host that has not been renewed for the stale age', async () => {
    writeLock({ pid: process.ppid, host: 'other-host' }, 5_000);
    expect(await take(2_000)).toBeLessThan(1_000);
    expect(ours()).toMatchObject({ pid: process.pid, host: hostname() });
  });

  it('waits for a renewed lock naming another host, logging it once, then refuses it naming the holder', async () => {
    writeLock({ pid: 4242, host: 'other-host' });
    const renewing = setInterval(() => utimesSync(lockFile, new Date(), new Date()), 100);
    const { lines, log } = capturedLog('info');
    const started = Date.now();
    try {
      const refused = await take(1_000, log).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(ExecutorLockHeld);
      expect((refused as Error).message).toMatch(`(pid 4242 on other-host since ${since})`);
      expect((refused as Error).message).toMatch('Run one executor per store');
    } finally {
      clearInterval(renewing);
    }
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    expect(lines.filter((l) => l.level === 40 && l.msg.includes('another executor holds the lock (pid 4242 on other-host since'))).toHaveLength(1);
    expect(ours()).toEqual({ pid: 4242, host: 'other-host', since });
  });

  it('goes by the holder\'s stale age when it is the longer: a process configured with a shorter one neither takes over a live lock nor refuses it early', async () => {
    // A live executor on this host whose LEDGER_EXECUTOR_LOCK_STALE_MS is 3 s renews its lock every 500 ms.
    writeFileSync(lockFile, JSON.stringify({ pid: process.ppid, host: hostname(), since, staleMs: 3_000 }));
    const renewing = setInterval(() => utimesSync(lockFile, new Date(), new Date()), 500);
    const started = Date.now();
    try {
      const refused = await take(300).catch((e: unknown) => e); // this one's stale age is 300 ms
      expect(refused).toBeInstanceOf(ExecutorLockHeld);
    } finally {
      clearInterval(renewing);
    }
    expect(Date.now() - started).toBeGreaterThanOrEqual(3_000);
    expect(ours()).toMatchObject({ pid: process.ppid, staleMs: 3_000 });
  });

  it('writes its own stale age into the lock, for the others to go by', async () => {
    await take(1_234);
    expect(ours()).toMatchObject({ pid: process.pid, staleMs: 1_234 });
  });

  it('takes over a lock naming another host that stops being renewed while it waits (a restart right after a crash there)', async () => {
    writeLock({ pid: 4242, host: 'other-host' }, 200);
    const waited = await take(1_000);
    expect(waited).toBeGreaterThanOrEqual(700);
    expect(ours().host).toBe(hostname());
  });

  it('takes over an empty lock older than the grace (its owner died creating it), and waits that long for a fresh one', async () => {
    writeLock('', 3_000);
    expect(await take(10_000)).toBeLessThan(1_000);
    await taken.pop()!.release();
    writeLock('');
    const waited = await take(10_000);
    expect(waited).toBeGreaterThanOrEqual(1_800);
    expect(waited).toBeLessThan(5_000);
  });

  it('reports the lock lost when another process has taken it over, and leaves that one’s file on release', async () => {
    const lock = await lockExecutor(store, { staleMs: 1_000, log: capturedLog('info').log });
    writeLock({ pid: 4242, host: 'other-host' });
    await until(() => lock.lost.aborted, 'the heartbeat to notice', 2_000);
    expect(lock.lost.reason).toBeInstanceOf(ExecutorLockLost);
    expect((lock.lost.reason as Error).message).toMatch('now pid 4242 on other-host');
    await lock.release();
    expect(ours()).toEqual({ pid: 4242, host: 'other-host', since });
  });
});
