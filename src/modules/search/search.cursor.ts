import { createHmac, timingSafeEqual } from 'node:crypto';
import { ValidationError } from '../../platform/errors/app-error';
import type { SeekPoint } from './search.model';

// Search cursors: a page's last row as an opaque string, bound to the company and the query by an HMAC.

/** An opaque cursor for the row after which a page starts, bound to the company and the query by an HMAC. */
export function writeCursor(point: SeekPoint, companyId: string, rowsKey: string, secret: string): string {
  const body = Buffer.from(JSON.stringify({ v: point.values, i: point.id })).toString('base64url');
  return `${body}.${cursorMac(body, companyId, rowsKey, secret)}`;
}

function cursorMac(body: string, companyId: string, rowsKey: string, secret: string): string {
  return createHmac('sha256', secret)
    .update(`search-cursor|${companyId}|${rowsKey}|${body}`)
    .digest('base64url')
    .slice(0, 22);
}

/** The seek point of a cursor written by `writeCursor` for this company and query; a ValidationError otherwise. */
export function readCursor(
  cursor: string,
  companyId: string,
  rowsKey: string,
  terms: number,
  secret: string,
): SeekPoint {
  const wrong = () =>
    ValidationError.single(
      'input.after',
      'must be a cursor returned by this same search (text, filters and sort)',
    );
  const [body, mac] = cursor.split('.');
  if (!body || !mac || cursor.length > 2000) throw wrong();
  const expected = Buffer.from(cursorMac(body, companyId, rowsKey, secret));
  const given = Buffer.from(mac);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) throw wrong();
  let parsed: { v?: unknown; i?: unknown };
  try {
    parsed = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as typeof parsed;
  } catch {
    throw wrong();
  }
  if (!Array.isArray(parsed.v) || parsed.v.length !== terms || typeof parsed.i !== 'string') throw wrong();
  return { values: parsed.v as SeekPoint['values'], id: parsed.i };
}
