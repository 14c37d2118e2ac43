import { PipelineByStageAndMonthDocument, type RecordFilterInput } from '../generated/graphql';
import type { Api } from './api';
import { fill, h, money } from './dom';

const SVG = 'http://www.w3.org/2000/svg';
const STAGES = [
  'PROSPECTING',
  'QUALIFICATION',
  'PROPOSAL',
  'NEGOTIATION',
  'CLOSED_WON',
  'CLOSED_LOST',
] as const;
const COLOURS = ['#9ec5fe', '#6ea8fe', '#3d8bfd', '#0d6efd', '#198754', '#adb5bd'];
const NO_DATE = 'no date';

function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attributes: Record<string, string | number>,
  ...children: Array<SVGElement | string>
): SVGElementTagNameMap[K] {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  element.append(...children);
  return element;
}

/** `closeDate:month` values come as month starts; the chart labels them YYYY-MM. */
function monthOf(value: unknown): string {
  return typeof value === 'string' && value.length >= 7 ? value.slice(0, 7) : NO_DATE;
}

/** Deal amounts by close month, stacked by stage: the report `PipelineByStageAndMonth`, drawn as plain SVG. */
export async function drawPipeline(api: Api, root: HTMLElement, filters: RecordFilterInput[]): Promise<void> {
  const { report } = await api.request(PipelineByStageAndMonthDocument, { filters });
  const rows = report.aggregates[0]?.rows ?? [];
  const byMonth = new Map<string, Map<string, number>>();
  for (const row of rows) {
    const month = monthOf(row.dimensions['closeDate:month']);
    const stage = String(row.dimensions.stage);
    const stages = byMonth.get(month) ?? new Map<string, number>();
    stages.set(stage, (stages.get(stage) ?? 0) + (row.value ?? 0));
    byMonth.set(month, stages);
  }
  const months = [...byMonth.keys()].sort((a, b) =>
    a === NO_DATE ? 1 : b === NO_DATE ? -1 : a < b ? -1 : 1,
  );
  const totals = months.map((month) =>
    [...byMonth.get(month)!.values()].reduce((sum, value) => sum + value, 0),
  );
  const peak = Math.max(1, ...totals);

  const width = 640;
  const height = 220;
  const left = 64;
  const bottom = 28;
  const slot = months.length ? (width - left) / months.length : 0;
  const bar = Math.max(4, Math.min(36, slot * 0.7));
  const plot = height - bottom - 8;
  const chart = svg('svg', {
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': 'Pipeline by close month and stage',
    'data-testid': 'pipeline-chart',
  });
  for (const fraction of [0, 0.5, 1]) {
    const y = 8 + plot * (1 - fraction);
    chart.append(
      svg('line', { x1: left, x2: width, y1: y, y2: y, class: 'grid' }),
      svg(
        'text',
        { x: left - 6, y: y + 4, 'text-anchor': 'end', class: 'axis' },
        money.format(peak * fraction),
      ),
    );
  }
  months.forEach((month, index) => {
    const x = left + index * slot + (slot - bar) / 2;
    let y = 8 + plot;
    STAGES.forEach((stage, stageIndex) => {
      const value = byMonth.get(month)!.get(stage) ?? 0;
      if (value <= 0) return;
      const tall = (value / peak) * plot;
      y -= tall;
      chart.append(
        svg(
          'rect',
          {
            x,
            y,
            width: bar,
            height: tall,
            fill: COLOURS[stageIndex]!,
            'data-stage': stage,
            'data-month': month,
          },
          svg('title', {}, `${month} ${stage}: ${money.format(value)}`),
        ),
      );
    });
    if (months.length <= 12 || index % Math.ceil(months.length / 12) === 0)
      chart.append(
        svg('text', { x: x + bar / 2, y: height - 10, 'text-anchor': 'middle', class: 'axis' }, month),
      );
  });
  const legend = h(
    'ul',
    { class: 'legend' },
    ...STAGES.map((stage, index) =>
      h('li', {}, h('span', { class: 'swatch', style: `background:${COLOURS[index]}` }), stage.toLowerCase()),
    ),
  );
  fill(
    root,
    months.length ? chart : h('p', { class: 'muted' }, 'No deals to chart.'),
    legend,
    h(
      'p',
      { class: 'muted' },
      `${report.source.toLowerCase()} · computed ${new Date(report.computedAt).toLocaleString()}`,
    ),
  );
}
