import type { RecordType } from '../kernel';
import type { RollupDefinition } from './report.rollups';

/** A rollup of one company as its last rebuild left it. */
export interface RollupStateView {
  name: string;
  entityType: RecordType;
  dimensions: string[];
  rollupRows: number;
  recordRows: number;
  builtAt: Date;
  buildMs: number;
  /** Small enough against its records to be read. */
  usable: boolean;
}

/** A rollup's dimensions as report dimensions (`closeDate:month`), owner first. */
export function rollupDimensionNames(definition: RollupDefinition): string[] {
  return [
    'ownerId',
    ...definition.dimensions.map((d) => (d.bucket ? `${d.spec.name}:${d.bucket}` : d.spec.name)),
  ];
}

/** A rollup worth reading: at most `maxRatio` (the `rollupMaxRatio` setting) of its records' rows. */
export function smallEnough(rollupRows: number, recordRows: number, maxRatio: number): boolean {
  return rollupRows === 0 || rollupRows <= maxRatio * recordRows;
}

/** What a rebuild measured of a rollup. */
export interface RollupMeasure {
  rollupRows: number;
  recordRows: number;
  builtAt: Date;
  buildMs: number;
}

/** A rollup's state as its last rebuild measured it, usable when small enough against `maxRatio`. */
export function rollupStateView(
  definition: RollupDefinition,
  { rollupRows, recordRows, builtAt, buildMs }: RollupMeasure,
  maxRatio: number,
): RollupStateView {
  return {
    name: definition.name,
    entityType: definition.entityType,
    dimensions: rollupDimensionNames(definition),
    rollupRows,
    recordRows,
    builtAt,
    buildMs,
    usable: smallEnough(rollupRows, recordRows, maxRatio),
  };
}
