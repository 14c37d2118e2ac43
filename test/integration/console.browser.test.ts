import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Locator, Page } from 'playwright-core';
import manifest from '../../examples/generated/persisted-query-manifest.json';
import { launchBrowser, type TestBrowser } from '../helpers/browser';
import { createTenant, type TestTenant } from '../helpers/fixtures';
import { buildSharingOrg, type SharingOrg } from '../helpers/sharing-org';
import { startTestApp, type TestApp } from '../helpers/test-app';

/**
 * The example console (examples/console, served at /console) in Debian's headless Chromium against a real gateway
 * and worker (Postgres, Redis, BullMQ): search with facets, an export followed over graphql-ws to its download, the
 * pipeline chart, a record's similar records, and a user who may not read a record never seeing it. The browser
 * reaches loopback only (test/helpers/browser.ts blocks and records anything else).
 */

/** The persisted-operation manifest `npm run codegen` writes beside the console's typed client. */
const MANIFEST = resolve(__dirname, '../../examples/generated/persisted-query-manifest.json');

const STATUSES = ['NEW', 'CONTACTED', 'QUALIFIED', 'UNQUALIFIED'] as const;
const SOURCES = ['WEB', 'REFERRAL', 'EVENT'] as const;
const COMPANIES = ['Globex', 'Initech', 'Umbrella', 'Hooli'] as const;
/** Leads per status: 7 NEW, 5 CONTACTED, 4 QUALIFIED, 2 UNQUALIFIED. */
const PER_STATUS: Record<(typeof STATUSES)[number], number> = {
  NEW: 7,
  CONTACTED: 5,
  QUALIFIED: 4,
  UNQUALIFIED: 2,
};
const DEALS = [
  { stage: 'PROSPECTING', closeDate: '2026-01-15', amount: 1000 },
  { stage: 'PROPOSAL', closeDate: '2026-01-20', amount: 2500 },
  { stage: 'NEGOTIATION', closeDate: '2026-02-03', amount: 4000 },
  { stage: 'CLOSED_WON', closeDate: '2026-03-09', amount: 6000 },
] as const;
const BODIES = new Set(manifest.operations.map((operation) => operation.body));

const CREATE_LEAD = `mutation($input: CreateLeadInput!) { createLead(input: $input) { id } }`;
const CREATE_DEAL = `mutation($input: CreateDealInput!) { createDeal(input: $input) { id } }`;
const UPDATE_LEAD = `mutation($id: ID!, $input: UpdateLeadInput!) { updateLead(id: $id, input: $input) { id } }`;
const SHARE = `mutation($input: RecordShareInput!) { shareRecord(input: $input) { id } }`;
const SIMILAR_IDS = `query($text: String!) {
  similar(input: { text: $text, k: 50, filters: { entityTypes: [LEAD] } }) { record { ... on Lead { id } } }
}`;

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** What the page sent to and got from /graphql (bodies), to check the console sends manifest bodies only. */
function recordGraphQL(page: Page): { sent: string[]; received: string[] } {
  const traffic = { sent: [] as string[], received: [] as string[] };
  page.on('request', (request) => {
    if (request.url().endsWith('/graphql') && request.method() === 'POST') {
      traffic.sent.push((JSON.parse(request.postData() ?? '{}') as { query: string }).query);
    }
  });
  page.on('response', (response) => {
    if (response.url().endsWith('/graphql') && response.request().method() === 'POST')
      void response.text().then((text) => traffic.received.push(text));
  });
  page.on('websocket', (socket) => {
    socket.on('framesent', ({ payload }) => {
      const message = JSON.parse(String(payload)) as { type: string; payload?: { query?: string } };
      if (message.type === 'subscribe' && message.payload?.query) traffic.sent.push(message.payload.query);
    });
    socket.on('framereceived', ({ payload }) => traffic.received.push(String(payload)));
  });
  return traffic;
}

async function signIn(page: Page, url: string, token: string): Promise<void> {
  await page.goto(`${url}/console`);
  await page.getByTestId('token').fill(token);
  await page.getByTestId('sign-in').click();
  await page.getByTestId('signed-in').waitFor();
  await page.getByTestId('result-rows').waitFor();
}

async function total(page: Page): Promise<number> {
  return Number((await page.getByTestId('result-total').textContent())?.replace(/,/g, ''));
}

/**
 * Polls until `read` returns `expected` (or fails with the last value after 10 s). Read through locators, not
 * page.waitForFunction: the page's Content-Security-Policy forbids the eval that one needs.
 */
async function waitForValue<T>(read: () => Promise<T>, expected: T): Promise<void> {
  const deadline = Date.now() + 10_000;
  let value = await read();
  while (value !== expected) {
    if (Date.now() > deadline)
      throw new Error(`expected ${String(expected)}, still ${String(value)} after 10 s`);
    await new Promise((resolveWait) => setTimeout(resolveWait, 50));
    value = await read();
  }
}

async function waitForTotal(page: Page, expected: number): Promise<void> {
  await waitForValue(() => total(page), expected);
}

/** The part of a DOM element the assertions read (the node tsconfig has no DOM types). */
interface PageElement {
  getAttribute(name: string): string | null;
  parentElement: PageElement | null;
  querySelector(selector: string): PageElement | null;
}

/** One attribute of every element the locator matches, in page order. */
function attributes(locator: Locator, name: string): Promise<Array<string | null>> {
  return locator.evaluateAll(
    (elements: PageElement[], attribute: string) =>
      elements.map((element) => element.getAttribute(attribute)),
    name,
  );
}

async function rowIds(page: Page): Promise<Array<string | null>> {
  return attributes(page.locator('[data-testid="result-rows"] tr'), 'data-id');
}

describe('the example console in a real browser (/console)', () => {
  let t: TestApp;
  let safelisted: TestApp;
  let worker: TestApp;
  let tenant: TestTenant;
  let browser: TestBrowser;
  let page: Page;
  let traffic: ReturnType<typeof recordGraphQL>;
  const leadsByStatus = new Map<string, string[]>();

  beforeAll(async () => {
    const queuePrefix = `test-${randomUUID().slice(0, 8)}`;
    t = await startTestApp({}, 'gateway', { queuePrefix });
    // The console's gateway runs the safelist made from the same operations as its typed client (npm run codegen):
    // the console works with nothing but its manifest's documents. The test writes its data through `t`.
    safelisted = await startTestApp({ GRAPHQL_OPERATION_MANIFEST: MANIFEST }, 'gateway', { queuePrefix });
    worker = await startTestApp({}, 'worker', { queuePrefix });
    tenant = await createTenant(t.app, { name: 'Acme Demo' });
    let n = 0;
    for (const status of STATUSES) {
      const ids: string[] = [];
      for (let i = 0; i < PER_STATUS[status]; i++, n++) {
        const created = await t.gql<{ createLead: { id: string } }>(
          CREATE_LEAD,
          {
            input: {
              firstName: ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara'][n % 5],
              lastName: `Consolesurname${n}`,
              companyName: COMPANIES[n % COMPANIES.length],
              source: SOURCES[n % SOURCES.length],
              status,
              score: (n * 13) % 100,
            },
          },
          tenant.admin.token,
        );
        ids.push(created.data!.createLead.id);
      }
      leadsByStatus.set(status, ids);
    }
    for (const [index, deal] of DEALS.entries()) {
      await t.gql(CREATE_DEAL, { input: { name: `Console deal ${index}`, ...deal } }, tenant.admin.token);
    }
    // Every created lead is embedded by the worker (the vectors queue): wait until similar() finds them all.
    await until('the leads to be embedded', async () => {
      const answer = await t.gql<{ similar: unknown[] }>(
        SIMILAR_IDS,
        { text: 'Globex Initech' },
        tenant.admin.token,
      );
      return (answer.data?.similar.length ?? 0) >= 18 ? true : undefined;
    });
    browser = await launchBrowser({ viewport: { width: 1360, height: 900 } });
    page = browser.page;
    traffic = recordGraphQL(page);
    await signIn(page, safelisted.url, tenant.admin.token);
  });
  afterAll(async () => {
    await browser?.dispose();
    await worker?.stop();
    await safelisted?.stop();
    await t?.stop();
  });

  it('searches, and ticking a facet narrows the total to the count the facet showed', async () => {
    expect(await total(page)).toBe(18);
    const box = page.getByTestId('facet-status-QUALIFIED');
    const shown = Number(
      await page
        .locator('[data-facet="status"] label', { has: box })
        .locator('.count')
        .getAttribute('data-count'),
    );
    expect(shown).toBe(PER_STATUS.QUALIFIED);
    await box.check();
    await waitForTotal(page, shown);
    expect((await rowIds(page)).sort()).toEqual([...leadsByStatus.get('QUALIFIED')!].sort());
    // Disjunctive: the other statuses keep their counts, so a second tick adds them.
    await page.getByTestId('facet-status-UNQUALIFIED').check();
    await waitForTotal(page, PER_STATUS.QUALIFIED + PER_STATUS.UNQUALIFIED);
    await page.getByTestId('facet-status-UNQUALIFIED').uncheck();
    await waitForTotal(page, PER_STATUS.QUALIFIED);
  });

  it('finds by text, and pages', async () => {
    await page.getByTestId('facet-status-QUALIFIED').uncheck();
    await waitForTotal(page, 18);
    const firstPage = await rowIds(page);
    expect(firstPage).toHaveLength(10);
    await page.getByTestId('page-next').click();
    await waitForValue(() => page.locator('[data-testid="result-rows"] tr').count(), 8);
    const secondPage = await rowIds(page);
    expect(new Set([...firstPage, ...secondPage]).size).toBe(18);
    await page.getByTestId('search-text').fill('consolesurname11');
    await waitForTotal(page, 1);
    await page.getByTestId('search-text').fill('');
    await waitForTotal(page, 18);
  });

  it('exports the current search: the bar reaches 100% over exportProgress and the download holds its rows', async () => {
    await page.getByTestId('facet-status-QUALIFIED').check();
    await waitForTotal(page, PER_STATUS.QUALIFIED);
    await page.getByTestId('export-start').click();
    await page.locator('[data-testid="export-bar"][data-progress="100"]').waitFor();
    await page.getByText(/^completed · 100%/).waitFor();
    expect(traffic.received.some((frame) => frame.includes('"exportProgress"'))).toBe(true);

    const link = page.getByTestId('export-download');
    expect(await link.getAttribute('href')).toMatch(/^\/exports\/[0-9a-f-]{36}\/download$/);
    const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
    const csv = readFileSync(await download.path(), 'utf8')
      .trim()
      .split(/\r?\n/);
    expect(download.suggestedFilename()).toBe('console-leads.csv');
    expect(csv[0]).toBe('id,firstName,lastName,companyName,status,source,score,ownerName');
    const ids = csv.slice(1).map((line) => line.split(',')[0]);
    expect(ids.sort()).toEqual([...leadsByStatus.get('QUALIFIED')!].sort());
    expect(csv.slice(1).every((line) => line.includes(',QUALIFIED,'))).toBe(true);
  });

  it('draws the pipeline report: one bar segment per stage and close month', async () => {
    const chart = page.getByTestId('pipeline-chart');
    await chart.waitFor();
    const segments = await chart
      .locator('rect')
      .evaluateAll((rects: PageElement[]) =>
        rects.map((rect) => `${rect.getAttribute('data-month')} ${rect.getAttribute('data-stage')}`),
      );
    expect(segments.sort()).toEqual(
      DEALS.map((deal) => `${deal.closeDate.slice(0, 7)} ${deal.stage}`).sort(),
    );
  });

  it('shows a selected record and the records most like it', async () => {
    const [first] = leadsByStatus.get('QUALIFIED')!;
    await page.locator(`[data-testid="result-rows"] tr[data-id="${first}"]`).click();
    await page.getByTestId('similar-list').waitFor();
    const similar = await attributes(page.locator('[data-testid="similar-list"] li'), 'data-id');
    expect(similar.length).toBeGreaterThan(0);
    expect(similar).not.toContain(first);
    await browser.screenshot('console', { fullPage: true });
  });

  it('sends only operations of the persisted-operation manifest', () => {
    expect(traffic.sent.length).toBeGreaterThan(5);
    expect(traffic.sent.filter((body) => !BODIES.has(body))).toEqual([]);
  });

  describe('a user who may not read a record', () => {
    let org: SharingOrg;
    let hidden: string[];

    beforeAll(async () => {
      org = await buildSharingOrg(t.app);
      // Give every lead words in common, through the API so the worker embeds each of them.
      for (const id of Object.values(org.leads)) {
        await t.gql(
          UPDATE_LEAD,
          { id, input: { companyName: 'Vandelay', description: 'latex importers' } },
          org.users.admin.token,
        );
      }
      await t.gql(
        SHARE,
        {
          input: {
            objectType: 'LEAD',
            recordId: org.leads.sup,
            granteeType: 'USER',
            granteeId: org.users.rep1.id,
          },
        },
        org.users.admin.token,
      );
      hidden = [org.leads.vp, org.leads.mgr, org.leads.rep2, org.leads.outsider];
      // The guard: the admin's similar() finds every lead, the hidden ones among them.
      await until('the org leads to be embedded', async () => {
        const answer = await t.gql<{ similar: Array<{ record: { id: string } | null }> }>(
          SIMILAR_IDS,
          { text: 'Vandelay latex importers' },
          org.users.admin.token,
        );
        const found = new Set(answer.data?.similar.map((hit) => hit.record?.id));
        return Object.values(org.leads).every((id) => found.has(id)) ? true : undefined;
      });
    });

    it('never sees it in the console: not in the results, the facet counts or the similar panel', async () => {
      const repPage = await browser.context.newPage();
      const repTraffic = recordGraphQL(repPage);
      await signIn(repPage, safelisted.url, org.users.rep1.token);
      // rep1 reads their own lead and the one shared with them (sup's); the others are hidden.
      expect((await rowIds(repPage)).sort()).toEqual([org.leads.rep1, org.leads.sup].sort());
      expect(await total(repPage)).toBe(2);
      const statusCounts = await repPage
        .locator('[data-facet="status"] input')
        .evaluateAll((boxes: PageElement[]) =>
          Object.fromEntries(
            boxes.map((box): [string, number] => [
              box.getAttribute('value') ?? '',
              Number(box.parentElement?.querySelector('.count')?.getAttribute('data-count')),
            ]),
          ),
        );
      // rep2's and the VP's NEW leads are not counted.
      expect(statusCounts).toEqual({ QUALIFIED: 1, CONTACTED: 1 });

      await repPage.locator(`[data-testid="result-rows"] tr[data-id="${org.leads.rep1}"]`).click();
      await repPage.getByTestId('similar-list').waitFor();
      const similar = await attributes(repPage.locator('[data-testid="similar-list"] li'), 'data-id');
      expect(similar).toEqual([org.leads.sup]);

      await repPage.getByTestId('search-text').fill('vandelay');
      await waitForTotal(repPage, 2);
      const everything = (await repPage.content()) + repTraffic.received.join('\n');
      for (const id of hidden) expect(everything).not.toContain(id);
      await repPage.close();
    });
  });

  it('offers the demo admin a token while the gateway signs with the development secret', async () => {
    // JWT_SECRET unset: the published development secret, as with `npm start` on nothing configured.
    const dev = await startTestApp({ JWT_SECRET: undefined as unknown as string });
    const devPage = await browser.context.newPage();
    try {
      const companyId = randomUUID();
      await dev.app.dataSource.query('INSERT INTO companies (id, name) VALUES ($1, $2)', [
        companyId,
        'Demo Zero',
      ]);
      await dev.app.dataSource.query(
        'INSERT INTO users (id, company_id, email, name, is_admin) VALUES ($1, $2, $3, $4, true)',
        [randomUUID(), companyId, 'user0@company0.example.com', 'Demo Admin'],
      );
      await devPage.goto(`${dev.url}/console`);
      await devPage.getByTestId('dev-token').click();
      await devPage.getByTestId('signed-in').waitFor();
      expect(await devPage.getByTestId('signed-in').textContent()).toContain('Demo Admin · Demo Zero');
      // The page the test gateways above serve (a real JWT_SECRET) offers nothing.
      await devPage.goto(`${t.url}/console`);
      await devPage.getByTestId('token').waitFor();
      expect(await devPage.getByTestId('dev-token').count()).toBe(0);
    } finally {
      await devPage.close();
      await dev.stop();
    }
  });

  it('is not served in production', async () => {
    const script = (await page.locator('script[type="module"]').getAttribute('src'))!;
    expect((await fetch(`${t.url}${script}`)).status).toBe(200);
    const production = await startTestApp({ NODE_ENV: 'production' });
    try {
      for (const path of ['/console', script]) {
        const response = await fetch(`${production.url}${path}`);
        expect({ path, status: response.status }).toEqual({ path, status: 404 });
      }
    } finally {
      await production.stop();
    }
  });

  it('reached nothing beyond loopback', () => {
    expect(browser.blocked).toEqual([]);
  });
});
