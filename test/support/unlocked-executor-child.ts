/**
 * The service's execute role (`run --roles execute --broker schwab`, configured from env as
 * test/support/role-process.ts does) without the store's executor lock: a second executor on one
 * store, as EventStoreDB still allows (no file to lock there), for the tests of what the
 * executor guarantees even then. SIGTERM stops it.
 */
import { accumulatorConfig } from '../../src/cli/context.ts';
import { brokerFor } from '../../src/cli/commands/run.ts';
import { loadConfig } from '../../src/config.ts';
import { withStore } from '../../src/eventstore/url.ts';
import { rootLogger } from '../../src/log.ts';
import { runService } from '../../src/services/service.ts';
import { runChildMain } from './child-main.ts';

runChildMain('unlocked-executor-child', 120_000, async () => {
  const config = { ...loadConfig(), broker: 'schwab' as const };
  rootLogger(config.logLevel);
  const stop = new AbortController();
  process.once('SIGTERM', () => stop.abort());
  await withStore(config.store, (store) => runService({ store, config, fold: accumulatorConfig(config, 'test'), broker: brokerFor(config), roles: new Set(['execute']), signal: stop.signal }));
});
