/* cipherdesk admin: service-quality report (issue 15.4). Queue wait, first response,
 * handle time, transfers, CSAT, reopen and SLA breaches per day, agent or queue, from
 * GET /api/quality; two Chart.js charts (loaded only here, /static/chart.js, pinned like
 * the other browser libraries), the same figures as a table (the accessible form of the
 * charts), a CSV download, and the tenant's targets for admins. */
import { api, toast, t, I18N } from './common.js';

const { h, clear } = window.CipherdeskUI;

let chartLibrary = null;
function loadChart() {
  if (!chartLibrary) {
    chartLibrary = new Promise((resolve, reject) => {
      const script = document.createElement('script');
      script.src = '/static/chart.js';
      script.onload = () => resolve(window.Chart);
      script.onerror = () => { chartLibrary = null; reject(new Error(t('admin.quality.chart_failed'))); };
      document.head.appendChild(script);
    });
  }
  return chartLibrary;
}

const lang = () => I18N.lang() || document.documentElement.lang || 'en';
const zone = () => { try { return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'; } catch (e) { return 'UTC'; } };
const isoDay = (d) => d.toLocaleDateString('sv-SE');  // YYYY-MM-DD in the local zone

function seconds(value) {
  if (value === null || value === undefined) return '—';
  if (value >= 90) {
    return new Intl.NumberFormat(lang(), { style: 'unit', unit: 'minute', unitDisplay: 'short', maximumFractionDigits: 1 }).format(value / 60);
  }
  return new Intl.NumberFormat(lang(), { style: 'unit', unit: 'second', unitDisplay: 'short', maximumFractionDigits: 1 }).format(value);
}
const number = (value, digits = 0) => (value === null || value === undefined ? '—'
  : new Intl.NumberFormat(lang(), { maximumFractionDigits: digits }).format(value));
const percent = (part, whole) => (whole ? new Intl.NumberFormat(lang(), { style: 'percent', maximumFractionDigits: 1 }).format(part / whole) : '—');

function groupLabel(report, row) {
  if (report.group === 'agent' && row.key === '') return t('admin.quality.unassigned');
  if (report.group === 'day') {
    const [y, m, d] = row.key.split('-').map(Number);
    return new Date(y, m - 1, d).toLocaleDateString(lang(), { month: 'short', day: 'numeric', weekday: 'short' });
  }
  return row.label;
}

const COLUMNS = [
  ['chats', (r) => number(r.chats)],
  ['answered', (r) => number(r.answered)],
  ['unanswered', (r) => number(r.unanswered)],
  ['queue_wait_avg', (r) => seconds(r.queue_wait_avg)],
  ['queue_wait_p90', (r) => seconds(r.queue_wait_p90)],
  ['first_response_avg', (r) => seconds(r.first_response_avg)],
  ['first_response_p90', (r) => seconds(r.first_response_p90)],
  ['handle_avg', (r) => seconds(r.handle_avg)],
  ['transfers', (r) => number(r.transfers)],
  ['csat_avg', (r) => (r.csat_avg === null ? '—' : number(r.csat_avg, 2) + ' (' + number(r.rated) + ')')],
  ['reopen_rate', (r) => percent(r.reopened, r.closed)],
  ['sla_queue_breaches', (r) => number(r.sla_queue_breaches)],
  ['sla_first_response_breaches', (r) => number(r.sla_first_response_breaches)],
];

function tiles(total) {
  const tile = (key, value) => h('div', { class: 'tile', 'data-figure': key },
    h('span', { class: 'small muted', text: t('admin.quality.col.' + key) }), h('strong', { text: value }));
  return h('div', { class: 'tiles' },
    tile('chats', number(total.chats)),
    tile('queue_wait_avg', seconds(total.queue_wait_avg)),
    tile('first_response_avg', seconds(total.first_response_avg)),
    tile('handle_avg', seconds(total.handle_avg)),
    tile('csat_avg', total.csat_avg === null ? '—' : number(total.csat_avg, 2)),
    tile('reopen_rate', percent(total.reopened, total.closed)),
    tile('sla_breaches', number(total.sla_queue_breaches + total.sla_first_response_breaches)));
}

function table(report) {
  const head = h('tr', {}, h('th', { scope: 'col', text: t('admin.quality.group.' + report.group) }),
    COLUMNS.map(([key]) => h('th', { scope: 'col', text: t('admin.quality.col.' + key) })));
  const line = (row, label, cls) => h('tr', { class: cls || null, 'data-key': row.key },
    h('th', { scope: 'row', text: label }), COLUMNS.map(([, fmt]) => h('td', { text: fmt(row) })));
  const body = report.rows.map((row) => line(row, groupLabel(report, row)));
  body.push(line(report.total, t('admin.quality.total'), 'total'));
  // A wide table scrolls sideways: the region takes focus so keyboards can scroll it.
  return h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': t('admin.quality.table') }, h('table', { class: 'quality-table' },
    h('caption', { class: 'small muted', text: t('admin.quality.caption', { start: report.start, end: report.end, tz: report.timezone }) }),
    h('thead', {}, head), h('tbody', {}, body)));
}

async function charts(box, report, live) {
  if (!report.rows.length) return;
  let Chart;
  try { Chart = await loadChart(); } catch (e) { box.appendChild(h('p', { class: 'form-error', text: e.message })); return; }
  const labels = report.rows.map((row) => groupLabel(report, row));
  const canvas = (id, title) => {
    const c = h('canvas', { id, role: 'img', 'aria-label': title });
    box.appendChild(h('figure', { class: 'chart' }, h('figcaption', { text: title }), h('div', { class: 'chart-box' }, c)));
    return c;
  };
  const times = canvas('quality-times', t('admin.quality.chart_times'));
  const rating = canvas('quality-csat', t('admin.quality.chart_csat'));
  const common = { responsive: true, maintainAspectRatio: false, animation: false, locale: lang() };
  live.push(new Chart(times, {
    type: 'bar',
    data: {
      labels,
      datasets: [
        { label: t('admin.quality.col.queue_wait_avg'), data: report.rows.map((r) => r.queue_wait_avg), backgroundColor: '#5b8def' },
        { label: t('admin.quality.col.first_response_avg'), data: report.rows.map((r) => r.first_response_avg), backgroundColor: '#f0a202' },
      ],
    },
    options: { ...common, scales: { y: { beginAtZero: true, title: { display: true, text: t('admin.quality.axis_seconds') } } } },
  }));
  live.push(new Chart(rating, {
    type: 'bar',
    data: {
      labels,
      datasets: [
        { label: t('admin.quality.col.csat_avg'), data: report.rows.map((r) => r.csat_avg), backgroundColor: '#2e9d6a', yAxisID: 'y' },
        { type: 'line', label: t('admin.quality.col.chats'), data: report.rows.map((r) => r.chats), borderColor: '#6b7280', backgroundColor: '#6b7280', yAxisID: 'y1' },
      ],
    },
    options: { ...common, scales: {
      y: { min: 0, max: 5, title: { display: true, text: t('admin.quality.axis_csat') } },
      y1: { position: 'right', beginAtZero: true, grid: { drawOnChartArea: false }, ticks: { precision: 0 } },
    } },
  }));
}

function targetsForm(targets, reload) {
  const field = (key, min, max) => {
    const input = h('input', { type: 'number', min: String(min), max: String(max), value: String(targets[key]), name: key, required: true });
    return h('label', {}, t('admin.quality.target.' + key), input);
  };
  const form = h('form', { class: 'panel', id: 'quality-targets' },
    h('h2', { text: t('admin.quality.targets_title') }),
    h('p', { class: 'small muted', text: t('admin.quality.targets_intro') }),
    h('div', { class: 'inline-form' },
      field('queue_wait_sla_seconds', 0, 86400),
      field('first_response_sla_seconds', 0, 86400),
      field('reopen_days', 1, 90)),
    h('button', { class: 'btn', type: 'submit', text: t('common.save') }));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const quality = {};
    for (const input of form.querySelectorAll('input')) quality[input.name] = Number(input.value);
    try {
      await api('PUT', '/api/governance/settings', { quality });
      toast(t('admin.quality.targets_saved'), 'good');
      reload();
    } catch (e) { toast(e.message, 'bad'); }
  });
  return form;
}

/* The section: filters, then figures, charts and table for the chosen range. */
export async function qualitySection(main, { canTune }) {
  main.append(h('h1', { text: t('admin.quality.title') }), h('p', { class: 'muted', text: t('admin.quality.intro') }));
  const today = new Date();
  const weekAgo = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 6);
  const group = h('select', { name: 'group' },
    ['day', 'agent', 'queue'].map((g) => h('option', { value: g, text: t('admin.quality.group.' + g) })));
  const start = h('input', { type: 'date', name: 'start', value: isoDay(weekAgo), required: true });
  const end = h('input', { type: 'date', name: 'end', value: isoDay(today), required: true });
  const csv = h('a', { class: 'btn ghost', id: 'quality-csv', download: '', text: t('admin.quality.csv') });
  const filters = h('form', { class: 'panel inline-form', id: 'quality-filters', 'aria-label': t('admin.quality.filters') },
    h('label', {}, t('admin.quality.group_by'), group),
    h('label', {}, t('admin.quality.start'), start),
    h('label', {}, t('admin.quality.end'), end),
    h('button', { class: 'btn', type: 'submit', text: t('admin.quality.show') }), csv);
  const out = h('div', { id: 'quality-report', 'aria-live': 'polite' });
  main.append(filters, out);
  const live = [];
  const query = () => new URLSearchParams({ group: group.value, start: start.value, end: end.value, tz: zone() }).toString();

  async function load() {
    while (live.length) live.pop().destroy();
    out.setAttribute('aria-busy', 'true');
    csv.href = '/api/quality.csv?' + query();
    try {
      const report = await api('GET', '/api/quality?' + query());
      clear(out);
      out.append(tiles(report.total));
      if (report.truncated) out.appendChild(h('p', { class: 'form-error', text: t('admin.quality.truncated') }));
      if (!report.rows.length) out.appendChild(h('p', { class: 'muted', id: 'quality-empty', text: t('admin.quality.empty') }));
      const chartsBox = h('div', { class: 'charts' });
      out.append(chartsBox, table(report));
      await charts(chartsBox, report, live);
      if (canTune) out.appendChild(targetsForm(report.targets, load));
    } catch (e) {
      clear(out).appendChild(h('p', { class: 'form-error', text: e.message }));
    } finally {
      out.setAttribute('aria-busy', 'false');
    }
  }
  filters.addEventListener('submit', (ev) => { ev.preventDefault(); load(); });
  await load();
}
