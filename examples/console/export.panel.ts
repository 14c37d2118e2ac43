import { ExportProgressDocument, StartExportDocument, type ExportStateFragment } from '../generated/graphql';
import type { Api } from './api';
import { fill, h, number } from './dom';
import { filtersOf, type SearchState } from './search.view';

/** The columns an export of each record type holds. */
const FIELDS: Record<SearchState['entityType'], string[]> = {
  LEAD: ['id', 'firstName', 'lastName', 'companyName', 'status', 'source', 'score', 'ownerName'],
  DEAL: ['id', 'name', 'accountName', 'stage', 'amount', 'closeDate', 'ownerName'],
};

/**
 * An export of the current search (its facet filters; exports take no search text), followed over the
 * exportProgress subscription with a progress bar, and a download link once it completes.
 */
export class ExportPanel {
  private readonly button = h('button', { type: 'button', 'data-testid': 'export-start' }, 'Export CSV');
  private readonly note = h('p', { class: 'muted' });
  private readonly bar = h('div', { class: 'bar-fill', 'data-testid': 'export-bar', 'data-progress': 0 });
  private readonly status = h('p', { class: 'export-status', 'data-testid': 'export-status' });
  private readonly link = h('p', {});
  private search: SearchState | undefined;

  constructor(
    private readonly api: Api,
    root: HTMLElement,
  ) {
    this.button.addEventListener('click', () => void this.start());
    fill(
      root,
      h('div', { class: 'export-row' }, this.button, this.note),
      h('div', { class: 'bar', role: 'progressbar', 'aria-label': 'Export progress' }, this.bar),
      this.status,
      this.link,
    );
  }

  /** The search an export would start from. */
  follow(state: SearchState, total: number): void {
    this.search = state;
    this.button.textContent = `Export ${number.format(total)} ${state.entityType === 'LEAD' ? 'leads' : 'deals'} (CSV)`;
    this.note.textContent = state.text ? 'Exports take the facet filters, not the search text.' : '';
  }

  private async start(): Promise<void> {
    const state = this.search;
    if (!state) return;
    this.button.disabled = true;
    fill(this.link);
    this.show({ progress: 0, status: 'QUEUED', rowsExported: 0, totalRows: null });
    try {
      const { startExport } = await this.api.request(StartExportDocument, {
        input: {
          entityType: state.entityType,
          format: 'CSV',
          fields: FIELDS[state.entityType],
          filters: filtersOf(state),
          fileName: `console-${state.entityType.toLowerCase()}s`,
        },
      });
      let last: ExportStateFragment = startExport;
      await this.api.subscribe(ExportProgressDocument, { jobId: startExport.id }, ({ exportProgress }) => {
        last = exportProgress;
        this.show(exportProgress);
      });
      this.show(last);
      if (last.status === 'COMPLETED' && last.downloadUrl) this.offerDownload(last, last.downloadUrl);
    } catch (error) {
      this.status.textContent = `Export failed: ${(error as Error).message}`;
    } finally {
      this.button.disabled = false;
    }
  }

  private show(
    job: Pick<ExportStateFragment, 'progress' | 'status' | 'rowsExported' | 'totalRows'> & {
      error?: string | null;
    },
  ): void {
    const percent = Math.round(job.progress * 100);
    this.bar.style.width = `${percent}%`;
    this.bar.dataset.progress = String(percent);
    const rows =
      job.totalRows === null
        ? ''
        : ` · ${number.format(job.rowsExported)} of ${number.format(job.totalRows)} rows`;
    this.status.textContent = `${job.status.toLowerCase()} · ${percent}%${rows}${job.error ? ` · ${job.error}` : ''}`;
  }

  /** The link points at the API's download URL; a click fetches it with the token and saves it. */
  private offerDownload(job: ExportStateFragment, url: string): void {
    const link = h(
      'a',
      { href: url, download: job.fileName, 'data-testid': 'export-download' },
      `Download ${job.fileName}`,
    );
    link.addEventListener('click', (event) => {
      event.preventDefault();
      void this.api.download(url).then(
        (blob) => {
          const save = h('a', { href: URL.createObjectURL(blob), download: job.fileName });
          save.click();
          setTimeout(() => URL.revokeObjectURL(save.href), 60_000);
        },
        (error: Error) => (this.status.textContent = error.message),
      );
    });
    fill(this.link, link);
  }
}
