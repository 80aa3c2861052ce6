/**
 * A separate process running the accumulator service over a store, for crash tests.
 * Usage: accumulator-child.ts <store-url> [crash-after-append]
 * With `crash-after-append` it SIGKILLs itself right after the first decision is appended,
 * before the checkpoint is saved. Prints the decisions it appended as JSON lines.
 */
import { openStore } from '../../src/eventstore/url.ts';
import { AccumulatorService } from '../../src/services/accumulator.ts';
import { logger } from '../../src/log.ts';
import { config } from './scenario.ts';

const [url, mode] = process.argv.slice(2);
const store = await openStore(url!);
const service = new AccumulatorService({
  store,
  config,
  log: logger('accumulator'),
  onAppended: (decision, written) => {
    process.stdout.write(`${JSON.stringify({ symbol: decision.data.symbol, sequence: decision.data.sequence, written })}\n`);
    if (mode === 'crash-after-append') process.kill(process.pid, 'SIGKILL');
  },
});
await service.restore();
await service.catchUp();
await store.close();
