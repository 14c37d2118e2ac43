'use strict';
/**
 * Bundles the browser apps the gateway serves itself (never from a CDN) with esbuild, into dist/web/<name>/:
 * hashed file names (`main-3FA2C1.js`), so the gateway can serve them with a year-long cache, and a manifest.json
 * naming the entry's script and style sheets, which the page serving the app reads.
 *
 *   node scripts/build-web.js   bundle every app now (scripts/build-if-stale.js does when stale: npm run build,
 *                               npm start, the test suite's global setup)
 *
 * An app is one line in WEB_APPS. Its sources are browser TypeScript (typechecked by tsconfig.web.json, lib DOM),
 * imported packages come from node_modules and end up in the bundle, CSS imports become one style sheet, fonts and
 * images files beside it. dist/web/.build-inputs.json lists what the last bundle was built from: the bundle is
 * stale when one of those files, this script or the lockfile is newer than dist/web/.build-stamp.
 */
const {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} = require('node:fs');
const { basename, relative, resolve } = require('node:path');

const ROOT = resolve(__dirname, '..');
const OUT = resolve(ROOT, 'dist/web');
const STAMP = resolve(OUT, '.build-stamp');
const INPUTS = resolve(OUT, '.build-inputs.json');

/**
 * The browser apps: `name` is the folder under dist/web/, `entry` the module that starts the app, `workers` (optional)
 * modules bundled as web workers of their own, named by label in the manifest.
 */
const WEB_APPS = [
  {
    name: 'explorer',
    entry: 'src/web/explorer/main.tsx',
    // Monaco's language services (src/web/explorer/monaco-workers.ts).
    workers: {
      editor: 'monaco-editor/esm/vs/editor/editor.worker.js',
      json: 'monaco-editor/esm/vs/language/json/json.worker.js',
      graphql: 'monaco-graphql/esm/graphql.worker.js',
    },
  },
  // The example console, served at /console outside production (src/server/console.page.ts).
  { name: 'console', entry: 'examples/console/index.ts' },
];

/** What changes every bundle, besides the apps' own sources. */
const BUILD_FILES = [__filename, resolve(ROOT, 'package-lock.json')];

function bundle(app) {
  const esbuild = require('esbuild');
  const outdir = resolve(OUT, app.name);
  rmSync(outdir, { recursive: true, force: true });
  const result = esbuild.buildSync({
    absWorkingDir: ROOT,
    entryPoints: {
      main: app.entry,
      ...Object.fromEntries(
        Object.entries(app.workers ?? {}).map(([label, path]) => [`${label}.worker`, path]),
      ),
    },
    outdir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022'],
    minify: true,
    jsx: 'automatic',
    entryNames: '[name]-[hash]',
    assetNames: '[name]-[hash]',
    chunkNames: '[name]-[hash]',
    loader: { '.woff': 'file', '.woff2': 'file', '.ttf': 'file', '.svg': 'file', '.png': 'file' },
    define: { 'process.env.NODE_ENV': '"production"' },
    // Licences of the bundled packages go to a file beside the bundle rather than into what the browser loads.
    legalComments: 'external',
    metafile: true,
    logLevel: 'warning',
  });
  // Each entry's output is named `<its key>-<hash>.js`.
  const outputs = Object.entries(result.metafile.outputs).filter(([, output]) => output.entryPoint);
  const outputOf = (key) => {
    const found = outputs.find(([path]) => basename(path).startsWith(`${key}-`) && path.endsWith('.js'));
    if (!found) throw new Error(`${app.name}: esbuild wrote no script for ${key}`);
    return found;
  };
  const [script, output] = outputOf('main');
  const manifest = {
    script: basename(script),
    styles: output.cssBundle ? [basename(output.cssBundle)] : [],
    workers: Object.fromEntries(
      Object.keys(app.workers ?? {}).map((label) => [label, basename(outputOf(`${label}.worker`)[0])]),
    ),
  };
  writeFileSync(resolve(outdir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  return Object.keys(result.metafile.inputs).filter((input) => !input.includes('node_modules/'));
}

/** Bundles every app; records the inputs and the stamp only when all succeeded. Exits the process on failure. */
function buildWebOrExit(reason) {
  const startedAt = new Date();
  mkdirSync(OUT, { recursive: true });
  const inputs = new Set();
  try {
    for (const app of WEB_APPS) {
      process.stderr.write(`[build] bundling dist/web/${app.name}/ from ${app.entry} (${reason}) ...\n`);
      for (const input of bundle(app)) inputs.add(input);
    }
  } catch (error) {
    // esbuild has printed its errors already.
    if (!error.errors) process.stderr.write(`${error.stack ?? error}\n`);
    process.exit(1);
  }
  writeFileSync(INPUTS, JSON.stringify([...inputs].sort(), null, 2) + '\n');
  closeSync(openSync(STAMP, 'w'));
  utimesSync(STAMP, startedAt, startedAt);
}

/** Why the bundles must be rebuilt, or undefined when dist/web/ is current. */
function webStaleBecause() {
  if (!existsSync(STAMP) || !existsSync(INPUTS)) return 'no web bundle yet';
  const builtAt = statSync(STAMP).mtimeMs;
  const inputs = JSON.parse(readFileSync(INPUTS, 'utf8')).map((input) => resolve(ROOT, input));
  for (const path of [...BUILD_FILES, ...inputs]) {
    // A source that is gone was imported by one that changed; a removed app changes this script.
    if (existsSync(path) && statSync(path).mtimeMs > builtAt) return `${relative(ROOT, path)} changed`;
  }
  return undefined;
}

module.exports = { WEB_APPS, buildWebOrExit, webStaleBecause };

if (require.main === module) buildWebOrExit('node scripts/build-web.js');
