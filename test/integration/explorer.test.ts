import { randomUUID } from 'node:crypto';
import { createTenant, type TestTenant } from '../helpers/fixtures';
import { startTestApp, type TestApp } from '../helpers/test-app';

/**
 * GET /graphql for a browser (GRAPHQL_EXPLORER): self-hosted GraphiQL by default, Apollo Sandbox on request, nothing
 * when off or when introspection is (production's default). The page and its bundle name no other host.
 */
const BROWSER = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };

function browserGet(app: TestApp, path = '/graphql'): Promise<Response> {
  return fetch(`${app.url}${path}`, { headers: BROWSER });
}

/** The settings the page hands the bundle, and the files it loads. */
function readPage(html: string): { settings: Record<string, any>; files: string[] } {
  const settings = /<script id="explorer-settings" type="application\/json">(.*?)<\/script>/s.exec(html);
  expect(settings).not.toBeNull();
  const files = [...html.matchAll(/(?:src|href)="(\/explorer\/[^"]+)"/g)].map((match) => match[1]!);
  return { settings: JSON.parse(settings![1]!), files };
}

/**
 * http(s) URLs a browser would fetch from a bundle: script imports and worker scripts, fetch calls, style sheet
 * imports and url() references. (Links in documentation strings are not fetched; the browser test proves it.)
 */
const FETCHED_URL = [
  /\bimport\s*\(\s*["'`](https?:)?\/\/[^"'`]*/g,
  /\b(?:from|import)\s*["'`](https?:)?\/\/[^"'`]*/g,
  /\b(?:importScripts|fetch|Worker|EventSource|WebSocket)\s*\(\s*["'`](https?:|wss?:)?\/\/[^"'`]*/g,
  /@import\s+(?:url\()?\s*["']?(https?:)?\/\/[^"')\s]*/g,
  /url\(\s*["']?(https?:)?\/\/[^"')\s]*/g,
];
const LOOPBACK_URL = /^(?:\w+:)?\/\/(?:127\.0\.0\.1|localhost)(?:[:/]|$)/;

function externalReferences(source: string): string[] {
  return FETCHED_URL.flatMap((pattern) => [...source.matchAll(pattern)].map((match) => match[0]))
    .map((found) => found.replace(/^.*?["'`(]\s*["']?/, ''))
    .filter((url) => !LOOPBACK_URL.test(url));
}

describe('GRAPHQL_EXPLORER=graphiql (the default)', () => {
  const email = `explorer-${randomUUID()}@test.example.com`;
  let app: TestApp;
  let tenant: TestTenant;
  let html: string;
  let response: Response;

  beforeAll(async () => {
    app = await startTestApp({ DEVELOPMENT_TOKEN_EMAIL: email });
    tenant = await createTenant(app.app);
    await app.app.dataSource.query('UPDATE users SET email = $1 WHERE id = $2', [email, tenant.admin.id]);
    response = await browserGet(app);
    html = await response.text();
  });
  afterAll(() => app.stop());

  it('serves GraphiQL to a browser, from its own files, with a policy that allows no other host', () => {
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const policy = response.headers.get('content-security-policy')!;
    expect(policy).toContain("default-src 'none'");
    expect(policy).toContain("script-src 'self'");
    expect(policy).toContain("connect-src 'self'");
    const { settings, files } = readPage(html);
    expect(settings).toMatchObject({ endpoint: '/graphql' });
    expect(Object.keys(settings.workers).sort()).toEqual(['editor', 'graphql', 'json']);
    expect(files.some((file) => /^\/explorer\/main-\w+\.js$/.test(file))).toBe(true);
    expect(files.some((file) => /^\/explorer\/main-\w+\.css$/.test(file))).toBe(true);
  });

  it('prefills a token of the configured user, which the gateway accepts as that user', async () => {
    const { settings } = readPage(html);
    expect(typeof settings.token).toBe('string');
    const me = await app.gql('{ me { id email } }', {}, settings.token);
    expect(me.data).toEqual({ me: { id: tenant.admin.id, email } });
  });

  it('leaves a GraphQL client on the endpoint to GraphQL (GET and POST)', async () => {
    const get = await fetch(`${app.url}/graphql?query=${encodeURIComponent('{ __typename }')}`, {
      headers: {
        accept: 'application/json',
        authorization: `Bearer ${tenant.rep.token}`,
        // Apollo's CSRF prevention: a GET must show it is no simple cross-site request.
        'apollo-require-preflight': 'true',
      },
    });
    expect(get.status).toBe(200);
    expect(await get.json()).toEqual({ data: { __typename: 'Query' } });
    expect((await app.gql('{ __typename }', {}, tenant.rep.token)).data).toEqual({ __typename: 'Query' });
  });

  it('serves the hashed files with year-long immutable caching, and no file it does not have', async () => {
    const { settings, files } = readPage(html);
    const workers = Object.values(settings.workers as Record<string, string>);
    for (const file of [...files, ...workers]) {
      const asset = await fetch(`${app.url}${file}`);
      expect(asset.status).toBe(200);
      expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(asset.headers.get('content-type')).toMatch(file.endsWith('.css') ? /^text\/css/ : /javascript/);
      expect(asset.headers.get('x-content-type-options')).toBe('nosniff');
      await asset.arrayBuffer();
    }
    const missing = await fetch(`${app.url}/explorer/main-NOTAFILE.js`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('cache-control')).toBeNull();
  });

  it('names no host beyond loopback that a browser would fetch: not in the page, not in its bundle', async () => {
    const { settings, files } = readPage(html);
    expect(html.match(/https?:\/\/[^\s"'<>]+/g) ?? []).toEqual([]);
    const sources = await Promise.all(
      [...files, ...Object.values(settings.workers as Record<string, string>)].map(async (file) =>
        (await fetch(`${app.url}${file}`)).text(),
      ),
    );
    // The scan finds what it looks for (so an empty result means something): the GraphiQL bundle does load its
    // fonts by url() and its workers by URL, only not from another host.
    expect(sources.join('\n')).toMatch(/url\(\s*["']?[^"')]*codicon-\w+\.ttf/);
    expect(sources.flatMap(externalReferences)).toEqual([]);
    expect(externalReferences('a{background:url(https://cdn.example.com/x.png)}')).toEqual([
      'https://cdn.example.com/x.png',
    ]);
    expect(externalReferences('import("https://esm.sh/monaco-editor")')).toEqual([
      'https://esm.sh/monaco-editor',
    ]);
  });
});

describe('GRAPHQL_EXPLORER=sandbox and =off', () => {
  it('sandbox: Apollo Sandbox, as before; none of GraphiQL', async () => {
    const app = await startTestApp({ GRAPHQL_EXPLORER: 'sandbox' });
    try {
      const response = await browserGet(app);
      expect(response.status).toBe(200);
      const html = await response.text();
      expect(html).toContain('embeddable-sandbox');
      expect(html).not.toContain('explorer-settings');
      expect((await fetch(`${app.url}/explorer/`)).status).toBe(404);
    } finally {
      await app.stop();
    }
  });

  it('off: no page for a browser, and no explorer files', async () => {
    const app = await startTestApp({ GRAPHQL_EXPLORER: 'off' });
    try {
      const response = await browserGet(app);
      expect(response.status).toBeGreaterThanOrEqual(400);
      expect(response.headers.get('content-type')).not.toMatch(/html/);
      const body = await response.text();
      expect(body).not.toMatch(/explorer-settings|embeddable-sandbox/);
      expect((await app.gql('{ me { id } }')).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    } finally {
      await app.stop();
    }
  });
});

describe('in production the explorer follows GRAPHQL_INTROSPECTION', () => {
  const production = { NODE_ENV: 'production', JWT_SECRET: `${randomUUID()}${randomUUID()}` };

  it('off by default, as introspection is', async () => {
    const app = await startTestApp(production);
    try {
      const response = await browserGet(app);
      expect(response.status).toBeGreaterThanOrEqual(400);
      expect(await response.text()).not.toMatch(/explorer-settings|embeddable-sandbox/);
    } finally {
      await app.stop();
    }
  });

  it('GraphiQL when introspection is turned on, never with a token in it', async () => {
    const app = await startTestApp({ ...production, GRAPHQL_INTROSPECTION: 'true' });
    try {
      const response = await browserGet(app);
      expect(response.status).toBe(200);
      const { settings } = readPage(await response.text());
      expect(settings.endpoint).toBe('/graphql');
      expect(settings).not.toHaveProperty('token');
    } finally {
      await app.stop();
    }
  });
});
