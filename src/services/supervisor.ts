/**
 * Runs one long-lived role: a transient failure (StoreUnavailable: the store briefly
 * unreachable) restarts it with exponential backoff and jitter, counted in metrics and logged;
 * anything else stops it for good, so the process fails loudly instead of keeping a stuck
 * worker. (An RPC node's outages are retried inside ChainRpc, up to its deadline.)
 * A watchdog restarts a role whose progress stalls while there is work ahead of it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { StoreUnavailable } from '../eventstore/errors.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../http/metrics.ts';
import type { RoleHealth } from '../http/health.ts';

export interface RoleProgress {
  /** Something that changes whenever the role does work (a position, a count). */
  readonly marker: string;
  /** True when there is work the role has not done yet (its input is ahead of it). */
  readonly behind: boolean;
}

export interface SuperviseOptions {
  readonly name: string;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Runs the role until the signal aborts; rejects on failure. */
  readonly run: (signal: AbortSignal) => Promise<void>;
  readonly backoffMs?: { readonly min: number; readonly max: number };
  /** Progress probe for the watchdog; omit to run without one. */
  readonly progress?: () => Promise<RoleProgress>;
  /** How long a role may stay behind without progress before it is restarted. */
  readonly stallMs?: number;
  /** Why the role, though running, cannot do its work (it waits for a lock, its writes keep failing): reported as not alive meanwhile. */
  readonly impeded?: () => string | undefined;
}

export class RoleFailed extends Error {
  override readonly name = 'RoleFailed';
}

/** A supervised role: its health for /health/ready, and a promise that settles when it stops. */
export interface Supervised {
  readonly health: () => RoleHealth;
  readonly done: Promise<void>;
}

export function supervise(options: SuperviseOptions, signal: AbortSignal): Supervised {
  let health: RoleHealth = { alive: true, detail: 'starting' };
  const done = (async () => {
    const { min, max } = options.backoffMs ?? { min: 250, max: 15_000 };
    let delay = min;
    /** A failure the role is retried after (the store unavailable; anything else ends it, thrown): the delay to wait. */
    const retryAfter = (error: unknown, ranMs: number): number => {
      if (!(error instanceof StoreUnavailable)) {
        health = { alive: false, detail: (error as Error).message };
        throw error instanceof RoleFailed ? error : new RoleFailed(`${options.name} failed: ${(error as Error).message}`, { cause: error });
      }
      // A run longer than the longest delay was healthy: this failure is a new blip, not the same outage.
      const wait = ranMs > max ? min : delay;
      options.metrics.errors.inc({ component: options.name, kind: (error as Error).name ?? 'Error' });
      health = { alive: false, detail: `retrying after: ${(error as Error).message}` };
      options.log.warn({ role: options.name, err: error, retryInMs: Math.round(wait) }, 'transient failure; retrying');
      return wait;
    };
    while (!signal.aborted) {
      const attempt = new AbortController();
      const stop = () => attempt.abort();
      signal.addEventListener('abort', stop, { once: true });
      const watchdog = options.progress ? watch(options, attempt, (h) => (health = h)) : undefined;
      health = { alive: true, detail: 'running' };
      const started = Date.now();
      try {
        await options.run(attempt.signal);
        if (signal.aborted) return;
        if (!attempt.signal.aborted) throw new RoleFailed(`${options.name} stopped on its own`);
      } catch (error) {
        if (signal.aborted) return;
        // Only the watchdog aborts an attempt on its own: a role that throws for it (an AbortError from a wait it cut
        // short, such as the ingester's connect) stalled as much as one that returns, and is restarted the same way.
        if (!attempt.signal.aborted) delay = retryAfter(error, Date.now() - started);
      } finally {
        // The attempt is over: its watchdog must not count the backoff below as a stall, nor restart anything.
        signal.removeEventListener('abort', stop);
        watchdog?.stop();
      }
      if (attempt.signal.aborted) {
        options.log.warn({ role: options.name }, 'restarting a stalled role');
        delay = min;
      } else {
        await sleep(delay * (0.5 + Math.random()), undefined, { signal }).catch(() => {});
        delay = Math.min(max, delay * 2);
      }
    }
  })();
  return { health: () => impededOr(health, options.impeded?.()), done };
}

/** The supervisor's own report wins once the role is down (retrying, failed); else what impedes it, if anything. */
const impededOr = (health: RoleHealth, reason: string | undefined): RoleHealth => (!health.alive || reason === undefined ? health : { alive: false, detail: reason });

/** Aborts the attempt when the role stays behind with an unchanged marker for `stallMs`. */
function watch(options: SuperviseOptions, attempt: AbortController, report: (h: RoleHealth) => void): { stop(): void } {
  const stallMs = options.stallMs ?? 60_000;
  let last: { marker: string; since: number } | undefined;
  let stopped = false;
  const timer = setInterval(() => {
    void options.progress!().then(
      ({ marker, behind }) => {
        if (stopped) return; // a probe answered after its attempt ended
        const now = Date.now();
        if (!behind || last?.marker !== marker) return void (last = { marker, since: now });
        if (now - last.since < stallMs) return;
        options.metrics.errors.inc({ component: options.name, kind: 'Stalled' });
        report({ alive: false, detail: `no progress for ${Math.round((now - last.since) / 1000)}s while behind` });
        options.log.error({ role: options.name, marker }, 'watchdog: role stopped making progress; restarting it');
        attempt.abort();
      },
      () => {}, // a failing probe is the store's problem; the role's own errors surface through run()
    );
  }, Math.min(5_000, Math.max(100, stallMs / 4)));
  timer.unref();
  return {
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}

/** A role's run, by name: settles when it stops. */
export interface RunningRole {
  readonly name: string;
  readonly done: Promise<void>;
}

/** Waits for every role to stop, naming those still running after `namingMs`: a stuck one is known before `run` gives up on it. */
export async function allStopped(running: readonly RunningRole[], namingMs: number, log: Logger): Promise<void> {
  const stopping = new Set(running.map((r) => r.name));
  const naming = setTimeout(() => log.warn({ roles: [...stopping] }, `still stopping: ${[...stopping].join(', ')}`), namingMs);
  await Promise.allSettled(running.map((r) => r.done.finally(() => stopping.delete(r.name))));
  clearTimeout(naming);
}
