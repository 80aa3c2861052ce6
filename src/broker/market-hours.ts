/**
 * US equity regular hours: 09:30–16:00 America/New_York on NYSE trading days, 13:00 on early
 * closes (the calendar is in nyse-calendar.ts; unscheduled closures are not modelled). Time
 * zone maths goes through Intl (no tz library).
 */
import { sessionOn, type Session } from './nyse-calendar.ts';

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

export function isMarketOpen(ms: number): boolean {
  const w = newYorkWallTime(ms);
  const session = sessionOn(w.year, w.month, w.day);
  const minute = w.hour * 60 + w.minute;
  return session !== undefined && minute >= session.open && minute < session.close;
}

/** Scheduled closures last at most three days in a row (a weekend and a Friday or Monday holiday). */
const DAYS_TO_SEARCH = 8;

/** The first session edge (open or close) strictly after `ms`, skipping weekends and holidays. */
function nextEdge(ms: number, edge: keyof Session): number {
  const w = newYorkWallTime(ms);
  for (let i = 0; i < DAYS_TO_SEARCH; i++) {
    const day = new Date(Date.UTC(w.year, w.month - 1, w.day + i));
    const [year, month, date] = [day.getUTCFullYear(), day.getUTCMonth() + 1, day.getUTCDate()];
    const session = sessionOn(year, month, date);
    if (session === undefined) continue;
    const at = fromNewYork(year, month, date, session[edge]);
    if (at > ms) return at;
  }
  throw new Error(`unreachable: the NYSE trades within ${DAYS_TO_SEARCH} days`);
}

export const nextOpenAfter = (ms: number): number => nextEdge(ms, 'open');
export const nextCloseAfter = (ms: number): number => nextEdge(ms, 'close');

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
