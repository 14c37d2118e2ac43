/** The tables whose records have a search document. */
export type SearchTable = 'leads' | 'deals' | 'accounts';

/**
 * The text a record is found by, as a tsvector over `alias` (`''` for the index definition). Queries must spell the
 * same expression as the GIN indexes of migration 1765200000000 for those indexes to serve them; the migration keeps
 * its own literal copy, and `test/integration/search-document.test.ts` checks that the two still agree.
 */
export function searchDocumentSql(table: SearchTable, alias = ''): string {
  const column = (name: string) => {
    const value = `coalesce(${alias ? `${alias}.` : ''}${name}, '')`;
    // An email is one token to the parser; its parts (name, domain) are what people type.
    return name === 'email' ? `translate(${value}, '@.', '  ')` : value;
  };
  const columns =
    table === 'leads' ? ['first_name', 'last_name', 'email', 'company_name', 'description'] : ['name'];
  return `to_tsvector('simple'::regconfig, ${columns.map(column).join(" || ' ' || ")})`;
}
