/**
 * vitest global setup: marks every process the suite starts (through the environment they
 * inherit), and after the last test file fails the run if any anvil node it started is still
 * alive. Other anvil processes on the machine (another checkout's tests) are not ours.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';

const MARK = 'HEDGE_LEDGER_TEST_RUN';

/** Pids of live processes named `name` whose environment carries `mark`. */
function marked(name: string, mark: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== name) continue;
      if (readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(mark)) pids.push(Number(entry));
    } catch {
      // exited meanwhile, or not ours to read
    }
  }
  return pids;
}

export default function setup(): (() => Promise<void>) | undefined {
  if (process.platform !== 'linux') return undefined; // /proc is how we look
  const run = randomUUID();
  process.env[MARK] = run;
  return async () => {
    const deadline = Date.now() + 5_000; // a kill may take a moment to land
    let left = marked('anvil', `${MARK}=${run}`);
    while (left.length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      left = marked('anvil', `${MARK}=${run}`);
    }
    if (left.length === 0) return;
    // vitest reports a teardown error but keeps its exit code: set it, so CI goes red.
    process.exitCode = 1;
    throw new Error(`the suite left ${left.length} anvil process(es) running: pids ${left.join(', ')}`);
  };
}
