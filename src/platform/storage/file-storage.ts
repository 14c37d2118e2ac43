import type { Readable } from 'node:stream';
import { AppError, ValidationError } from '../errors/app-error';

export interface StoredFile {
  key: string;
  size: number;
  modifiedAt: Date;
  contentType?: string;
}

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive; default the end of the file. */
  end?: number;
}

/**
 * Files by key (`exports/<company>/<id>.csv.gz`): streamed in and out, never held in memory. A put is atomic: readers
 * see the whole file or none (a local driver writes a temporary name and renames; S3 completes a multipart upload).
 */
export interface FileStorage {
  readonly driver: 'local' | 's3';
  /** Streams `body` to `key`; resolves with the stored size once the file is complete. */
  put(key: string, body: Readable, options?: { contentType?: string }): Promise<StoredFile>;
  /** The file's bytes (or a range of them); undefined when no such file. */
  get(key: string, range?: ByteRange): Promise<Readable | undefined>;
  stat(key: string): Promise<StoredFile | undefined>;
  /** True when a file was removed. */
  delete(key: string): Promise<boolean>;
  /** Removes every file whose key starts with `prefix/` (a folder), unfinished puts' temporary files included. */
  deleteAll(prefix: string): Promise<void>;
  /**
   * The part of this store under `prefix/`, as a store of its own (a module's files: `exports`, `audit-archive`). A
   * driver with directories may place it in `localDirectory` instead when one is configured (EXPORT_DIR); one
   * without (S3) ignores it and keeps the prefix.
   */
  scoped(prefix: string, options?: { localDirectory?: string }): FileStorage;
}

/** A store's keys under `prefix/`: the scoped view for drivers that have no directories of their own. */
export class PrefixedFileStorage implements FileStorage {
  constructor(
    private readonly store: FileStorage,
    private readonly prefix: string,
  ) {
    assertStorageKey(prefix);
  }

  get driver(): FileStorage['driver'] {
    return this.store.driver;
  }

  private key(key: string): string {
    assertStorageKey(key);
    return `${this.prefix}/${key}`;
  }

  async put(key: string, body: Readable, options?: { contentType?: string }): Promise<StoredFile> {
    return { ...(await this.store.put(this.key(key), body, options)), key };
  }

  async get(key: string, range?: ByteRange): Promise<Readable | undefined> {
    return this.store.get(this.key(key), range);
  }

  async stat(key: string): Promise<StoredFile | undefined> {
    const file = await this.store.stat(this.key(key));
    return file && { ...file, key };
  }

  async delete(key: string): Promise<boolean> {
    return this.store.delete(this.key(key));
  }

  async deleteAll(prefix: string): Promise<void> {
    return this.store.deleteAll(this.key(prefix));
  }

  scoped(prefix: string): FileStorage {
    return new PrefixedFileStorage(this, prefix);
  }
}

/** Keys are relative paths of safe segments: no `..`, no absolute paths, no control characters. */
const KEY = /^(?!.*(?:^|\/)\.\.?(?:\/|$))[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/;

export function assertStorageKey(key: string): void {
  if (!KEY.test(key) || key.length > 512)
    throw ValidationError.single('key', `${JSON.stringify(key)} is not a safe relative path`);
}

/** A byte range outside the file (answered 416 by routes). */
export class RangeNotSatisfiableError extends AppError {
  constructor(key: string, size: number, range: ByteRange) {
    super(
      'RANGE_NOT_SATISFIABLE',
      `range ${range.start}-${range.end ?? ''} is outside ${key} (${size} bytes)`,
    );
    this.name = 'RangeNotSatisfiableError';
  }
}
