/* cipherdesk agent console: queue, several chats at once, transfer/close, canned
 * responses, supervisor view (all chats, watch, flags). Talks protocol v1 over
 * /ws/agent (same origin, HttpOnly session cookie) through the shared SecureSocket. */
import { api, whoami, loginForm, passwordForm, logout, toast, setUnauthenticatedHandler, setPasswordChangeHandler, fmtDate, t, I18N, languageMenu, passkeyGate } from './common.js';
import { alert as notify, setUnread, settingsPanel } from './notify.js';
// --- chat history (issue 16 item 5): the view lives in history.js ---
import { mountHistory, previousChats } from './history.js';

const P = window.CipherdeskProtocol;
const E = window.CipherdeskE2E;
const { h, clear, clock, duration, rich } = window.CipherdeskUI;
const Files = window.CipherdeskFiles;
const tickets = new Files.Tickets();  // upload/fetch tickets asked over the socket
const root = document.getElementById('app');

const DEFAULT_CANNED = [1, 2, 3, 4, 5].map((n) => t('console.canned_default.c' + n));

const S = {
  me: null,
  sock: null,
  ready: false,
  backoff: new P.Backoff(500, 10000),
  reconnect: null,
  queue: { chats: [], mine: [] },
  chats: new Map(),
  order: [],
  current: null,
  flags: new Map(),
  flagsBefore: null,
  canned: DEFAULT_CANNED.slice(),
  shared: [],
  endPolicy: null,    // the tenant's end policy engine (e2e chats): see setupDevice
  releaseTranscripts: false,  // the tenant lets agents release masked e2e transcripts
  dom: {},
  stopped: false,
  liveSince: Infinity,
  knownQueued: null,
  device: null,  // the certified e2e device key of this browser (issue 13), or null
  e2e: new Map(),  // chat id -> {keys: {epoch: key}, waiting: [msg], chain}; keys may come first
};

function can(permission) { return !!(S.me && S.me.permissions.includes(permission)); }
const isSupervisor = () => can('chat_watch');
/* Any of these opens a section of the admin page (a custom role may hold only one, such as
 * a quality analyst's quality_read): then the header links there. */
const ADMIN_PERMISSIONS = ['agent_manage', 'tenant_manage', 'policy_test', 'plugin_manage', 'quality_read', 'audit_read', 'emergency'];

/* ------------------------------------------------------------------ boot */

async function boot(message) {
  stop();
  let me = message ? null : await whoami().catch(() => null);
  if (!me) me = await loginForm(root, { title: t('console.login_title'), message });
  // An admin set this password, or the emergency panel forced a reset: the server
  // refuses everything else (403 / socket 4403) until the agent picks a new one.
  while (me.password_change_required) {
    await passwordForm(root, { forced: true });
    me = await whoami();
    if (!me) me = await loginForm(root, { title: t('console.login_title'), message: t('common.session_ended') });
  }
  // The tenant requires a passkey session (gateway/passkeys.py): enrol, then log in with it.
  while (me.passkey_gate) me = await passkeyGate(root, me, t('console.login_title'));
  S.me = me;
  S.stopped = false;
  renderShell();
  await setupDevice().catch(() => { S.device = null; });  // inspect chats work regardless
  connect();
  if (isSupervisor()) loadFlags();
  loadShared();
}

function stop() {
  S.stopped = true;
  clearTimeout(S.reconnect);
  if (S.sock) { S.sock.close('logout'); S.sock = null; }
  S.chats.clear();
  S.e2e.clear();
  S.order = [];
  S.current = null;
  S.flags.clear();
  S.flagsBefore = null;
  S.queue = { chats: [], mine: [] };
  S.knownQueued = null;
}

setUnauthenticatedHandler((msg) => { if (!S.stopped) boot(msg); });
setPasswordChangeHandler(() => { if (!S.stopped) boot(); });

/* The agent's own change-password form in place of the console; back to it afterwards. */
async function changePassword() {
  stop();
  await passwordForm(root, { forced: false });
  boot();
}

/* ------------------------------------------------------------------ layout */

function renderShell() {
  const d = S.dom;
  d.conn = h('span', { class: 'pill', role: 'status', text: t('common.connecting') });
  d.service = h('span', { class: 'pill bad', hidden: true, text: t('console.service_paused_pill') });
  d.e2e = h('span', { class: 'pill', id: 'e2e-device', hidden: true });
  d.queueList = h('ul', { class: 'list', 'aria-label': t('console.waiting_chats') });
  d.queueCount = h('span', { class: 'count', text: '0' });
  d.mineList = h('ul', { class: 'list tabs', 'aria-label': t('console.my_chats') });
  d.activeList = h('ul', { class: 'list', 'aria-label': t('console.all_active') });
  d.flagList = h('ul', { class: 'list', 'aria-label': t('console.flagged_messages') });
  d.cannedList = h('ul', { class: 'canned-list' });
  d.workspace = h('main', { class: 'workspace', id: 'workspace' });
  d.empty = h('div', { class: 'empty' },
    h('h2', { text: t('console.no_chat_selected') }),
    h('p', { class: 'muted', text: t('console.no_chat_hint') }));
  d.workspace.appendChild(d.empty);

  const cannedInput = h('input', { id: 'canned-new', placeholder: t('console.new_canned'), 'aria-label': t('console.new_canned'), maxlength: '500' });
  const cannedForm = h('form', { class: 'inline-form', onsubmit: (ev) => {
    ev.preventDefault();
    const text = cannedInput.value.trim();
    if (text) { S.canned.push(text); cannedInput.value = ''; renderCanned(); }
  } }, cannedInput, h('button', { class: 'btn small', type: 'submit' }, t('common.add')));

  const sidebar = h('aside', { class: 'sidebar' },
    h('section', { class: 'side-block' },
      h('h2', {}, t('console.queue') + ' ', d.queueCount), d.queueList),
    h('section', { class: 'side-block' }, h('h2', { text: t('console.my_chats') }), d.mineList),
    isSupervisor() ? h('section', { class: 'side-block', id: 'supervisor' },
      h('h2', { text: t('console.all_active') }), d.activeList) : null,
    isSupervisor() ? h('section', { class: 'side-block', id: 'flags' },
      h('h2', { text: t('console.flags') }), d.flagList) : null,
    h('details', { class: 'side-block' }, h('summary', { text: t('console.canned') }),
      h('p', { class: 'hint', text: t('console.canned_hint') }), d.cannedList, cannedForm),
    settingsPanel());

  const me = S.me.agent;
  const top = h('header', { class: 'topbar' },
    h('a', { class: 'brand', href: '/console', text: 'cipherdesk' }),
    h('span', { class: 'muted', text: t('console.console') }),
    h('span', { class: 'spacer' }),
    d.conn,
    d.service,
    d.e2e,
    h('span', { class: 'who', title: t('console.your_id', { id: me.id }) }, me.display_name || me.email,
      h('span', { class: 'role', text: me.custom_role || t('common.roles.' + S.me.role, { defaultValue: S.me.role }) })),
    languageMenu(),
    ADMIN_PERMISSIONS.some(can) ? h('a', { class: 'btn ghost', href: '/admin', text: t('common.admin') }) : null,
    h('a', { class: 'btn ghost', href: '/admin#sessions', id: 'my-sessions-link', text: t('admin.nav.sessions') }),
    h('button', { class: 'btn ghost', type: 'button', id: 'change-password', onclick: changePassword }, t('common.pw.title')),
    h('button', { class: 'btn ghost', type: 'button', onclick: async () => { stop(); await logout(); boot(t('common.logged_out')); } }, t('common.log_out')));

  clear(root).append(top, h('div', { class: 'layout' }, sidebar, d.workspace));
  mountHistory(top, d.workspace, can('transcript_read'), (chatId, file) => fileBody({ id: chatId }, file));  // chat history (history.js)
  renderCanned();
  renderQueue();
}

function setConn(text, kind) {
  S.dom.conn.textContent = text;
  S.dom.conn.className = 'pill ' + (kind || '');
}

/* ------------------------------------------------------------------ socket */

function connect() {
  if (S.stopped || S.sock) return;
  const device = S.device ? '?device=' + encodeURIComponent(S.device.id) : '';
  const url = location.origin.replace(/^http/, 'ws') + '/ws/agent' + device;
  S.ready = false;
  S.sock = new P.SecureSocket(url, {
    // echo: false -- our own replies are on the page already (sendReply); the ack carries
    // their seq and time, and only a reply the policy changed comes back (masked).
    keyExtra: () => ({ echo: false, queue_updates: true }),
    onready: () => setConn(t('console.conn.connected'), 'ok'),
    onframe: onFrame,
    onclose: (info) => {
      S.sock = null;
      S.ready = false;
      tickets.failAll();
      if (S.stopped) return;
      // Another session of this agent changed its password, authenticator or recovery codes.
      if (info.code === 4401 && info.reason === 'credentials changed') { boot(t('console.credentials_changed')); return; }
      if (info.code === 4401) { boot(t('common.session_ended')); return; }
      if (info.code === 4403) {
        setConn(t('console.conn.refused'), 'bad');
        // Refused because a password change is now required: show the form.
        whoami().then((me) => { if (me && (me.password_change_required || me.passkey_gate)) boot(); else toast(t('console.refused'), 'bad'); }, () => toast(t('console.refused'), 'bad'));
        return;
      }
      setConn(t('common.reconnecting'), 'warn');
      for (const chat of S.chats.values()) chat.resync = true;
      let delay = S.backoff.next();
      const hint = P.retryAfter(info.reason);
      if (hint !== null) delay = Math.max(delay, hint * 1000);
      S.reconnect = setTimeout(connect, delay);
    },
  });
}

function send(frame) {
  if (S.sock && S.ready && S.sock.send(frame)) return true;
  toast(t('console.not_connected'), 'bad');
  return false;
}

setInterval(() => { if (S.sock && S.ready) S.sock.send({ t: 'ping' }); }, 30000);

function onFrame(f) {
  if ((f.t === 'upload' || f.t === 'file' || f.t === 'error') && tickets.settle(f)) return;
  switch (f.t) {
    case 'ready':
      S.ready = true;
      S.liveSince = Date.now();
      S.backoff.reset();
      setConn(t('console.conn.online'), 'ok');
      for (const chat of S.chats.values()) {
        if (chat.mode === 'watch' && !chat.closed) S.sock.send({ t: 'watch', chat: chat.id });
      }
      break;
    case 'queue': onQueue(f); break;
    case 'queue_update': onQueueUpdate(f); break;
    case 'msg': onMsg(f); break;
    case 'ack': onAck(f); break;
    case 'notice': onNotice(f); break;
    case 'typing': onTyping(f); break;
    case 'chat': onChatEvent(f); break;
    case 'flag': onFlag(f); break;
    case 'note': onNote(f); break;
    case 'error': onError(f); break;
    case 'service': onService(f); break;
    case 'ckeys': onChatKeys(f); break;
    case 'reported': onReported(f); break;
    default: break;
  }
}

/* ------------------------------------------------------------------ queue */

/* New waiting chats (not the ones already there when the console connected) alert. */
function alertNewChats() {
  const waiting = S.queue.chats.filter((e) => e.state === 'queued');
  if (S.knownQueued) {
    for (const e of waiting) {
      if (!S.knownQueued.has(e.chat)) notify('chat', customerName(e), 'queue-' + e.chat, () => {});
    }
  }
  S.knownQueued = new Set(waiting.map((e) => e.chat));
}

function onQueue(f) {
  S.queue = { chats: f.chats || [], mine: f.mine || [], unlisted: f.waiting_unlisted || 0 };
  alertNewChats();
  for (const entry of S.queue.mine) {
    const existed = S.chats.has(entry.chat);
    const chat = ensureChat(entry.chat, 'mine', entry);
    if (chat.mode === 'watch') chat.mode = 'mine';
    if (!existed || chat.resync) {
      chat.resync = false;
      S.sock.send({ t: 'history', chat: chat.id, after_seq: chat.lastSeq });
      for (const p of chat.pending.values()) {
        if (p.sealing && !p.frame) continue;  // an e2e reply still being sealed: sent when ready
        S.sock.send(p.frame || { t: 'msg', chat: chat.id, id: p.id, text: p.text });
      }
    }
  }
  for (const entry of [...S.queue.chats, ...S.queue.mine]) {
    const chat = S.chats.get(entry.chat);
    if (chat) { chat.info = entry; renderChatHeader(chat); }
  }
  renderQueue();
}

/* A queue_update carries only what changed: an entry takes its (new) list, a chat in
   "gone" leaves both; the result is handled as a whole snapshot would be. */
function onQueueUpdate(f) {
  const changed = new Set((f.chats || []).concat(f.mine || []).map((e) => e.chat).concat(f.gone || []));
  const kept = (list) => list.filter((e) => !changed.has(e.chat));
  onQueue({ chats: kept(S.queue.chats).concat(f.chats || []), mine: kept(S.queue.mine).concat(f.mine || []),
    waiting_unlisted: f.waiting_unlisted });
}

function customerName(info) {
  return (info && info.name) || t('console.visitor');
}

function verifiedBadge(verified) {
  return h('span', { class: 'tag ' + (verified ? 'verified' : 'unverified'),
    title: verified ? t('console.verified_title') : t('console.unverified_title'),
    text: verified ? '✔ ' + t('console.verified') : t('console.unverified') });
}

function renderQueue() {
  const d = S.dom;
  if (!d.queueList) return;
  const queued = S.queue.chats.filter((e) => e.state === 'queued')
    .sort((a, b) => a.waiting_since - b.waiting_since);
  // Chats the helpdesk marked handled no longer count as waiting: listed after the rest.
  const waiting = queued.filter((e) => !e.handled);
  // Each queue lists its longest-waiting customers only; the gateway counts the rest.
  const unlisted = S.queue.unlisted || 0;
  d.queueCount.textContent = I18N.number(waiting.length + unlisted);
  clear(d.queueList);
  if (!waiting.length && !unlisted) d.queueList.appendChild(h('li', { class: 'none', text: t('console.nobody_waiting') }));
  for (const e of waiting.concat(queued.filter((x) => x.handled))) {
    d.queueList.appendChild(h('li', { class: 'queue-item' + (e.handled ? ' handled' : ''), 'data-chat': e.chat },
      h('div', { class: 'qi-main' },
        h('strong', { text: customerName(e) }), ' ', verifiedBadge(e.verified), handledBadge(e.handled),
        h('div', { class: 'muted small' }, e.topic ? e.topic + ' · ' : '', e.queue, ' · ' + t('console.waiting') + ' ',
          h('span', { class: 'since', 'data-since': String(e.waiting_since), text: duration(Date.now() / 1000 - e.waiting_since) }))),
      h('button', { class: 'btn small primary', type: 'button', 'aria-label': t('console.accept_with', { name: customerName(e) }),
        onclick: () => accept(e.chat) }, t('console.accept'))));
  }
  if (unlisted) d.queueList.appendChild(h('li', { class: 'none unlisted', text: t('console.waiting_unlisted', { count: unlisted }) }));
  renderMine();
  if (isSupervisor()) {
    const active = S.queue.chats.filter((e) => e.state === 'active');
    clear(d.activeList);
    if (!active.length) d.activeList.appendChild(h('li', { class: 'none', text: t('console.no_other_active') }));
    for (const e of active) {
      const watching = S.chats.has(e.chat) && S.chats.get(e.chat).mode === 'watch';
      d.activeList.appendChild(h('li', { class: 'queue-item', 'data-chat': e.chat },
        h('div', { class: 'qi-main' }, h('strong', { text: customerName(e) }), ' ', verifiedBadge(e.verified),
          h('div', { class: 'muted small', text: t('console.with_agent', { name: e.agent || '?' }) + (e.topic ? ' · ' + e.topic : '') })),
        h('button', { class: 'btn small', type: 'button', onclick: () => (watching ? select(e.chat) : watch(e.chat)) },
          watching ? t('console.open') : t('console.watch'))));
    }
  }
}

function renderMine() {
  const d = S.dom;
  setUnread([...S.chats.values()].reduce((n, c) => n + c.unread, 0));
  clear(d.mineList);
  const ids = S.order.filter((id) => S.chats.has(id));
  if (!ids.length) d.mineList.appendChild(h('li', { class: 'none', text: t('console.no_open_chats') }));
  for (const id of ids) {
    const chat = S.chats.get(id);
    const label = customerName(chat.info) + (chat.mode === 'watch' ? ' ' + t('console.watching') : '');
    const state = chat.closed ? t('console.state_closed') : (chat.removed ? t('console.state_transferred')
      : (chat.handled || (chat.info && chat.info.handled) ? t('console.state_handled') : ''));
    d.mineList.appendChild(h('li', {},
      h('button', { class: 'tab' + (S.current === id ? ' current' : ''), type: 'button', 'data-chat': id,
        'aria-current': S.current === id ? 'true' : null, onclick: () => select(id) },
        h('span', { class: 'tab-name', text: label }),
        state ? h('span', { class: 'tag muted-tag', text: state }) : null,
        chat.unread ? h('span', { class: 'unread', 'aria-label': t('console.unread', { count: chat.unread }), text: I18N.number(chat.unread) }) : null)));
  }
}

setInterval(() => {
  const now = Date.now() / 1000;
  document.querySelectorAll('.since').forEach((el) => {
    el.textContent = duration(now - parseFloat(el.getAttribute('data-since')));
  });
}, 1000);

/* ------------------------------------------------------------------ chats */

function ensureChat(id, mode, info) {
  let chat = S.chats.get(id);
  if (chat) { if (info) chat.info = info; return chat; }
  chat = { id, mode, info: info || S.queue.chats.concat(S.queue.mine).find((e) => e.chat === id) || null,
    lastSeq: 0, seqs: new Set(), bubbles: new Map(), pending: new Map(), unread: 0,
    opened: new Map(),  // e2e: seq -> {from, text} this console decrypted (for a release)
    closed: false, removed: false, resync: false, typingTimer: null, dom: {} };
  S.chats.set(id, chat);
  S.order.push(id);
  buildPane(chat);
  renderMine();
  if (!S.current) select(id);
  return chat;
}

function buildPane(chat) {
  const c = chat.dom;
  c.title = h('h2', { class: 'chat-title' });
  c.meta = h('div', { class: 'chat-meta muted small' });
  c.actions = h('div', { class: 'chat-actions' });
  c.log = h('div', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-label': t('common.conversation'), tabindex: '0' });
  c.typing = h('p', { class: 'typing', hidden: true, 'aria-live': 'polite' });
  c.input = h('textarea', { class: 'chat-input', rows: '2', maxlength: '4000', placeholder: t('console.reply_placeholder'), 'aria-label': t('console.reply') });
  c.canned = h('select', { class: 'canned', 'aria-label': t('console.insert_canned') });
  c.send = h('button', { class: 'btn primary', type: 'submit' }, t('common.send'));
  c.file = h('input', { type: 'file', accept: Files.ACCEPT, class: 'file-input', tabindex: '-1', 'aria-hidden': 'true',
    onchange: () => { const f = c.file.files && c.file.files[0]; c.file.value = ''; if (f) sendFile(chat, f); } });
  c.attach = h('button', { class: 'btn attach', type: 'button', title: t('common.file_attach'), 'aria-label': t('common.file_attach'),
    onclick: () => c.file.click() }, Files.icon('clip'));
  c.composer = h('form', { class: 'composer', onsubmit: (ev) => { ev.preventDefault(); sendReply(chat); } },
    c.canned, c.file, c.attach, c.input, c.send);
  c.input.addEventListener('paste', (ev) => {
    const pasted = ev.clipboardData && ev.clipboardData.files;
    if (pasted && pasted.length) { ev.preventDefault(); sendFile(chat, pasted[0]); }
  });
  c.input.addEventListener('keydown', (ev) => {
    // Tab after a shortcut ("/refund") expands it; otherwise Tab moves focus as usual.
    if (ev.key === 'Tab' && !ev.shiftKey && expandShortcut(chat, false)) { ev.preventDefault(); return; }
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); sendReply(chat); }
  });
  c.input.addEventListener('input', () => { expandShortcut(chat, true); agentTyping(chat); });
  c.canned.addEventListener('change', () => {
    const text = cannedText(chat, c.canned.value);
    if (text !== null) {
      c.input.value = (c.input.value ? c.input.value + ' ' : '') + text;
      c.canned.value = '';
      c.input.focus();
    }
  });
  c.transfer = buildTransferForm(chat);
  c.pane = h('section', { class: 'chat-pane', 'data-chat': chat.id, hidden: true, 'aria-label': t('console.chat') },
    h('header', { class: 'chat-head' }, h('div', { class: 'chat-head-text' }, c.title, c.meta), c.actions),
    c.transfer, c.log, c.typing, c.composer);
  S.dom.workspace.appendChild(c.pane);
  fillCanned(c.canned, chat);
  renderChatHeader(chat);
  if (chat.mode === 'mine') loadHelpdesk(chat);
  if (chat.mode === 'mine') previousChats(chat.id, c.meta);  // chat history (history.js)
}

/* The customer's records in the tenant's helpdesk (plugins' enrich hooks), shown under
 * the chat header. Every value is set as text. */
async function loadHelpdesk(chat) {
  let data;
  try {
    data = await api('GET', '/api/chats/' + encodeURIComponent(chat.id) + '/helpdesk');
  } catch (e) {
    return; // no helpdesk panel; the chat works the same
  }
  if (!data.helpdesk.length || !chat.dom) return;
  const box = h('div', { class: 'helpdesk small', 'aria-label': t('console.helpdesk.title') },
    h('strong', { text: t('console.helpdesk.title') + ': ' }));
  let count = 0;
  for (const source of data.helpdesk) {
    for (const ticket of source.open_tickets) {
      count += 1;
      const label = source.plugin + ' #' + ticket.id + (ticket.subject ? ' ' + ticket.subject : '') +
        (ticket.status ? ' (' + ticket.status + ')' : '');
      box.append(ticket.url ? h('a', { href: ticket.url, target: '_blank', rel: 'noopener noreferrer', text: label })
        : h('span', { text: label }), ' ');
    }
  }
  if (!count) box.append(h('span', { class: 'muted', text: t('console.helpdesk.none') }));
  chat.dom.meta.after(box);
}

/* The transfer picker: online colleagues and queues with their load (GET /api/team),
 * reloaded each time it opens. The gateway answers a refused transfer with an error
 * frame (ref = chat) that showTransferError() puts under the picker. */
const TRANSFER_ERRORS = ['unknown_agent', 'agent_offline', 'unknown_queue', 'bad_transfer', 'conflict', 'not_assigned'];

function buildTransferForm(chat) {
  const target = h('select', { class: 'transfer-target', id: 'transfer-' + chat.id, name: 'target' });
  const error = h('p', { class: 'form-error transfer-error', role: 'alert', hidden: true });
  const submit = h('button', { class: 'btn small primary', type: 'submit' }, t('console.transfer'));
  const showError = (text) => { error.textContent = text || ''; error.hidden = !text; };
  const refresh = async () => {
    showError('');
    clear(target).appendChild(h('option', { value: '', text: t('console.transfer_loading') }));
    let team;
    try { team = await api('GET', '/api/team'); } catch (e) { showError(e.message); return; }
    clear(target).appendChild(h('option', { value: '', text: t('console.transfer_choose') }));
    const agents = h('optgroup', { label: t('console.transfer_agents') });
    for (const a of team.agents) {
      const offline = a.online === false;
      agents.appendChild(h('option', { value: 'agent:' + a.id, disabled: offline,
        text: t(offline ? 'console.transfer_agent_offline' : 'console.transfer_agent_online',
          { name: a.name, count: a.active_chats }) }));
    }
    if (!team.agents.length) agents.appendChild(h('option', { value: '', disabled: true, text: t('console.transfer_no_agents') }));
    const queues = h('optgroup', { label: t('console.transfer_queues') },
      team.queues.map((q) => h('option', { value: 'queue:' + q.name,
        text: t('console.transfer_queue_load', { name: q.name, count: q.waiting }) })));
    target.append(agents, queues);
  };
  const form = h('form', { class: 'transfer inline-form', hidden: true, onsubmit: (ev) => {
    ev.preventDefault();
    const value = target.value;
    if (!value) { showError(t('console.transfer_need_target')); target.focus(); return; }
    const frame = { t: 'transfer', chat: chat.id };
    if (value.startsWith('agent:')) frame.to_agent = value.slice(6);
    else frame.to_queue = value.slice(6);
    showError('');
    send(frame);  // the chat's `removed` event closes the picker; an error frame fills `error`
  } }, h('label', { class: 'muted small', for: 'transfer-' + chat.id, text: t('console.transfer_to') }), target,
  submit,
  h('button', { class: 'btn small', type: 'button', onclick: () => { form.hidden = true; } }, t('common.cancel')),
  error);
  form.refresh = refresh;
  form.showError = showError;
  return form;
}

function toggleTransfer(chat) {
  const form = chat.dom.transfer;
  form.hidden = !form.hidden;
  if (!form.hidden) { form.refresh().then(() => form.querySelector('select').focus()); }
}

function renderChatHeader(chat) {
  const c = chat.dom;
  const info = chat.info || {};
  // CipherdeskUI.append skips nulls (Element.append would print "null").
  window.CipherdeskUI.append(clear(c.title), [customerName(info), ' ', verifiedBadge(!!info.verified),
    info.e2e ? h('span', { class: 'tag e2e-tag', title: t('console.e2e.chat_hint'), text: t('console.e2e.chat_tag') }) : null]);
  c.log.querySelectorAll('.who.cust').forEach((el) => { el.textContent = customerName(info); });
  clear(c.meta).append(
    info.topic ? t('console.meta_topic', { topic: info.topic }) + ' · ' : '',
    t('console.meta_queue', { queue: info.queue || 'default' }) + ' · ',
    chat.mode === 'watch' ? t('console.meta_agent', { name: info.agent || '?' }) + ' · ' : '',
    h('span', { class: 'mono', text: chat.id.slice(0, 8) }));
  clear(c.actions);
  const live = !chat.closed && !chat.removed;
  if (chat.mode === 'mine' && live) {
    if (info.e2e && S.releaseTranscripts) {
      c.release = c.release || h('input', { type: 'checkbox', class: 'release-transcript' });
      c.actions.append(h('label', { class: 'small release check', title: t('console.e2e.release_hint') },
        c.release, ' ', t('console.e2e.release')));
    }
    c.actions.append(
      h('button', { class: 'btn small', type: 'button', onclick: () => toggleTransfer(chat) }, t('console.transfer_button')),
      h('button', { class: 'btn small danger', type: 'button', onclick: () => closeChat(chat) }, t('console.close_chat')));
  } else if (chat.mode === 'watch' && live) {
    if (can('chat_takeover')) c.actions.append(h('button', { class: 'btn small', type: 'button', onclick: () => accept(chat.id) }, t('console.take_over')));
    c.actions.append(h('button', { class: 'btn small', type: 'button', onclick: () => unwatch(chat) }, t('console.stop_watching')));
  } else {
    c.actions.append(h('button', { class: 'btn small', type: 'button', onclick: () => dismiss(chat) }, t('console.dismiss')));
  }
  c.composer.hidden = chat.mode !== 'mine' || !live;
  if (!live || chat.mode !== 'mine') c.transfer.hidden = true;
}

function select(id) {
  const chat = S.chats.get(id);
  if (!chat) return;
  S.current = id;
  chat.unread = 0;
  S.dom.empty.hidden = true;
  for (const other of S.chats.values()) other.dom.pane.hidden = other.id !== id;
  renderMine();
  if (!chat.dom.composer.hidden) chat.dom.input.focus();
  chat.dom.log.scrollTop = chat.dom.log.scrollHeight;
}

function dismiss(chat) {
  if (chat.mode === 'watch' && !chat.closed) unwatch(chat);
  chat.dom.pane.remove();
  S.chats.delete(chat.id);
  S.order = S.order.filter((x) => x !== chat.id);
  if (S.current === chat.id) {
    S.current = null;
    const next = S.order[S.order.length - 1];
    if (next) select(next); else S.dom.empty.hidden = false;
  }
  renderMine();
  renderQueue();
}

function line(chat, text, kind) {
  chat.dom.log.appendChild(h('p', { class: 'sys' + (kind ? ' ' + kind : ''), text }));
  chat.dom.log.scrollTop = chat.dom.log.scrollHeight;
}

function bubble(chat, side, text, ts, who, file) {
  const el = h('div', { class: 'msg ' + side },
    file ? fileBody(chat, file) : rich(h('span', { class: 'text' }), text),
    h('span', { class: 'meta' }, who ? h('span', { class: 'who', text: who }) : null, h('span', { class: 'time', text: ts ? clock(ts) : '' })));
  chat.dom.log.appendChild(el);
  chat.dom.log.scrollTop = chat.dom.log.scrollHeight;
  return el;
}

/* A file message's body; its bytes come with a ticket asked over the socket. */
function fileBody(chat, file) {
  const body = Files.card(file, t, () => tickets
    .ask(file.id, () => !!(S.sock && S.ready && S.sock.send({ t: 'fetch', chat: chat.id, file: file.id })))
    .then((ticket) => {
      if (!file.record) return Files.download('', ticket, file.type, 'same-origin');
      const key = e2eOf(chat).keys[file.epoch];
      if (!key) throw new Files.FileError(0, 'no_key');
      return Files.downloadSealed('', ticket, key, file, 'same-origin');
    }));
  body.classList.add('text');
  return body;
}

/* Send a file into a chat: a ticket over the sealed socket, the sealed bytes over HTTP;
 * the stored message comes back through the socket like a reply. */
function sendFile(chat, file) {
  if (chat.closed || chat.removed || chat.mode !== 'mine') return;
  // An e2e chat is sealed here even before its keys arrive (then refused: no_key), so its
  // file's name never reaches the gateway.
  const sealed = !!(chat.info && chat.info.e2e) || Object.keys(e2eOf(chat).keys).length > 0;
  if (sealed && !S.device) { toast(t('server.error.e2e_device_required'), 'warn'); return; }
  const id = P.newId();
  const el = bubble(chat, 'me', '', Date.now() / 1000, t('console.you'));
  el.cdFile = file;
  el.replaceChild(h('span', { class: 'text file pending' },
    h('span', { class: 'file-name', text: file.name }),
    h('span', { class: 'file-size', text: ' · ' + Files.size(file.size) }),
    h('span', { class: 'file-status', role: 'status', text: t('common.file_uploading') })), el.querySelector('.text'));
  chat.bubbles.set(id, el);
  tick(el, 'sending');
  const name = (file.name || 'file').slice(0, 255);
  file.arrayBuffer()
    .then((buf) => (sealed ? sendSealedFile(chat, id, el, name, new Uint8Array(buf)) : tickets
      .ask(id, () => !!(S.sock && S.ready && S.sock.send({ t: 'upload', chat: chat.id, id, size: buf.byteLength })))
      .then((ticket) => Files.upload('', ticket, name, new Uint8Array(buf), 'same-origin'))))
    .then((answer) => {
      if (!answer.e2e && el.getAttribute('data-state') !== 'stored') tick(el, 'stored');
      if (answer.notice) line(chat, CipherdeskNotices.text(answer.notice, 'agent') + ' [' + (answer.notice.kinds || []).join(', ') + ']', 'notice masked');
    }, (err) => {
      const status = el.querySelector('.file-status');
      if (status) status.textContent = '';
      tick(el, 'failed');
      line(chat, CipherdeskNotices.error({ code: err.code, message: err.message }) +
        (err.kinds && err.kinds.length ? ' [' + err.kinds.join(', ') + ']' : ''), 'notice blocked');
    });
}

/* End-to-end: this console sniffs the type, runs the tenant's end policy on the name,
 * draws images again without their metadata, seals the bytes under the newest chat key,
 * uploads them, then sends the sealed message naming them (pending until its ack). */
function sendSealedFile(chat, id, el, name, bytes) {
  const state = e2eOf(chat);
  const type = Files.sniff(bytes);
  if (!type) return Promise.reject(new Files.FileError(0, 'file_type'));
  if (!Object.keys(state.keys).length) return Promise.reject(new Files.FileError(0, 'no_key'));
  const decision = (S.endPolicy || CipherdeskPolicy.forTenant(null)).evaluate(name, 'agent');
  if (decision.action === 'block') return Promise.reject(new Files.FileError(0, 'blocked', '', decision.kinds));
  const epoch = Math.max(...Object.keys(state.keys).map(Number));
  const key = state.keys[epoch];
  return Files.withoutMetadata(bytes, type).then((clean) => {
    const body = E.sealFile(key, clean);
    return tickets.ask(id, () => !!(S.sock && S.ready && S.sock.send({ t: 'upload', chat: chat.id, id, size: body.length })))
      .then((ticket) => Files.upload('', ticket, '', body, 'same-origin'))
      .then((answer) => E.fileText(decision.text, type, clean).then((text) => {
        state.chain = state.chain
          .then(() => E.sealMessage(key, chat.id, 'agent:' + S.device.id, id, epoch, text))
          .then((s) => {
            const frame = { t: 'emsg', chat: chat.id, id, c: s.c, fc: s.fc, e: epoch, file: answer.file };
            const flagged = CipherdeskPolicy.flags(decision);
            if (flagged.length) frame.flags = flagged;
            chat.pending.set(id, { id, text: '', frame });
            if (S.sock && S.ready) S.sock.send(frame);
          });
        return state.chain.then(() => ({ e2e: true, notice: decision.action === 'mask' ? CipherdeskPolicy.notice(decision) : null }));
      }));
  });
}

function tick(el, state) {
  let mark = el.querySelector('.tick');
  if (!mark) { mark = h('span', { class: 'tick' }); el.querySelector('.meta').appendChild(mark); }
  const labels = { sending: ['🕓', t('tick.sending')], stored: ['✓✓', t('tick.stored')], failed: ['!', t('tick.failed')] };
  mark.textContent = labels[state][0];
  mark.title = labels[state][1];
  mark.setAttribute('aria-label', labels[state][1]);
  el.setAttribute('data-state', state);
  if (state === 'failed') offerFix(el);
}

/* A reply that was not delivered (blocked by policy, refused): edit it or try again. */
function offerFix(el) {
  const pane = el.closest('.chat-pane');
  if (el.querySelector('.fix') || !pane) return;
  const chat = S.chats.get(pane.getAttribute('data-chat'));
  if (el.cdFile) {  // a file that did not go: try it again
    el.appendChild(h('span', { class: 'fix' },
      h('button', { type: 'button', class: 'link-btn fix-retry', onclick: () => { el.remove(); sendFile(chat, el.cdFile); } }, t('common.retry'))));
    return;
  }
  const text = el.querySelector('.text').textContent;
  const take = () => { el.remove(); chat.dom.input.value = text; };
  el.appendChild(h('span', { class: 'fix' },
    h('button', { type: 'button', class: 'link-btn fix-edit', onclick: () => { take(); chat.dom.input.focus(); } }, t('common.edit')),
    h('button', { type: 'button', class: 'link-btn fix-retry', onclick: () => { take(); sendReply(chat); } }, t('common.retry'))));
}

/* An internal note from the tenant's helpdesk: agents only, never sent to the customer. */
function onNote(f) {
  const chat = S.chats.get(f.chat);
  if (!chat) return;
  chat.notes = chat.notes || new Set();
  const key = f.plugin + '|' + f.id;
  if (chat.notes.has(key)) return; // history re-sends notes already shown
  chat.notes.add(key);
  const el = bubble(chat, 'note', f.text, f.ts, t('console.note_from', { name: f.agent }));
  el.setAttribute('aria-label', t('console.note_label'));
  el.insertBefore(h('span', { class: 'tag note-tag', text: t('console.note_tag') }), el.firstChild);
}

function handledBadge(handled) {
  return handled ? h('span', { class: 'tag handled-tag', title: t('console.handled_title'), text: t('console.state_handled') }) : null;
}

function onMsg(f) {
  const chat = S.chats.get(f.chat) || ensureChat(f.chat, 'mine');
  if (f.c && !f.opened) { openSealed(chat, f); return; }
  // An end-to-end file: its record is the (franked) text; the card shows the name.
  if (f.c && f.file && !f.file.record) f.file = Files.sealedFile(f);
  if (chat.seqs.has(f.seq)) return;
  chat.seqs.add(f.seq);
  chat.lastSeq = Math.max(chat.lastSeq, f.seq);
  if (f.c && f.fk) chat.opened.set(f.seq, { from: f.from, text: f.text });
  if (f.from === 'customer') {
    chat.dom.typing.hidden = true;
    const el = bubble(chat, 'them', f.text, f.ts, customerName(chat.info), f.file);
    el.querySelector('.who').classList.add('cust');
    if (f.fk) el.querySelector('.meta').appendChild(reportButton(chat, f));
  } else if (f.from === 'agent') {
    const own = f.id && chat.bubbles.get(f.id);
    if (own) {
      if (f.file) own.replaceChild(fileBody(chat, f.file), own.querySelector('.text'));
      else rich(own.querySelector('.text'), f.text);
      chat.pending.delete(f.id);
      tick(own, 'stored');
    } else {
      const mineText = f.agent && S.me && f.agent === (S.me.agent.display_name || S.me.agent.email);
      const el = bubble(chat, mineText && chat.mode === 'mine' ? 'me' : 'agent', f.text, f.ts, f.agent || t('common.agent'), f.file);
      if (f.id) chat.bubbles.set(f.id, el);
    }
  } else {
    line(chat, f.text);
  }
  if (S.current !== chat.id || document.hidden || !document.hasFocus()) {
    if (S.current !== chat.id || document.hidden) { chat.unread++; renderMine(); }
    // Live messages only: not the history replayed after (re)connecting.
    if (f.from === 'customer' && f.ts * 1000 >= S.liveSince - 2000) {
      notify('message', customerName(chat.info), 'chat-' + chat.id, () => select(chat.id));
    }
  }
}

function onAck(f) {
  const chat = S.chats.get(f.chat);
  if (!chat) return;
  chat.pending.delete(f.id);
  const el = chat.bubbles.get(f.id);
  if (el) tick(el, 'stored');
}

function onNotice(f) {
  const chat = S.chats.get(f.chat);
  if (!chat) { toast(CipherdeskNotices.text(f, 'agent'), 'warn'); return; }
  if (f.action === 'blocked') {
    chat.pending.delete(f.id);
    const el = chat.bubbles.get(f.id);
    if (el) tick(el, 'failed');
  }
  line(chat, CipherdeskNotices.text(f, 'agent') + (f.kinds && f.kinds.length ? ' [' + f.kinds.join(', ') + ']' : ''), 'notice ' + f.action);
}

function onTyping(f) {
  const chat = S.chats.get(f.chat);
  if (!chat || f.from !== 'customer') return;
  clearTimeout(chat.typingTimer);
  chat.dom.typing.textContent = t('widget.typing', { name: customerName(chat.info) });
  chat.dom.typing.hidden = !f.on;
  if (f.on) chat.typingTimer = setTimeout(() => { chat.dom.typing.hidden = true; }, 8000);
}

function onChatEvent(f) {
  if (f.event === 'assigned') {
    const chat = ensureChat(f.chat, 'mine');
    chat.mode = 'mine';
    chat.removed = false;
    chat.closed = false;
    line(chat, t('console.you_joined'));
    renderChatHeader(chat);
    select(chat.id);
    return;
  }
  if (f.event === 'handled') {
    for (const e of S.queue.chats.concat(S.queue.mine)) if (e.chat === f.chat) e.handled = true;
    renderQueue();
  }
  const chat = S.chats.get(f.chat);
  if (!chat) return;
  if (f.event === 'handled') {
    chat.handled = true;
    line(chat, t('console.handled_by', { name: f.agent || t('common.agent'), status: f.reason || '' }), 'handled');
  } else if (f.event === 'removed') {
    chat.removed = true;
    line(chat, f.reason === 'transferred' ? t('console.transferred_away') : t('console.no_longer_assigned'));
  } else if (f.event === 'joined' && f.reason !== 'watch') {
    line(chat, t('common.joined', { name: f.agent || t('common.an_agent') }));
  } else if (f.event === 'left') {
    line(chat, t('common.left', { name: f.agent || t('common.an_agent') }));
  } else if (f.event === 'closed') {
    chat.closed = true;
    chat.dom.typing.hidden = true;
    line(chat, f.reason === 'customer_left' ? t('console.customer_ended') : t('console.chat_closed', { reason: CipherdeskNotices.closeReason(f.reason) }));
  }
  renderChatHeader(chat);
  renderMine();
}

/* The tenant was frozen (customers cannot write) or unfrozen. */
function onService(f) {
  const paused = f.state === 'paused';
  S.dom.service.hidden = !paused;
  toast(paused ? t('console.service_paused') : t('console.service_live'), paused ? 'warn' : undefined);
}

function onError(f) {
  const chat = f.ref && S.chats.get(f.ref);
  const message = CipherdeskNotices.error(f);
  if (chat && TRANSFER_ERRORS.includes(f.code) && !chat.dom.transfer.hidden) chat.dom.transfer.showError(message);
  if (chat) line(chat, message, 'notice blocked');
  else {
    for (const c of S.chats.values()) {
      if (f.ref && c.bubbles.has(f.ref)) { tick(c.bubbles.get(f.ref), 'failed'); c.pending.delete(f.ref); line(c, message, 'notice blocked'); return; }
    }
    toast(message, 'bad');
  }
}

/* ------------------------------------------------------------------ actions */

function accept(id) {
  send({ t: 'accept', chat: id });
}

function watch(id) {
  const chat = ensureChat(id, 'watch');
  chat.mode = 'watch';
  renderChatHeader(chat);
  select(id);
  send({ t: 'watch', chat: id });
  renderQueue();
}

function unwatch(chat) {
  send({ t: 'unwatch', chat: chat.id });
  chat.closed = true;
  dismiss(chat);
}

function closeChat(chat) {
  const release = chat.dom.release;
  if (release && release.checked && chat.opened.size) { releaseAndClose(chat); return; }
  send({ t: 'close', chat: chat.id, reason: 'resolved' });
}

/* Close an e2e chat releasing a masked transcript to the helpdesk (a tenant option; the
 * agent ticks it per chat). Each text is masked here by the tenant's end policy, a blocked
 * one is left out; the gateway screens the rest once more for the helpdesk and audits the
 * release. An HTTP body, not a frame: a long transcript outgrows the frame limit. */
async function releaseAndClose(chat) {
  const policy = S.endPolicy || CipherdeskPolicy.forTenant(null);
  const lines = [];
  [...chat.opened.entries()].sort((a, b) => a[0] - b[0]).slice(-5000).forEach(([seq, m]) => {
    const d = policy.evaluate(m.text, m.from === 'agent' ? 'agent' : 'customer');
    if (d.text !== null) lines.push({ seq, text: d.text });
  });
  try {
    const out = await api('POST', '/api/e2e/chats/' + encodeURIComponent(chat.id) + '/close',
      { reason: 'resolved', release: lines });
    line(chat, t('console.e2e.released', { count: out.released }));
  } catch (e) {
    toast(t('console.e2e.release_failed', { reason: e.message || '' }), 'warn');
  }
}

function sendReply(chat) {
  const c = chat.dom;
  const text = c.input.value.replace(/\s+$/, '');
  if (!text.trim() || chat.closed || chat.removed) return;
  const id = P.newId();
  const el = bubble(chat, 'me', text, Date.now() / 1000, t('console.you'));
  chat.bubbles.set(id, el);
  chat.pending.set(id, { id, text });
  tick(el, 'sending');
  c.input.value = '';
  stopAgentTyping(chat);
  const state = e2eOf(chat);
  if (Object.keys(state.keys).length && S.device) {
    // An e2e chat: checked by the tenant's end policy, then sealed here under the newest
    // chat key, in order with the reading; the same ciphertext is re-sent after a reconnect
    // (same id: stored once).
    const entry = chat.pending.get(id);
    entry.sealing = true;
    const policy = S.endPolicy || CipherdeskPolicy.forTenant(null);
    // checked with the agent's last messages in this chat too (a number split across them)
    state.window = state.window || CipherdeskPolicyWindow.create();
    const decision = state.window.check(policy, 'agent', text, policy.evaluate(text, 'agent'));
    const shown = CipherdeskPolicy.notice(decision);
    if (decision.action === 'block') {
      chat.pending.delete(id);
      tick(el, 'failed');
      line(chat, CipherdeskNotices.text(shown, 'agent') + ' [' + decision.kinds.join(', ') + ']', 'notice blocked');
      return;
    }
    if (decision.text !== text) {
      entry.text = decision.text;
      el.replaceChild(rich(h('span', { class: 'text' }), decision.text), el.querySelector('.text'));
      line(chat, CipherdeskNotices.text(shown, 'agent') + ' [' + decision.kinds.join(', ') + ']', 'notice ' + shown.action);
    }
    const sealedText = decision.text;
    const epoch = Math.max(...Object.keys(state.keys).map(Number));
    state.chain = state.chain.then(() => E.sealMessage(state.keys[epoch], chat.id, 'agent:' + S.device.id, id, epoch, sealedText))
      .then((sealed) => {
        entry.frame = { t: 'emsg', chat: chat.id, id, c: sealed.c, fc: sealed.fc, e: epoch };
        const flagged = CipherdeskPolicy.flags(decision);
        if (flagged.length) entry.frame.flags = flagged;
        if (S.sock && S.ready) S.sock.send(entry.frame);
      })
      .catch(() => tick(el, 'failed'));
    return;
  }
  if (S.sock && S.ready) S.sock.send({ t: 'msg', chat: chat.id, id, text });
}

function agentTyping(chat) {
  if (!S.sock || !S.ready || chat.mode !== 'mine') return;
  if (!chat.typingOn) { chat.typingOn = true; S.sock.send({ t: 'typing', chat: chat.id, on: true }); }
  clearTimeout(chat.typingOff);
  chat.typingOff = setTimeout(() => stopAgentTyping(chat), 3000);
}

function stopAgentTyping(chat) {
  clearTimeout(chat.typingOff);
  if (chat.typingOn && S.sock && S.ready) S.sock.send({ t: 'typing', chat: chat.id, on: false });
  chat.typingOn = false;
}

/* ------------------------------------------------------------------ end-to-end (issue 13) */

/* This browser's device key: made on first use in an e2e tenant (private half kept in
 * IndexedDB, non-extractable where WebCrypto X25519 exists), registered with the gateway
 * and used once an admin certified it (cipherdesk e2e certify). */
async function setupDevice() {
  S.device = null;
  if (!E || !E.supported() || !window.indexedDB) return;
  const slot = S.me.agent.id;
  let mode = 'inspect';
  try {
    const settings = await api('GET', '/api/e2e');
    mode = settings.mode;
    // The tenant's end policy checks this console's replies in e2e chats (the gateway
    // cannot read them): the signed one if the tenant key verifies it, else the default.
    S.endPolicy = CipherdeskPolicy.forTenant(settings.policy, settings.verify_key, S.me.tenant && S.me.tenant.id);
    S.releaseTranscripts = !!settings.release_transcripts;
  } catch (e) { return; }
  let key = await E.DeviceKey.load(slot).catch(() => null);
  if (!key && mode !== 'e2e') return;
  const mine = (await api('GET', '/api/me/e2e/devices')).devices;
  let row = key && mine.find((d) => d.id === key.id && d.public_key === key.publicKey);
  if (!row || row.state === 'revoked') {
    key = await E.DeviceKey.generate();
    const name = (navigator.userAgentData && navigator.userAgentData.platform) || 'browser';
    row = (await api('POST', '/api/me/e2e/devices', { public_key: key.publicKey, name })).device;
    key.id = row.id;
    await key.save(slot);
  }
  const pill = S.dom.e2e;
  pill.hidden = false;
  if (row.state === 'certified') {
    S.device = key;
    pill.className = 'pill ok';
    pill.textContent = t('console.e2e.device_ready');
    pill.title = t('console.e2e.device_ready_hint', { fingerprint: row.fingerprint });
  } else {
    pill.className = 'pill warn';
    pill.textContent = t('console.e2e.device_pending');
    pill.title = t('console.e2e.device_pending_hint', { fingerprint: row.fingerprint });
    toast(t('console.e2e.device_pending_hint', { fingerprint: row.fingerprint }), 'warn');
  }
}

function e2eOf(chat) {
  const id = typeof chat === 'string' ? chat : chat.id;
  if (!S.e2e.has(id)) S.e2e.set(id, { keys: {}, waiting: [], chain: Promise.resolve() });
  return S.e2e.get(id);
}

function onChatKeys(f) {
  if (!S.device || f.device !== S.device.id) return;
  // Keys may arrive before the chat's pane exists (reconnect): kept by chat id.
  const state = e2eOf(f.chat);
  Promise.all(f.keys.map((k) => E.unwrapChatKey(k.k, S.device, f.chat, k.e)
    .then((key) => { state.keys[k.e] = key; }, () => {
      const chat = S.chats.get(f.chat);
      if (chat) line(chat, t('console.e2e.bad_key'), 'notice blocked'); else toast(t('console.e2e.bad_key'), 'bad');
    })))
    .then(() => {
      const waiting = state.waiting.splice(0);
      waiting.sort((a, b) => a.seq - b.seq).forEach((m) => onMsg(m));
    });
}

/* Open an e2e message in order; one whose key has not arrived yet waits for it. */
function openSealed(chat, f) {
  const state = e2eOf(chat);
  if (!state.keys[f.e]) {
    if (!state.waiting.some((m) => m.seq === f.seq)) state.waiting.push(f);
    return;
  }
  state.chain = state.chain
    .then(() => E.openMessage(state.keys[f.e], f, chat.id, E.senderOf(f)))
    .then((opened) => { f.text = opened.text; f.fk = opened.fk; }, () => { f.text = t('console.e2e.unreadable'); })
    .then(() => { f.opened = true; onMsg(f); });
}

/* Report an e2e message to the supervisors: revealing its text and franking key lets the
 * gateway verify that exactly this was sent, without having read it before. */
function reportButton(chat, f) {
  const button = h('button', { class: 'link-btn report', type: 'button', title: t('console.e2e.report_hint') }, t('console.e2e.report'));
  button.addEventListener('click', () => {
    if (!window.confirm(t('console.e2e.report_confirm'))) return;
    button.disabled = true;
    send({ t: 'report', chat: chat.id, seq: f.seq, text: f.text, fk: f.fk, gt: f.gt, reason: 'abuse' });
  });
  return button;
}

function onReported(f) {
  const chat = S.chats.get(f.chat);
  const text = f.verified ? t('console.e2e.reported') : t('console.e2e.report_failed');
  if (chat) line(chat, text, f.verified ? 'notice' : 'notice blocked'); else toast(text);
}

/* ------------------------------------------------------------------ canned */

/* Shared responses (GET /api/canned: the team's, with shortcuts and variables) come first,
 * then this tab's own. */
const clip = (text) => (text.length > 60 ? text.slice(0, 57) + '…' : text);

function sharedFor(chat) {
  const queue = (chat.info && chat.info.queue) || 'default';
  return S.shared.filter((r) => !r.queue || r.queue === queue);
}

/* {customer_name} and {agent_name} filled in for this chat. */
function fillVariables(chat, text) {
  const values = { customer_name: customerName(chat.info), agent_name: S.me.agent.display_name || t('common.agent') };
  return text.replace(/\{(customer_name|agent_name)\}/g, (m, name) => values[name]);
}

function cannedText(chat, value) {
  if (!value) return null;
  const [kind, index] = [value[0], Number(value.slice(2))];
  if (kind === 's') { const r = sharedFor(chat)[index]; return r ? fillVariables(chat, r.text) : null; }
  return S.canned[index] ?? null;
}

/* "/refund" + space (or Tab) becomes the shared response; the queue's own one wins. */
function expandShortcut(chat, needsSpace) {
  const input = chat.dom.input;
  const m = /^(\/[a-z0-9_-]{1,32})([ \u00a0])?$/.exec(input.value);
  if (!m || (needsSpace && !m[2])) return false;
  const queue = (chat.info && chat.info.queue) || 'default';
  const hits = sharedFor(chat).filter((r) => r.shortcut === m[1]);
  const hit = hits.find((r) => r.queue === queue) || hits[0];
  if (!hit) return false;
  input.value = fillVariables(chat, hit.text);
  input.setSelectionRange(input.value.length, input.value.length);
  return true;
}

function fillCanned(select, chat) {
  clear(select).appendChild(h('option', { value: '', text: t('console.canned_pick') }));
  const shared = sharedFor(chat);
  if (shared.length) {
    select.appendChild(h('optgroup', { label: t('console.canned_team') },
      shared.map((r, i) => h('option', { value: 's:' + i, text: r.shortcut + ' — ' + clip(r.text) }))));
  }
  const own = S.canned.map((text, i) => h('option', { value: 'l:' + i, text: clip(text) }));
  if (own.length) select.appendChild(h('optgroup', { label: t('console.canned_mine') }, own));
}

async function loadShared() {
  try {
    S.shared = (await api('GET', '/api/canned')).responses;
    renderCanned();
  } catch (e) { /* the tab's own responses still work */ }
}

function renderCanned() {
  const list = clear(S.dom.cannedList);
  S.canned.forEach((text, i) => list.appendChild(h('li', {},
    h('span', { text }),
    h('button', { class: 'btn tiny', type: 'button', 'aria-label': t('console.remove_canned', { n: i + 1 }),
      onclick: () => { S.canned.splice(i, 1); renderCanned(); } }, '×'))));
  for (const chat of S.chats.values()) fillCanned(chat.dom.canned, chat);
}

/* ------------------------------------------------------------------ supervisor */

/* Flags come a page at a time, newest first: customers make them, so a tenant may hold
   more than a console can list. S.flagsBefore: where the next (older) page starts. */
async function loadFlags(before) {
  try {
    const data = await api('GET', '/api/flags' + (before ? '?before=' + encodeURIComponent(before) : ''));
    for (const f of data.flags) S.flags.set(f.id, f);
    S.flagsBefore = data.next_before || null;
    renderFlags();
  } catch (e) { if (e.status !== 401) toast(t('console.flags') + ': ' + e.message, 'bad'); }
}

function onFlag(f) {
  S.flags.set(f.flag_id, { id: f.flag_id, chat: f.chat, seq: f.seq, kinds: f.kinds, created_at: Date.now() / 1000 });
  renderFlags();
  toast(t('console.flagged_toast', { kinds: f.kinds.join(', ') }), 'warn');
}

function renderFlags() {
  const list = S.dom.flagList;
  if (!list) return;
  clear(list);
  const flags = [...S.flags.values()].sort((a, b) => b.id - a.id);
  if (!flags.length) list.appendChild(h('li', { class: 'none', text: t('console.no_flags') }));
  for (const f of flags) {
    const original = h('p', { class: 'original', hidden: true });
    const btn = h('button', { class: 'btn small', type: 'button', onclick: async () => {
      btn.disabled = true;
      try {
        const data = await api('GET', `/api/flags/${encodeURIComponent(f.id)}/original`);
        original.textContent = data.e2e ? t('console.e2e.flag_no_original') : data.original;
        original.hidden = false;
        btn.textContent = t('console.shown_audited');
      } catch (e) { btn.disabled = false; toast(e.message, 'bad'); }
    } }, t('console.show_original'));
    list.appendChild(h('li', { class: 'flag-item', 'data-flag': String(f.id) },
      h('div', {}, h('strong', { text: (f.kinds || []).join(', ') || t('console.flag') }),
        h('span', { class: 'muted small', text: ' · ' + t('console.chat_ref', { chat: f.chat.slice(0, 8), seq: f.seq }) + (f.created_at ? ' · ' + fmtDate(f.created_at) : '') })),
      h('p', { class: 'hint', text: t('console.original_audited') }), btn, original));
  }
  if (S.flagsBefore) {
    const older = h('button', { class: 'btn small', type: 'button', onclick: () => {
      older.disabled = true;
      loadFlags(S.flagsBefore);
    } }, t('console.older_flags'));
    list.appendChild(h('li', { class: 'more' }, older));
  }
}

boot();
