/**
 * vitest global setup: the suite's temporary files go to one directory of this run (TMPDIR, which
 * os.tmpdir() reads and the test processes inherit), removed after the last test file. A test that
 * forgets to clean up, or is killed before it can, leaves nothing in /tmp.
 *
 * With E2E_KEEP=1 the directory stays if anything is in it: the e2e tests then keep their stack's
 * directory (every service's log, the ledger file) for inspection, and it is inside this one.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'hedge-ledger-test-'));
  process.env['TMPDIR'] = dir;
  return () => {
    if (process.env['E2E_KEEP'] === '1' && readdirSync(dir).length > 0) {
      console.info(`E2E_KEEP=1: kept this run's temporary directory ${dir} (remove it when done)`);
      return;
    }
    rmSync(dir, { recursive: true, force: true });
  };
}
