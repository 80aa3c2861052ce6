import { describe, expect, it } from 'vitest';
import { progress } from '../../src/cli/progress.ts';

const clock = () => {
  let ms = 0;
  return { now: () => ms, advance: (by: number) => void (ms += by) };
};

describe('progress', () => {
  it('draws a bar with done/total, rate and ETA on a TTY, at most every 100 ms, and clears it at the end', () => {
    const writes: string[] = [];
    const time = clock();
    const bar = progress('ingest: blocks', { stream: { isTTY: true, write: (s: string) => writes.push(s) > 0 }, now: time.now });
    time.advance(2_000);
    bar.update(50, 200, '1200 logs');
    time.advance(50);
    bar.update(60, 200); // too soon: not drawn
    time.advance(2_000);
    bar.update(100, 200);
    bar.finish();
    expect(writes).toEqual([
      '\ringest: blocks [#####...............] 50/200 (25/s, eta 6s) 1200 logs\x1b[K',
      '\ringest: blocks [##########..........] 100/200 (25/s, eta 4s)\x1b[K',
      '\r\x1b[K',
    ]);
  });

  it('logs a line at most every 5 s elsewhere, so a container still shows how far it is', () => {
    const lines: unknown[] = [];
    const time = clock();
    const bar = progress('replaying', { stream: { isTTY: false, write: () => true }, log: { info: (fields: unknown) => void lines.push(fields) }, now: time.now });
    time.advance(1_000);
    bar.update(10_000, 40_000);
    time.advance(1_000);
    bar.update(20_000, 40_000); // within 5 s of the last line
    time.advance(5_000);
    bar.update(30_000, 40_000);
    bar.finish();
    expect(lines).toEqual([
      { task: 'replaying', done: 10_000, total: 40_000, rate: 10_000, etaSeconds: 3, detail: undefined },
      { task: 'replaying', done: 30_000, total: 40_000, rate: 4_286, etaSeconds: 2, detail: undefined },
    ]);
  });
});
