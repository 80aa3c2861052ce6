/**
 * One executor per embedded SQLite store. Two executors on one store can place an order twice
 * (the one that loses the race to record Submitting reconciles while the winner's POST is in
 * flight, finds nothing and places again), so a process takes this lock before its executor
 * starts and holds it until the executor has stopped: `<db file>.executor.lock`, created with
 * O_EXCL, holding {pid, host, since}, its mtime renewed every sixth of the stale age.
 *
 * A lock is left over, and taken over, when it names this host and a pid that is not alive; or
 * this host and this very pid though this process does not hold it (a container restart: node
 * gets the same pid every start); or it has not been renewed for the stale age, whatever it
 * names (a process in another container sharing the volume, whose pid cannot be checked from
 * here); or it is still empty or unreadable after a short grace (its owner died between
 * creating and writing it). A live lock is waited for up to the stale age, which lets a restart
 * right after a crash in another container through, then refused.
 *
 * `sqlite::memory:` is private to its process, and EventStoreDB's processes may be on several
 * machines sharing no file: neither gets a lock, and one executor per deployment stays the
 * operator's to arrange there.
 */
import { readFile, rm, stat, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { storeSidecarPath } from '../eventstore/store-location.ts';
import { logger, type Logger } from '../log.ts';
import { UNWRITTEN_GRACE_MS, createExclusive, isAlive, takeOver } from '../lock-files.ts';
import * as t from 'io-ts';
import * as E from 'fp-ts/lib/Either.js';
import { IsoTime } from '../domain/codecs.ts';

/** Who holds a lock, as its file says (another process or container may have written it). */
const HolderFile = t.readonly(t.intersection([
  t.type({ pid: t.refinement(t.number, (n) => Number.isSafeInteger(n) && n > 0, 'a pid'), host: t.string, since: IsoTime }),
  // The holder's own stale age: it renews every sixth of that, so a process configured with a shorter one must not call it stale sooner.
  t.partial({ staleMs: t.refinement(t.number, (n) => Number.isSafeInteger(n) && n > 0, 'a stale age') }),
]));
export type Holder = t.TypeOf<typeof HolderFile>;

export interface ExecutorLock {
  /** Aborts (with ExecutorLockLost) when another process has taken the lock over: stop executing at once. */
  readonly lost: AbortSignal;
  /** Stops the heartbeat and removes the lock file, if it is still this process's. */
  release(): Promise<void>;
}

export interface ExecutorLockOptions {
  /** A lock not renewed for this long is left over; a live one is waited for this long. */
  readonly staleMs: number;
  /** Stops the wait for a live holder (a SIGTERM meanwhile). */
  readonly signal?: AbortSignal | undefined;
  readonly log?: Logger | undefined;
  /** Told, once, that a live holder is being waited for (the warning logged): readiness says so meanwhile. */
  readonly onWait?: ((waiting: string) => void) | undefined;
}

const describe = (h: Holder | undefined): string => (h ? `pid ${h.pid} on ${h.host} since ${h.since}` : 'a process that has not written its name yet');

export class ExecutorLockHeld extends Error {
  override readonly name = 'ExecutorLockHeld';
  constructor(readonly lockPath: string, readonly holder: Holder | undefined) {
    super(`another executor holds ${lockPath} (${describe(holder)}) and keeps renewing it. Run one executor per store (a service with the execute role, or run --once): stop that one first`);
  }
}

export class ExecutorLockLost extends Error {
  override readonly name = 'ExecutorLockLost';
}


/** Lock files this process holds right now. */
const held = new Set<string>();

/** The lock file guarding the store at `storeUrl`, or undefined for a store no file can guard. */
export const executorLockPath = (storeUrl: string): string | undefined => storeSidecarPath(storeUrl, '.executor.lock');

/** No lock: for a store no file can guard, or a caller that arranges one executor itself (the demo, in-process tests). */
export const unlocked = async (): Promise<ExecutorLock> => ({ lost: new AbortController().signal, release: async () => undefined });

/** Takes the executor lock of the store at `storeUrl` (nothing to take for memory or EventStoreDB). */
export async function lockExecutor(storeUrl: string, options: ExecutorLockOptions): Promise<ExecutorLock> {
  const path = executorLockPath(storeUrl);
  if (path === undefined) return unlocked();
  const log = options.log ?? logger('executor-lock');
  const mine = await acquire(path, options, log);
  log.info({ lockPath: path, staleMs: options.staleMs }, 'executor lock taken');
  return hold(path, mine, options.staleMs, log);
}

async function acquire(path: string, { staleMs, signal, onWait }: ExecutorLockOptions, log: Logger): Promise<string> {
  const retryMs = Math.min(500, staleMs / 10);
  const started = Date.now();
  let warned = false;
  for (;;) {
    signal?.throwIfAborted();
    const mine = await tryCreate(path, staleMs);
    if (mine !== undefined) return mine;
    const found = await inspect(path);
    if (found === undefined) continue; // removed meanwhile: try again at once
    const waitMs = staleAge(found, staleMs);
    // A holder that stops renewing now is stale within the stale age; one more look past it settles it.
    const deadline = started + waitMs + retryMs;
    const reason = staleness(path, found, staleMs);
    if (reason !== undefined) {
      log.warn({ lockPath: path, holder: found.holder, reason }, `taking over a left-over executor lock: ${reason}`);
      await takeOver(path, async (aside) => {
        const moved = await inspect(aside);
        return moved === undefined || staleness(path, moved, staleMs) !== undefined;
      });
      continue;
    }
    // Checked after staleness: a holder that stopped renewing is stale by now, so only a live one is refused.
    if (Date.now() >= deadline) throw new ExecutorLockHeld(path, found.holder);
    if (!warned) {
      const waiting = `another executor holds the lock (${describe(found.holder)}); waiting up to ${waitMs} ms for it to go stale`;
      log.warn({ lockPath: path, holder: found.holder, waitMs }, waiting);
      onWait?.(waiting);
    }
    warned = true;
    await sleep(retryMs, undefined, { signal });
  }
}

/** Creates the lock file if there is none; returns what it now holds. */
async function tryCreate(path: string, staleMs: number): Promise<string | undefined> {
  const text = JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString(), staleMs } satisfies Holder);
  return (await createExclusive(path, text, 0o644, held)) ? text : undefined;
}

interface Found {
  readonly holder: Holder | undefined;
  readonly ageMs: number;
}

/** The lock file at `file` and how long since it was renewed; undefined when there is none. */
async function inspect(file: string): Promise<Found | undefined> {
  try {
    const [text, info] = await Promise.all([readFile(file, 'utf8'), stat(file)]);
    return { holder: parseHolder(text), ageMs: Date.now() - info.mtimeMs };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** The holder a lock file names; undefined while it is empty, half written or not a lock of ours. */
function parseHolder(text: string): Holder | undefined {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  return E.toUnion(E.mapLeft(() => undefined)(HolderFile.decode(json)));
}

/** How long the lock at hand may go unrenewed: this process's stale age, or its holder's if that is longer (it renews at a sixth of its own). */
const staleAge = ({ holder }: Found, staleMs: number): number => Math.max(staleMs, holder?.staleMs ?? 0);

/** Why a lock is left over, or undefined while its holder may be alive. */
function staleness(path: string, found: Found, staleMs: number): string | undefined {
  const { holder, ageMs } = found;
  if (ageMs > staleAge(found, staleMs)) return `not renewed for ${Math.round(ageMs)} ms`;
  if (holder === undefined) return ageMs > UNWRITTEN_GRACE_MS ? 'empty or unreadable: its owner died creating it' : undefined;
  if (holder.host !== hostname()) return undefined; // another container or host: only its mtime tells
  if (holder.pid === process.pid) return held.has(path) ? undefined : 'it names this pid, which does not hold it: a previous process with the same pid';
  return isAlive(holder.pid) ? undefined : `pid ${holder.pid} is gone`;
}

/** Renews the lock every sixth of the stale age until released; aborts `lost` if it is no longer this process's. */
function hold(path: string, mine: string, staleMs: number, log: Logger): ExecutorLock {
  const lost = new AbortController();
  let beat = Promise.resolve();
  const timer = setInterval(() => void (beat = beat.then(() => renew(path, mine, lost, log))), staleMs / 6);
  timer.unref(); // the executor keeps the process alive, not its lock
  return {
    lost: lost.signal,
    async release() {
      clearInterval(timer);
      await beat;
      if (!lost.signal.aborted && (await readFile(path, 'utf8').catch(() => undefined)) === mine) await rm(path, { force: true });
      held.delete(path);
      log.info({ lockPath: path }, 'executor lock released');
    },
  };
}

async function renew(path: string, mine: string, lost: AbortController, log: Logger): Promise<void> {
  if (lost.signal.aborted) return;
  let text: string | undefined;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    // Not renewed this time: another beat follows well within the stale age.
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return void log.warn({ err: e, lockPath: path }, 'could not read the executor lock to renew it');
  }
  if (text === mine) {
    const now = new Date();
    return utimes(path, now, now).catch((e: unknown) => void log.warn({ err: e, lockPath: path }, 'could not renew the executor lock'));
  }
  // This process stalled past the stale age (a paused container, a suspended host) and another executor took over.
  const error = new ExecutorLockLost(`${path} is no longer this process's (now ${text === undefined ? 'removed' : describe(parseHolder(text))}): another executor took it over, so this one stops`);
  log.error({ err: error, lockPath: path }, 'executor lock lost; stopping the executor');
  lost.abort(error);
}
