import { setTimeout as delay } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Pool } from 'pg';
import { createLogger } from '../../platform/logging/logger';
import { millionRecordSizes, type BenchContext, type BenchResult, type BenchScenario } from '../kernel';
import { SearchIndexes } from './index-registry';

/** A full collection, without the process having been started with --expose-gc. */
function collector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/**
 * What the process holds that an index can take: the V8 heap and the ArrayBuffers' backing stores, after full
 * collections (freed backing stores are swept concurrently: wait for the figure to settle).
 */
async function heldBytes(gc: () => void): Promise<number> {
  let last = NaN;
  for (let round = 0; round < 20; round++) {
    gc();
    await delay(50);
    const { heapUsed, arrayBuffers } = process.memoryUsage();
    if (Math.abs(heapUsed + arrayBuffers - last) < 64 * 1024) return heapUsed + arrayBuffers;
    last = heapUsed + arrayBuffers;
  }
  return last;
}

/** One build, the index held only here (an async function's registers outlive a loop iteration). */
async function measureBuild(
  indexes: SearchIndexes,
  gc: () => void,
  companyId: string,
  type: 'LEAD' | 'DEAL',
): Promise<{ before: number; rows: number; seconds: number; accounted: number; grown: number }> {
  const before = await heldBytes(gc);
  const started = performance.now();
  const index = await indexes.rebuild(companyId, type);
  const seconds = (performance.now() - started) / 1000;
  const grown = (await heldBytes(gc)) - before;
  return { before, rows: index.rows, seconds, accounted: index.bytes(), grown };
}

/**
 * The counting index's byte accounting against what the process really grew by: the largest company's leads and
 * deals built in this process, one at a time, the heap and ArrayBuffers measured after full collections before the
 * build and while the index is held. Reports index MB and build seconds per million records (the capacity figures).
 */
export const indexMemoryBench: BenchScenario = {
  name: 'search.indexMemory',
  async run(context: BenchContext): Promise<BenchResult> {
    // The database of search.facets: one seeding serves both.
    const db = await context.openDatabase('crm1m', millionRecordSizes(context.scale));
    const databaseUrl = (db.options as { url: string }).url;
    const [company] = await db.query<Array<{ id: string }>>(
      'SELECT company_id AS id FROM leads GROUP BY 1 ORDER BY count(*) DESC LIMIT 1',
    );
    const pool = new Pool({ connectionString: databaseUrl, max: 2 });
    const indexes = new SearchIndexes(
      pool,
      createLogger({ level: 'silent', name: 'bench' }),
      { rebuilds: () => undefined, evictions: () => undefined },
      {
        buildWaitMs: 0,
        maxCatchUp: 20_000,
        idleMs: 3_600_000,
        maxBytes: 64 * 1024 ** 3,
        parallelBuild: true,
        connectionString: () => databaseUrl,
      },
    );
    const gc = collector();
    const measured: Record<string, number> = {};
    const baseline: Record<string, number> = {};
    const ratios: number[] = [];
    try {
      for (const type of ['LEAD', 'DEAL'] as const) {
        const { before, rows, seconds, accounted, grown } = await measureBuild(
          indexes,
          gc,
          company!.id,
          type,
        );
        const perMillion = 1e6 / rows;
        const name = type.toLowerCase();
        measured[`${name}Rows`] = rows;
        measured[`${name}AccountedMb`] = accounted / 1e6;
        measured[`${name}MbPerMillion`] = (accounted / 1e6) * perMillion;
        measured[`${name}BuildSecondsPerMillion`] = seconds * perMillion;
        baseline[`${name}HeapGrowthMb`] = grown / 1e6;
        ratios.push(accounted / grown);
        // Dropped (as an eviction drops it) before the next type is measured: the process gives it back.
        indexes.stop();
        const left = (await heldBytes(gc)) - before;
        baseline[`${name}HeapLeftAfterDropMb`] = left / 1e6;
        context.log(
          `${type}: ${rows} rows built in ${seconds.toFixed(1)} s; accounted ${(accounted / 1e6).toFixed(1)} MB, ` +
            `heap + ArrayBuffers grew ${(grown / 1e6).toFixed(1)} MB (accounted/grown ${(accounted / grown).toFixed(2)}), ` +
            `${(left / 1e6).toFixed(1)} MB left once dropped; ` +
            `${((accounted / 1e6) * perMillion).toFixed(0)} MB and ${(seconds * perMillion).toFixed(1)} s per million`,
        );
      }
    } finally {
      indexes.stop();
      await pool.end();
      await db.destroy();
    }
    return {
      scenario: 'search.indexMemory',
      description: "the counting index's byte accounting against the process's heap + ArrayBuffer growth",
      measured,
      baseline,
      baselineName: 'heap used + ArrayBuffers grown while the index is held (after full collections)',
      ratio: Math.min(...ratios),
      ratioOf: 'smallest accounted / grown over leads and deals (1 = exact; below 1 undercounts)',
      notes: 'Parallel build (lexemes on a second connection), as the gateway on Postgres does.',
    };
  },
};
