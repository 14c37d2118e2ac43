/**
 * A WAL position (`pg_lsn`, written `16/B374D848`) as a fixed-width hex string: ordered as text, so it compares with
 * `<` in TypeScript and in a Redis Lua script alike.
 */
export type WalPosition = string;

const LSN = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/** `16/B374D848` -> `00000016B374D848`; throws on anything else (a position comes from Postgres, never a client). */
export function walPosition(lsn: string): WalPosition {
  const match = LSN.exec(lsn);
  if (!match) throw new Error(`not a WAL position: ${lsn}`);
  return `${match[1]!.padStart(8, '0')}${match[2]!.padStart(8, '0')}`.toUpperCase();
}
