/**
 * An exclusive lock between processes: a `<path>.lock` file created with O_EXCL, holding the
 * owner's pid. A lock whose owner is gone (killed mid-refresh) is taken over.
 */
import { open, readFile, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

const RETRY_MS = 50;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function tryAcquire(lockPath: string): Promise<boolean> {
  try {
    const handle = await open(lockPath, 'wx', 0o600);
    await handle.writeFile(String(process.pid));
    await handle.close();
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const owner = Number(await readFile(lockPath, 'utf8').catch(() => ''));
    // An empty file is a lock being written right now; only a dead owner's lock is stale.
    if (Number.isSafeInteger(owner) && owner > 0 && !isAlive(owner)) await rm(lockPath, { force: true });
    return false;
  }
}

/** Runs `body` holding the lock; waits up to `timeoutMs` for another holder. */
export async function withFileLock<T>(path: string, timeoutMs: number, body: () => Promise<T>): Promise<T> {
  const lockPath = `${path}.lock`;
  const deadline = Date.now() + timeoutMs;
  while (!(await tryAcquire(lockPath))) {
    if (Date.now() > deadline) throw new Error(`${lockPath} is held by another process (a refresh in progress?); try again`);
    await sleep(RETRY_MS);
  }
  try {
    return await body();
  } finally {
    await rm(lockPath, { force: true });
  }
}
