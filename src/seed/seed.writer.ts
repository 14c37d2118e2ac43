export interface Queryable {
  query(sql: string, params?: unknown[]): Promise<unknown>;
}

/** Column name -> Postgres type of a table being written, in the order the INSERT lists them. */
export type Columns = Readonly<Record<string, string>>;

/** A row of a table with these columns: every column named (a missing one is a compile error, not a shifted value). */
export type Row<C extends Columns> = { readonly [K in keyof C]: unknown };

export type SeedProgress = (table: string, done: number, total: number) => void;

/** Rows by column name, written in column-major chunks of `chunkSize` (one INSERT ... unnest each). */
export class ChunkWriter<C extends Columns> {
  private buffers: unknown[][];
  private readonly names: Array<keyof C & string>;
  private rows = 0;
  written = 0;

  constructor(
    private readonly db: Queryable,
    private readonly table: string,
    private readonly columns: C,
    private readonly chunkSize: number,
    private readonly total: number,
    private readonly onProgress?: SeedProgress,
  ) {
    this.names = Object.keys(columns);
    this.buffers = this.names.map(() => []);
  }

  async push(row: Row<C>): Promise<void> {
    this.names.forEach((name, i) => this.buffers[i]!.push(row[name]));
    if (++this.rows >= this.chunkSize) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.rows === 0) return;
    const entries = Object.entries(this.columns);
    const names = entries.map(([name]) => name).join(', ');
    const arrays = entries.map(([, type], i) => `$${i + 1}::${type}[]`).join(', ');
    await this.db.query(`INSERT INTO ${this.table} (${names}) SELECT * FROM unnest(${arrays})`, this.buffers);
    this.written += this.rows;
    this.rows = 0;
    this.buffers = this.names.map(() => []);
    this.onProgress?.(this.table, this.written, this.total);
  }
}

/** All of a table's rows in one INSERT (none when there are no rows). */
export async function writeAll<C extends Columns>(
  db: Queryable,
  table: string,
  columns: C,
  rows: ReadonlyArray<Row<C>>,
): Promise<void> {
  const writer = new ChunkWriter(db, table, columns, Infinity, rows.length);
  for (const row of rows) await writer.push(row);
  await writer.flush();
}
