/** What the project's lock files (the token file's, the executor's) share. */
import { randomUUID } from 'node:crypto';
import { link, open, rename, rm } from 'node:fs/promises';

/** An owner writes its lock right after creating the file; empty for longer than this, it never will. */
export const UNWRITTEN_GRACE_MS = 2_000;

/** Whether a process with this pid runs on this host (EPERM: one does, owned by another user). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Creates `path` holding `text` if no file is there (false if one is), adding it to `held`
 * before writing: a file of this process's pid that it does not hold counts as left over. A
 * failed write leaves no half-written lock behind.
 */
export async function createExclusive(path: string, text: string, mode: number, held: Set<string>): Promise<boolean> {
  let handle;
  try {
    handle = await open(path, 'wx', mode);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
  held.add(path);
  try {
    await handle.writeFile(text);
    await handle.close();
    return true;
  } catch (e) {
    await handle.close().catch(() => undefined);
    await rm(path, { force: true });
    held.delete(path);
    throw e;
  }
}

/**
 * Removes a lock judged left over without removing a live one: two waiters may both judge the
 * old lock stale, and the slower one's plain rm would delete the faster one's new lock. So the
 * lock is moved aside and judged again there (`stillStale`); one that is live after all is put
 * back (link fails if yet another lock took its place, whose holder then finds it lost).
 */
export async function takeOver(path: string, stillStale: (aside: string) => Promise<boolean>): Promise<void> {
  const aside = `${path}.${process.pid}.${randomUUID()}.stale`;
  try {
    await rename(path, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (!(await stillStale(aside))) await link(aside, path).catch(() => undefined);
  await rm(aside, { force: true });
}
