import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchBrowser, type TestBrowser } from '../helpers/browser';

/**
 * The browser harness itself (test/helpers/browser.ts): a page reaches loopback, anything else is blocked and
 * recorded, and the test using it fails for it.
 */
const PAGE = `<!doctype html><html><body>
<p id="local">pending</p>
<img src="https://cdn.example.net/logo.png">
<script>
  fetch('/hello').then((r) => r.text()).then((text) => { document.getElementById('local').textContent = text; });
  fetch('http://example.com/beacon').catch(() => {});
  new WebSocket('wss://socket.example.org/live');
</script>
</body></html>`;

let server: Server;
let origin: string;
const browsers: TestBrowser[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/hello') return void res.end('hello from loopback');
    if (req.url === '/quiet') return void res.end('<!doctype html><p id="quiet">only loopback</p>');
    res.setHeader('content-type', 'text/html');
    res.end(PAGE);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  // Each test disposes its own; this only closes one a failed assertion left open.
  await Promise.allSettled(browsers.map((browser) => browser.dispose()));
  await new Promise((resolve) => server.close(resolve));
});

async function browser(): Promise<TestBrowser> {
  const launched = await launchBrowser();
  browsers.push(launched);
  return launched;
}

test('a page reaches loopback; its requests to other hosts are blocked, recorded, and fail the test', async () => {
  const { page, blocked, expectLoopbackOnly, dispose } = await browser();
  await page.goto(`${origin}/`);
  await page.locator('#local', { hasText: 'hello from loopback' }).waitFor();
  // The WebSocket and the beacon may still be on their way when the text is in.
  for (const deadline = Date.now() + 10_000; blocked.length < 3 && Date.now() < deadline;)
    await new Promise((resolve) => setTimeout(resolve, 50));

  expect(blocked.map(({ kind, url }) => `${kind} ${url}`).sort()).toEqual([
    'http http://example.com/beacon',
    'http https://cdn.example.net/logo.png',
    'websocket wss://socket.example.org/live',
  ]);
  expect(expectLoopbackOnly).toThrow(/beyond loopback[\s\S]*cdn\.example\.net/);
  await expect(dispose()).rejects.toThrow(/beyond loopback/);
});

test('a page that stays on loopback passes, and its screenshot is a PNG', async () => {
  const { page, blocked, screenshot, dispose } = await browser();
  await page.goto(`${origin}/quiet`);
  await page.locator('#quiet').waitFor();
  const dir = mkdtempSync(join(tmpdir(), 'crm-screenshots-'));
  try {
    const path = await screenshot('quiet', { dir });
    expect(readFileSync(path).subarray(0, 8)).toEqual(
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  expect(blocked).toEqual([]);
  await expect(dispose()).resolves.toBeUndefined();
});
