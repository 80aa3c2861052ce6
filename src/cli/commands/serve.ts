/**
 * The long-running `run`: starts the roles, stops them gracefully on SIGINT/SIGTERM within the
 * configured bound, and exits non-zero with the reason when a role fails for good.
 */
import { ConfigProblems, type ResolvedConfig } from '../../config.ts';
import type { Broker } from '../../broker/port.ts';
import { accumulatorConfig, UsageError } from '../context.ts';
import { withStore } from '../../eventstore/url.ts';
import { parseRoles, runService, type Role } from '../../services/service.ts';
import { ingesterSettings } from '../../chain/ingester-service.ts';
import { logger } from '../../log.ts';
import { lockExecutor } from '../../services/executor-lock.ts';

/** `brokerFor` runs only for a process with the execute role: the others need no broker settings or secrets. */
export async function serve(config: ResolvedConfig, rolesFlag: string | undefined, brokerFor: () => Broker): Promise<void> {
  let roles: Set<Role>;
  try {
    roles = parseRoles(rolesFlag);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  // Every role's settings, checked before the store opens: a missing one is bad configuration (exit 2), not a role failing later.
  const problems = new ConfigProblems();
  const fold = problems.check(() => accumulatorConfig(config, 'run'));
  const ingest = roles.has('ingest') ? problems.check(() => ingesterSettings(config, 'run')) : undefined;
  const broker = roles.has('execute') ? problems.check(brokerFor) : undefined;
  problems.throwIfAny();
  const log = logger('service');
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) return;
    log.info({ signal, timeoutMs: config.shutdownTimeoutMs }, 'shutting down');
    stop.abort();
    // Bounded: a role that does not stop in time must not keep the process alive.
    setTimeout(() => {
      log.error({ timeoutMs: config.shutdownTimeoutMs }, 'roles did not stop in time; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const lock = (signal: AbortSignal, onWait: (waiting: string) => void) => lockExecutor(config.store, { staleMs: config.executorLockStaleMs, signal, onWait });
    await withStore(config.store, (store) => runService({ store, config, fold: fold!, ingest, broker, lockExecutor: lock, roles, signal: stop.signal }));
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
