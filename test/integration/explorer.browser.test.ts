import { randomUUID } from 'node:crypto';
import type { Page } from 'playwright-core';
import { launchBrowser, type TestBrowser } from '../helpers/browser';
import { createTenant, insertLead, type TestTenant } from '../helpers/fixtures';
import { startTestApp, type TestApp } from '../helpers/test-app';

/**
 * The self-hosted GraphiQL in Debian's chromium, whose pages reach loopback only (test/helpers/browser.ts): it loads,
 * runs a query with the prefilled development token, and shows a subscription's events as they arrive.
 */
const START_EXPORT = `mutation($input: StartExportInput!) { startExport(input: $input) { id status } }`;

let gateway: TestApp;
let worker: TestApp | undefined;
let tenant: TestTenant;
let browser: TestBrowser | undefined;
const email = `explorer-${randomUUID()}@test.example.com`;
const queuePrefix = `explorer-${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  gateway = await startTestApp({ DEVELOPMENT_TOKEN_EMAIL: email }, 'gateway', { queuePrefix });
  tenant = await createTenant(gateway.app);
  await gateway.app.dataSource.query('UPDATE users SET email = $1 WHERE id = $2', [email, tenant.admin.id]);
  for (const name of ['Ada', 'Grace', 'Edsger']) await insertLead(gateway.app, tenant, tenant.admin.id, name);
});

afterAll(async () => {
  await browser?.dispose();
  await worker?.stop();
  await gateway.stop();
});

/** Opens GraphiQL with an operation in its editor (?query=, as a shared link would) and runs it. */
async function run(page: Page, query: string, variables?: Record<string, unknown>): Promise<void> {
  const search = new URLSearchParams({
    query,
    ...(variables ? { variables: JSON.stringify(variables) } : {}),
  });
  await page.goto(`${gateway.url}/graphql?${search.toString()}`);
  // The editor shows the operation once GraphiQL and Monaco have started.
  await page.locator('.graphiql-query-editor .view-lines', { hasText: query.split(/\s/)[0]! }).waitFor();
  await page.locator('button.graphiql-execute-button').click();
}

/** The response pane's text without whitespace (Monaco renders lines, wrapped where they are long). */
async function responseText(page: Page): Promise<string> {
  return (await page.locator('.result-window .view-lines').innerText()).replace(/\s+/g, '');
}

async function waitForResponse(page: Page, pattern: RegExp, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let text = '';
  while (Date.now() < deadline) {
    text = await responseText(page).catch(() => '');
    if (pattern.test(text)) return text;
    await page.waitForTimeout(100);
  }
  throw new Error(`the response pane never matched ${pattern}; it shows: ${text}`);
}

test('GraphiQL loads from the gateway alone and runs a query with the prefilled token', async () => {
  browser = await launchBrowser({ viewport: { width: 1440, height: 900 } });
  const { page } = browser;
  await run(
    page,
    '{\n  me {\n    email\n  }\n  leads(pageSize: 5) {\n    total\n    items {\n      lastName\n    }\n  }\n}',
  );

  const text = await waitForResponse(page, /"data"/);
  expect(text).toContain(`"me":{"email":"${email}"}`);
  expect(text).toContain('"total":3');
  for (const name of ['Ada', 'Grace', 'Edsger']) expect(text).toContain(`{"lastName":"${name}"}`);
  // The token came from the page: the headers editor holds it.
  await expect(page.locator('.graphiql-editor-tool').innerText()).resolves.toMatch(/Authorization/);
  // The explorer plugin and the schema (introspected through the same endpoint) are there.
  await page.locator('button[aria-label="Show GraphiQL Explorer"]').click();
  await page.locator('.graphiql-explorer-root', { hasText: 'leads' }).first().waitFor();
  await browser.screenshot('explorer');
  browser.expectLoopbackOnly();
});

test('a subscription over graphql-ws shows each event as it arrives', async () => {
  const { page } = browser!;
  // No worker yet: the job waits QUEUED, so the COMPLETED event can only arrive after GraphiQL subscribed.
  const started = await gateway.gql(
    START_EXPORT,
    { input: { entityType: 'LEAD', format: 'CSV', fields: ['lastName'] } },
    tenant.admin.token,
  );
  const jobId = started.data!.startExport.id as string;
  await run(
    page,
    'subscription Progress($jobId: ID!) { exportProgress(jobId: $jobId) { status rowsExported } }',
    { jobId },
  );
  await waitForResponse(page, /"status":"QUEUED"/);

  worker = await startTestApp({}, 'worker', { queuePrefix });
  const done = await waitForResponse(page, /"status":"COMPLETED"/, 60_000);
  expect(done).toContain('"rowsExported":3');
  browser!.expectLoopbackOnly();
});
