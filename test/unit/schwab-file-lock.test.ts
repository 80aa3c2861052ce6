/** The token file's lock between processes: leftovers of killed owners are taken over, live owners waited for. */
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { withFileLock } from '../../src/broker/schwab/file-lock.ts';

const dir = mkdtempSync(join(tmpdir(), 'file-lock-'));
const file = join(dir, 'tokens.json');
const lock = `${file}.lock`;
afterEach(() => rmSync(lock, { force: true }));

const ageBy = (ms: number) => {
  const past = new Date(Date.now() - ms);
  utimesSync(lock, past, past);
};

describe('withFileLock', () => {
  it('takes over a lock whose owner was killed before writing its pid (an empty file, left for a while)', async () => {
    writeFileSync(lock, '');
    ageBy(10_000);
    expect(await withFileLock(file, 1_000, async () => 'ran')).toBe('ran');
    expect(existsSync(lock)).toBe(false);
  });

  it('waits for an empty lock that is being written right now', async () => {
    writeFileSync(lock, '');
    await expect(withFileLock(file, 300, async () => 'ran')).rejects.toThrow(/is held by another process/);
  });

  it('takes over a lock naming this process that it does not hold (a previous incarnation with the same pid)', async () => {
    writeFileSync(lock, String(process.pid));
    expect(await withFileLock(file, 1_000, async () => 'ran')).toBe('ran');
  });

  it('takes over the lock of a dead owner, and waits for a live one', async () => {
    writeFileSync(lock, '999999999');
    expect(await withFileLock(file, 1_000, async () => 'ran')).toBe('ran');
    writeFileSync(lock, String(process.ppid)); // alive: the test runner
    await expect(withFileLock(file, 300, async () => 'ran')).rejects.toThrow(/is held by another process/);
  });

  it('takes over a lock older than any hold, though the pid it names is alive (now another process)', async () => {
    writeFileSync(lock, String(process.ppid));
    ageBy(10 * 60_000);
    expect(await withFileLock(file, 1_000, async () => 'ran')).toBe('ran');
  });

  it('serializes holders within this process too', async () => {
    const order: string[] = [];
    const first = withFileLock(file, 1_000, async () => {
      order.push('first in');
      await sleep(150);
      order.push('first out');
    });
    await sleep(20);
    const second = withFileLock(file, 1_000, async () => void order.push('second'));
    await Promise.all([first, second]);
    expect(order).toEqual(['first in', 'first out', 'second']);
  });
});
