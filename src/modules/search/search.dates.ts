import type { DateInterval } from './search.model';

const DAY_MS = 86_400_000;
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let format = formatters.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, format);
  }
  return format;
}

/** Local wall time minus UTC at an instant, in ms. */
function zoneOffset(instantMs: number, timeZone: string): number {
  const parts: Record<string, number> = {};
  for (const part of formatter(timeZone).formatToParts(new Date(instantMs)))
    if (part.type !== 'literal') parts[part.type] = Number(part.value);
  const wall = new Date(0);
  wall.setUTCFullYear(parts.year!, parts.month! - 1, parts.day);
  wall.setUTCHours(parts.hour!, parts.minute, parts.second);
  return wall.getTime() - Math.floor(instantMs / 1000) * 1000;
}

/**
 * The instant a local day begins in a zone (epoch days in, ms out): the earliest instant whose local date is `day`.
 * Where clocks fall back over midnight the day begins at the first midnight; where midnight is skipped, at the first
 * instant that is already that day.
 */
function localDayStart(day: number, timeZone: string): number {
  const key = `${timeZone}|${day}`;
  let instant = dayStarts.get(key);
  if (instant === undefined) {
    instant = computeLocalDayStart(day, timeZone);
    if (dayStarts.size >= MAX_DAY_STARTS) dayStarts.clear();
    dayStarts.set(key, instant);
  }
  return instant;
}

/**
 * Day starts already found, by zone and day. Each costs about 16 Intl calls (some 40 µs), and a histogram facet's
 * buckets name two each on every new query (a month histogram over 3 years: ~3 ms of the event loop); the answer
 * depends on the zone's rules alone, which do not change while the process runs.
 */
const dayStarts = new Map<string, number>();
const MAX_DAY_STARTS = 100_000;

function computeLocalDayStart(day: number, timeZone: string): number {
  const wall = day * DAY_MS;
  const candidates = [wall - DAY_MS, wall, wall + DAY_MS]
    .map((probe) => wall - zoneOffset(probe, timeZone))
    .filter((instant) => localDay(instant, timeZone) === day);
  let instant = candidates.length ? Math.min(...candidates) : wall - zoneOffset(wall, timeZone);
  while (localDay(instant, timeZone) < day) instant += 15 * 60_000;
  // Step back over a repeated hour that is still this day.
  while (localDay(instant - 15 * 60_000, timeZone) === day) instant -= 15 * 60_000;
  return instant;
}

/** Epoch days of a calendar date (any year from 1: Date.UTC reads years below 100 as 19xx). */
function civilDay(year: number, month: number, date: number): number {
  const at = new Date(0);
  at.setUTCFullYear(year, month, date);
  return Math.floor(at.getTime() / DAY_MS);
}

/** Epoch day of the local date of an instant. */
function localDay(instantMs: number, timeZone: string): number {
  return Math.floor((instantMs + zoneOffset(instantMs, timeZone)) / DAY_MS);
}

/** The first day of the bucket holding `day` (epoch days); weeks begin on Monday, as Postgres's date_trunc. */
export function bucketStartDay(day: number, interval: DateInterval): number {
  if (interval === 'DAY') return day;
  if (interval === 'WEEK') return day - ((new Date(day * DAY_MS).getUTCDay() + 6) % 7);
  const date = new Date(day * DAY_MS);
  const month = interval === 'MONTH' ? date.getUTCMonth() : Math.floor(date.getUTCMonth() / 3) * 3;
  return civilDay(date.getUTCFullYear(), month, 1);
}

export function nextBucketDay(start: number, interval: DateInterval): number {
  if (interval === 'DAY') return start + 1;
  if (interval === 'WEEK') return start + 7;
  const date = new Date(start * DAY_MS);
  return civilDay(date.getUTCFullYear(), date.getUTCMonth() + (interval === 'MONTH' ? 1 : 3), 1);
}

export function dayKey(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

export function keyDay(key: string): number {
  return civilDay(Number(key.slice(0, 4)), Number(key.slice(5, 7)) - 1, Number(key.slice(8, 10)));
}

/** Buckets a facet may span before rows are bucketed one by one (see `bucketDayOf`) instead of by boundaries. */
export const MAX_BOUNDARIES = 20_000;

const APPROXIMATE_DAYS: Readonly<Record<DateInterval, number>> = { DAY: 1, WEEK: 7, MONTH: 28, QUARTER: 90 };

/** About how many buckets cover [min, max] (an upper bound). */
export function bucketSpan(min: number, max: number, instants: boolean, interval: DateInterval): number {
  const days = instants ? (max - min) / 1000 / DAY_MS : max - min;
  return Math.ceil(days / APPROXIMATE_DAYS[interval]) + 2;
}

/**
 * The first day of the bucket holding a value, for spans too wide for boundaries; `offsets` memoizes the zone's
 * offset per quarter hour (zone transitions fall on quarter hours).
 */
export function bucketDayOf(
  value: number,
  instants: boolean,
  interval: DateInterval,
  timeZone: string,
  offsets: Map<number, number>,
): number {
  if (!instants) return bucketStartDay(value, interval);
  const ms = Math.floor(value / 1000);
  const slot = Math.floor(ms / 900_000);
  let offset = offsets.get(slot);
  if (offset === undefined) {
    offset = zoneOffset(ms, timeZone);
    offsets.set(slot, offset);
  }
  return bucketStartDay(Math.floor((ms + offset) / DAY_MS), interval);
}

const boundaryCache = new Map<string, { starts: Float64Array; keys: string[] }>();

/**
 * Bucket boundaries covering [min, max] of a column in its canonical unit (microseconds for instants, days for days):
 * `starts[i]` is where bucket `keys[i]` begins; a value v falls in the last bucket whose start is <= v.
 */
export function bucketBoundaries(
  min: number,
  max: number,
  instants: boolean,
  interval: DateInterval,
  timeZone: string,
): { starts: Float64Array; keys: string[] } {
  const cacheKey = `${min}:${max}:${instants}:${interval}:${timeZone}`;
  const cached = boundaryCache.get(cacheKey);
  if (cached) return cached;
  const firstDay = instants ? localDay(Math.floor(min / 1000), timeZone) : min;
  const lastDay = instants ? localDay(Math.floor(max / 1000), timeZone) : max;
  const starts: number[] = [];
  const keys: string[] = [];
  for (let day = bucketStartDay(firstDay, interval); day <= lastDay; day = nextBucketDay(day, interval)) {
    keys.push(dayKey(day));
    starts.push(instants ? localDayStart(day, timeZone) * 1000 : day);
  }
  const boundaries = { starts: Float64Array.from(starts), keys };
  if (boundaryCache.size >= 256) boundaryCache.delete(boundaryCache.keys().next().value!);
  boundaryCache.set(cacheKey, boundaries);
  return boundaries;
}

/** Where a bucket begins and where the next begins: ISO instants for instants, YYYY-MM-DD for days. */
export function bucketRange(
  key: string,
  instants: boolean,
  interval: DateInterval,
  timeZone: string,
): { from: string; to: string } {
  const start = keyDay(key);
  const next = nextBucketDay(start, interval);
  if (!instants) return { from: key, to: dayKey(next) };
  return {
    from: new Date(localDayStart(start, timeZone)).toISOString(),
    to: new Date(localDayStart(next, timeZone)).toISOString(),
  };
}
