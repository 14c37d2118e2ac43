import { explorerPlugin } from '@graphiql/plugin-explorer';
import { createGraphiQLFetcher, type Fetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { configureMonacoWorkers, type WorkerUrls } from './monaco-workers';
import 'graphiql/style.css';
import '@graphiql/plugin-explorer/style.css';
import './explorer.css';

/** What the gateway writes into the page (src/server/explorer.page.ts): JSON, never executed. */
interface ExplorerSettings {
  /** The GraphQL endpoint's path, e.g. `/graphql`: HTTP and graphql-ws share it. */
  endpoint: string;
  /** Development only: a token for the demo user, prefilled in the headers editor. */
  token?: string;
  workers: WorkerUrls;
}

const settings = JSON.parse(
  document.getElementById('explorer-settings')!.textContent ?? '{}',
) as ExplorerSettings;
configureMonacoWorkers(settings.workers);

const subscriptionUrl = new URL(settings.endpoint, location.href);
subscriptionUrl.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
const fetchOverHttpOrWs = createGraphiQLFetcher({
  url: settings.endpoint,
  subscriptionUrl: subscriptionUrl.toString(),
});
/**
 * The headers editor's headers go to HTTP as headers and to graphql-ws as its connection params, which the gateway
 * reads as `authorization` (header names are case-insensitive, connection params are not).
 */
const fetcher: Fetcher = (params, options) =>
  fetchOverHttpOrWs(
    params,
    options && {
      ...options,
      headers: Object.fromEntries(
        Object.entries(options.headers ?? {}).map(([name, value]) => [name.toLowerCase(), value]),
      ),
    },
  );

const headers = settings.token
  ? JSON.stringify({ Authorization: `Bearer ${settings.token}` }, null, 2)
  : undefined;
const search = new URLSearchParams(location.search);

createRoot(document.getElementById('explorer')!).render(
  <StrictMode>
    <GraphiQL
      fetcher={fetcher}
      plugins={[explorerPlugin()]}
      initialQuery={search.get('query') ?? undefined}
      initialVariables={search.get('variables') ?? undefined}
      initialHeaders={headers}
      defaultHeaders={headers}
      defaultEditorToolsVisibility={headers ? 'headers' : undefined}
    />
  </StrictMode>,
);
