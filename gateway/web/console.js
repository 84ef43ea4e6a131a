/* cipherdesk agent console: queue, several chats at once, transfer/close, canned
 * responses, supervisor view (all chats, watch, flags). Talks protocol v1 over
 * /ws/agent (same origin, HttpOnly session cookie) through the shared SecureSocket. */
import { api, whoami, loginForm, logout, toast, setUnauthenticatedHandler, fmtDate } from './common.js';

const P = window.CipherdeskProtocol;
const { h, clear, clock, duration } = window.CipherdeskUI;
const root = document.getElementById('app');

const DEFAULT_CANNED = [
  'Hello! Thanks for reaching out — how can I help you today?',
  'Let me check that for you, one moment please.',
  'For your security, please never share passwords or full card numbers in chat.',
  'Is there anything else I can help you with?',
  'Thank you for contacting us. Have a great day!',
];

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
  canned: DEFAULT_CANNED.slice(),
  agents: [],
  dom: {},
  stopped: false,
};

function can(permission) { return !!(S.me && S.me.permissions.includes(permission)); }
const isSupervisor = () => can('chat_watch');

/* ------------------------------------------------------------------ boot */

async function boot(message) {
  stop();
  let me = message ? null : await whoami().catch(() => null);
  if (!me) me = await loginForm(root, { title: 'cipherdesk console', message });
  S.me = me;
  S.stopped = false;
  renderShell();
  connect();
  if (isSupervisor()) loadFlags();
  if (can('agent_manage')) loadAgents();
}

function stop() {
  S.stopped = true;
  clearTimeout(S.reconnect);
  if (S.sock) { S.sock.close('logout'); S.sock = null; }
  S.chats.clear();
  S.order = [];
  S.current = null;
  S.flags.clear();
  S.queue = { chats: [], mine: [] };
}

setUnauthenticatedHandler((msg) => { if (!S.stopped) boot(msg); });

/* ------------------------------------------------------------------ layout */

function renderShell() {
  const d = S.dom;
  d.conn = h('span', { class: 'pill', role: 'status', text: 'Connecting…' });
  d.queueList = h('ul', { class: 'list', 'aria-label': 'Waiting chats' });
  d.queueCount = h('span', { class: 'count', text: '0' });
  d.mineList = h('ul', { class: 'list tabs', 'aria-label': 'My chats' });
  d.activeList = h('ul', { class: 'list', 'aria-label': 'All active chats' });
  d.flagList = h('ul', { class: 'list', 'aria-label': 'Flagged messages' });
  d.cannedList = h('ul', { class: 'canned-list' });
  d.workspace = h('main', { class: 'workspace', id: 'workspace' });
  d.empty = h('div', { class: 'empty' },
    h('h2', { text: 'No chat selected' }),
    h('p', { class: 'muted', text: 'Accept a waiting chat from the queue, or pick one of your chats.' }));
  d.workspace.appendChild(d.empty);

  const cannedInput = h('input', { id: 'canned-new', placeholder: 'New canned response', maxlength: '500' });
  const cannedForm = h('form', { class: 'inline-form', onsubmit: (ev) => {
    ev.preventDefault();
    const text = cannedInput.value.trim();
    if (text) { S.canned.push(text); cannedInput.value = ''; renderCanned(); }
  } }, cannedInput, h('button', { class: 'btn small', type: 'submit' }, 'Add'));

  const sidebar = h('aside', { class: 'sidebar' },
    h('section', { class: 'side-block' },
      h('h2', {}, 'Queue ', d.queueCount), d.queueList),
    h('section', { class: 'side-block' }, h('h2', { text: 'My chats' }), d.mineList),
    isSupervisor() ? h('section', { class: 'side-block', id: 'supervisor' },
      h('h2', { text: 'All active chats' }), d.activeList) : null,
    isSupervisor() ? h('section', { class: 'side-block', id: 'flags' },
      h('h2', { text: 'Flags' }), d.flagList) : null,
    h('details', { class: 'side-block' }, h('summary', { text: 'Canned responses' }),
      h('p', { class: 'hint', text: 'Kept in this tab only.' }), d.cannedList, cannedForm));

  const me = S.me.agent;
  const top = h('header', { class: 'topbar' },
    h('a', { class: 'brand', href: '/console', text: 'cipherdesk' }),
    h('span', { class: 'muted', text: 'Console' }),
    h('span', { class: 'spacer' }),
    d.conn,
    h('span', { class: 'who', title: 'Your agent id: ' + me.id }, me.display_name || me.email,
      h('span', { class: 'role', text: S.me.role })),
    can('agent_manage') || can('audit_read') ? h('a', { class: 'btn ghost', href: '/admin', text: 'Admin' }) : null,
    h('button', { class: 'btn ghost', type: 'button', onclick: async () => { stop(); await logout(); boot('You are logged out.'); } }, 'Log out'));

  clear(root).append(top, h('div', { class: 'layout' }, sidebar, d.workspace));
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
  const url = location.origin.replace(/^http/, 'ws') + '/ws/agent';
  S.ready = false;
  S.sock = new P.SecureSocket(url, {
    onready: () => setConn('Connected', 'ok'),
    onframe: onFrame,
    onclose: (info) => {
      S.sock = null;
      S.ready = false;
      if (S.stopped) return;
      if (info.code === 4401) { boot('Your session has ended. Please log in again.'); return; }
      if (info.code === 4403) { setConn('Refused', 'bad'); toast(P.describeClose(info), 'bad'); return; }
      setConn('Reconnecting…', 'warn');
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
  toast('Not connected — try again in a moment.', 'bad');
  return false;
}

setInterval(() => { if (S.sock && S.ready) S.sock.send({ t: 'ping' }); }, 30000);

function onFrame(f) {
  switch (f.t) {
    case 'ready':
      S.ready = true;
      S.backoff.reset();
      setConn('Online', 'ok');
      for (const chat of S.chats.values()) {
        if (chat.mode === 'watch' && !chat.closed) S.sock.send({ t: 'watch', chat: chat.id });
      }
      break;
    case 'queue': onQueue(f); break;
    case 'msg': onMsg(f); break;
    case 'ack': onAck(f); break;
    case 'notice': onNotice(f); break;
    case 'typing': onTyping(f); break;
    case 'chat': onChatEvent(f); break;
    case 'flag': onFlag(f); break;
    case 'error': onError(f); break;
    default: break;
  }
}

/* ------------------------------------------------------------------ queue */

function onQueue(f) {
  S.queue = { chats: f.chats || [], mine: f.mine || [] };
  for (const entry of S.queue.mine) {
    const existed = S.chats.has(entry.chat);
    const chat = ensureChat(entry.chat, 'mine', entry);
    if (chat.mode === 'watch') chat.mode = 'mine';
    if (!existed || chat.resync) {
      chat.resync = false;
      S.sock.send({ t: 'history', chat: chat.id, after_seq: chat.lastSeq });
      for (const p of chat.pending.values()) S.sock.send({ t: 'msg', chat: chat.id, id: p.id, text: p.text });
    }
  }
  for (const entry of [...S.queue.chats, ...S.queue.mine]) {
    const chat = S.chats.get(entry.chat);
    if (chat) { chat.info = entry; renderChatHeader(chat); }
  }
  renderQueue();
}

function customerName(info) {
  return (info && info.name) || 'Visitor';
}

function verifiedBadge(verified) {
  return h('span', { class: 'tag ' + (verified ? 'verified' : 'unverified'),
    title: verified ? 'Identity signed by the company site' : 'Identity not verified: do not discuss account details',
    text: verified ? '✔ Verified' : 'Unverified' });
}

function renderQueue() {
  const d = S.dom;
  if (!d.queueList) return;
  const waiting = S.queue.chats.filter((e) => e.state === 'queued')
    .sort((a, b) => a.waiting_since - b.waiting_since);
  d.queueCount.textContent = String(waiting.length);
  clear(d.queueList);
  if (!waiting.length) d.queueList.appendChild(h('li', { class: 'none', text: 'Nobody is waiting.' }));
  for (const e of waiting) {
    d.queueList.appendChild(h('li', { class: 'queue-item', 'data-chat': e.chat },
      h('div', { class: 'qi-main' },
        h('strong', { text: customerName(e) }), ' ', verifiedBadge(e.verified),
        h('div', { class: 'muted small' }, e.topic ? e.topic + ' · ' : '', e.queue, ' · waiting ',
          h('span', { class: 'since', 'data-since': String(e.waiting_since), text: duration(Date.now() / 1000 - e.waiting_since) }))),
      h('button', { class: 'btn small primary', type: 'button', 'aria-label': 'Accept chat with ' + customerName(e),
        onclick: () => accept(e.chat) }, 'Accept')));
  }
  renderMine();
  if (isSupervisor()) {
    const active = S.queue.chats.filter((e) => e.state === 'active');
    clear(d.activeList);
    if (!active.length) d.activeList.appendChild(h('li', { class: 'none', text: 'No other active chats.' }));
    for (const e of active) {
      const watching = S.chats.has(e.chat) && S.chats.get(e.chat).mode === 'watch';
      d.activeList.appendChild(h('li', { class: 'queue-item', 'data-chat': e.chat },
        h('div', { class: 'qi-main' }, h('strong', { text: customerName(e) }), ' ', verifiedBadge(e.verified),
          h('div', { class: 'muted small', text: 'with ' + (e.agent || '?') + (e.topic ? ' · ' + e.topic : '') })),
        h('button', { class: 'btn small', type: 'button', onclick: () => (watching ? select(e.chat) : watch(e.chat)) },
          watching ? 'Open' : 'Watch')));
    }
  }
}

function renderMine() {
  const d = S.dom;
  clear(d.mineList);
  const ids = S.order.filter((id) => S.chats.has(id));
  if (!ids.length) d.mineList.appendChild(h('li', { class: 'none', text: 'No open chats.' }));
  for (const id of ids) {
    const chat = S.chats.get(id);
    const label = customerName(chat.info) + (chat.mode === 'watch' ? ' (watching)' : '');
    const state = chat.closed ? 'closed' : (chat.removed ? 'transferred' : '');
    d.mineList.appendChild(h('li', {},
      h('button', { class: 'tab' + (S.current === id ? ' current' : ''), type: 'button', 'data-chat': id,
        'aria-current': S.current === id ? 'true' : null, onclick: () => select(id) },
        h('span', { class: 'tab-name', text: label }),
        state ? h('span', { class: 'tag muted-tag', text: state }) : null,
        chat.unread ? h('span', { class: 'unread', 'aria-label': chat.unread + ' new', text: String(chat.unread) }) : null)));
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
  c.log = h('div', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-label': 'Conversation', tabindex: '0' });
  c.typing = h('p', { class: 'typing', hidden: true, 'aria-live': 'polite' });
  c.input = h('textarea', { class: 'chat-input', rows: '2', maxlength: '4000', placeholder: 'Type a reply — Enter to send, Shift+Enter for a new line', 'aria-label': 'Reply' });
  c.canned = h('select', { class: 'canned', 'aria-label': 'Insert a canned response' });
  c.send = h('button', { class: 'btn primary', type: 'submit' }, 'Send');
  c.composer = h('form', { class: 'composer', onsubmit: (ev) => { ev.preventDefault(); sendReply(chat); } },
    c.canned, c.input, c.send);
  c.input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); sendReply(chat); }
  });
  c.input.addEventListener('input', () => agentTyping(chat));
  c.canned.addEventListener('change', () => {
    if (c.canned.value) {
      c.input.value = (c.input.value ? c.input.value + ' ' : '') + S.canned[Number(c.canned.value) - 1];
      c.canned.value = '';
      c.input.focus();
    }
  });
  c.transfer = buildTransferForm(chat);
  c.pane = h('section', { class: 'chat-pane', 'data-chat': chat.id, hidden: true, 'aria-label': 'Chat' },
    h('header', { class: 'chat-head' }, h('div', { class: 'chat-head-text' }, c.title, c.meta), c.actions),
    c.transfer, c.log, c.typing, c.composer);
  S.dom.workspace.appendChild(c.pane);
  fillCanned(c.canned);
  renderChatHeader(chat);
  if (chat.mode === 'mine') loadHelpdesk(chat);
}

/* The customer's records in the tenant's helpdesk (plugins' enrich hooks), shown under
 * the chat header. Labels in zh-CN and English; every value is set as text. */
const HELPDESK_LABELS = {
  'zh-CN': { title: '帮助台工单', none: '帮助台中没有未结工单' },
  en: { title: 'Helpdesk tickets', none: 'No open helpdesk tickets' },
};

async function loadHelpdesk(chat) {
  const lang = (navigator.language || '').toLowerCase().startsWith('zh') ? 'zh-CN' : 'en';
  const L = HELPDESK_LABELS[lang];
  let data;
  try {
    data = await api('GET', '/api/chats/' + encodeURIComponent(chat.id) + '/helpdesk');
  } catch (e) {
    return; // no helpdesk panel; the chat works the same
  }
  if (!data.helpdesk.length || !chat.dom) return;
  const box = h('div', { class: 'helpdesk small', 'aria-label': L.title },
    h('strong', { text: L.title + ': ' }));
  let count = 0;
  for (const source of data.helpdesk) {
    for (const t of source.open_tickets) {
      count += 1;
      const label = source.plugin + ' #' + t.id + (t.subject ? ' ' + t.subject : '') +
        (t.status ? ' (' + t.status + ')' : '');
      box.append(t.url ? h('a', { href: t.url, target: '_blank', rel: 'noopener noreferrer', text: label })
        : h('span', { text: label }), ' ');
    }
  }
  if (!count) box.append(h('span', { class: 'muted', text: L.none }));
  chat.dom.meta.after(box);
}

function buildTransferForm(chat) {
  const agentIn = h('input', { class: 'transfer-agent', placeholder: 'Agent id', list: 'agent-ids', 'aria-label': 'Transfer to agent id' });
  const queueIn = h('input', { class: 'transfer-queue', placeholder: 'or queue (e.g. default)', 'aria-label': 'Transfer to queue' });
  const form = h('form', { class: 'transfer inline-form', hidden: true, onsubmit: (ev) => {
    ev.preventDefault();
    const frame = { t: 'transfer', chat: chat.id };
    if (agentIn.value.trim()) frame.to_agent = agentIn.value.trim();
    else if (queueIn.value.trim()) frame.to_queue = queueIn.value.trim();
    else { toast('Name an agent id or a queue.', 'bad'); return; }
    if (send(frame)) { form.hidden = true; agentIn.value = ''; queueIn.value = ''; }
  } }, h('span', { class: 'muted small', text: 'Transfer to' }), agentIn, queueIn,
  h('button', { class: 'btn small primary', type: 'submit' }, 'Transfer'),
  h('button', { class: 'btn small', type: 'button', onclick: () => { form.hidden = true; } }, 'Cancel'));
  return form;
}

function renderChatHeader(chat) {
  const c = chat.dom;
  const info = chat.info || {};
  clear(c.title).append(customerName(info), ' ', verifiedBadge(!!info.verified));
  c.log.querySelectorAll('.who.cust').forEach((el) => { el.textContent = customerName(info); });
  clear(c.meta).append(
    info.topic ? 'Topic: ' + info.topic + ' · ' : '',
    'Queue: ' + (info.queue || 'default') + ' · ',
    chat.mode === 'watch' ? 'agent: ' + (info.agent || '?') + ' · ' : '',
    h('span', { class: 'mono', text: chat.id.slice(0, 8) }));
  clear(c.actions);
  const live = !chat.closed && !chat.removed;
  if (chat.mode === 'mine' && live) {
    c.actions.append(
      h('button', { class: 'btn small', type: 'button', onclick: () => { c.transfer.hidden = !c.transfer.hidden; if (!c.transfer.hidden) c.transfer.querySelector('input').focus(); } }, 'Transfer…'),
      h('button', { class: 'btn small danger', type: 'button', onclick: () => closeChat(chat) }, 'Close chat'));
  } else if (chat.mode === 'watch' && live) {
    if (can('chat_takeover')) c.actions.append(h('button', { class: 'btn small', type: 'button', onclick: () => accept(chat.id) }, 'Take over'));
    c.actions.append(h('button', { class: 'btn small', type: 'button', onclick: () => unwatch(chat) }, 'Stop watching'));
  } else {
    c.actions.append(h('button', { class: 'btn small', type: 'button', onclick: () => dismiss(chat) }, 'Dismiss'));
  }
  c.composer.hidden = chat.mode !== 'mine' || !live;
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

function bubble(chat, side, text, ts, who) {
  const el = h('div', { class: 'msg ' + side },
    h('span', { class: 'text', text }),
    h('span', { class: 'meta' }, who ? h('span', { class: 'who', text: who }) : null, h('span', { class: 'time', text: ts ? clock(ts) : '' })));
  chat.dom.log.appendChild(el);
  chat.dom.log.scrollTop = chat.dom.log.scrollHeight;
  return el;
}

function tick(el, state) {
  let t = el.querySelector('.tick');
  if (!t) { t = h('span', { class: 'tick' }); el.querySelector('.meta').appendChild(t); }
  const labels = { sending: ['🕓', 'Sending'], stored: ['✓✓', 'Delivered'], failed: ['!', 'Not delivered'] };
  t.textContent = labels[state][0];
  t.title = labels[state][1];
  t.setAttribute('aria-label', labels[state][1]);
  el.setAttribute('data-state', state);
}

function onMsg(f) {
  const chat = S.chats.get(f.chat) || ensureChat(f.chat, 'mine');
  if (chat.seqs.has(f.seq)) return;
  chat.seqs.add(f.seq);
  chat.lastSeq = Math.max(chat.lastSeq, f.seq);
  if (f.from === 'customer') {
    chat.dom.typing.hidden = true;
    bubble(chat, 'them', f.text, f.ts, customerName(chat.info)).querySelector('.who').classList.add('cust');
  } else if (f.from === 'agent') {
    const own = f.id && chat.bubbles.get(f.id);
    if (own) {
      own.querySelector('.text').textContent = f.text;
      chat.pending.delete(f.id);
      tick(own, 'stored');
    } else {
      const mineText = f.agent && S.me && f.agent === (S.me.agent.display_name || S.me.agent.email);
      const el = bubble(chat, mineText && chat.mode === 'mine' ? 'me' : 'agent', f.text, f.ts, f.agent || 'Agent');
      if (f.id) chat.bubbles.set(f.id, el);
    }
  } else {
    line(chat, f.text);
  }
  if (S.current !== chat.id || document.hidden) { chat.unread++; renderMine(); }
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
  if (!chat) { toast(f.message, 'warn'); return; }
  if (f.action === 'blocked') {
    chat.pending.delete(f.id);
    const el = chat.bubbles.get(f.id);
    if (el) tick(el, 'failed');
  }
  line(chat, (f.message || 'Policy: ' + f.action) + (f.kinds && f.kinds.length ? ' [' + f.kinds.join(', ') + ']' : ''), 'notice ' + f.action);
}

function onTyping(f) {
  const chat = S.chats.get(f.chat);
  if (!chat || f.from !== 'customer') return;
  clearTimeout(chat.typingTimer);
  chat.dom.typing.textContent = customerName(chat.info) + ' is typing…';
  chat.dom.typing.hidden = !f.on;
  if (f.on) chat.typingTimer = setTimeout(() => { chat.dom.typing.hidden = true; }, 8000);
}

function onChatEvent(f) {
  if (f.event === 'assigned') {
    const chat = ensureChat(f.chat, 'mine');
    chat.mode = 'mine';
    chat.removed = false;
    chat.closed = false;
    line(chat, 'You joined this chat.');
    renderChatHeader(chat);
    select(chat.id);
    return;
  }
  const chat = S.chats.get(f.chat);
  if (!chat) return;
  if (f.event === 'removed') {
    chat.removed = true;
    line(chat, f.reason === 'transferred' ? 'Chat transferred — you are no longer assigned.' : 'You are no longer assigned to this chat.');
  } else if (f.event === 'joined' && f.reason !== 'watch') {
    line(chat, (f.agent || 'An agent') + ' joined the chat');
  } else if (f.event === 'left') {
    line(chat, (f.agent || 'An agent') + ' left the chat');
  } else if (f.event === 'closed') {
    chat.closed = true;
    chat.dom.typing.hidden = true;
    line(chat, f.reason === 'customer_left' ? 'The customer ended the chat.' : 'Chat closed (' + (f.reason || 'resolved') + ').');
  }
  renderChatHeader(chat);
  renderMine();
}

function onError(f) {
  const chat = f.ref && S.chats.get(f.ref);
  const message = f.message || f.code;
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
  send({ t: 'close', chat: chat.id, reason: 'resolved' });
}

function sendReply(chat) {
  const c = chat.dom;
  const text = c.input.value.replace(/\s+$/, '');
  if (!text.trim() || chat.closed || chat.removed) return;
  const id = P.newId();
  const el = bubble(chat, 'me', text, Date.now() / 1000, 'You');
  chat.bubbles.set(id, el);
  chat.pending.set(id, { id, text });
  tick(el, 'sending');
  c.input.value = '';
  stopAgentTyping(chat);
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

/* ------------------------------------------------------------------ canned */

function fillCanned(select) {
  clear(select).appendChild(h('option', { value: '', text: 'Canned…' }));
  S.canned.forEach((text, i) => select.appendChild(h('option', { value: String(i + 1), text: text.length > 60 ? text.slice(0, 57) + '…' : text })));
}

function renderCanned() {
  const list = clear(S.dom.cannedList);
  S.canned.forEach((text, i) => list.appendChild(h('li', {},
    h('span', { text }),
    h('button', { class: 'btn tiny', type: 'button', 'aria-label': 'Remove canned response ' + (i + 1),
      onclick: () => { S.canned.splice(i, 1); renderCanned(); } }, '×'))));
  for (const chat of S.chats.values()) fillCanned(chat.dom.canned);
}

/* ------------------------------------------------------------------ supervisor */

async function loadFlags() {
  try {
    const data = await api('GET', '/api/flags');
    for (const f of data.flags) S.flags.set(f.id, f);
    renderFlags();
  } catch (e) { if (e.status !== 401) toast('Flags: ' + e.message, 'bad'); }
}

function onFlag(f) {
  S.flags.set(f.flag_id, { id: f.flag_id, chat: f.chat, seq: f.seq, kinds: f.kinds, created_at: Date.now() / 1000 });
  renderFlags();
  toast('A message was flagged (' + f.kinds.join(', ') + ').', 'warn');
}

function renderFlags() {
  const list = S.dom.flagList;
  if (!list) return;
  clear(list);
  const flags = [...S.flags.values()].sort((a, b) => b.id - a.id);
  if (!flags.length) list.appendChild(h('li', { class: 'none', text: 'No flagged messages.' }));
  for (const f of flags) {
    const original = h('p', { class: 'original', hidden: true });
    const btn = h('button', { class: 'btn small', type: 'button', onclick: async () => {
      btn.disabled = true;
      try {
        const data = await api('GET', `/api/flags/${encodeURIComponent(f.id)}/original`);
        original.textContent = data.original;
        original.hidden = false;
        btn.textContent = 'Shown (audited)';
      } catch (e) { btn.disabled = false; toast(e.message, 'bad'); }
    } }, 'Show original');
    list.appendChild(h('li', { class: 'flag-item', 'data-flag': String(f.id) },
      h('div', {}, h('strong', { text: (f.kinds || []).join(', ') || 'flag' }),
        h('span', { class: 'muted small', text: ' · chat ' + f.chat.slice(0, 8) + ' #' + f.seq + (f.created_at ? ' · ' + fmtDate(f.created_at) : '') })),
      h('p', { class: 'hint', text: 'Viewing the original is recorded in the audit log.' }), btn, original));
  }
}

async function loadAgents() {
  try {
    const data = await api('GET', '/api/agents');
    S.agents = data.agents.filter((a) => !a.disabled && a.id !== S.me.agent.id);
    const list = h('datalist', { id: 'agent-ids' },
      S.agents.map((a) => h('option', { value: a.id, label: (a.display_name || a.email) + ' (' + a.role + ')' })));
    document.getElementById('agent-ids')?.remove();
    document.body.appendChild(list);
  } catch (e) { /* transfer by id still works */ }
}

boot();
