import type { CountingIndex } from './counting-index';
import type { DataVersion } from './data-version';

/** Where a search is answered from: the counting index at a data version, or SQL. */
export type Engine =
  { kind: 'index'; index: CountingIndex; version: DataVersion } | { kind: 'live'; version: DataVersion };

export type IndexEngine = Extract<Engine, { kind: 'index' }>;

/** The index moved on while a search read from it: an answer would mix versions. */
export class VersionMoved extends Error {}

/**
 * Throws VersionMoved unless `version` (the index's own now, or the one a statement read at) is still the engine's.
 * The index is written in place by catch-ups: bitsets of one version must not meet columns of another.
 */
export function assertVersion(engine: IndexEngine, version: DataVersion): void {
  if (version !== engine.version) throw new VersionMoved();
}

export interface VersionRetry<T> {
  /** The data version the search read first. */
  readVersion: DataVersion;
  /** The data version now (read again after a move). */
  versionNow(): Promise<DataVersion>;
  /** The engine for a data version: the index when it is at it (or catches up), else SQL. */
  engineAt(version: DataVersion): Promise<Engine>;
  /** Told when the search falls back to SQL because the index kept moving. */
  movedToLive(): void;
  /** One try of the search on an engine. */
  attempt(engine: Engine): Promise<T>;
}

/**
 * Runs a search on the engine for the version it read; if the index moves on while the search reads from it, once
 * more at the new version, then from SQL at the version first read. The one place a moved version is caught.
 */
export async function retryOnMovedVersion<T>(retry: VersionRetry<T>): Promise<T> {
  const engines = [
    () => retry.engineAt(retry.readVersion),
    async () => retry.engineAt(await retry.versionNow()),
  ];
  for (const engine of engines) {
    try {
      return await retry.attempt(await engine());
    } catch (error) {
      if (!(error instanceof VersionMoved)) throw error;
    }
  }
  retry.movedToLive();
  return retry.attempt({ kind: 'live', version: retry.readVersion });
}
