import { createHash } from 'node:crypto';

/** Distinct texts that may be prepared: each stays prepared on every pooled connection that ran it. */
const MAX_PREPARED_TEXTS = 200;
const names = new Map<string, string>();

/**
 * SQL for `dataSource.query` that node-postgres runs as a named prepared statement: parsed and planned once per
 * connection (Postgres then reuses a generic plan when it costs no more), instead of on every call. TypeORM hands the
 * query to node-postgres as it is, so this is node-postgres's query config (`name`, `text`); for TypeORM, its logger
 * and the query metrics it reads as the SQL text (String methods, `toString`). Not a String object: node-postgres
 * copies the config's own properties, and a String has one per character. The first MAX_PREPARED_TEXTS texts are
 * prepared; others run unnamed, as any query does.
 */
export function preparedStatement(sql: string): string {
  let name = names.get(sql);
  if (!name) {
    if (names.size >= MAX_PREPARED_TEXTS) return sql;
    name = `crm_${createHash('sha1').update(sql).digest('hex').slice(0, 24)}`;
    names.set(sql, name);
  }
  // A new object per call: node-postgres writes the call's values onto it.
  const statement = Object.create(String.prototype) as object;
  return Object.assign(statement, {
    name,
    text: sql,
    toString: () => sql,
    valueOf: () => sql,
  }) as unknown as string;
}
