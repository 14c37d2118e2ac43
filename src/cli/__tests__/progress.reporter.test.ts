import { createProgressReporter, type ProgressStream } from '../progress.reporter';

/** A stream that keeps what is written; `isTTY` as a terminal or a pipe would say. */
function stream(isTTY: boolean): ProgressStream & { text: () => string; columns: number } {
  const chunks: string[] = [];
  return {
    isTTY,
    columns: 100,
    write: (chunk: string) => chunks.push(String(chunk)) > 0,
    text: () => chunks.join(''),
  };
}

const ESC = String.fromCharCode(27);

describe('progress reporter', () => {
  it('without a terminal writes whole lines, every few seconds or every 10 %, and a summary; never a \\r', () => {
    let clock = 0;
    const out = stream(false);
    const progress = createProgressReporter({ unit: 'vectors', stream: out, now: () => clock });
    progress.start('company-1', 1000);
    // Fast updates: nothing until a second has passed and 10 % more are done.
    for (let done = 1; done <= 50; done++) progress.update(done);
    clock = 1200;
    progress.update(150);
    // Slow updates: a line every 5 s whatever the percentage.
    clock = 6300;
    progress.update(160);
    clock = 6400;
    progress.update(170);
    clock = 9000;
    progress.update(1000);
    progress.stop();
    const text = out.text();
    expect(text).not.toContain('\r');
    expect(text).not.toContain(ESC);
    expect(text.endsWith('\n')).toBe(true);
    expect(text.split('\n')).toEqual([
      'company-1: 150/1000 vectors (15%)',
      'company-1: 160/1000 vectors (16%)',
      'company-1: 1000/1000 vectors in 9.0 s',
      '',
    ]);
  });

  it('without a terminal and without a total counts so far, and starts each task afresh', () => {
    let clock = 0;
    const out = stream(false);
    const progress = createProgressReporter({ unit: 'records embedded', stream: out, now: () => clock });
    progress.start('lead');
    clock = 5000;
    progress.update(500);
    progress.update(600);
    progress.start('deal'); // stops the lead task with its summary
    clock = 5500;
    progress.update(20);
    progress.stop('40 done');
    progress.stop(); // a second stop writes nothing
    expect(out.text()).toBe('lead: 500 records embedded\nlead: 600 records embedded in 5.0 s\n40 done\n');
  });

  it('on a terminal draws the bar in place, then the summary line', () => {
    const out = stream(true);
    const progress = createProgressReporter({ unit: 'rows', stream: out });
    progress.start('leads', 200);
    progress.update(100);
    progress.update(200);
    progress.stop();
    const text = out.text();
    expect(text).toMatch(/leads \[[█░]+\] \d+\/200 rows/);
    // Redrawn in place: cursor moves and line clears, not one line per update.
    expect(text).toContain(`${ESC}[`);
    expect(text).toMatch(/leads: 200\/200 rows in \d+\.\d s\n$/);
  });

  it('on a terminal waits for the total before drawing a bar, and counts when none comes', () => {
    const out = stream(true);
    const progress = createProgressReporter({ unit: 'vectors', stream: out });
    progress.start('company-2');
    progress.update(0, 40);
    progress.update(40);
    progress.stop();
    expect(out.text()).toMatch(/company-2 \[[█░]+\] \d+\/40 vectors/);
    const counting = stream(true);
    const embed = createProgressReporter({ unit: 'records embedded', stream: counting });
    embed.start('deal');
    embed.update(7);
    embed.stop();
    expect(counting.text()).toMatch(/deal: \d+ records embedded/);
    expect(counting.text()).toMatch(/deal: 7 records embedded in \d+\.\d s\n$/);
  });
});
