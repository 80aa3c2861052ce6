import { expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { LULL, withLulls } from '../../src/services/lulls.ts';

it('passes events through in order, with one LULL in each wait for the next, none for the reader\'s own delays', async () => {
  let release!: () => void;
  const quiet = new Promise<void>((resolve) => (release = resolve));
  async function* events() {
    yield 1;
    yield 2;
    await quiet;
    yield 3;
  }
  const seen: unknown[] = [];
  for await (const event of withLulls(events(), 10)) {
    seen.push(event);
    if (event === 1) await sleep(30); // the reader is slow, the source is not
    if (event === LULL) setTimeout(release, 30); // the same wait goes on past another 10 ms
  }
  expect(seen).toEqual([1, 2, LULL, 3]);
});
