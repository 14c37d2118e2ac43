import {
  RecordSearchDocument,
  type ObjectType,
  type RecordFilterInput,
  type RecordSearchQuery,
} from '../generated/graphql';
import type { Api } from './api';
import { fill, h, money, number } from './dom';

/** What the search holds: the record type, its words, the facet keys ticked per field, the page. */
export interface SearchState {
  entityType: Extract<ObjectType, 'LEAD' | 'DEAL'>;
  text: string;
  selected: Map<string, Set<string>>;
  page: number;
}

type SearchResult = RecordSearchQuery['search'];
type Item = SearchResult['items'][number];
export type SelectedRecord = { type: 'LEAD' | 'DEAL'; id: string; title: string; words: string };

const PAGE_SIZE = 10;
/** The facets shown per record type (the catalog's TERMS facets that read well as checkboxes). */
export const FACETS: Record<SearchState['entityType'], string[]> = {
  LEAD: ['status', 'source', 'industry'],
  DEAL: ['stage', 'ownerId'],
};

/** The search's conditions in the record filter language: one IN per facet with ticked keys. */
export function filtersOf(state: SearchState): RecordFilterInput[] {
  return [...state.selected]
    .filter(([, keys]) => keys.size > 0)
    .map(([field, keys]) => ({ field, op: 'IN' as const, values: [...keys] }));
}

function titleOf(item: Item): string {
  if (item.__typename === 'Lead') return `${item.firstName} ${item.lastName}`;
  if (item.__typename === 'Deal') return item.name;
  return '';
}

/** The record's words, for the similar-records panel. */
function wordsOf(item: Item): string {
  if (item.__typename === 'Lead')
    return [item.firstName, item.lastName, item.companyName].filter(Boolean).join(' ');
  if (item.__typename === 'Deal') return [item.name, item.account?.name].filter(Boolean).join(' ');
  return '';
}

export interface SearchViewOptions {
  api: Api;
  root: HTMLElement;
  /** After every answered search: the state it answered and its total. */
  onResult(state: SearchState, total: number): void;
  onSelect(record: SelectedRecord): void;
}

/** The faceted search: a text box, facet checkboxes with live counts, a result table and paging. */
export class SearchView {
  readonly state: SearchState = { entityType: 'LEAD', text: '', selected: new Map(), page: 1 };
  private readonly facetsBox = h('div', { class: 'facets', 'data-testid': 'facets' });
  private readonly results = h('div', { class: 'results' });
  private readonly summary = h('p', { class: 'summary', 'data-testid': 'search-summary' });
  private generation = 0;
  private typing: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly options: SearchViewOptions) {
    const text = h('input', {
      type: 'search',
      placeholder: 'Search names, email, company…',
      'aria-label': 'Search text',
      'data-testid': 'search-text',
    });
    text.addEventListener('input', () => {
      clearTimeout(this.typing);
      this.typing = setTimeout(() => {
        this.state.text = text.value.trim();
        this.state.page = 1;
        void this.run();
      }, 250);
    });
    const type = h(
      'select',
      { 'aria-label': 'Record type', 'data-testid': 'search-type' },
      h('option', { value: 'LEAD' }, 'Leads'),
      h('option', { value: 'DEAL' }, 'Deals'),
    );
    type.addEventListener('change', () => {
      this.state.entityType = type.value as SearchState['entityType'];
      this.state.selected.clear();
      this.state.page = 1;
      void this.run();
    });
    fill(
      options.root,
      h('div', { class: 'search-bar' }, type, text),
      h(
        'div',
        { class: 'search-body' },
        this.facetsBox,
        h('div', { class: 'result-column' }, this.summary, this.results),
      ),
    );
  }

  /** Runs the search for the current state; an answer older than the latest request is dropped. */
  async run(): Promise<void> {
    const generation = ++this.generation;
    const { state } = this;
    this.summary.textContent = 'Searching…';
    try {
      const { search } = await this.options.api.request(RecordSearchDocument, {
        input: {
          entityType: state.entityType,
          text: state.text || undefined,
          filters: filtersOf(state),
          facets: FACETS[state.entityType].map((field) => ({ field, size: 12 })),
          page: state.page,
          pageSize: PAGE_SIZE,
        },
      });
      if (generation !== this.generation) return;
      this.render(search);
      this.options.onResult(state, search.total);
    } catch (error) {
      if (generation !== this.generation) return;
      this.summary.textContent = `Search failed: ${(error as Error).message}`;
      this.summary.classList.add('error');
    }
  }

  private render(search: SearchResult): void {
    this.summary.classList.remove('error');
    const pages = Math.max(1, Math.ceil(search.total / PAGE_SIZE));
    fill(
      this.summary,
      h('strong', { 'data-testid': 'result-total' }, number.format(search.total)),
      ` ${this.state.entityType === 'LEAD' ? 'leads' : 'deals'} · page ${search.page} of ${number.format(pages)}`,
    );
    this.renderFacets(search.facets);
    const rows = search.items.map((item) => this.row(item));
    const prev = h(
      'button',
      { type: 'button', disabled: search.page <= 1, 'data-testid': 'page-prev' },
      '‹ Previous',
    );
    const next = h(
      'button',
      { type: 'button', disabled: !search.hasNextPage, 'data-testid': 'page-next' },
      'Next ›',
    );
    prev.addEventListener('click', () => this.goTo(search.page - 1));
    next.addEventListener('click', () => this.goTo(search.page + 1));
    fill(
      this.results,
      rows.length
        ? h('table', {}, h('thead', {}, this.header()), h('tbody', { 'data-testid': 'result-rows' }, ...rows))
        : h('p', { class: 'muted' }, 'Nothing matches.'),
      h('div', { class: 'pager' }, prev, next),
    );
  }

  private goTo(page: number): void {
    this.state.page = page;
    void this.run();
  }

  private header(): HTMLTableRowElement {
    const columns =
      this.state.entityType === 'LEAD'
        ? ['Name', 'Company', 'Status', 'Source', 'Score', 'Owner']
        : ['Deal', 'Account', 'Stage', 'Amount', 'Close', 'Owner'];
    return h('tr', {}, ...columns.map((column) => h('th', {}, column)));
  }

  private row(item: Item): HTMLTableRowElement {
    const cells =
      item.__typename === 'Lead'
        ? [titleOf(item), item.companyName, item.status, item.source, item.score, item.owner.name]
        : item.__typename === 'Deal'
          ? [
              item.name,
              item.account?.name,
              item.stage,
              money.format(item.amount),
              item.closeDate,
              item.owner.name,
            ]
          : [];
    const id = item.__typename === 'Account' ? '' : item.id;
    const row = h('tr', { tabindex: 0, 'data-id': id }, ...cells.map((cell) => h('td', {}, cell ?? '—')));
    const select = (): void => {
      for (const other of row.parentElement?.children ?? []) other.classList.remove('selected');
      row.classList.add('selected');
      this.options.onSelect({ type: this.state.entityType, id, title: titleOf(item), words: wordsOf(item) });
    };
    row.addEventListener('click', select);
    row.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') select();
    });
    return row;
  }

  private renderFacets(facets: SearchResult['facets']): void {
    fill(
      this.facetsBox,
      ...facets.map((facet) => {
        const ticked = this.state.selected.get(facet.field) ?? new Set<string>();
        return h(
          'fieldset',
          { 'data-facet': facet.field },
          h('legend', {}, facet.field === 'ownerId' ? 'owner' : facet.field),
          ...facet.buckets.map((bucket) => {
            const box = h('input', {
              type: 'checkbox',
              value: bucket.key,
              checked: ticked.has(bucket.key),
              'data-testid': `facet-${facet.field}-${bucket.key}`,
            });
            box.addEventListener('change', () => {
              const keys = this.state.selected.get(facet.field) ?? new Set<string>();
              if (box.checked) keys.add(bucket.key);
              else keys.delete(bucket.key);
              this.state.selected.set(facet.field, keys);
              this.state.page = 1;
              void this.run();
            });
            return h(
              'label',
              {},
              box,
              h('span', { class: 'bucket' }, bucket.label),
              h('span', { class: 'count', 'data-count': bucket.count }, number.format(bucket.count)),
            );
          }),
          facet.missing > 0
            ? h('p', { class: 'muted' }, `${number.format(facet.missing)} without a value`)
            : null,
        );
      }),
    );
  }
}
