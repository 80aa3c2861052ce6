/**
 * The New York calendar behind the simulator's hours and the executor's open-order deadline,
 * checked against a reference that does not use Intl nor the calendar's rules: the US DST rule
 * (second Sunday of March to the first Sunday of November, 02:00 local), 09:30–16:00, Monday to
 * Friday, and NYSE's published holidays and 13:00 early closes for 2025–2027, typed by hand.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isMarketOpen, nextCloseAfter, nextOpenAfter, tradingMsBetween } from '../../src/broker/market-hours.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const at = (iso: string): number => Date.parse(iso);

/** The UTC instant of 02:00 local on the n-th Sunday of `month` (1-based), given the offset in force before the change. */
function nthSunday(year: number, month: number, n: number): number {
  const first = new Date(Date.UTC(year, month - 1, 1)).getUTCDay();
  return Date.UTC(year, month - 1, 1 + ((7 - first) % 7) + 7 * (n - 1));
}
const dstStart = (year: number): number => nthSunday(year, 3, 2) + 2 * HOUR + 5 * HOUR; // 02:00 EST
const dstEnd = (year: number): number => nthSunday(year, 11, 1) + 2 * HOUR + 4 * HOUR; // 02:00 EDT

const refOffset = (ms: number): number => {
  const year = new Date(ms).getUTCFullYear();
  return ms >= dstStart(year) && ms < dstEnd(year) ? -4 * HOUR : -5 * HOUR;
};

/**
 * NYSE Group's announcements of the 2025–2027 and 2026–2028 holiday and early-closing calendars:
 * https://mondovisione.com/media-and-resources/news/nyse-group-announces-2025-2026-and-2027-holiday-and-early-closings-calendar/
 * https://mondovisione.com/media-and-resources/news/nyse-group-announces-2026-2027-and-2028-holiday-and-early-closings-calendar-20251223/
 * The unscheduled closure of 2025-01-09 (national day of mourning) is left out: the module
 * cannot predict such days and does not model them.
 */
const HOLIDAYS = new Set([
  '2025-01-01', '2025-01-20', '2025-02-17', '2025-04-18', '2025-05-26', '2025-06-19', '2025-07-04', '2025-09-01', '2025-11-27', '2025-12-25',
  '2026-01-01', '2026-01-19', '2026-02-16', '2026-04-03', '2026-05-25', '2026-06-19', '2026-07-03', '2026-09-07', '2026-11-26', '2026-12-25',
  '2027-01-01', '2027-01-18', '2027-02-15', '2027-03-26', '2027-05-31', '2027-06-18', '2027-07-05', '2027-09-06', '2027-11-25', '2027-12-24',
]);
const EARLY_CLOSES = new Set(['2025-07-03', '2025-11-28', '2025-12-24', '2026-11-27', '2026-12-24', '2027-11-26']);

function refOpen(ms: number): boolean {
  const local = new Date(ms + refOffset(ms));
  const date = local.toISOString().slice(0, 10);
  const day = local.getUTCDay();
  const minute = local.getUTCHours() * 60 + local.getUTCMinutes();
  const close = EARLY_CLOSES.has(date) ? 13 * 60 : 16 * 60;
  return day >= 1 && day <= 5 && !HOLIDAYS.has(date) && minute >= 9 * 60 + 30 && minute < close;
}

/** Brute force: the market's state is constant within a UTC minute (whole-hour offsets), so sum the open minutes' overlap. */
function refTradingMs(from: number, to: number): number {
  let total = 0;
  for (let m = Math.floor(from / MINUTE) * MINUTE; m < to; m += MINUTE) {
    if (refOpen(m)) total += Math.min(m + MINUTE, to) - Math.max(m, from);
  }
  return total;
}

/**
 * 2025-01-01 to 2028-01-01, with extra weight on the DST Sundays, the open and the close, the
 * days around holidays and early closes, and the 13:00 close (17:00Z in EDT, 18:00Z in EST).
 */
const YEARS_FROM = at('2025-01-01T00:00:00Z');
const YEARS_TO = at('2028-01-01T00:00:00Z');
const DAY = 24 * HOUR;
const DST_CHANGES = [2025, 2026, 2027].flatMap((y) => [dstStart(y), dstEnd(y)]);
const BOUNDARY_HOURS_UTC = [13.5, 14.5, 20, 21].map((h) => h * HOUR);
const CALENDAR_DAYS = [...HOLIDAYS, ...EARLY_CLOSES].map((d) => at(`${d}T00:00:00Z`));
const EARLY_CLOSE_DAYS = [...EARLY_CLOSES].map((d) => at(`${d}T00:00:00Z`));
const instant = fc.oneof(
  fc.integer({ min: YEARS_FROM, max: YEARS_TO }),
  fc.tuple(fc.constantFrom(...DST_CHANGES), fc.integer({ min: -4 * DAY, max: 4 * DAY })).map(([c, d]) => c + d),
  fc
    .tuple(fc.integer({ min: 0, max: 3 * 365 }), fc.constantFrom(...BOUNDARY_HOURS_UTC), fc.integer({ min: -2, max: 2 }))
    .map(([day, h, d]) => YEARS_FROM + day * DAY + h + d),
  fc.tuple(fc.constantFrom(...CALENDAR_DAYS), fc.integer({ min: -2 * DAY, max: 3 * DAY })).map(([day, d]) => day + d),
  fc
    .tuple(fc.constantFrom(...EARLY_CLOSE_DAYS), fc.constantFrom(17 * HOUR, 18 * HOUR), fc.integer({ min: -2, max: 2 }))
    .map(([day, h, d]) => day + h + d),
);

describe('market hours against a reference without Intl', () => {
  it('the reference knows the DST Sundays of 2025–2027', () => {
    expect(DST_CHANGES.map((ms) => new Date(ms).toISOString())).toEqual([
      '2025-03-09T07:00:00.000Z',
      '2025-11-02T06:00:00.000Z',
      '2026-03-08T07:00:00.000Z',
      '2026-11-01T06:00:00.000Z',
      '2027-03-14T07:00:00.000Z',
      '2027-11-07T06:00:00.000Z',
    ]);
  });

  it('opens at 09:30:00.000 and closes at 16:00:00.000 New York (the close is not open), in EDT and EST', () => {
    for (const [open, close] of [
      ['2025-03-10T13:30:00Z', '2025-03-10T20:00:00Z'], // Monday after the spring change: EDT
      ['2025-03-07T14:30:00Z', '2025-03-07T21:00:00Z'], // Friday before it: EST
      ['2025-11-03T14:30:00Z', '2025-11-03T21:00:00Z'], // Monday after the autumn change: EST
      ['2025-10-31T13:30:00Z', '2025-10-31T20:00:00Z'], // Friday before it: EDT
    ] as const) {
      expect([isMarketOpen(at(open) - 1), isMarketOpen(at(open)), isMarketOpen(at(close) - 1), isMarketOpen(at(close))]).toEqual([false, true, true, false]);
    }
  });

  it('closes at 13:00:00.000 New York on an early-close day, in EDT and EST', () => {
    for (const close of ['2025-07-03T17:00:00Z', '2025-11-28T18:00:00Z', '2026-12-24T18:00:00Z']) {
      expect([isMarketOpen(at(close) - 1), isMarketOpen(at(close))]).toEqual([true, false]);
      expect(new Date(nextCloseAfter(at(close) - 4 * HOUR)).toISOString()).toBe(new Date(close).toISOString());
    }
  });

  it('has no session on a holiday: the next open skips it', () => {
    expect(isMarketOpen(at('2025-11-27T15:00:00Z'))).toBe(false); // Thanksgiving, 10:00 EST
    expect(new Date(nextOpenAfter(at('2025-11-26T21:00:00Z'))).toISOString()).toBe('2025-11-28T14:30:00.000Z');
    expect(new Date(nextOpenAfter(at('2026-04-02T20:00:00Z'))).toISOString()).toBe('2026-04-06T13:30:00.000Z'); // Good Friday, then the weekend
    expect(new Date(nextCloseAfter(at('2026-07-02T21:00:00Z'))).toISOString()).toBe('2026-07-06T20:00:00.000Z'); // July 4 is a Saturday: Friday the 3rd is closed
  });

  it('isMarketOpen agrees with the reference', () => {
    fc.assert(fc.property(instant, (ms) => isMarketOpen(ms) === refOpen(ms)), { numRuns: 3000 });
  });

  it('nextOpenAfter / nextCloseAfter are the first reference open / close strictly after the instant', () => {
    const firstAfter = (ms: number, want: (m: number) => boolean): number => {
      for (let m = Math.floor(ms / MINUTE) * MINUTE + MINUTE; ; m += MINUTE) if (want(m)) return m;
    };
    fc.assert(
      fc.property(instant, (ms) => {
        expect(nextOpenAfter(ms)).toBe(firstAfter(ms, (m) => refOpen(m) && !refOpen(m - MINUTE)));
        expect(nextCloseAfter(ms)).toBe(firstAfter(ms, (m) => !refOpen(m) && refOpen(m - MINUTE)));
      }),
      { numRuns: 150 },
    );
  });

  it('tradingMsBetween equals a minute-by-minute count, across nights, weekends, holidays, early closes and DST changes', () => {
    fc.assert(
      fc.property(instant, fc.integer({ min: 0, max: 10 * 24 * HOUR }), (from, length) => {
        expect(tradingMsBetween(from, from + length)).toBe(refTradingMs(from, from + length));
      }),
      { numRuns: 150 },
    );
  });

  it('tradingMsBetween is additive: [a, c) = [a, b) + [b, c)', () => {
    fc.assert(
      fc.property(instant, fc.integer({ min: 0, max: 5 * 24 * HOUR }), fc.integer({ min: 0, max: 5 * 24 * HOUR }), (a, ab, bc) => {
        expect(tradingMsBetween(a, a + ab + bc)).toBe(tradingMsBetween(a, a + ab) + tradingMsBetween(a + ab, a + ab + bc));
      }),
      { numRuns: 300 },
    );
  });

  it('an order spanning a DST weekend counts 6.5 h a day on each side', () => {
    // Friday 15:50 EST to Monday 09:40 EDT (spring), Friday 15:50 EDT to Monday 09:40 EST (autumn).
    expect(tradingMsBetween(at('2025-03-07T20:50:00Z'), at('2025-03-10T13:40:00Z'))).toBe(20 * MINUTE);
    expect(tradingMsBetween(at('2025-10-31T19:50:00Z'), at('2025-11-03T14:40:00Z'))).toBe(20 * MINUTE);
    expect(tradingMsBetween(at('2026-03-06T14:30:00Z'), at('2026-03-10T13:30:00Z'))).toBe(2 * 390 * MINUTE);
  });

  it('an order spanning Thanksgiving counts Wednesday’s last minutes, no Thursday, and Friday until 13:00', () => {
    // Wednesday 15:50 EST to Friday 09:40 EST: 10 + 10 min.
    expect(tradingMsBetween(at('2025-11-26T20:50:00Z'), at('2025-11-28T14:40:00Z'))).toBe(20 * MINUTE);
    // Thursday and Friday whole: 09:30–13:00 on Friday only.
    expect(tradingMsBetween(at('2025-11-27T05:00:00Z'), at('2025-11-29T05:00:00Z'))).toBe(210 * MINUTE);
  });
});
