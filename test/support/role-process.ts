/**
 * `hedge-ledger run --roles <roles> --broker schwab` (or the execute role without its lock) as a
 * child process on an executor harness's SQLite file, simulator and token file (the fill settings of test/support/scenario.ts),
 * for tests that run several processes of one role at once.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './cli.ts';
import { ServiceProcess, freePort } from './e2e-stack.ts';
import { APP, type Harness } from './executor-harness.ts';
import { CHAIN_ID, ORDERBOOK, OUR_OWNER } from './orderbook-logs.ts';

/** The whole configuration as env (nothing from this process's LEDGER_* / SCHWAB_* leaks in). */
export function roleEnv(harness: Harness, extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k, v]) => v !== undefined && !/^(LEDGER_|SCHWAB_|TOKEN_ENCRYPTION_KEY)/.test(k))) as Record<string, string>;
  return {
    ...inherited,
    LEDGER_STORE: harness.storeUrl,
    LEDGER_CHAIN_ID: String(CHAIN_ID),
    LEDGER_ORDERBOOK: ORDERBOOK,
    LEDGER_OWNERS: OUR_OWNER,
    LEDGER_POLL_INTERVAL_MS: '30',
    LEDGER_LOG_LEVEL: 'info',
    SCHWAB_BASE_URL: harness.sim.baseUrl,
    SCHWAB_APP_KEY: APP.appKey,
    SCHWAB_APP_SECRET: APP.appSecret,
    SCHWAB_TOKEN_FILE: harness.tokens.path,
    TOKEN_ENCRYPTION_KEY: harness.key.toString('base64'),
    ...extra,
  };
}

/** Starts the process and waits for `service running`; its log goes to `<harness dir>/<name>.log`. */
export function spawnRoles(harness: Harness, name: string, roles: string, extra: Readonly<Record<string, string>> = {}): Promise<ServiceProcess> {
  return spawnService(harness, name, ['bin/hedge-ledger.js', 'run', '--roles', roles, '--broker', 'schwab'], extra);
}

/** The execute role without the executor lock (test/support/unlocked-executor-child.ts): a second executor on the harness's file. */
export function spawnUnlockedExecutor(harness: Harness, name: string, extra: Readonly<Record<string, string>> = {}): Promise<ServiceProcess> {
  return spawnService(harness, name, ['--import', 'tsx', 'test/support/unlocked-executor-child.ts'], extra);
}

async function spawnService(harness: Harness, name: string, args: readonly string[], extra: Readonly<Record<string, string>>): Promise<ServiceProcess> {
  const port = await freePort();
  const env = roleEnv(harness, { LEDGER_HTTP_PORT: String(port), ...extra });
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const service = new ServiceProcess(child, port, join(harness.dir, `${name}.log`));
  if (await service.logged('service running')) return service;
  await service.stop('SIGKILL');
  throw new Error(`${name} did not start:\n${service.logTail}`);
}
