/* cipherdesk admin: a customer's rights on request (issue 15.2; PIPL Art. 45 and 47). The
 * admin names the customer by the identity the company's site signs (sub), the e-mail of
 * the pre-chat form or a chat's token, then exports their chats (JSON or PDF, masked for
 * exports, staff by role only) or erases them all (crypto-shredded, with a signed
 * destruction report). Where the tenant's approvals gate these, the reason form appears
 * and the request runs once granted. */
import { api, apiFile, toast, t } from './common.js';

const { h, clear } = window.CipherdeskUI;

const KINDS = ['email', 'sub', 'chat_token'];

function save(blob, name) {
  const a = h('a', { href: URL.createObjectURL(blob), download: name, hidden: true });
  document.body.appendChild(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

const EXPORT_TEXTS = { intro: 'admin.approval_needed.customer_export', pending: 'admin.approval_needed.customer_pending' };
const ERASE_TEXTS = { intro: 'admin.approval_needed.customer_erase', pending: 'admin.approval_needed.customer_pending' };

const today = () => new Date().toISOString().slice(0, 10);
const zone = () => { try { return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'; } catch (e) { return 'UTC'; } };

export async function customersSection(main, { field, guarded, withApproval, lang }) {
  main.append(h('h1', { text: t('admin.customers.title') }), h('p', { class: 'muted', text: t('admin.customers.intro') }));
  const kind = h('select', {}, KINDS.map((k) => h('option', { value: k, text: t('admin.customers.kind_' + k) })));
  const value = h('input', { required: true, maxlength: '320', autocomplete: 'off', spellcheck: 'false' });
  const slot = h('div', { id: 'customer-approval' });
  const result = h('div', { id: 'customer-result', role: 'status' });
  const button = (cls, label) => h('button', { class: 'btn ' + cls, type: 'button' }, label);
  const json = button('', t('admin.customers.export_json'));
  const pdf = button('', t('admin.customers.export_pdf'));
  const erase = button('danger', t('admin.customers.erase'));
  const form = h('form', { class: 'panel', id: 'customer-form', onsubmit: (ev) => ev.preventDefault() },
    h('div', { class: 'grid2' }, h('div', {}, field('customer-kind', t('admin.customers.kind'), kind)),
      h('div', {}, field('customer-value', t('admin.customers.value'), value))),
    h('p', { class: 'small muted', text: t('admin.customers.masked_hint') }),
    h('p', { class: 'actions' }, json, ' ', pdf, ' ', erase));
  main.append(form, slot, result);

  const who = () => {
    const v = value.value.trim();
    if (!v) { value.focus(); throw new Error(t('admin.customers.value_missing')); }
    return { [kind.value]: v };
  };
  const exportAs = (format) => async () => {
    const body = who();
    if (format === 'pdf') {
      const query = new URLSearchParams({ format: 'pdf', lang: lang(), tz: zone() }).toString();
      const file = await withApproval(slot, 'customer.export', null, () => apiFile('POST', '/api/customers/export?' + query, body), EXPORT_TEXTS);
      if (!file) return;
      save(file, `customer-chats-${today()}.pdf`);
      clear(result).appendChild(h('p', { text: t('admin.customers.pdf_done') }));
      return;
    }
    const data = await withApproval(slot, 'customer.export', null, () => api('POST', '/api/customers/export', body), EXPORT_TEXTS);
    if (!data) return;
    save(new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' }), `customer-chats-${today()}.json`);
    clear(result).appendChild(h('p', { text: t('admin.customers.exported', { count: data.chats.length }) }));
  };
  json.addEventListener('click', () => guarded(json, exportAs('json')));
  pdf.addEventListener('click', () => guarded(pdf, exportAs('pdf')));
  erase.addEventListener('click', () => guarded(erase, async () => {
    const body = who();
    if (!window.confirm(t('admin.customers.erase_confirm'))) return;
    const data = await withApproval(slot, 'customer.erase', null, () => api('POST', '/api/customers/erase', body), ERASE_TEXTS);
    if (!data) return;
    const report = data.report;
    const download = button('ghost', t('admin.customers.report_download'));
    download.addEventListener('click', () => save(new Blob([JSON.stringify(report, null, 2)], { type: 'application/json' }),
      `destruction-report-${report.report.id}.json`));
    clear(result).appendChild(h('div', { class: 'panel' },
      h('p', { text: t('admin.customers.erased', { count: data.erased }) }),
      h('p', { class: 'small muted' }, t('admin.customers.report_id'), ' ', h('code', { text: report.report.id })),
      h('p', {}, download)));
    toast(t('admin.customers.erased', { count: data.erased }));
  }));
}
