/**
 * vitest global setup: the suite's temporary files go to one directory of this run (TMPDIR, which
 * os.tmpdir() reads and the test processes inherit), removed after the last test file. A test that
 * forgets to clean up, or is killed before it can, leaves nothing in /tmp.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'hedge-ledger-test-'));
  process.env['TMPDIR'] = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
