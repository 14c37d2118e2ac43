import './console.css';
import { ViewerDocument } from '../generated/graphql';
import { Api } from './api';
import { byId, fill, h } from './dom';
import { ExportPanel } from './export.panel';
import { drawPipeline } from './report.chart';
import { filtersOf, SearchView } from './search.view';
import { showRecord } from './similar.panel';

/**
 * The example console: sign in with a token, then a faceted search, the pipeline chart, an export of the search with
 * live progress, and a record's similar records. Everything goes through the public GraphQL API.
 */

const TOKEN_KEY = 'crm-console-token';

/** In development the gateway puts a demo admin's token in the page (see src/server/console.page.ts). */
function developmentToken(): { token: string; user: string } | undefined {
  const meta = document.querySelector<HTMLMetaElement>('meta[name="crm-dev-token"]');
  return meta?.content ? { token: meta.content, user: meta.dataset.user ?? 'the demo admin' } : undefined;
}

function signInForm(root: HTMLElement, message?: string): void {
  const field = h('textarea', {
    rows: 3,
    placeholder: 'Paste a token (npm run token -- --email user0@company0.example.com)',
    'aria-label': 'Token',
    'data-testid': 'token',
  });
  const submit = h('button', { type: 'submit', 'data-testid': 'sign-in' }, 'Sign in');
  const form = h(
    'form',
    { class: 'sign-in' },
    h('h2', {}, 'Sign in'),
    h(
      'p',
      {},
      'The console sends your token as ',
      h('code', {}, 'Authorization: Bearer …'),
      ' with every operation.',
    ),
    field,
    h('div', { class: 'actions' }, submit),
    message ? h('p', { class: 'error', 'data-testid': 'sign-in-error' }, message) : null,
  );
  const dev = developmentToken();
  if (dev) {
    const use = h(
      'button',
      { type: 'button', 'data-testid': 'dev-token' },
      `Use the development token (${dev.user})`,
    );
    use.addEventListener('click', () => {
      field.value = dev.token;
      form.requestSubmit();
    });
    form.querySelector('.actions')!.append(use);
  }
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void signIn(root, field.value.trim().replace(/^Bearer\s+/i, ''));
  });
  fill(root, form);
}

async function signIn(root: HTMLElement, token: string): Promise<void> {
  if (!token) return signInForm(root, 'Paste a token first.');
  const api = new Api(token);
  try {
    const { me } = await api.request(ViewerDocument);
    sessionStorage.setItem(TOKEN_KEY, token);
    workspace(root, api, `${me.name} · ${me.company.name}`);
  } catch (error) {
    sessionStorage.removeItem(TOKEN_KEY);
    signInForm(root, `Sign-in refused: ${(error as Error).message}`);
  }
}

function panel(title: string, id: string): HTMLElement {
  return h('section', { class: 'panel', id: `${id}-panel` }, h('h2', {}, title), h('div', { id }));
}

function workspace(root: HTMLElement, api: Api, who: string): void {
  const signOut = h('button', { type: 'button', class: 'link' }, 'Sign out');
  signOut.addEventListener('click', () => {
    api.close();
    sessionStorage.removeItem(TOKEN_KEY);
    signInForm(root);
  });
  fill(
    root,
    h('p', { class: 'who', 'data-testid': 'signed-in' }, who, ' ', signOut),
    h(
      'div',
      { class: 'grid' },
      panel('Search', 'search'),
      h(
        'div',
        { class: 'side' },
        panel('Pipeline by close month', 'chart'),
        panel('Export', 'export'),
        panel('Record', 'record'),
      ),
    ),
  );
  const exports = new ExportPanel(api, byId('export'));
  const record = byId('record');
  fill(record, h('p', { class: 'muted' }, 'Select a row to see the record and similar ones.'));
  const search = new SearchView({
    api,
    root: byId('search'),
    onResult: (state, total) => {
      exports.follow(state, total);
      const chart = byId('chart');
      drawPipeline(api, chart, state.entityType === 'DEAL' ? filtersOf(state) : []).catch((error: Error) =>
        fill(chart, h('p', { class: 'error' }, `Report failed: ${error.message}`)),
      );
    },
    onSelect: (selected) => {
      showRecord(api, record, selected).catch((error: Error) =>
        fill(record, h('p', { class: 'error' }, error.message)),
      );
    },
  });
  void search.run();
}

const root = byId('app');
const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) void signIn(root, saved);
else signInForm(root);
