import { MAP_ENTRY_BYTES, stringBytes, typedBytes } from './heap-sizes';

/**
 * Which rows hold a lexeme starting with a prefix: the in-memory twin of the GIN index's prefix match. The lexemes are
 * Postgres's own (`tsvector_to_array` of the same document the GIN index holds), so a prefix matches here exactly
 * the rows `document @@ 'prefix:*'` matches there.
 *
 * Built once as a sorted lexeme list (UTF-8 in one arena) with each lexeme's rows (CSR); rows written since then are
 * kept apart with their current lexemes, and their built postings are ignored.
 */
export class TextPostings {
  private lexemes: string[] = [];
  private lexemeIds = new Map<string, number>();
  private pairLexemes = new Uint32Array(1 << 16);
  private pairRows = new Uint32Array(1 << 16);
  private pairs = 0;

  private arena = Buffer.alloc(0);
  private lexemeStarts = new Uint32Array(1);
  private postingStarts = new Uint32Array(1);
  private postings = new Uint32Array(0);
  private built = false;

  /** Rows whose lexemes changed after the build (deleted rows: none), by row. */
  private readonly overlay = new Map<number, string[]>();
  /** Estimated bytes of the overlay, kept as it changes. */
  private overlayBytes = 0;

  /** While building: a row's lexemes (space-separated, as `array_to_string` gives them). */
  add(row: number, lexemes: string | null): void {
    if (this.built) {
      this.setOverlay(row, lexemes ? lexemes.split(' ') : []);
      return;
    }
    if (!lexemes) return;
    for (const lexeme of lexemes.split(' ')) {
      let id = this.lexemeIds.get(lexeme);
      if (id === undefined) {
        id = this.lexemes.length;
        this.lexemes.push(lexeme);
        this.lexemeIds.set(lexeme, id);
      }
      if (this.pairs === this.pairRows.length) {
        const rows = new Uint32Array(this.pairs * 2);
        rows.set(this.pairRows);
        this.pairRows = rows;
        const ids = new Uint32Array(this.pairs * 2);
        ids.set(this.pairLexemes);
        this.pairLexemes = ids;
      }
      this.pairLexemes[this.pairs] = id;
      this.pairRows[this.pairs++] = row;
    }
  }

  /** A deleted row holds no lexeme. */
  remove(row: number): void {
    this.setOverlay(row, []);
  }

  private setOverlay(row: number, lexemes: string[]): void {
    // The map's entry, the array (object and elements) and its strings.
    const size = (list: string[]) =>
      MAP_ENTRY_BYTES + 48 + list.reduce((sum, lexeme) => sum + 8 + stringBytes(lexeme), 0);
    const old = this.overlay.get(row);
    if (old) this.overlayBytes -= size(old);
    this.overlay.set(row, lexemes);
    this.overlayBytes += size(lexemes);
  }

  get changedRows(): number {
    return this.overlay.size;
  }

  /** Ends the build: lexemes sorted (by UTF-16 unit, so a prefix's lexemes are contiguous), postings grouped. */
  finish(): void {
    const order = this.lexemes
      .map((_, id) => id)
      .sort((a, b) => (this.lexemes[a]! < this.lexemes[b]! ? -1 : 1));
    const rank = new Uint32Array(this.lexemes.length);
    order.forEach((id, position) => (rank[id] = position));
    const counts = new Uint32Array(order.length + 1);
    for (let i = 0; i < this.pairs; i++) counts[rank[this.pairLexemes[i]!]! + 1]!++;
    for (let i = 1; i < counts.length; i++) counts[i]! += counts[i - 1]!;
    this.postingStarts = counts.slice();
    this.postings = new Uint32Array(this.pairs);
    const next = counts;
    for (let i = 0; i < this.pairs; i++)
      this.postings[next[rank[this.pairLexemes[i]!]!]!++] = this.pairRows[i]!;
    const encoded = order.map((id) => Buffer.from(this.lexemes[id]!, 'utf8'));
    this.lexemeStarts = new Uint32Array(order.length + 1);
    let size = 0;
    encoded.forEach((bytes, i) => {
      this.lexemeStarts[i] = size;
      size += bytes.length;
    });
    this.lexemeStarts[order.length] = size;
    this.arena = Buffer.concat(encoded, size);
    this.lexemes = [];
    this.lexemeIds = new Map();
    this.pairLexemes = new Uint32Array(0);
    this.pairRows = new Uint32Array(0);
    this.pairs = 0;
    this.built = true;
  }

  /** Bytes held once built (while building, the lexeme list and pairs are not counted). */
  bytes(): number {
    return (
      typedBytes(this.arena) +
      typedBytes(this.lexemeStarts) +
      typedBytes(this.postingStarts) +
      typedBytes(this.postings) +
      this.overlayBytes
    );
  }

  private lexemeAt(index: number): string {
    return this.arena.toString('utf8', this.lexemeStarts[index], this.lexemeStarts[index + 1]);
  }

  /** Rows holding a lexeme that starts with `prefix`, as a bitset of `wordCount` words. */
  match(prefix: string, wordCount: number): Uint32Array {
    const words = new Uint32Array(wordCount);
    const total = this.lexemeStarts.length - 1;
    let lo = 0;
    let hi = total;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.lexemeAt(mid) < prefix) lo = mid + 1;
      else hi = mid;
    }
    const changed = this.overlay;
    for (let lexeme = lo; lexeme < total && this.lexemeAt(lexeme).startsWith(prefix); lexeme++) {
      for (let i = this.postingStarts[lexeme]!; i < this.postingStarts[lexeme + 1]!; i++) {
        const row = this.postings[i]!;
        if (changed.size === 0 || !changed.has(row)) words[row >>> 5]! |= 1 << (row & 31);
      }
    }
    for (const [row, lexemes] of changed)
      if (lexemes.some((lexeme) => lexeme.startsWith(prefix))) words[row >>> 5]! |= 1 << (row & 31);
    return words;
  }
}
