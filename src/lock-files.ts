/** What the project's lock files (the token file's, the executor's) share. */
import { open, rm } from 'node:fs/promises';

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
