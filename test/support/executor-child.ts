/**
 * The executor in its own OS process, for the restart tests:
 *   node --import tsx test/support/executor-child.ts <store url> <schwab base url> <token file>
 * env TOKEN_ENCRYPTION_KEY (hex), CHILD_REQUEST_TIMEOUT_MS (optional, default 5000). Drives every open command with the Schwab adapter on the wall
 * clock until nothing is open, prints one JSON line and exits 0. Tests SIGKILL it midway.
 */
import { openStore } from '../../src/eventstore/url.ts';
import { createSchwabBroker, EncryptedTokenFile } from '../../src/broker/schwab/index.ts';
import { ExecutorService } from '../../src/services/executor.ts';
import { APP } from './executor-harness.ts';
import { testLog } from './test-log.ts';
import { runChildMain } from './child-main.ts';

async function main([storeUrl, baseUrl, tokenPath]: string[]): Promise<void> {
  if (!storeUrl || !baseUrl || !tokenPath) throw new Error('usage: executor-child.ts <store url> <schwab base url> <token file>');
  const tokens = new EncryptedTokenFile(tokenPath, Buffer.from(process.env['TOKEN_ENCRYPTION_KEY'] ?? '', 'hex'));
  const broker = createSchwabBroker({ app: { ...APP, baseUrl }, tokens, requestTimeoutMs: Number(process.env['CHILD_REQUEST_TIMEOUT_MS'] ?? 5_000), reconcileSkewMs: 60_000 }, { log: testLog('broker') });
  const store = await openStore(storeUrl);
  const executor = new ExecutorService({ store, broker, log: testLog('executor'), pollIntervalMs: 20, backoffMs: { min: 10, max: 100 }, placementSettleMs: Number(process.env['CHILD_PLACEMENT_SETTLE_MS'] ?? 50) });
  const finished = await executor.drainOpen();
  await store.close();
  console.log(JSON.stringify({ finished, open: executor.openCommands() }));
}

runChildMain('executor-child', 30_000, main);
