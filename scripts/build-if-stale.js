'use strict';
/**
 * Compiles dist/ (`tsc -p tsconfig.build.json`, incremental) only when it is missing or older than something it is
 * compiled from, so `npm start`, the worker, every CLI and the test suite run the built files without paying for
 * tsc (7-16 s) on each run, and a fresh clone still builds on its first `npm start`. The same for the browser apps'
 * bundles in dist/web/ (scripts/build-web.js, which knows what they are built from), checked on their own.
 *
 *   node scripts/build-if-stale.js           build when stale, else do nothing
 *   node scripts/build-if-stale.js --force   always build (npm run build)
 *
 * dist/.build-stamp's mtime is when the last successful build started: a file saved while tsc ran is newer than it,
 * so the next run builds again. Everything is written to stderr: stdout stays the command's own
 * (`TOKEN=$(npm run -s token -- ...)`). Plain CommonJS, because it runs before anything is compiled.
 */
const { execFileSync } = require('node:child_process');
const { closeSync, existsSync, openSync, readdirSync, statSync, utimesSync } = require('node:fs');
const { join, relative, resolve, sep } = require('node:path');
const { buildWebOrExit, webStaleBecause } = require('./build-web');

const ROOT = resolve(__dirname, '..');
const STAMP = resolve(ROOT, 'dist/.build-stamp');
/** What tsconfig.build.json compiles, and what changes how it compiles. */
const SOURCE_DIRS = ['src', 'bench', 'migrations'];
const SOURCE_FILES = ['ormconfig.ts', 'tsconfig.json', 'tsconfig.build.json', 'package-lock.json'];
/** Browser sources, bundled by esbuild rather than compiled by tsc (tsconfig.build.json excludes them). */
const WEB_SOURCES = resolve(ROOT, 'src/web');

/**
 * The newest input newer than the stamp, or undefined when dist/ is current. Directories count too: removing or
 * renaming a source changes its directory's mtime.
 */
function staleBecause(builtAt) {
  for (const file of SOURCE_FILES) {
    const path = resolve(ROOT, file);
    if (statSync(path).mtimeMs > builtAt) return path;
  }
  for (const dir of SOURCE_DIRS) {
    const top = resolve(ROOT, dir);
    if (statSync(top).mtimeMs > builtAt) return top;
    for (const entry of readdirSync(top, { withFileTypes: true, recursive: true })) {
      if (!entry.isDirectory() && !entry.name.endsWith('.ts')) continue;
      const path = join(entry.parentPath ?? entry.path, entry.name);
      if (path === WEB_SOURCES || path.startsWith(WEB_SOURCES + sep)) continue;
      if (statSync(path).mtimeMs > builtAt) return path;
    }
  }
  return undefined;
}

function build(reason) {
  process.stderr.write(`[build] compiling dist/ (${reason}) ...\n`);
  const startedAt = new Date();
  try {
    execFileSync(
      process.execPath,
      [resolve(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
      {
        cwd: ROOT,
        stdio: ['ignore', process.stderr, process.stderr],
      },
    );
  } catch (error) {
    process.exit(typeof error.status === 'number' ? error.status : 1);
  }
  closeSync(openSync(STAMP, 'w'));
  utimesSync(STAMP, startedAt, startedAt);
}

function main() {
  if (process.argv.includes('--force')) {
    build('npm run build');
    return buildWebOrExit('npm run build');
  }
  if (!existsSync(STAMP)) build('no build yet');
  else {
    const newer = staleBecause(statSync(STAMP).mtimeMs);
    if (newer) build(`${relative(ROOT, newer)} changed`);
  }
  const webReason = webStaleBecause();
  if (webReason) buildWebOrExit(webReason);
}

main();
