import { bucketRange } from '../search.dates';

const DAY_MS = 86_400_000;

/** The local date of an instant in a zone, as YYYY-MM-DD (Intl's own answer, nothing from the code under test). */
function localDate(instantMs: number, timeZone: string): string {
  return new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).format(new Date(instantMs));
}

/** The earliest minute whose local date is `date`, by walking minutes from a day and a half before its UTC midnight. */
function referenceDayStart(date: string, timeZone: string): string {
  const utcMidnight = Date.parse(`${date}T00:00:00Z`);
  for (let at = utcMidnight - 1.5 * DAY_MS; at < utcMidnight + 1.5 * DAY_MS; at += 60_000)
    if (localDate(at, timeZone) === date) return new Date(at).toISOString();
  throw new Error(`no instant of ${date} in ${timeZone}`);
}

describe('search date buckets: where a local day begins', () => {
  // Amman fell back over midnight (2021-10-29), Sao Paulo skipped midnight (2018-11-04), Berlin and New York switch
  // at night, Kolkata never does, Chatham is 12:45 or 13:45 ahead.
  const cases: Array<[string, string[]]> = [
    ['Asia/Amman', ['2021-10-28', '2021-10-29', '2021-10-30', '2022-02-24', '2022-02-25']],
    ['America/Sao_Paulo', ['2018-11-03', '2018-11-04', '2018-11-05', '2019-02-16', '2019-02-17']],
    ['Europe/Berlin', ['2025-03-30', '2025-03-31', '2025-10-26', '2025-10-27']],
    ['America/New_York', ['2025-03-09', '2025-11-02', '2025-11-03']],
    ['Asia/Kolkata', ['2025-06-01', '2025-06-02']],
    ['Pacific/Chatham', ['2025-04-06', '2025-09-28']],
  ];

  it('is the earliest instant of that local date, asked once or again (the answers are kept per zone and day)', () => {
    for (const [zone, dates] of cases)
      for (const date of dates)
        for (const round of ['first', 'again']) {
          const { from } = bucketRange(date, true, 'DAY', zone);
          expect({ zone, date, round, from }).toEqual({
            zone,
            date,
            round,
            from: referenceDayStart(date, zone),
          });
        }
  });

  it('ends a bucket where the next begins, for each interval', () => {
    expect(bucketRange('2021-10-01', true, 'MONTH', 'Asia/Amman')).toEqual({
      from: referenceDayStart('2021-10-01', 'Asia/Amman'),
      to: referenceDayStart('2021-11-01', 'Asia/Amman'),
    });
    expect(bucketRange('2018-10-01', true, 'QUARTER', 'America/Sao_Paulo')).toEqual({
      from: referenceDayStart('2018-10-01', 'America/Sao_Paulo'),
      to: referenceDayStart('2019-01-01', 'America/Sao_Paulo'),
    });
    // A week of days (no zone): dates, not instants.
    expect(bucketRange('2025-03-24', false, 'WEEK', 'UTC')).toEqual({ from: '2025-03-24', to: '2025-03-31' });
  });
});
