import express from 'express';
import {
  escapeHtml,
  readWebManifest,
  WEB_PAGE_HEADERS,
  webAssets,
  webBundleDir,
  type WebBundleManifest,
} from './web-bundle';

/**
 * The example console (examples/console/, bundled by scripts/build-web.js into dist/web/console/) at /console: a page
 * that loads the bundle's script and style sheets, and the bundle's files under /console/assets/ with a year-long
 * cache (their names carry a content hash). Mounted outside production only. The console itself talks only to the
 * public GraphQL API.
 */
export interface ConsolePageOptions {
  /** Outside production: the development user's token (DEVELOPMENT_TOKEN_EMAIL) to offer on the sign-in form. */
  developmentToken?: () => Promise<{ token: string; user: string } | undefined>;
  /** Where the bundle is; default dist/web/console. */
  bundleDir?: string;
}

function page(manifest: WebBundleManifest, dev: { token: string; user: string } | undefined): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>crm-gateway console</title>
${dev ? `<meta name="crm-dev-token" content="${escapeHtml(dev.token)}" data-user="${escapeHtml(dev.user)}">\n` : ''}${manifest.styles
    .map((style) => `<link rel="stylesheet" href="/console/assets/${escapeHtml(style)}">`)
    .join('\n')}
<script type="module" src="/console/assets/${escapeHtml(manifest.script)}"></script>
</head>
<body>
<header><h1>crm-gateway console</h1><a href="/graphql">GraphQL explorer</a></header>
<main id="app"></main>
</body>
</html>
`;
}

/** GET /console and /console/assets/*. The bundle is read per request for the page, so a rebuild needs no restart. */
export function consoleRouter(options: ConsolePageOptions = {}): express.Router {
  const bundleDir = options.bundleDir ?? webBundleDir('console');
  const router = express.Router();
  router.get(['/console', '/console/'], async (_req, res, next) => {
    res.locals.route = '/console';
    try {
      const manifest = readWebManifest(bundleDir);
      if (!manifest) {
        res.status(503).json({
          errors: [
            {
              message: 'The console is not built: run npm run build',
              extensions: { code: 'SERVICE_UNAVAILABLE' },
            },
          ],
        });
        return;
      }
      res.set(WEB_PAGE_HEADERS).send(page(manifest, await options.developmentToken?.()));
    } catch (error) {
      next(error);
    }
  });
  router.use('/console/assets', ...webAssets('/console/assets', bundleDir));
  return router;
}
