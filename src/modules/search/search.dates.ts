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
  const wall = Date.UTC(parts.year!, parts.month! - 1, parts.day, parts.hour, parts.minute, parts.second);
  return wall - Math.floor(instantMs / 1000) * 1000;
}

/** The instant a local day begins in a zone (the first instant whose local date is `day`, as epoch days). */
function localDayStart(day: number, timeZone: string): number {
  const wall = day * DAY_MS;
  let instant = wall - zoneOffset(wall, timeZone);
  const corrected = wall - zoneOffset(instant, timeZone);
  if (corrected !== instant) instant = corrected;
  // Where midnight does not exist the day starts at the first instant that is already that day.
  while (Math.floor((instant + zoneOffset(instant, timeZone)) / DAY_MS) < day) instant += 15 * 60_000;
  return instant;
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
  return Date.UTC(date.getUTCFullYear(), month, 1) / DAY_MS;
}

export function nextBucketDay(start: number, interval: DateInterval): number {
  if (interval === 'DAY') return start + 1;
  if (interval === 'WEEK') return start + 7;
  const date = new Date(start * DAY_MS);
  return Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + (interval === 'MONTH' ? 1 : 3), 1) / DAY_MS;
}

export function dayKey(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

export function keyDay(key: string): number {
  return Date.parse(`${key}T00:00:00Z`) / DAY_MS;
}

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
  const firstDay = instants ? localDay(Math.floor(min / 1000), timeZone) : min;
  const lastDay = instants ? localDay(Math.floor(max / 1000), timeZone) : max;
  const starts: number[] = [];
  const keys: string[] = [];
  for (let day = bucketStartDay(firstDay, interval); day <= lastDay; day = nextBucketDay(day, interval)) {
    keys.push(dayKey(day));
    starts.push(instants ? localDayStart(day, timeZone) * 1000 : day);
  }
  return { starts: Float64Array.from(starts), keys };
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
