import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { PrefixedFileStorage } from '../file-storage';
import { LocalFileStorage } from '../local-file.storage';

describe('LocalFileStorage', () => {
  let directory: string;
  let storage: LocalFileStorage;

  beforeEach(async () => {
    directory = await mkdtemp(join(tmpdir(), 'crm-storage-'));
    storage = new LocalFileStorage(directory);
  });
  afterEach(() => rm(directory, { recursive: true, force: true }));

  it('streams a file in and out, stats it, reads byte ranges and deletes it', async () => {
    const body = 'a'.repeat(100_000) + 'THE-END';
    const stored = await storage.put(
      'exports/c1/job.csv',
      Readable.from([body.slice(0, 50_000), body.slice(50_000)]),
      {
        contentType: 'text/csv',
      },
    );
    expect(stored).toMatchObject({ key: 'exports/c1/job.csv', size: body.length, contentType: 'text/csv' });
    expect(await text((await storage.get('exports/c1/job.csv'))!)).toBe(body);
    expect(await text((await storage.get('exports/c1/job.csv', { start: 100_000 }))!)).toBe('THE-END');
    expect(await text((await storage.get('exports/c1/job.csv', { start: 1, end: 3 }))!)).toBe('aaa');
    await expect(storage.get('exports/c1/job.csv', { start: 10_000_000 })).rejects.toMatchObject({
      code: 'RANGE_NOT_SATISFIABLE',
    });
    await expect(storage.get('exports/c1/job.csv', { start: 5, end: 2 })).rejects.toMatchObject({
      code: 'RANGE_NOT_SATISFIABLE',
    });
    expect(await storage.delete('exports/c1/job.csv')).toBe(true);
    expect(await storage.stat('exports/c1/job.csv')).toBeUndefined();
    expect(await storage.get('exports/c1/job.csv')).toBeUndefined();
    expect(await storage.delete('exports/c1/job.csv')).toBe(false);
  });

  it('never leaves a partial file under the key when the stream fails midway', async () => {
    const failing = new Readable({
      read() {
        this.push('first chunk,');
        this.destroy(new Error('worker died'));
      },
    });
    await expect(storage.put('exports/c1/broken.csv', failing)).rejects.toThrow('worker died');
    expect(await storage.stat('exports/c1/broken.csv')).toBeUndefined();
    expect(await readdir(join(directory, 'exports/c1'))).toEqual([]);
  });

  it('replaces a file atomically: a reader sees the old or the new file, whole', async () => {
    await storage.put('k/file.txt', Readable.from(['old']), { contentType: 'text/html' });
    await storage.put('k/file.txt', Readable.from(['new content']));
    expect(await text((await storage.get('k/file.txt'))!)).toBe('new content');
    expect((await storage.stat('k/file.txt'))?.contentType).toBeUndefined(); // the old type went with the old file
  });

  it('keeps content types where no key can reach them', async () => {
    await storage.put('k/report.json', Readable.from(['{}']), { contentType: 'application/json' });
    await storage.put('k/report.json.type', Readable.from(['text/html'])); // an ordinary file, not the metadata
    expect((await storage.stat('k/report.json'))?.contentType).toBe('application/json');
    expect(await storage.delete('k/report.json')).toBe(true);
    expect(await storage.stat('k/report.json.type')).toBeDefined();
  });

  it.each(['../escape', '/etc/passwd', 'a/../../b', 'a//b', '', 'a/./b', 'bad\u0000name', 'spaces not ok'])(
    'refuses the unsafe key %j',
    async (key) => {
      await expect(storage.put(key, Readable.from(['x']))).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    },
  );

  it("scoped: a module's part of the store, in <root>/<prefix> or the directory its setting names", async () => {
    const exportsPart = storage.scoped('exports');
    await exportsPart.put('c1/job.csv', Readable.from(['x']));
    expect(await text((await storage.get('exports/c1/job.csv'))!)).toBe('x');
    const elsewhere = join(directory, 'elsewhere');
    const own = storage.scoped('audit-archive', { localDirectory: elsewhere });
    await own.put('2026-01.csv.gz', Readable.from(['y']));
    expect(await readdir(elsewhere)).toEqual(['2026-01.csv.gz']);
    expect(await storage.stat('audit-archive/2026-01.csv.gz')).toBeUndefined();
    expect(() => storage.scoped('../up')).toThrow(/is not a safe relative path/);
  });

  it('PrefixedFileStorage (drivers without directories): keys under the prefix, answered without it', async () => {
    const part = new PrefixedFileStorage(storage, 'exports');
    expect(part.driver).toBe('local');
    expect(await part.put('c1/a.csv', Readable.from(['abc']), { contentType: 'text/csv' })).toMatchObject({
      key: 'c1/a.csv',
      size: 3,
    });
    expect(await text((await storage.get('exports/c1/a.csv'))!)).toBe('abc');
    expect(await text((await part.get('c1/a.csv', { start: 1 }))!)).toBe('bc');
    expect(await part.stat('c1/a.csv')).toMatchObject({ key: 'c1/a.csv', contentType: 'text/csv' });
    await part.scoped('c2').put('b.csv', Readable.from(['b']));
    expect(await storage.stat('exports/c2/b.csv')).toMatchObject({ size: 1 });
    await part.deleteAll('c1');
    expect(await storage.stat('exports/c1/a.csv')).toBeUndefined();
    expect(await part.delete('c2/b.csv')).toBe(true);
    await expect(part.get('../secrets')).rejects.toThrow(/is not a safe relative path/);
  });
});
