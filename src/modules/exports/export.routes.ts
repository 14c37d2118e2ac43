import type { IncomingHttpHeaders } from 'node:http';
import rangeParser from 'range-parser';
import { ValidationError } from '../../platform/errors/app-error';
import type { RouteDefinition, RouteResponse } from '../../platform/http/routes';
import type { ByteRange, FileStorage } from '../../platform/storage/file-storage';
import type { Principal, RecordFilter, RecordSort, RecordType } from '../kernel';
import { CONTENT_TYPE, type ExportFormat } from './export.pipeline';
import { exportFileName } from './export.query';
import type { ExportService } from './export.service';
import type { ExportCompression } from './export.types';

/** `attachment; filename="..."` with an RFC 5987 copy for non-ASCII names. */
function contentDisposition(fileName: string): string {
  const ascii = fileName.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(fileName)}`;
}

/**
 * The `Range` header against a file of `size` bytes (range-parser, overlapping ranges combined): one range to serve,
 * `unsatisfiable` (answered 416 with a Content-Range naming the size), or undefined to serve the whole file (no
 * header, a malformed one, a unit other than bytes, or several disjoint ranges, which we do not serve as multipart).
 */
export function parseRange(
  header: string | undefined,
  size: number,
): ByteRange | 'unsatisfiable' | undefined {
  if (!header) return undefined;
  const ranges = rangeParser(size, header, { combine: true });
  if (ranges === -1) return 'unsatisfiable';
  if (ranges === -2 || ranges.type !== 'bytes' || ranges.length !== 1) return undefined;
  return { start: ranges[0]!.start, end: ranges[0]!.end };
}

/** 416 with the size, so a client can fix its range (RFC 9110 section 15.5.17). */
function unsatisfiable(id: string, size: number, common: Record<string, string>): RouteResponse {
  return {
    status: 416,
    headers: { ...common, 'content-range': `bytes */${size}` },
    json: {
      errors: [
        {
          message: `The requested range is outside the file of export ${id} (${size} bytes)`,
          extensions: { code: 'RANGE_NOT_SATISFIABLE' },
        },
      ],
    },
  };
}

/** The job says COMPLETED but its file is no longer in storage. */
function gone(id: string): RouteResponse {
  return {
    status: 410,
    json: { errors: [{ message: `The file of export ${id} is gone`, extensions: { code: 'GONE' } }] },
  };
}

async function download(
  service: ExportService,
  storage: FileStorage,
  principal: Principal,
  id: string,
  headers: IncomingHttpHeaders,
): Promise<RouteResponse> {
  const { view, key } = await service.downloadable(principal, id);
  const file = await storage.stat(key);
  if (!file) return gone(id);
  const etag = `"${view.sha256}"`;
  const common = {
    etag,
    'accept-ranges': 'bytes',
    'content-type': view.compression === 'GZIP' ? 'application/gzip' : CONTENT_TYPE[view.format],
    'content-disposition': contentDisposition(
      exportFileName(view.fileName, view.format, view.compression === 'GZIP'),
    ),
    'cache-control': 'private, no-store',
  };
  if (headers['if-none-match'] === etag) return { status: 304, json: null, headers: common };
  const ifRange = headers['if-range'];
  const range = ifRange === undefined || ifRange === etag ? parseRange(headers.range, file.size) : undefined;
  if (range === 'unsatisfiable') return unsatisfiable(id, file.size, common);
  const body = await storage.get(key, range);
  if (!body) return gone(id);
  if (!range) return { stream: body, headers: { ...common, 'content-length': String(file.size) } };
  const end = range.end ?? file.size - 1;
  return {
    status: 206,
    stream: body,
    headers: {
      ...common,
      'content-range': `bytes ${range.start}-${end}/${file.size}`,
      'content-length': String(end - range.start + 1),
    },
  };
}

function jsonParam<T>(name: string, value: string | undefined): T | undefined {
  if (value === undefined || value === '') return undefined;
  try {
    return JSON.parse(value) as T;
  } catch {
    throw ValidationError.single(`query.${name}`, 'must be JSON');
  }
}

/** `GET /exports/:id/download` (the owner's finished file, resumable) and `GET /exports/stream` (small, direct). */
export function exportRoutes(service: ExportService, storage: FileStorage): RouteDefinition<Principal>[] {
  return [
    {
      method: 'GET',
      path: '/exports/:id/download',
      handler: ({ caller, params, headers }) => download(service, storage, caller!, params.id!, headers),
    },
    {
      method: 'GET',
      path: '/exports/stream',
      handler: async ({ caller, query, signal }) => {
        const limit = query.limit === undefined ? undefined : Number(query.limit);
        const { body, contentType, fileName, rows, rowLimit, truncated } = await service.streamExport(
          caller!,
          {
            entityType: (query.entityType ?? '') as RecordType,
            format: (query.format ?? 'CSV') as ExportFormat,
            fields: (query.fields ?? '').split(',').filter(Boolean),
            filters: jsonParam<RecordFilter[]>('filters', query.filters),
            sort: jsonParam<RecordSort[]>('sort', query.sort),
            compression: (query.compression ?? 'NONE') as ExportCompression,
            fileName: query.fileName,
            limit,
          },
          signal,
        );
        return {
          stream: body as never,
          headers: {
            'content-type': contentType,
            'content-disposition': contentDisposition(fileName),
            // Known before the first byte (counted in the body's snapshot): a capped answer never passes for a whole one.
            'x-export-rows': String(rows),
            'x-export-row-limit': String(rowLimit),
            'x-export-truncated': String(truncated),
          },
        };
      },
    },
  ];
}
