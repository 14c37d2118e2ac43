import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/** Debian's chromium (`.ci/run` and the global setup install it); the tests fail, never skip, without it. */
export const CHROMIUM = '/usr/bin/chromium';
/** Where screenshots go: the README shows them. */
export const SCREENSHOT_DIR = resolve(__dirname, '../../docs/screenshots');

/** A request the page attempted to a host other than loopback: blocked, and the test fails for it. */
export interface BlockedRequest {
  url: string;
  kind: 'http' | 'websocket';
}

export interface TestBrowser {
  page: Page;
  context: BrowserContext;
  /** Every non-loopback request the pages attempted so far (each was blocked). */
  readonly blocked: readonly BlockedRequest[];
  /** Throws, naming them, when a page attempted anything beyond loopback. */
  expectLoopbackOnly: () => void;
  /** Writes <dir>/<name>.png of the page (the viewport, or the full page); dir defaults to docs/screenshots. */
  screenshot: (name: string, options?: { fullPage?: boolean; dir?: string }) => Promise<string>;
  /** Closes the browser and removes its profile; throws as expectLoopbackOnly does. Idempotent. */
  dispose: () => Promise<void>;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** http(s) and ws(s) to loopback pass; data:, blob: and about: never leave the page. */
function leavesLoopback(url: URL): boolean {
  if (['data:', 'blob:', 'about:', 'chrome-extension:'].includes(url.protocol)) return false;
  return !LOOPBACK_HOSTS.has(url.hostname);
}

/**
 * Headless Chromium with a fresh profile, whose pages can reach loopback only: every other request (HTTP, fetch,
 * WebSocket) is blocked and recorded, so a test can prove its page works without the internet. Besides the page's own
 * requests, the flags turn off what Chromium fetches by itself (updates, sync, field trials), and the host resolver
 * resolves no name but localhost.
 */
export async function launchBrowser(
  options: { viewport?: { width: number; height: number } } = {},
): Promise<TestBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'crm-chromium-'));
  let context: BrowserContext;
  try {
    // launchPersistentContext takes the --user-data-dir (launch() refuses the flag): a fresh one per browser.
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      // Playwright's own defaults add flags (e.g. its automation switches); ours are listed explicitly.
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1',
      ],
      chromiumSandbox: false,
      serviceWorkers: 'block',
      viewport: options.viewport ?? { width: 1280, height: 800 },
    });
  } catch (error) {
    rmSync(profile, { recursive: true, force: true });
    throw error;
  }
  const blocked: BlockedRequest[] = [];
  await context.route(
    (url) => leavesLoopback(url),
    async (route) => {
      blocked.push({ url: route.request().url(), kind: 'http' });
      await route.abort('blockedbyclient');
    },
  );
  await context.routeWebSocket(
    (url) => leavesLoopback(url),
    async (socket) => {
      blocked.push({ url: socket.url(), kind: 'websocket' });
      await socket.close({ code: 1008, reason: 'blocked: not loopback' });
    },
  );
  const page = context.pages()[0] ?? (await context.newPage());

  const expectLoopbackOnly = () => {
    if (blocked.length === 0) return;
    throw new Error(
      `the page tried to reach beyond loopback (blocked):\n${blocked.map((b) => `  ${b.kind} ${b.url}`).join('\n')}`,
    );
  };
  let disposed: Promise<void> | undefined;
  return {
    page,
    context,
    blocked,
    expectLoopbackOnly,
    async screenshot(name, { fullPage = false, dir = SCREENSHOT_DIR } = {}) {
      mkdirSync(dir, { recursive: true });
      const path = join(dir, `${name}.png`);
      await page.screenshot({ path, fullPage, animations: 'disabled' });
      return path;
    },
    async dispose() {
      disposed ??= context.close().finally(() => rmSync(profile, { recursive: true, force: true }));
      await disposed;
      expectLoopbackOnly();
    },
  };
}
