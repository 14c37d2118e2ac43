import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import express from 'express';

/**
 * The example console (examples/console/, bundled by scripts/build-web.js into dist/web/console/) at /console: a page
 * that loads the bundle's script and style sheets, and the bundle's files under /console/assets/ with a year-long
 * cache (their names carry a content hash). Mounted outside production only. The console itself talks only to the
 * public GraphQL API.
 */
export interface ConsolePageOptions {
  /**
   * In development (the gateway signs with the published development secret, so anyone may mint tokens anyway): a
   * demo user's token to offer on the sign-in form. Undefined otherwise.
   */
  developmentToken?: () => Promise<{ token: string; user: string } | undefined>;
  /** Where the bundle is; default dist/web/console under the package root. */
  bundleDir?: string;
}

interface BundleManifest {
  script: string;
  styles: string[];
}

/** The package root: the nearest directory above this file holding package.json (src/server or dist/src/server). */
function packageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) return from;
  }
}

const escapeHtml = (text: string): string =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );

function page(manifest: BundleManifest, dev: { token: string; user: string } | undefined): string {
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
  const bundleDir = options.bundleDir ?? resolve(packageRoot(__dirname), 'dist/web/console');
  const router = express.Router();
  router.use(['/console', '/console/assets'], (req, res, next) => {
    // Metrics label: the page or its assets, never the concrete asset path.
    res.locals.route = req.baseUrl === '/console/assets' ? '/console/assets' : '/console';
    next();
  });
  router.get(['/console', '/console/'], async (_req, res, next) => {
    try {
      const manifestFile = join(bundleDir, 'manifest.json');
      if (!existsSync(manifestFile)) {
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
      const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as BundleManifest;
      res.setHeader('cache-control', 'no-store');
      res.type('html').send(page(manifest, await options.developmentToken?.()));
    } catch (error) {
      next(error);
    }
  });
  router.use(
    '/console/assets',
    express.static(bundleDir, { immutable: true, maxAge: '365d', index: false, fallthrough: true }),
  );
  return router;
}
