import { DealByIdDocument, LeadByIdDocument, SimilarRecordsDocument } from '../generated/graphql';
import type { Api } from './api';
import { fill, h, money } from './dom';
import type { SelectedRecord } from './search.view';

/** The selected record's details (lead(id) / deal(id)) and the records most like it that you may read (similar). */
export async function showRecord(api: Api, root: HTMLElement, record: SelectedRecord): Promise<void> {
  fill(root, h('p', { class: 'muted' }, 'Loading…'));
  const [details, { similar }] = await Promise.all([
    record.type === 'LEAD' ? describeLead(api, record.id) : describeDeal(api, record.id),
    api.request(SimilarRecordsDocument, {
      text: record.words || record.title,
      k: 7,
      entityTypes: [record.type],
    }),
  ]);
  const hits = similar
    .filter((hit) => hit.record && 'id' in hit.record && hit.record.id !== record.id)
    .slice(0, 6);
  fill(
    root,
    h('h3', {}, record.title),
    details,
    h('h4', {}, 'Similar records'),
    hits.length
      ? h(
          'ol',
          { class: 'similar', 'data-testid': 'similar-list' },
          ...hits.map((hit) => {
            const found = hit.record!;
            const title =
              found.__typename === 'Lead'
                ? `${found.firstName} ${found.lastName}${found.companyName ? `, ${found.companyName}` : ''}`
                : found.__typename === 'Deal'
                  ? `${found.name} (${found.stage.toLowerCase()})`
                  : found.name;
            return h(
              'li',
              { 'data-id': 'id' in found ? found.id : '' },
              title,
              h('span', { class: 'score' }, hit.score.toFixed(2)),
            );
          }),
        )
      : h('p', { class: 'muted', 'data-testid': 'similar-empty' }, 'Nothing similar you may see.'),
  );
}

function facts(entries: Array<[string, unknown]>): HTMLDListElement {
  return h(
    'dl',
    { class: 'facts' },
    ...entries
      .filter(([, value]) => value !== null && value !== undefined && value !== '')
      .flatMap(([name, value]) => [h('dt', {}, name), h('dd', {}, String(value))]),
  );
}

async function describeLead(api: Api, id: string): Promise<HTMLElement> {
  const { lead } = await api.request(LeadByIdDocument, { id });
  if (!lead) return h('p', { class: 'muted' }, 'Not visible to you.');
  return facts([
    ['email', lead.email],
    ['company', lead.companyName],
    ['status', lead.status],
    ['source', lead.source],
    ['score', lead.score],
    ['estimated', lead.estimatedValue === null ? null : money.format(lead.estimatedValue ?? 0)],
    ['owner', lead.owner.name],
  ]);
}

async function describeDeal(api: Api, id: string): Promise<HTMLElement> {
  const { deal } = await api.request(DealByIdDocument, { id });
  if (!deal) return h('p', { class: 'muted' }, 'Not visible to you.');
  return facts([
    ['account', deal.account?.name],
    ['stage', deal.stage],
    ['amount', money.format(deal.amount)],
    ['probability', `${deal.probability}%`],
    ['close', deal.closeDate],
    ['owner', deal.owner.name],
  ]);
}
