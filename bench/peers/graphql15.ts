/**
 * PostGraphile 4 needs graphql 15 while the project runs 16, so npm installs more than one copy, and some of
 * PostGraphile's own packages (graphile-build-pg, graphql-parse-resolve-info) land beside the project's 16. graphql
 * types are checked with `instanceof`: every package in one process must share one copy. Imported first by the
 * PostGraphile peer (and only there), this sends every `require('graphql...')` to PostGraphile's copy.
 */
import Module from 'node:module';
import { dirname } from 'node:path';

const postgraphileGraphql = dirname(
  require.resolve('graphql/package.json', { paths: [dirname(require.resolve('postgraphile/package.json'))] }),
);
type Resolve = (request: string, ...rest: unknown[]) => string;
const internals = Module as unknown as { _resolveFilename: Resolve };
const resolveFilename = internals._resolveFilename;
internals._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]) {
  const redirected =
    request === 'graphql' || request.startsWith('graphql/')
      ? postgraphileGraphql + request.slice('graphql'.length)
      : request;
  return resolveFilename.call(this, redirected, ...rest);
};
