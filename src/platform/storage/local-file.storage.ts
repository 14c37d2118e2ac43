import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat, writeFile, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  assertStorageKey,
  RangeNotSatisfiableError,
  type ByteRange,
  type FileStorage,
  type StoredFile,
} from './file-storage';

/** Beside each file, its content type: `~` never appears in a key, so no key can name (or overwrite) it. */
const TYPE_SUFFIX = '~type';

/**
 * Files under one directory (`STORAGE_DIR`). A put streams to `<key>.<uuid>.partial` and renames on success, so a
 * crash or a failed stream never leaves a partial file under the real key. Content types sit beside the file.
 */
export class LocalFileStorage implements FileStorage {
  readonly driver = 'local' as const;
  private readonly root: string;

  constructor(directory: string) {
    this.root = resolve(directory);
  }

  /** A directory of its own: `localDirectory` when configured, else `<root>/<prefix>`. */
  scoped(prefix: string, options: { localDirectory?: string } = {}): FileStorage {
    assertStorageKey(prefix);
    return new LocalFileStorage(options.localDirectory ?? join(this.root, prefix));
  }

  async put(key: string, body: Readable, options: { contentType?: string } = {}): Promise<StoredFile> {
    const path = this.path(key);
    await mkdir(dirname(path), { recursive: true });
    const temporary = `${path}.${randomUUID()}.partial`;
    try {
      await pipeline(body, createWriteStream(temporary, { flags: 'wx' }));
      if (options.contentType) {
        await writeFile(`${temporary}${TYPE_SUFFIX}`, options.contentType);
        await rename(`${temporary}${TYPE_SUFFIX}`, `${path}${TYPE_SUFFIX}`);
      } else {
        await rm(`${path}${TYPE_SUFFIX}`, { force: true }); // a replaced file does not keep the old one's type
      }
      await rename(temporary, path);
    } catch (error) {
      await rm(temporary, { force: true });
      await rm(`${temporary}${TYPE_SUFFIX}`, { force: true });
      throw error;
    }
    return (await this.stat(key))!;
  }

  async get(key: string, range?: ByteRange): Promise<Readable | undefined> {
    const file = await this.stat(key);
    if (!file) return undefined;
    if (
      range &&
      (!Number.isInteger(range.start) ||
        range.start < 0 ||
        range.start >= Math.max(1, file.size) ||
        (range.end !== undefined && (!Number.isInteger(range.end) || range.end < range.start)))
    )
      throw new RangeNotSatisfiableError(key, file.size, range);
    return createReadStream(this.path(key), range ? { start: range.start, end: range.end } : {});
  }

  async stat(key: string): Promise<StoredFile | undefined> {
    const path = this.path(key);
    try {
      const info = await stat(path);
      if (!info.isFile()) return undefined;
      const contentType = await readFile(`${path}${TYPE_SUFFIX}`, 'utf8').catch(() => undefined);
      return { key, size: info.size, modifiedAt: info.mtime, ...(contentType ? { contentType } : {}) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async delete(key: string): Promise<boolean> {
    const existed = (await this.stat(key)) !== undefined;
    await rm(this.path(key), { force: true });
    await rm(`${this.path(key)}${TYPE_SUFFIX}`, { force: true });
    return existed;
  }

  async deleteAll(prefix: string): Promise<void> {
    // Everything under the folder, temporary files of interrupted puts included.
    await rm(this.path(prefix), { recursive: true, force: true });
  }

  private path(key: string): string {
    assertStorageKey(key);
    const path = join(this.root, key);
    if (!path.startsWith(`${this.root}/`)) throw new Error(`storage key ${key} leaves the storage directory`);
    return path;
  }
}
