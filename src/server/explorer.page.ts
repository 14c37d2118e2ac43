import { resolve } from 'node:path';
import type express from 'express';
import type { Logger } from '../platform/logging/logger';
import {
  readWebManifest,
  WEB_PAGE_HEADERS,
  webAssets,
  webBundleDir,
  type WebBundleManifest,
} from './web-bundle';

/** What GET /graphql serves a browser (GRAPHQL_EXPLORER). */
export type ExplorerKind = 'graphiql' | 'sandbox' | 'off';

export interface GraphiQLOptions {
  /** The GraphQL endpoint the page talks to (HTTP and graphql-ws), and where it is served. Default `/graphql`. */
  endpoint?: string;
  /** Outside production: a fresh token for the demo user, prefilled in the headers editor; absent = none. */
  developmentToken?: () => Promise<{ token: string } | undefined>;
  /** The bundle scripts/build-web.js wrote (manifest.json and hashed files). Default: dist/web/explorer. */
  bundleDir?: string;
  logger: Logger;
}

/** Where the page's hashed files are served; their names change with their content, so they are cached for a year. */
export const EXPLORER_ASSETS_PATH = '/explorer';

interface BundleManifest extends WebBundleManifest {
  workers: Record<'editor' | 'json' | 'graphql', string>;
}

function readManifest(bundleDir: string): BundleManifest {
  const manifest = readWebManifest(bundleDir);
  if (!manifest)
    throw new Error(
      `GRAPHQL_EXPLORER=graphiql needs the explorer's bundle, but ${resolve(bundleDir, 'manifest.json')} is missing: run npm run build (or set GRAPHQL_EXPLORER=sandbox|off)`,
    );
  return manifest as BundleManifest;
}

/** JSON inside a <script> element: no `</script>` or `<!--` can end it early. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

function renderPage(manifest: BundleManifest, settings: Record<string, unknown>): string {
  const asset = (file: string) => `${EXPLORER_ASSETS_PATH}/${file}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>crm-gateway GraphiQL</title>
<link rel="icon" href="data:,">
${manifest.styles.map((file) => `<link rel="stylesheet" href="${asset(file)}">`).join('\n')}
<script id="explorer-settings" type="application/json">${scriptJson(settings)}</script>
<script type="module" src="${asset(manifest.script)}"></script>
</head>
<body>
<div id="explorer"></div>
</body>
</html>
`;
}

/**
 * Self-hosted GraphiQL (src/web/explorer, bundled into dist/web/explorer): its hashed files under /explorer/, and the
 * page itself on GET <endpoint> for a client that prefers HTML (as Apollo decides for its landing page); every other
 * request to the endpoint goes on to GraphQL. Nothing the page needs comes from another host.
 */
export function mountGraphiQL(app: express.Express, options: GraphiQLOptions): void {
  const endpoint = options.endpoint ?? '/graphql';
  const bundleDir = options.bundleDir ?? webBundleDir('explorer');
  const manifest = readManifest(bundleDir);
  const workers = Object.fromEntries(
    Object.entries(manifest.workers).map(([label, file]) => [label, `${EXPLORER_ASSETS_PATH}/${file}`]),
  );

  app.use(EXPLORER_ASSETS_PATH, ...webAssets(EXPLORER_ASSETS_PATH, bundleDir));

  app.get(endpoint, async (req, res, next) => {
    // As Apollo decides for its landing page: a client preferring HTML gets the page (whose ?query= prefills the
    // editor); a GraphQL client's GET goes on to GraphQL.
    const preferred = req.accepts(['application/json', 'application/graphql-response+json', 'text/html']);
    if (preferred !== 'text/html') return next();
    let token: string | undefined;
    try {
      token = (await options.developmentToken?.())?.token;
    } catch (error) {
      options.logger.warn({ err: error }, 'explorer: no development token (its user could not be read)');
    }
    res.status(200).set(WEB_PAGE_HEADERS).send(renderPage(manifest, { endpoint, token, workers }));
  });
}
