import type { PoolClient } from 'pg';
import type { DataSource } from 'typeorm';
import {
  DEFAULT_PARTITION,
  dayOf,
  monthOfPartition,
  type ArchiveRecord,
  type PartitionInfo,
} from './audit-partition.model';

/*
 * The queries of partition maintenance: what partitions and archives exist, row counts, and the `audit_archives`
 * records. The DDL that changes partitions is in audit-partition.ddl.ts.
 */

interface ArchiveRow {
  month: Date | string;
  partition_name: string;
  row_count: string;
  bytes: string;
  sha256: string;
  location: string;
  status: 'ARCHIVED' | 'RESTORED';
  archived_at: Date;
  restored_at: Date | null;
}

function toArchiveRecord(row: ArchiveRow): ArchiveRecord {
  return {
    month: monthOfPartition(row.partition_name)!,
    partitionName: row.partition_name,
    rowCount: Number(row.row_count),
    bytes: Number(row.bytes),
    sha256: row.sha256,
    location: row.location,
    status: row.status,
    archivedAt: row.archived_at,
    restoredAt: row.restored_at,
  };
}

export async function listPartitions(client: PoolClient): Promise<PartitionInfo[]> {
  const { rows } = await client.query<{ name: string; attached: boolean; rows: string; bytes: string }>(
    `SELECT c.relname AS name, i.inhrelid IS NOT NULL AS attached,
            greatest(c.reltuples, 0)::bigint AS rows, pg_total_relation_size(c.oid) AS bytes
       FROM pg_class c
       LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND i.inhparent = 'audit_logs'::regclass
      WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace
        AND (c.relname ~ '^audit_logs_y[0-9]{4}m[0-9]{2}$' OR c.relname = $1)
      ORDER BY c.relname`,
    [DEFAULT_PARTITION],
  );
  const defaultRows = await countRows(client, DEFAULT_PARTITION);
  return rows.map((row) => {
    const month = monthOfPartition(row.name);
    return {
      name: row.name,
      month,
      attached: row.attached,
      estimatedRows: month ? Number(row.rows) : defaultRows,
      bytes: Number(row.bytes),
    };
  });
}

/** The months (first instants, UTC) of the rows in the default partition. */
export async function monthsInDefault(client: PoolClient): Promise<Date[]> {
  const { rows } = await client.query<{ month: Date }>(
    `SELECT DISTINCT date_trunc('month', occurred_at, 'UTC') AS month FROM ${DEFAULT_PARTITION}`,
  );
  return rows.map((row) => row.month);
}

export async function countRows(client: PoolClient, table: string): Promise<number> {
  const { rows } = await client.query<{ count: number }>(`SELECT count(*)::int AS count FROM ${table}`);
  return rows[0]?.count ?? 0;
}

export async function defaultPartitionRows(dataSource: DataSource): Promise<number> {
  const [row] = await dataSource.query<Array<{ count: number }>>(
    `SELECT count(*)::int AS count FROM ${DEFAULT_PARTITION}`,
  );
  return row?.count ?? 0;
}

export async function tableExists(client: PoolClient, name: string): Promise<boolean> {
  const { rows } = await client.query<{ found: boolean }>('SELECT to_regclass($1) IS NOT NULL AS found', [
    name,
  ]);
  return rows[0]?.found ?? false;
}

export async function listArchives(dataSource: DataSource): Promise<ArchiveRecord[]> {
  const rows = await dataSource.query<ArchiveRow[]>('SELECT * FROM audit_archives ORDER BY month');
  return rows.map(toArchiveRecord);
}

/** The month's archive record; `forUpdate` locks it until the caller's transaction ends. */
export async function findArchive(
  client: PoolClient,
  month: Date,
  options: { forUpdate?: boolean } = {},
): Promise<ArchiveRecord | undefined> {
  const [row] = (
    await client.query<ArchiveRow>(
      `SELECT * FROM audit_archives WHERE month = $1${options.forUpdate ? ' FOR UPDATE' : ''}`,
      [dayOf(month)],
    )
  ).rows;
  return row && toArchiveRecord(row);
}

/** Partitions an operator restored from their archive. */
export async function restoredPartitionNames(client: PoolClient): Promise<Set<string>> {
  const { rows } = await client.query<{ partition_name: string }>(
    `SELECT partition_name FROM audit_archives WHERE status = 'RESTORED'`,
  );
  return new Set(rows.map((row) => row.partition_name));
}

/** Records (or replaces) the month's archive as ARCHIVED. */
export async function recordArchive(
  client: PoolClient,
  archive: {
    month: Date;
    partitionName: string;
    rows: number;
    bytes: number;
    sha256: string;
    location: string;
  },
): Promise<ArchiveRecord> {
  const recorded = await client.query<ArchiveRow>(
    `INSERT INTO audit_archives (month, partition_name, row_count, bytes, sha256, location, status)
     VALUES ($1, $2, $3, $4, $5, $6, 'ARCHIVED')
     ON CONFLICT (month) DO UPDATE SET row_count = EXCLUDED.row_count, bytes = EXCLUDED.bytes,
       sha256 = EXCLUDED.sha256, location = EXCLUDED.location, status = 'ARCHIVED',
       archived_at = now(), restored_at = NULL
     RETURNING *`,
    [
      dayOf(archive.month),
      archive.partitionName,
      archive.rows,
      archive.bytes,
      archive.sha256,
      archive.location,
    ],
  );
  return toArchiveRecord(recorded.rows[0]!);
}

export async function markRestored(client: PoolClient, month: Date): Promise<ArchiveRecord> {
  const updated = await client.query<ArchiveRow>(
    `UPDATE audit_archives SET status = 'RESTORED', restored_at = now() WHERE month = $1 RETURNING *`,
    [dayOf(month)],
  );
  return toArchiveRecord(updated.rows[0]!);
}
