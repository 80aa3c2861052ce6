/**
 * US equity regular hours: 09:30–16:00 America/New_York, Monday to Friday. Exchange
 * holidays are not modelled. Time zone maths goes through Intl (no tz library).
 */
const NEW_YORK = new Intl.DateTimeFormat('en-US', {
  timeZone: 'America/New_York',
  hourCycle: 'h23',
  year: 'numeric',
  month: 'numeric',
  day: 'numeric',
  hour: 'numeric',
  minute: 'numeric',
  second: 'numeric',
});

const OPEN_MINUTE = 9 * 60 + 30;
const CLOSE_MINUTE = 16 * 60;

interface WallTime {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
}

function newYorkWallTime(ms: number): WallTime {
  const part = (type: Intl.DateTimeFormatPartTypes, parts: Intl.DateTimeFormatPart[]): number =>
    Number(parts.find((p) => p.type === type)?.value);
  const parts = NEW_YORK.formatToParts(ms);
  return {
    year: part('year', parts),
    month: part('month', parts),
    day: part('day', parts),
    hour: part('hour', parts),
    minute: part('minute', parts),
    second: part('second', parts),
  };
}

/** New York's offset from UTC at an instant (-4 h or -5 h), in ms. */
function offsetAt(ms: number): number {
  const w = newYorkWallTime(ms);
  return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second) - Math.floor(ms / 1000) * 1000;
}

/** The instant a New York wall-clock time names; two passes settle the DST offset. */
function fromNewYork(year: number, month: number, day: number, minuteOfDay: number): number {
  const asUtc = Date.UTC(year, month - 1, day, 0, minuteOfDay);
  return asUtc - offsetAt(asUtc - offsetAt(asUtc));
}

const isWeekday = (utcMidnight: Date): boolean => utcMidnight.getUTCDay() >= 1 && utcMidnight.getUTCDay() <= 5;

export function isMarketOpen(ms: number): boolean {
  const w = newYorkWallTime(ms);
  const minute = w.hour * 60 + w.minute;
  return isWeekday(new Date(Date.UTC(w.year, w.month - 1, w.day))) && minute >= OPEN_MINUTE && minute < CLOSE_MINUTE;
}

/** The first weekday instant strictly after `ms` at which New York's clock shows `minuteOfDay`. */
function nextWeekdayAt(ms: number, minuteOfDay: number): number {
  const w = newYorkWallTime(ms);
  for (let i = 0; i < 8; i++) {
    const day = new Date(Date.UTC(w.year, w.month - 1, w.day + i));
    if (!isWeekday(day)) continue;
    const at = fromNewYork(day.getUTCFullYear(), day.getUTCMonth() + 1, day.getUTCDate(), minuteOfDay);
    if (at > ms) return at;
  }
  throw new Error('unreachable: a weekday occurs within 8 days');
}

export const nextOpenAfter = (ms: number): number => nextWeekdayAt(ms, OPEN_MINUTE);
export const nextCloseAfter = (ms: number): number => nextWeekdayAt(ms, CLOSE_MINUTE);

/** How much of [from, to) falls in regular trading hours: an open order's deadline runs only while the market can fill it. */
export function tradingMsBetween(from: number, to: number): number {
  let total = 0;
  for (let at = from; at < to; ) {
    if (isMarketOpen(at)) {
      const close = Math.min(nextCloseAfter(at), to);
      total += close - at;
      at = close;
    } else at = nextOpenAfter(at);
  }
  return total;
}
