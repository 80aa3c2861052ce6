/**
 * The NYSE calendar's rules, year by year, against dates NYSE Group published (its yearly
 * "Holiday and Early Closings Calendar" announcements, e.g.
 * https://mondovisione.com/media-and-resources/news/nyse-group-announces-2022-2023-and-2024-holiday-and-early-closings-calendar/
 * https://mondovisione.com/media-and-resources/news/nyse-group-announces-2026-2027-and-2028-holiday-and-early-closings-calendar-20251223/)
 * and known Easter dates.
 */
import { describe, expect, it } from 'vitest';
import { earlyCloses, holidays, sessionOn } from '../../src/broker/nyse-calendar.ts';

const REGULAR = { open: 570, close: 960 };
const EARLY = { open: 570, close: 780 };
const session = (iso: string) => {
  const [year, month, day] = iso.split('-').map(Number) as [number, number, number];
  return sessionOn(year, month, day);
};

describe('full-day holidays, as NYSE published them', () => {
  it.each([
    [2021, ['2021-01-01', '2021-01-18', '2021-02-15', '2021-04-02', '2021-05-31', '2021-07-05', '2021-09-06', '2021-11-25', '2021-12-24']],
    [2022, ['2022-01-17', '2022-02-21', '2022-04-15', '2022-05-30', '2022-06-20', '2022-07-04', '2022-09-05', '2022-11-24', '2022-12-26']],
    [2023, ['2023-01-02', '2023-01-16', '2023-02-20', '2023-04-07', '2023-05-29', '2023-06-19', '2023-07-04', '2023-09-04', '2023-11-23', '2023-12-25']],
    [2024, ['2024-01-01', '2024-01-15', '2024-02-19', '2024-03-29', '2024-05-27', '2024-06-19', '2024-07-04', '2024-09-02', '2024-11-28', '2024-12-25']],
    [2028, ['2028-01-17', '2028-02-21', '2028-04-14', '2028-05-29', '2028-06-19', '2028-07-04', '2028-09-04', '2028-11-23', '2028-12-25']],
  ])('given %i, then the holidays are the published ones', (year, expected) => {
    expect(holidays(year)).toEqual(expected);
  });

  it.each([
    [2024, '2024-03-31'],
    [2025, '2025-04-20'],
    [2026, '2026-04-05'],
    [2027, '2027-03-28'],
    [2028, '2028-04-16'],
    [2029, '2029-04-01'],
    [2030, '2030-04-21'],
    [2008, '2008-03-23'],
    [2285, '2285-03-22'], // the earliest possible Easter
    [2038, '2038-04-25'], // the latest possible Easter
  ])('given Easter %i on %s, then Good Friday, two days earlier, is a holiday', (year, easter) => {
    const goodFriday = new Date(Date.parse(`${easter}T00:00:00Z`) - 2 * 86_400_000).toISOString().slice(0, 10);
    expect(holidays(year)).toContain(goodFriday);
    expect(session(goodFriday)).toBeUndefined();
  });
});

describe('a fixed-date holiday on a weekend', () => {
  it('given July 4 on a Saturday (2026), then Friday July 3 is the holiday; on a Sunday (2027), Monday July 5', () => {
    expect(session('2026-07-03')).toBeUndefined();
    expect(session('2027-07-05')).toBeUndefined();
  });

  it('given Christmas on a Saturday (2021, 2027), then Friday December 24 is the holiday; on a Sunday (2022), Monday December 26', () => {
    expect(session('2021-12-24')).toBeUndefined();
    expect(session('2027-12-24')).toBeUndefined();
    expect(session('2022-12-26')).toBeUndefined();
  });

  it('given Juneteenth on a Saturday (2027), then Friday June 18 is the holiday; on a Sunday (2022), Monday June 20', () => {
    expect(session('2027-06-18')).toBeUndefined();
    expect(session('2022-06-20')).toBeUndefined();
  });

  it('given Juneteenth before 2022, then the exchange traded (it first closed for it in 2022)', () => {
    expect(session('2021-06-18')).toEqual(REGULAR);
    expect(holidays(2021).some((d) => d.startsWith('2021-06'))).toBe(false);
  });

  it('given New Year’s Day on a Sunday (2023), then Monday January 2 is the holiday', () => {
    expect(session('2023-01-02')).toBeUndefined();
  });

  it('given New Year’s Day on a Saturday (2022, 2028), then no day is observed and December 31 trades in full (Rule 7.2)', () => {
    expect(holidays(2022)[0]).toBe('2022-01-17');
    expect(session('2021-12-31')).toEqual(REGULAR);
    expect(session('2027-12-31')).toEqual(REGULAR);
    expect(holidays(2021)).not.toContain('2021-12-31');
  });
});

describe('13:00 early closes', () => {
  it.each([
    [2021, ['2021-11-26']], // July 3 a Saturday; December 24 the observed Christmas
    [2022, ['2022-11-25']], // July 3 a Sunday; December 24 a Saturday
    [2023, ['2023-07-03', '2023-11-24']], // December 24 a Sunday
    [2024, ['2024-07-03', '2024-11-29', '2024-12-24']],
    [2025, ['2025-07-03', '2025-11-28', '2025-12-24']],
    [2026, ['2026-11-27', '2026-12-24']], // July 3 the observed Independence Day
    [2027, ['2027-11-26']], // July 3 a Saturday; December 24 the observed Christmas
    [2028, ['2028-07-03', '2028-11-24']], // December 24 a Sunday
  ])('given %i, then the early closes are the published ones', (year, expected) => {
    expect(earlyCloses(year)).toEqual(expected);
  });

  it('given an early-close day, then its session runs 09:30–13:00; a day before a Monday holiday is a full day', () => {
    expect(session('2024-12-24')).toEqual(EARLY);
    expect(session('2025-11-28')).toEqual(EARLY);
    expect(session('2022-12-23')).toEqual(REGULAR);
  });
});

it('given a weekend day, then there is no session', () => {
  expect(session('2025-09-13')).toBeUndefined();
  expect(session('2025-09-14')).toBeUndefined();
  expect(session('2025-09-15')).toEqual(REGULAR);
});
