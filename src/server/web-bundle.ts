import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import express from 'express';

/**
 * A browser app the gateway serves itself (scripts/build-web.js bundles it into dist/web/<name>/): where its bundle
 * is, its manifest, its hashed files, and the headers its page is answered with. Nothing it loads comes from a CDN.
 */

/** What scripts/build-web.js writes beside the hashed files: the entry's script, its style sheets, its workers. */
export interface WebBundleManifest {
  script: string;
  styles: string[];
  workers?: Record<string, string>;
}

/** dist/web/<app> from the compiled server (dist/src/server) or from its sources (src/server, under jest). */
export function webBundleDir(app: string): string {
  const candidates = [resolve(__dirname, `../../web/${app}`), resolve(__dirname, `../../dist/web/${app}`)];
  return candidates.find((dir) => existsSync(resolve(dir, 'manifest.json'))) ?? candidates[0]!;
}

/** The bundle's manifest, or undefined when the app is not built. */
export function readWebManifest(bundleDir: string): WebBundleManifest | undefined {
  const path = resolve(bundleDir, 'manifest.json');
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as WebBundleManifest) : undefined;
}

/** The bundle's files under `path`: their names carry a content hash, so they are cached for a year. */
export function webAssets(path: string, bundleDir: string): express.RequestHandler[] {
  return [
    (_req, res, next) => {
      // Metrics label: the assets, never the concrete file.
      res.locals.route = `${path}/:file`;
      next();
    },
    express.static(bundleDir, {
      index: false,
      immutable: true,
      maxAge: '365d',
      setHeaders: (res) => res.setHeader('x-content-type-options', 'nosniff'),
    }),
  ];
}

/**
 * The page allows its own files and its own origin only (HTTP and graphql-ws): nothing it loads can come from another
 * host, whatever a bundled library tries. Monaco sets inline styles and loads its workers as modules.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "worker-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "font-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** An app's HTML page: never stored by a cache (it may carry a development token), same-origin only. */
export const WEB_PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
} as const;

export const escapeHtml = (text: string): string =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
