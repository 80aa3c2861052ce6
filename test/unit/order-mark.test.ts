/** The executor mark (src/services/order-mark.ts): the refusals at placement it remembers for a restore. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { REFUSALS_KEPT_MS, orderMarksFor, type OrderMarks } from '../../src/services/order-mark.ts';
import { testLog } from '../support/test-log.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function marksAt(): { path: string; open: () => OrderMarks } {
  const dir = mkdtempSync(join(tmpdir(), 'marks-'));
  dirs.push(dir);
  const marks = orderMarksFor(`sqlite:${join(dir, 'ledger.db')}`)!;
  return { path: join(dir, 'ledger.db.executor.mark'), open: () => marks(testLog()) };
}

const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms).toISOString();
const mark = (commandId: string, ms: number) => ({ commandId, revision: '1', at: at(ms) });

it('keeps each refusal at placement across marks and processes, once per command, for 60 days', async () => {
  const { open } = marksAt();
  const first = open();
  await first.write(mark('a', 0), { commandId: 'a', reason: 'rejected at placement: no', at: at(0) });
  await first.write(mark('b', 1000));
  await first.write(mark('a', 2000), { commandId: 'a', reason: 'rejected at placement: again', at: at(2000) });
  expect(await first.read()).toEqual({ ...mark('a', 2000), refusals: [{ commandId: 'a', reason: 'rejected at placement: no', at: at(0) }] });

  const next = open(); // another process: it reads what the file remembers before its first write
  await next.write(mark('c', REFUSALS_KEPT_MS), { commandId: 'c', reason: 'rejected at placement: c', at: at(REFUSALS_KEPT_MS) });
  expect((await next.read())?.refusals?.map((r) => r.commandId)).toEqual(['a', 'c']);
  await next.write(mark('d', REFUSALS_KEPT_MS + 1));
  expect(await next.read()).toEqual({ ...mark('d', REFUSALS_KEPT_MS + 1), refusals: [{ commandId: 'c', reason: 'rejected at placement: c', at: at(REFUSALS_KEPT_MS) }] });
});

it('reads a mark written without refusals (by an older version), and writes none while there are none', async () => {
  const { path, open } = marksAt();
  writeFileSync(path, JSON.stringify(mark('a', 0)));
  const marks = open();
  expect(await marks.read()).toEqual(mark('a', 0));
  await marks.write(mark('b', 1));
  expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual(mark('b', 1));
});
