/**
 * An exclusive lock between processes: a `<path>.lock` file created with O_EXCL, holding the
 * owner's pid. A lock whose owner is gone (killed mid-refresh) is taken over, and so is a lock
 * its owner never finished writing (killed between creating the file and writing its pid) or
 * one naming this very process that this process does not hold (a previous incarnation with
 * the same pid: in a container, every start gets the same pid). A lock older than any hold can
 * last is taken over whatever pid it names: after a restart that pid may belong to another
 * process (an image's old lock naming pid 1, now tini).
 */
import { readFile, rm, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { UNWRITTEN_GRACE_MS, createExclusive, isAlive, takeOver } from '../../lock-files.ts';

const RETRY_MS = 50;
/** A hold is one token request and a file write: one this old is a leftover, whoever has its pid now. */
const MAX_HOLD_MS = 5 * 60_000;

/** Lock files this process holds right now. */
const held = new Set<string>();

/** Whether the lock `lockPath` (its file at `file`, moved aside while it is taken over) is left over: its owner is gone, or never wrote its pid. */
async function isStale(lockPath: string, file = lockPath): Promise<boolean> {
  let text: string;
  let modified: number;
  try {
    [text, modified] = await Promise.all([readFile(file, 'utf8'), stat(file).then((s) => s.mtimeMs)]);
  } catch {
    return false; // gone meanwhile: just try again
  }
  if (Date.now() - modified > MAX_HOLD_MS) return true;
  const owner = Number(text);
  // An empty file is a lock being written right now, unless it has stayed empty.
  if (text.trim() === '' || !Number.isSafeInteger(owner) || owner <= 0) return Date.now() - modified > UNWRITTEN_GRACE_MS;
  if (owner === process.pid) return !held.has(lockPath);
  return !isAlive(owner);
}

async function tryAcquire(lockPath: string): Promise<boolean> {
  if (await createExclusive(lockPath, String(process.pid), 0o600, held)) return true;
  if (await isStale(lockPath)) await takeOver(lockPath, (aside) => isStale(lockPath, aside));
  return false;
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
    held.delete(lockPath);
  }
}
