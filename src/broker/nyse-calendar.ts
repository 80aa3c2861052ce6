/**
 * The NYSE's scheduled calendar, computed by rule for any year (NYSE Rule 7.2 and the
 * exchange's yearly holiday announcements): the days without a session and the days that
 * close at 13:00 New York. Dates are New York civil dates, 'YYYY-MM-DD'. The rules are today's
 * (checked against NYSE's lists from 2021 on); years long past may differ from what NYSE did
 * then. Unscheduled closures (national days of mourning, storms) cannot be computed and are
 * not modelled.
 * No I/O and no time zones: a civil date is held as the UTC midnight that names it, which
 * gives weekday and day arithmetic for free.
 */

/** Minutes after midnight, New York. */
export interface Session {
  readonly open: number;
  readonly close: number;
}

const REGULAR: Session = { open: 9 * 60 + 30, close: 16 * 60 };
const EARLY_CLOSE: Session = { ...REGULAR, close: 13 * 60 };

const SUNDAY = 0;
const MONDAY = 1;
const THURSDAY = 4;
const SATURDAY = 6;
/** Juneteenth became a federal holiday in June 2021; the NYSE first closed for it in 2022. */
const JUNETEENTH_FROM = 2022;

const civil = (year: number, month: number, day: number): Date => new Date(Date.UTC(year, month - 1, day));
const addDays = (date: Date, days: number): Date => civil(date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate() + days);
const iso = (date: Date): string => date.toISOString().slice(0, 10);
const isWeekend = (date: Date): boolean => date.getUTCDay() === SATURDAY || date.getUTCDay() === SUNDAY;

/** The n-th `weekday` (0 = Sunday) of a month. */
function nthWeekday(year: number, month: number, weekday: number, n: number): Date {
  const first = civil(year, month, 1).getUTCDay();
  return civil(year, month, 1 + ((weekday - first + 7) % 7) + 7 * (n - 1));
}

/** The last `weekday` of a month: step back from the first of the next. */
function lastWeekday(year: number, month: number, weekday: number): Date {
  const next = civil(year, month + 1, 1);
  return addDays(next, -(((next.getUTCDay() - weekday + 6) % 7) + 1));
}

/** Easter Sunday in the Gregorian calendar (the anonymous algorithm: Meeus, Jones, Butcher). */
function easterSunday(year: number): Date {
  const a = year % 19;
  const b = Math.floor(year / 100);
  const c = year % 100;
  const d = Math.floor(b / 4);
  const e = b % 4;
  const f = Math.floor((b + 8) / 25);
  const g = Math.floor((b - f + 1) / 3);
  const h = (19 * a + b - d - g + 15) % 30;
  const i = Math.floor(c / 4);
  const k = c % 4;
  const l = (32 + 2 * e + 2 * i - h - k) % 7;
  const m = Math.floor((a + 11 * h + 22 * l) / 451);
  const month = Math.floor((h + l - 7 * m + 114) / 31);
  const day = ((h + l - 7 * m + 114) % 31) + 1;
  return civil(year, month, day);
}

/** A fixed-date holiday on a Saturday is observed on the Friday before, on a Sunday on the Monday after. */
function observed(date: Date): Date {
  if (date.getUTCDay() === SATURDAY) return addDays(date, -1);
  if (date.getUTCDay() === SUNDAY) return addDays(date, 1);
  return date;
}

/**
 * New Year's Day on a Saturday is not observed at all: Rule 7.2 keeps the exchange open on a
 * Friday that ends the yearly accounting period (2022 and 2028 have no New Year's holiday).
 */
const newYearsDay = (year: number): Date[] => (civil(year, 1, 1).getUTCDay() === SATURDAY ? [] : [observed(civil(year, 1, 1))]);

const thanksgiving = (year: number): Date => nthWeekday(year, 11, THURSDAY, 4);

/** The full-day holidays of a year, as observed, in date order; all fall within the year. */
export function holidays(year: number): string[] {
  return [
    ...newYearsDay(year),
    nthWeekday(year, 1, MONDAY, 3), // Martin Luther King, Jr. Day
    nthWeekday(year, 2, MONDAY, 3), // Washington's Birthday
    addDays(easterSunday(year), -2), // Good Friday
    lastWeekday(year, 5, MONDAY), // Memorial Day
    ...(year >= JUNETEENTH_FROM ? [observed(civil(year, 6, 19))] : []),
    observed(civil(year, 7, 4)), // Independence Day
    nthWeekday(year, 9, MONDAY, 1), // Labor Day
    thanksgiving(year),
    observed(civil(year, 12, 25)), // Christmas Day
  ].map(iso);
}

/**
 * The 13:00 closes of a year: July 3, the Friday after Thanksgiving and Christmas Eve, each only
 * when it is a trading day (a Friday July 3 or December 24 is the observed holiday itself).
 */
export function earlyCloses(year: number): string[] {
  const closed = new Set(holidays(year));
  return [civil(year, 7, 3), addDays(thanksgiving(year), 1), civil(year, 12, 24)]
    .filter((date) => !isWeekend(date) && !closed.has(iso(date)))
    .map(iso);
}

/** The regular session on a New York date, or undefined when the exchange does not open that day. */
export function sessionOn(year: number, month: number, day: number): Session | undefined {
  const date = civil(year, month, day);
  if (isWeekend(date) || holidays(year).includes(iso(date))) return undefined;
  return earlyCloses(year).includes(iso(date)) ? EARLY_CLOSE : REGULAR;
}
