/* cipherdesk console: chat history (issue 16 item 5). Closed chats with filters (date
 * range, queue, agent, CSAT), a search box (the gateway matches keyed-hash tokens, it
 * never stores the words), CSAT averages per agent, a read-only transcript, and a
 * customer's previous chats next to an open chat. Kept apart from console.js: the
 * console calls mountHistory() once and previousChats() for each chat pane.
 * Every value from the server is set as text (CipherdeskUI.h / rich), never as HTML. */
import { api, fmtDate, t, I18N } from './common.js';

const { h, clear, clock, rich } = window.CipherdeskUI;

const H = { view: null, workspace: null, results: null, csat: null, transcript: null,
  form: null, next: null, more: null, status: null, can: () => false, fileBody: null };

/* "★★★★☆" plus the number, with a label screen readers read. */
function stars(csat) {
  if (csat === null || csat === undefined) return h('span', { class: 'csat none muted', text: t('history.no_rating') });
  const n = Math.max(0, Math.min(5, csat));
  return h('span', { class: 'csat', 'data-csat': String(n), title: t('history.rating', { n }), 'aria-label': t('history.rating', { n }) },
    '★'.repeat(n) + '☆'.repeat(5 - n));
}

/* The date inputs give local days; the API wants seconds since 1970. */
function dayStart(value) { return value ? String(new Date(value + 'T00:00:00').getTime() / 1000) : ''; }
function dayEnd(value) { return value ? String(new Date(value + 'T00:00:00').getTime() / 1000 + 86400) : ''; }

function query(extra) {
  const f = H.form.elements;
  const params = new URLSearchParams();
  const put = (k, v) => { if (v) params.set(k, v); };
  put('closed_from', dayStart(f.from.value));
  put('closed_to', dayEnd(f.to.value));
  put('queue', f.queue.value);
  put('agent', f.agent ? f.agent.value : '');
  put('csat', f.csat.value);
  put('q', f.q.value.trim());
  for (const [k, v] of Object.entries(extra || {})) put(k, v);
  return '/api/history/chats?' + params.toString();
}

function row(chat, onOpen) {
  return h('li', { class: 'history-item', 'data-chat': chat.id },
    h('div', { class: 'history-main' },
      h('strong', { class: 'history-customer', text: chat.customer || t('history.anonymous') }),
      h('span', { class: 'muted small', text: ' · ' + fmtDate(chat.closed_at) + ' · ' + t('console.meta_queue', { queue: chat.queue }) }),
      chat.agent_name ? h('span', { class: 'muted small', text: ' · ' + chat.agent_name }) : null),
    stars(chat.csat),
    h('button', { class: 'btn small', type: 'button', onclick: () => onOpen(chat.id) }, t('history.open')));
}

async function search(append) {
  H.status.textContent = t('history.loading');
  let data;
  try {
    data = await api('GET', query(append && H.next ? { before: H.next } : null));
  } catch (e) {
    H.status.textContent = e.message;
    return;
  }
  if (!append) clear(H.results);
  for (const chat of data.chats) H.results.append(row(chat, openTranscript));
  H.next = data.next;
  H.more.hidden = !data.next;
  H.status.textContent = H.results.children.length ? t('history.count', { count: I18N.number(H.results.children.length) }) : t('history.empty');
  clear(H.csat);
  for (const r of data.csat) {
    H.csat.append(h('tr', {},
      h('td', { text: r.agent_name || r.agent }),
      h('td', { class: 'num', text: I18N.number(r.average) }),
      h('td', { class: 'num', text: I18N.number(r.rated) })));
  }
  H.csat.closest('table').hidden = !data.csat.length;
}

async function openTranscript(chatId) {
  show(true);
  const box = clear(H.transcript);
  H.transcript.hidden = false;
  H.list.hidden = true;
  const back = h('button', { class: 'btn small', type: 'button', onclick: () => { H.transcript.hidden = true; H.list.hidden = false; } }, t('history.back'));
  box.append(back);
  let data;
  try {
    data = await api('GET', '/api/history/chats/' + encodeURIComponent(chatId));
  } catch (e) {
    box.append(h('p', { class: 'error', role: 'alert', text: e.code === 'approval_required' ? t('history.needs_approval') : e.message }));
    return;
  }
  const c = data.chat;
  box.append(
    h('h2', { class: 'chat-title', text: c.customer || t('history.anonymous') }),
    h('p', { class: 'chat-meta muted small' },
      t('history.closed_at', { when: fmtDate(c.closed_at) }) + ' · ' + t('console.meta_queue', { queue: c.queue }) +
      (c.agent_name ? ' · ' + t('console.meta_agent', { name: c.agent_name }) : '') + ' · ', stars(c.csat)),
    h('p', { class: 'hint', text: t('history.read_only') }));
  const log = h('div', { class: 'log history-log', role: 'log', 'aria-label': t('common.conversation'), tabindex: '0' });
  for (const m of data.messages) {
    if (m.sender === 'system') { log.append(h('p', { class: 'sys', text: m.text })); continue; }
    const who = m.sender === 'customer' ? (c.customer || t('history.anonymous')) : (m.agent || t('common.agent'));
    log.append(h('div', { class: 'msg ' + (m.sender === 'customer' ? 'them' : 'agent') },
      m.file && H.fileBody ? H.fileBody(chatId, m.file) :
        rich(h('span', { class: 'text' }), m.e2e ? t('console.e2e.history_message') : m.text),
      h('span', { class: 'meta' }, h('span', { class: 'who', text: who }), h('span', { class: 'time', text: clock(m.ts) }))));
  }
  if (!data.messages.length) log.append(h('p', { class: 'sys', text: t('history.no_messages') }));
  box.append(log);
}

function show(on) {
  H.view.hidden = !on;
  H.workspace.classList.toggle('show-history', on);
  H.toggle.setAttribute('aria-pressed', on ? 'true' : 'false');
}

async function fillSelects() {
  let team;
  try { team = await api('GET', '/api/team'); } catch (e) { return; }
  const f = H.form.elements;
  for (const q of team.queues) f.queue.append(h('option', { value: q.name, text: q.name }));
  if (f.agent) for (const a of team.agents) f.agent.append(h('option', { value: a.id, text: a.name }));
}

/* Once per console shell: a "History" button in the top bar and the view in the workspace.
 * `fileBody(chatId, file)` draws a transcript's attachment (the console fetches its bytes
 * over the socket, as for an open chat). */
export function mountHistory(topbar, workspace, canAll, fileBody) {
  H.workspace = workspace;
  H.fileBody = fileBody || null;
  H.toggle = h('button', { class: 'btn ghost', type: 'button', id: 'history-toggle', 'aria-pressed': 'false',
    onclick: () => { const on = H.view.hidden; show(on); if (on && !H.loaded) { H.loaded = true; search(false); } } }, t('history.title'));
  topbar.insertBefore(H.toggle, topbar.querySelector('.spacer').nextSibling);
  const field = (label, input) => h('label', { class: 'history-field' }, h('span', { text: label }), input);
  const csat = h('select', { name: 'csat' }, h('option', { value: '', text: t('history.any') }),
    [5, 4, 3, 2, 1].map((n) => h('option', { value: String(n), text: t('history.rating', { n }) })));
  H.form = h('form', { class: 'history-filters', role: 'search', onsubmit: (ev) => { ev.preventDefault(); search(false); } },
    field(t('history.search'), h('input', { name: 'q', type: 'search', maxlength: '200', placeholder: t('history.search_hint') })),
    field(t('history.from'), h('input', { name: 'from', type: 'date' })),
    field(t('history.to'), h('input', { name: 'to', type: 'date' })),
    field(t('history.queue'), h('select', { name: 'queue' }, h('option', { value: '', text: t('history.any') }))),
    canAll ? field(t('history.agent'), h('select', { name: 'agent' }, h('option', { value: '', text: t('history.any') }))) : null,
    field(t('history.csat'), csat),
    h('button', { class: 'btn primary', type: 'submit' }, t('history.apply')));
  H.results = h('ul', { class: 'list history-results', 'aria-label': t('history.results') });
  H.status = h('p', { class: 'muted small', role: 'status' });
  H.more = h('button', { class: 'btn small', type: 'button', hidden: true, onclick: () => search(true) }, t('history.more'));
  H.csat = h('tbody');
  const csatTable = h('table', { class: 'history-csat', hidden: true },
    h('caption', { text: t('history.csat_by_agent') }),
    h('thead', {}, h('tr', {}, h('th', { text: t('history.agent') }), h('th', { text: t('history.average') }), h('th', { text: t('history.rated') }))),
    H.csat);
  H.list = h('div', { class: 'history-list' }, H.form, csatTable, H.status, H.results, H.more);
  H.transcript = h('div', { class: 'history-transcript', hidden: true });
  H.view = h('section', { class: 'history-view', hidden: true, 'aria-label': t('history.title') },
    h('header', { class: 'chat-head' }, h('h2', { text: t('history.title') }),
      h('button', { class: 'btn small', type: 'button', onclick: () => show(false) }, t('history.close'))),
    H.list, H.transcript);
  workspace.append(H.view);
  fillSelects();
}

/* Under a chat's header: the same verified customer's previous closed chats. */
export async function previousChats(chatId, anchor) {
  let data;
  try {
    data = await api('GET', '/api/history/chats?limit=5&customer_of=' + encodeURIComponent(chatId));
  } catch (e) {
    return;
  }
  if (!data.chats.length || !anchor.isConnected) return;
  const list = h('ul', { class: 'previous-list' });
  for (const chat of data.chats) {
    list.append(h('li', {},
      h('button', { type: 'button', class: 'link-btn', onclick: () => openTranscript(chat.id) }, fmtDate(chat.closed_at)),
      ' ', stars(chat.csat)));
  }
  anchor.after(h('div', { class: 'previous-chats small', 'aria-label': t('history.previous') },
    h('strong', { text: t('history.previous') + ': ' }), list));
}
