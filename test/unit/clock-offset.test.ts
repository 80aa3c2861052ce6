/** Schwab's clock as its Date headers show it, and the window reconciliation widens by. */
import { describe, expect, it } from 'vitest';
import { CLOCK_NOISE_MS, ClockOffset } from '../../src/broker/schwab/clock-offset.ts';
import { capturedLog } from '../support/test-log.ts';

const NOW = Date.parse('2026-11-28T15:00:00.400Z');

function offset() {
  const { lines, log } = capturedLog('info');
  return { lines, clock: new ClockOffset(() => new Date(NOW), log) };
}

describe('ClockOffset', () => {
  it('widens nothing before an answer with a Date', () => {
    const { clock } = offset();
    clock.observe(undefined);
    expect([clock.earlierMs, clock.laterMs]).toEqual([0, 0]);
  });

  it('takes a Date within the noise (whole seconds, time in flight) as agreement, silently', () => {
    const { clock, lines } = offset();
    for (const date of [NOW - 400, NOW - 1_900, NOW + 1_500]) clock.observe(date);
    expect([clock.earlierMs, clock.laterMs]).toEqual([0, 0]);
    expect(lines).toEqual([]);
  });

  it('widens on the side the offset points to, by the offset and its noise, and warns once per offset', () => {
    const { clock, lines } = offset();
    clock.observe(NOW - 300_000); // Schwab 5 min behind: its entry times are earlier than ours
    clock.observe(NOW - 299_000);
    expect([clock.earlierMs, clock.laterMs]).toEqual([299_000 + CLOCK_NOISE_MS, 0]);
    clock.observe(NOW + 120_000); // then 2 min ahead
    expect([clock.earlierMs, clock.laterMs]).toEqual([0, 120_000 + CLOCK_NOISE_MS]);
    expect(lines.map((l) => l.msg)).toEqual([
      expect.stringMatching(/^this host's clock is 300 s ahead of Schwab's \(its Date header\): reconciliation widens its search/),
      expect.stringMatching(/^this host's clock is 120 s behind Schwab's/),
    ]);
  });
});
