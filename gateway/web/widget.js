/* cipherdesk customer widget. Embed:
 *   <script src="https://chat.example.com/widget.js" data-tenant="acme"
 *           data-gateway-key="<verify key>" integrity="sha384-…" crossorigin="anonymous" async>
 * Optional: data-title, data-prechat="off", data-queue, data-offline-after (seconds),
 *           data-lang (en, zh-CN, zh-TW; default: the browser's language),
 *           data-tenant-key (end-to-end mode: the tenant's certificate verify key; with it
 *           the widget wraps chat keys only to agents the tenant certified, and never sends
 *           a readable message -- pin widget.js with integrity= too).
 *
 * localStorage holds ONLY {chat, token, last_seq} (the resume credentials) and, for an
 * end-to-end chat, its chat keys and the verified agents' names; unsent
 * messages live in memory and are re-sent with the same id after a reconnect.
 * sessionStorage (this tab only) keeps the panel's open/closed state and the system
 * notices shown in the chat (joined/left, policy notices: never message text), so a
 * reload restores the same view.
 */
(function () {
  'use strict';
  var script = document.currentScript;
  if (!script || window.__cipherdeskWidget) return;
  window.__cipherdeskWidget = true;

  var P = CipherdeskProtocol;
  var Files = CipherdeskFiles;
  var E = CipherdeskE2E;
  var h = CipherdeskUI.h;
  var CSS_INTEGRITY = '__CSS_INTEGRITY__';

  var I = CipherdeskI18n.setup(CipherdeskI18n.pick(
    [script.getAttribute('data-lang') || ''].concat(CipherdeskI18n.browserLanguages())));
  var t = I.t;

  var base = new URL(script.src, location.href);
  var gateway = base.origin;
  var cfg = {
    tenant: script.getAttribute('data-tenant') || '',
    gatewayKey: script.getAttribute('data-gateway-key') || '',
    title: script.getAttribute('data-title') || t('widget.title'),
    prechat: script.getAttribute('data-prechat') !== 'off',
    queue: script.getAttribute('data-queue') || 'default',
    offlineAfter: parseFloat(script.getAttribute('data-offline-after') || '45'),
    tenantKey: script.getAttribute('data-tenant-key') || ''
  };
  var wsUrl = gateway.replace(/^http/, 'ws') + '/ws/customer?tenant=' + encodeURIComponent(cfg.tenant);
  var STORE = 'cipherdesk:' + cfg.tenant;
  var UI_STORE = 'cipherdesk-ui:' + cfg.tenant;
  var MAX_NOTES = 100;

  /* ------------------------------------------------------------------ state */
  var saved = load();
  var sock = null;
  var chatId = saved ? saved.chat : null;
  var lastSeq = 0;                 // highest seq rendered on this page (the resume point)
  var ackedSeq = 0;                // highest seq of our own messages acked on this page
  var seenSeq = saved ? saved.last_seq || 0 : 0;  // highest seq the customer has seen
  var pending = new Map();         // id -> {id, text, el}: unacked, re-sent after reconnect
  var bubbles = new Map();         // id -> element (own messages)
  var rendered = new Set();        // seqs already rendered
  var profile = null;
  var opening = false;             // an `open` must be sent once connected
  var welcomed = false;
  var closedChat = false;
  var fatal = null;                // no more reconnects (signature mismatch, refused)
  var backoff = new P.Backoff(500, 15000);
  var reconnectTimer = null;
  var typingTimer = null, typingOn = false, agentTypingTimer = null;
  var offlineTimer = null;
  var agentName = null;
  var notice = null;               // the tenant's privacy notice {version, required, texts}
  var agreed = 0;                  // notice version the customer accepted on this page
  var consented = 0;               // notice version recorded with this chat (welcome/consent)
  var chatState = null;
  var unread = 0;
  var isOpen = false;
  var ui = loadUi();               // {open, notes: [{after, text, kind}]}
  var replayNotes = ui.notes.slice();  // notes of this chat still to be re-shown after a reload
  var replayUntil = 0;             // last_seq of the welcome: the replay is complete there
  // End-to-end chat state (issue 13): {tenantKey, keys: {epoch: Uint8Array}, known: {device:
  // name}, pending: keys of a re-key the gateway has not confirmed} -- null for an inspect
  // chat. Sealing and opening are asynchronous (WebCrypto HMAC): each runs in its own
  // promise chain, so messages keep their order and a slow re-key never holds up reading.
  var e2e = saved && saved.e2e ? e2eFromSaved(saved.e2e) : null;
  var sealChain = Promise.resolve();
  var openChain = Promise.resolve();

  function load() {
    try {
      var v = JSON.parse(localStorage.getItem(STORE) || 'null');
      if (v && typeof v.chat === 'string' && typeof v.token === 'string') return v;
    } catch (e) { /* storage disabled */ }
    return null;
  }
  function save() {
    if (!chatId || !saved) return;
    saved = { chat: chatId, token: saved.token, last_seq: seenSeq };
    if (e2e) saved.e2e = e2eToSaved(e2e);
    try { localStorage.setItem(STORE, JSON.stringify(saved)); } catch (e) { /* ignore */ }
  }
  function forget() {
    saved = null;
    e2e = null;
    renderE2E();
    try { localStorage.removeItem(STORE); } catch (e) { /* ignore */ }
    ui.notes = []; replayNotes = []; saveUi();
  }
  function loadUi() {
    try {
      var v = JSON.parse(sessionStorage.getItem(UI_STORE) || 'null');
      if (v && Array.isArray(v.notes)) return { open: !!v.open, notes: v.notes.slice(-MAX_NOTES) };
    } catch (e) { /* storage disabled */ }
    return { open: false, notes: [] };
  }
  function saveUi() {
    try { sessionStorage.setItem(UI_STORE, JSON.stringify(ui)); } catch (e) { /* ignore */ }
  }

  function e2eToSaved(state) {
    var keys = {};
    Object.keys(state.keys).forEach(function (e) { keys[e] = P.b64encode(state.keys[e]); });
    return { tk: state.tenantKey, keys: keys, known: state.known };
  }
  function e2eFromSaved(v) {
    try {
      var keys = {};
      Object.keys(v.keys || {}).forEach(function (e) { keys[e] = P.b64decode(v.keys[e]); });
      return { tenantKey: String(v.tk), keys: keys, known: v.known || {} };
    } catch (e) { return null; }
  }

  /* ------------------------------------------------------------------ DOM */
  var host = h('div', { id: 'cipherdesk-widget', lang: I.lang() });
  host.style.display = 'none';
  var root = host.attachShadow({ mode: 'open' });
  var css = h('link', { rel: 'stylesheet', href: gateway + '/widget.css', crossorigin: 'anonymous' });
  if (CSS_INTEGRITY.indexOf('sha384-') === 0) css.integrity = CSS_INTEGRITY;
  css.addEventListener('load', function () { host.style.display = ''; });
  css.addEventListener('error', function () { host.style.display = ''; });

  var badge = h('span', { class: 'badge', hidden: true, 'aria-hidden': 'true' });
  var launcher = h('button', {
    class: 'launcher', type: 'button', 'aria-expanded': 'false', 'aria-controls': 'cdw-panel',
    onclick: function () { isOpen ? closePanel() : openPanel(); }
  }, h('span', { class: 'launcher-icon', 'aria-hidden': 'true' }), h('span', { class: 'launcher-label', text: cfg.title }), badge);

  var statusEl = h('p', { class: 'status', role: 'status' }, t('widget.status.secure'));
  var e2eBadge = h('p', { class: 'e2e-badge', hidden: true, title: t('widget.e2e.badge_hint') }, t('widget.e2e.badge'));
  var closeBtn = h('button', { class: 'icon-btn', type: 'button', 'aria-label': t('widget.close_window'), onclick: function () { closePanel(); } }, '×');
  var endBtn = h('button', { class: 'text-btn', type: 'button', hidden: true, onclick: endChat }, t('widget.end_chat'));
  var header = h('header', { class: 'head' },
    h('div', { class: 'head-text' }, h('h2', { id: 'cdw-title', text: cfg.title }), statusEl, e2eBadge),
    endBtn, closeBtn);

  var log = h('div', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions', 'aria-label': t('common.conversation'), tabindex: '0' });
  var typingEl = h('p', { class: 'typing', hidden: true, 'aria-live': 'polite' });
  var alertEl = h('p', { class: 'alert', role: 'alert', hidden: true });
  var pausedEl = h('p', { class: 'paused', role: 'status', hidden: true, text: t('widget.paused') });

  var nameIn = h('input', { id: 'cdw-name', name: 'name', autocomplete: 'name', maxlength: '200' });
  var emailIn = h('input', { id: 'cdw-email', name: 'email', type: 'email', autocomplete: 'email', maxlength: '200' });
  var topicIn = h('select', { id: 'cdw-topic', name: 'topic' },
    // The label in the customer's language is also the value the agent sees.
    ['general', 'orders', 'billing', 'technical'].map(function (k) { return h('option', { value: t('widget.topic.' + k), text: t('widget.topic.' + k) }); }));
  var prechatForm = h('form', { class: 'prechat', onsubmit: startChat, 'aria-label': t('widget.start_a_chat') },
    h('p', { class: 'intro', text: t('widget.intro') }),
    h('label', { for: 'cdw-name' }, t('widget.name') + ' ', h('span', { class: 'opt', text: t('widget.optional') })), nameIn,
    h('label', { for: 'cdw-email' }, t('common.email') + ' ', h('span', { class: 'opt', text: t('widget.email_hint') })), emailIn,
    h('label', { for: 'cdw-topic' }, t('widget.topic_label')), topicIn,
    h('button', { class: 'primary', type: 'submit' }, t('widget.start_chat')),
    h('p', { class: 'fine', text: t('widget.fine_print') }));

  var input = h('textarea', { id: 'cdw-input', rows: '1', placeholder: t('widget.placeholder'), 'aria-label': t('common.message'), maxlength: '4000' });
  var sendBtn = h('button', { class: 'send', type: 'submit', 'aria-label': t('widget.send') }, h('span', { 'aria-hidden': 'true', text: '➤' }));
  // Attachments (issue 16.6): a hidden file input behind a labelled button; pasted images too.
  var fileIn = h('input', { type: 'file', accept: Files.ACCEPT, class: 'file-input', tabindex: '-1', 'aria-hidden': 'true',
    onchange: function () { var f = fileIn.files && fileIn.files[0]; fileIn.value = ''; if (f) sendFile(f); } });
  var attachBtn = h('button', { class: 'attach', type: 'button', 'aria-label': t('common.file_attach'), title: t('common.file_attach'),
    onclick: function () { fileIn.click(); } }, Files.icon('clip'));
  var composer = h('form', { class: 'composer', hidden: true, onsubmit: function (ev) { ev.preventDefault(); sendText(); } }, fileIn, attachBtn, input, sendBtn);
  var tickets = new Files.Tickets();

  var noticeText = h('div', { class: 'notice-text', tabindex: '0' });
  var agreeBtn = h('button', { class: 'primary agree', type: 'button', onclick: agreeToNotice }, t('widget.notice.agree'));
  var noticeHint = h('p', { class: 'fine', text: t('widget.notice.required_hint') });
  var noticeEl = h('section', { class: 'privacy', hidden: true, 'aria-labelledby': 'cdw-notice-title' },
    h('h3', { id: 'cdw-notice-title', text: t('widget.notice.title') }), noticeText, noticeHint, agreeBtn);

  var rating = h('div', { class: 'rating', hidden: true });
  var toolsMsg = h('p', { class: 'fine', role: 'status' });
  var tools = h('div', { class: 'tools', hidden: true, role: 'group', 'aria-labelledby': 'cdw-tools-title' },
    h('p', { id: 'cdw-tools-title', class: 'fine', text: t('widget.export.title') }),
    h('button', { type: 'button', class: 'export-html', onclick: function () { exportChats('html'); } }, t('widget.export.html')),
    h('button', { type: 'button', class: 'export-json', onclick: function () { exportChats('json'); } }, t('widget.export.json')),
    h('button', { type: 'button', class: 'export-pdf', onclick: function () { exportChats('pdf'); } }, t('widget.export.pdf')),
    toolsMsg);
  var newChatBtn = h('button', { class: 'primary', type: 'button', hidden: true, onclick: newChat }, t('widget.new_chat'));

  var panel = h('section', { id: 'cdw-panel', class: 'panel', role: 'dialog', 'aria-modal': 'false', 'aria-labelledby': 'cdw-title', hidden: true },
    header, pausedEl, h('div', { class: 'body' }, noticeEl, prechatForm, log, typingEl, alertEl, rating, newChatBtn, tools), composer);
  panel.addEventListener('keydown', function (ev) {
    if (ev.key === 'Escape') { ev.preventDefault(); closePanel(); }
  });
  input.addEventListener('keydown', function (ev) {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); sendText(); }
  });
  input.addEventListener('input', onTyping);
  input.addEventListener('paste', function (ev) {
    var files = ev.clipboardData && ev.clipboardData.files;
    if (files && files.length) { ev.preventDefault(); sendFile(files[0]); }
  });

  root.appendChild(css);
  root.appendChild(panel);
  root.appendChild(launcher);
  function mount() { document.body.appendChild(host); }
  if (document.body) mount(); else document.addEventListener('DOMContentLoaded', mount);

  /* ------------------------------------------------------------------ panel */
  function openPanel() {
    isOpen = true;
    ui.open = true; saveUi();
    panel.hidden = false;
    scrollDown();
    launcher.setAttribute('aria-expanded', 'true');
    launcher.classList.add('open');
    unread = 0;
    renderBadge();
    markSeen();
    showStage();
    if (chatId && !sock && !fatal) connect();
    setTimeout(function () {
      if (!prechatForm.hidden) nameIn.focus();
      else if (!composer.hidden) input.focus();
      else closeBtn.focus();
    }, 0);
  }
  function closePanel() {
    isOpen = false;
    ui.open = false; saveUi();
    panel.hidden = true;
    launcher.setAttribute('aria-expanded', 'false');
    launcher.classList.remove('open');
    launcher.focus();
  }
  function showStage() {
    var started = !!chatId || opening;
    prechatForm.hidden = started || closedChat || !!fatal;
    composer.hidden = !started || closedChat || !!fatal;
    endBtn.hidden = !started || closedChat;
    if (!cfg.prechat && !started && !closedChat && !fatal) {
      prechatForm.hidden = true;
      composer.hidden = false;
    }
    renderNotice();
    renderTools();
  }

  /* ------------------------------------------------------------------ signed-in customer */
  /* The company's page says who its logged-in customer is with a function returning a
   * fresh signed identity token (or a promise of one) from its backend — each token is good
   * once: `window.cipherdesk = { identity: fn }` before the widget loads, or
   * `cipherdesk.identify(fn)` later. The token verifies the chat for agents (`open`) and
   * proves the customer when they download their own chats (right of access). */
  var identityProvider = null;
  var pageApi = window.cipherdesk = window.cipherdesk || {};
  if (typeof pageApi.identity === 'function') identityProvider = pageApi.identity;
  pageApi.identify = function (fn) { identityProvider = typeof fn === 'function' ? fn : null; renderTools(); };

  function freshIdentity() {
    if (!identityProvider) return Promise.resolve(null);
    return Promise.resolve().then(identityProvider)
      .then(function (token) { return typeof token === 'string' && token.trim() ? token.trim() : null; },
        function () { return null; });
  }

  function renderTools() { tools.hidden = !identityProvider || !!fatal; }

  /* The PDF is rendered by the gateway (in the customer's language and time zone); the
   * readable page and the JSON are built here from the JSON answer. */
  function exportChats(format) {
    toolsMsg.textContent = t('widget.export.working');
    var query = format === 'pdf' ? '?' + new URLSearchParams({ format: 'pdf', lang: I.lang(), tz: timeZone() }).toString() : '';
    freshIdentity().then(function (token) {
      if (!token) throw new TypeError();  // no token from the page: the failure line below
      return fetch(gateway + '/api/public/export/' + encodeURIComponent(cfg.tenant) + query, {
        method: 'POST', credentials: 'omit', cache: 'no-store',
        headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ identity: token })
      });
    }).then(function (r) {
      if (!r.ok) throw new TypeError();
      return format === 'pdf' ? r.blob() : r.json();
    }).then(function (data) {
      var day = new Date().toISOString().slice(0, 10);
      if (format === 'pdf') {
        download(data, 'my-chats-' + day + '.pdf');
        toolsMsg.textContent = t('widget.export.done_pdf');
        return;
      }
      if (format === 'json') download(new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' }), 'my-chats-' + day + '.json');
      else download(new Blob([exportPage(data)], { type: 'text/html' }), 'my-chats-' + day + '.html');
      toolsMsg.textContent = t('widget.export.done', { count: data.chats.length });
    }).catch(function () { toolsMsg.textContent = t('widget.export.failed'); });
  }

  function timeZone() {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'; } catch (e) { return 'UTC'; }
  }

  function download(blob, name) {
    var a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = name;
    a.style.display = 'none';
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }

  /* A readable page of the export, built with DOM APIs (every text is textContent). */
  function exportPage(data) {
    var doc = document.implementation.createHTMLDocument(t('widget.export.doc_title'));
    doc.documentElement.lang = I.lang();
    var charset = doc.createElement('meta');
    charset.setAttribute('charset', 'utf-8');
    doc.head.insertBefore(charset, doc.head.firstChild);
    function el(tag, text) { var e = doc.createElement(tag); if (text !== undefined) e.textContent = text; return e; }
    doc.body.appendChild(el('h1', t('widget.export.doc_title')));
    doc.body.appendChild(el('p', t('widget.export.doc_intro', { count: data.chats.length })));
    data.chats.forEach(function (c) {
      var section = el('section');
      section.appendChild(el('h2', t('widget.export.chat_heading', { date: I.dateTime(c.created_at) })));
      c.messages.forEach(function (m) {
        var line = el('p');
        line.appendChild(el('strong', t('widget.export.sender.' + m.from, { defaultValue: m.from }) + ' · ' + I.dateTime(m.ts)));
        line.appendChild(doc.createElement('br'));
        line.appendChild(doc.createTextNode(m.e2e ? t('widget.export.e2e_message') : m.text));
        section.appendChild(line);
      });
      doc.body.appendChild(section);
    });
    return '<!doctype html>\n' + doc.documentElement.outerHTML;
  }

  /* ------------------------------------------------------------------ privacy notice */
  /* The tenant's notice comes from the gateway's public endpoint. When consent is required
   * nothing can be written until the customer agrees (the gateway enforces it too:
   * `consent_required`), and the accepted version is sent with the chat (`consent`). */
  function fetchNotice(fresh) {
    var opts = { credentials: 'omit', cache: fresh ? 'no-cache' : 'default' };
    return fetch(gateway + '/api/public/notice/' + encodeURIComponent(cfg.tenant), opts)
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (n) { notice = n && n.version ? n : null; showStage(); })
      .catch(function () { /* no notice shown; the gateway still refuses unconsented messages */ });
  }
  function noticeTextFor(texts) {
    var lang = I.lang();
    var order = [lang, lang.indexOf('zh') === 0 ? 'zh-CN' : 'en', 'zh-CN', 'en', 'zh-TW'];
    for (var i = 0; i < order.length; i++) if (texts[order[i]]) return texts[order[i]];
    return '';
  }
  function needsConsent() {
    return !!(notice && notice.required && !closedChat && consented !== notice.version && agreed !== notice.version);
  }
  function renderNotice() {
    var show = !!notice && !closedChat && !fatal && (needsConsent() || (!chatId && !opening));
    noticeEl.hidden = !show;
    if (show) noticeText.textContent = noticeTextFor(notice.texts);
    var blocking = needsConsent();
    agreeBtn.hidden = noticeHint.hidden = !blocking;
    noticeEl.classList.toggle('required', blocking);
    prechatForm.querySelector('button[type=submit]').disabled = blocking;
    input.disabled = sendBtn.disabled = blocking || !pausedEl.hidden;
  }
  function agreeToNotice() {
    if (!notice) return;
    agreed = notice.version;
    sendConsent();
    showAlert('');
    showStage();
    if (!composer.hidden) input.focus(); else if (!prechatForm.hidden) nameIn.focus();
  }
  /* Frames are handled in order: a message sent after this is judged with the consent. */
  function sendConsent() {
    if (!agreed || consented === agreed || !sock || !welcomed) return;
    if (sock.send({ t: 'consent', version: agreed })) {
      consented = agreed;
      flushPending();
    }
  }
  function renderBadge() {
    badge.hidden = unread === 0;
    badge.textContent = unread > 9 ? '9+' : String(unread);
    launcher.setAttribute('aria-label', unread ? t('widget.launcher_unread', { title: cfg.title, count: unread }) : cfg.title);
  }
  function markSeen() {
    if (lastSeq > seenSeq) { seenSeq = lastSeq; save(); }
  }
  function setStatus(text) { statusEl.textContent = text; }
  function showAlert(text) { alertEl.textContent = text || ''; alertEl.hidden = !text; }

  /* ------------------------------------------------------------------ log */
  function scrollDown() { log.scrollTop = log.scrollHeight; }
  function systemLine(text, kind, restoring) {
    log.appendChild(h('p', { class: 'sys' + (kind ? ' ' + kind : ''), text: text }));
    scrollDown();
    if (!restoring && (chatId || opening)) {
      ui.notes.push({ after: Math.max(lastSeq, ackedSeq), text: text, kind: kind || '' });
      ui.notes = ui.notes.slice(-MAX_NOTES);
      saveUi();
    }
  }
  /* After a reload: re-show the saved notices at their place between the replayed
   * messages (a notice saved after message N comes back right after message N). */
  function flushNotes(upTo) {
    while (replayNotes.length && replayNotes[0].after <= upTo) {
      var n = replayNotes.shift();
      systemLine(n.text, n.kind, true);
    }
  }
  function bubble(from, text, ts, who, file) {
    var body = file ? fileBody(file) : CipherdeskUI.rich(h('span', { class: 'text' }), text);
    var meta = h('span', { class: 'meta' }, who ? h('span', { class: 'who', text: who }) : null,
      h('span', { class: 'time', text: ts ? CipherdeskUI.clock(ts) : '' }));
    var el = h('div', { class: 'msg ' + from }, body, meta);
    log.appendChild(el);
    scrollDown();
    return el;
  }
  /* A file message's body; the bytes are fetched with a ticket from the socket. */
  function fileBody(file) {
    var body = Files.card(file, t, function () {
      return tickets.ask(file.id, function () { return sock && welcomed && sock.send({ t: 'fetch', file: file.id }); })
        .then(function (ticket) {
          if (!file.record) return Files.download(gateway, ticket, file.type, 'omit');
          var key = e2e && (e2e.keys[file.epoch] || (e2e.pending && e2e.pending[file.epoch]));
          if (!key) throw new Files.FileError(0, 'no_key');
          return Files.downloadSealed(gateway, ticket, key, file, 'omit');
        });
    });
    body.classList.add('text');
    return body;
  }
  function setTick(el, state) {
    var tick = el.querySelector('.tick');
    if (!tick) { tick = h('span', { class: 'tick' }); el.querySelector('.meta').appendChild(tick); }
    var labels = { sending: ['🕓', t('tick.sending')], sent: ['✓', t('tick.sent')], stored: ['✓✓', t('tick.stored')], failed: ['!', t('tick.failed')] };
    var label = labels[state];
    // Stored, but no agent has the chat yet: "sent, waiting for an agent", not "delivered".
    var waitingForAgent = state === 'stored' && chatState !== 'active';
    if (waitingForAgent) label = ['✓', t('tick.waiting')];
    if (waitingForAgent) el.setAttribute('data-waiting', 'true'); else el.removeAttribute('data-waiting');
    tick.textContent = label[0];
    tick.setAttribute('aria-label', label[1]);
    tick.setAttribute('title', label[1]);
    el.setAttribute('data-state', state);
    if (state === 'failed') offerFix(el);
  }
  /* A message that was not delivered (blocked by policy, refused): edit it or try again. */
  /* An agent has the chat now: what was stored while waiting is delivered to them. */
  function upgradeTicks() {
    log.querySelectorAll('.msg[data-waiting]').forEach(function (el) { setTick(el, 'stored'); });
  }
  function offerFix(el) {
    if (el.querySelector('.fix')) return;
    if (el.cdFile) {  // a file that did not go: try it again
      el.appendChild(h('span', { class: 'fix' },
        h('button', { type: 'button', class: 'link-btn fix-retry', onclick: function () { el.remove(); sendFile(el.cdFile); } }, t('common.retry'))));
      return;
    }
    var text = el.querySelector('.text').textContent;
    var take = function () { el.remove(); input.value = text; };
    el.appendChild(h('span', { class: 'fix' },
      h('button', { type: 'button', class: 'link-btn fix-edit', onclick: function () { take(); input.focus(); } }, t('common.edit')),
      h('button', { type: 'button', class: 'link-btn fix-retry', onclick: function () { take(); sendText(); } }, t('common.retry'))));
  }

  /* ------------------------------------------------------------------ connection */
  function connect() {
    if (sock || fatal) return;
    clearTimeout(reconnectTimer);
    welcomed = false;
    setStatus(chatId ? t('common.reconnecting') : t('common.connecting'));
    var resuming = !!(chatId && saved);
    sock = new P.SecureSocket(wsUrl, {
      gatewayKey: cfg.gatewayKey,
      keyExtra: function () {
        // echo: false -- our own messages are on the page already; the ack carries their
        // seq and time, and only a message the policy changed comes back (masked).
        var extra = { echo: false };
        if (resuming) extra.resume = { chat: chatId, token: saved.token, last_seq: lastSeq };
        return extra;
      },
      onready: function (hello) {
        if (!resuming && opening) {
          var open = { t: 'open', queue: cfg.queue };
          var opener = sock;
          if (profile) open.profile = profile;
          // A signed-in customer: a fresh identity token from the company's page verifies the chat.
          Promise.all([tenantKeyFor(hello), freshIdentity()]).then(function (got) {
            if (sock !== opener || !e2eReady(hello, got[0])) return;
            if (got[1]) open.identity = got[1];
            opener.send(open);
          });
        }
      },
      onframe: onFrame,
      onclose: onClose
    });
  }

  /* A new chat: in an e2e tenant make epoch 1's key before anything is written. A page that
   * pins the tenant key never chats in the clear: a gateway saying "inspect" is refused. */
  function e2eReady(hello, key) {
    if (hello.mode === 'e2e') {
      if (!key || !E.supported()) { e2eUnavailable(); return false; }
      e2e = { tenantKey: key, keys: { 1: nacl.randomBytes(32) }, known: {} };
      renderE2E();
      return true;
    }
    if (cfg.tenantKey) { e2eUnavailable(); return false; }
    e2e = null;
    renderE2E();
    return true;
  }
  function e2eUnavailable() {
    fatal = 'e2e';
    opening = false;
    setStatus(t('widget.status.unavailable'));
    showAlert(t('widget.e2e.unavailable'));
    if (sock) { sock.close('e2e unavailable'); sock = null; }
    showStage();
  }
  function renderE2E() { e2eBadge.hidden = !e2e; }
  // Unpinned pages (no data-tenant-key) fall back to the key the gateway publishes; that
  // trusts the gateway (README, threat model): pinning is what makes e2e mode hold.
  function tenantKeyFor(hello) {
    if (cfg.tenantKey || hello.mode !== 'e2e') return Promise.resolve(cfg.tenantKey);
    return fetch(gateway + '/api/public/e2e/' + encodeURIComponent(cfg.tenant), { credentials: 'omit' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (v) { return v && v.mode === 'e2e' && v.verify_key ? v.verify_key : ''; })
      .catch(function () { return ''; });
  }

  function onClose(info) {
    sock = null;
    tickets.failAll();
    wrapWaiters.forEach(function (w) { w.reject(new E.E2EError('offline')); });
    wrapWaiters.clear();
    welcomed = false;
    typingEl.hidden = true;
    if (info.error === 'signature') {
      fatal = 'signature';
      setStatus(t('widget.status.unavailable'));
      showAlert(t('widget.signature_failed'));
      showStage();
      return;
    }
    if (info.code === 4403) {
      fatal = 'refused';
      setStatus(t('widget.status.offline'));
      showAlert(t('widget.refused'));
      showStage();
      return;
    }
    if (closedChat || (!chatId && !opening && pending.size === 0)) { setStatus(t('widget.status.secure')); return; }
    var delay = backoff.next();
    var hint = P.retryAfter(info.reason);
    if (hint !== null) delay = Math.max(delay, hint * 1000);
    setStatus(t('widget.status.connection_lost'));
    markPendingSending();
    reconnectTimer = setTimeout(connect, delay);
  }

  function markPendingSending() {
    pending.forEach(function (p) { setTick(p.el, 'sending'); });
  }

  /* Seal once, in order, under the newest key; the same ciphertext is re-sent after a
   * reconnect (same id: stored once). */
  function sealAndSend(entry) {
    if (entry.sealing) return;
    entry.sealing = true;
    var state = e2e, chat = chatId;
    sealChain = sealChain.then(function () {
      return endPolicyFor(state);
    }).then(function (policy) {
      if (!passesEndPolicy(entry, policy, chat)) return;
      var epoch = Math.max.apply(null, Object.keys(state.keys).map(Number));
      return E.sealMessage(state.keys[epoch], chat, 'customer', entry.id, epoch, entry.text).then(function (s) {
        entry.frame = { t: 'emsg', id: entry.id, c: s.c, fc: s.fc, e: epoch };
        if (entry.flags && entry.flags.length) entry.frame.flags = entry.flags;
        if (sock && welcomed && sock.send(entry.frame)) setTick(entry.el, 'sent');
      });
    }).catch(function () { setTick(entry.el, 'failed'); });
  }

  /* The tenant's policy runs here, before sealing (the gateway cannot read e2e chats): the
   * policy its admins signed with the key this page pins, else the bundled default. */
  var endPolicy = null;
  function endPolicyFor(state) {
    if (!endPolicy) {
      endPolicy = fetch(gateway + '/api/public/e2e/' + encodeURIComponent(cfg.tenant), { credentials: 'omit' })
        .then(function (r) { return r.ok ? r.json() : null; })
        .catch(function () { return null; })
        .then(function (v) { return CipherdeskPolicy.forTenant(v && v.policy, state.tenantKey, cfg.tenant); });
    }
    return endPolicy;
  }

  /* The chat's window of the customer's last messages, so a number split across them is
   * found too (policy_window.js); a new chat starts an empty one. */
  var splitWindow = null;
  function windowOf(chat) {
    if (!splitWindow || splitWindow.chat !== chat) {
      splitWindow = { chat: chat, window: CipherdeskPolicyWindow.create() };
    }
    return splitWindow.window;
  }

  /* An agent's message opened here: a question it names ("请提供您的护照号码") makes the
   * customer's next answer be read with it. In order with the sealing, so an answer typed
   * after it is checked after it. */
  function heardInWindow(text) {
    var state = e2e, chat = chatId;
    sealChain = sealChain.then(function () {
      return endPolicyFor(state);
    }).then(function (policy) { windowOf(chat).heard(policy, text); }).catch(function () {});
  }

  /* A blocked message never leaves the page; a masked one leaves masked, and the customer's
   * own bubble shows what was sent. Checked once per message (a re-send is the same text),
   * in the order they are sealed. */
  function passesEndPolicy(entry, policy, chat) {
    if (entry.checked) return true;
    entry.checked = true;
    var d = windowOf(chat).check(policy, 'customer', entry.text, policy.evaluate(entry.text, 'customer'));
    var shown = CipherdeskPolicy.notice(d);
    entry.flags = CipherdeskPolicy.flags(d);
    if (d.action === 'block') {
      pending.delete(entry.id);
      setTick(entry.el, 'failed');
      systemLine(CipherdeskNotices.text(shown, 'customer'), 'notice blocked');
      return false;
    }
    if (d.text !== entry.text) {
      entry.text = d.text;
      entry.el.replaceChild(CipherdeskUI.rich(h('span', { class: 'text' }), d.text), entry.el.querySelector('.text'));
    }
    if (d.action === 'mask') systemLine(CipherdeskNotices.text(shown, 'customer'), 'notice masked');
    return true;
  }

  function flushPending() {
    pending.forEach(function (p) {
      if (e2e && !p.frame) { if (chatId && welcomed) sealAndSend(p); return; }
      if (sock && sock.send(p.frame || { t: 'msg', id: p.id, text: p.text })) setTick(p.el, 'sent');
    });
  }

  function onFrame(f) {
    if ((f.t === 'upload' || f.t === 'file' || f.t === 'error') && tickets.settle(f)) return undefined;
    switch (f.t) {
      case 'welcome': return onWelcome(f);
      case 'msg': return onMsg(f);
      case 'ack': return onAck(f);
      case 'notice': return onNotice(f);
      case 'typing': return onAgentTyping(f);
      case 'chat': return onChatEvent(f);
      case 'error': return onError(f);
      case 'service': return onService(f);
      case 'members': return onMembers(f);
      case 'wrapped': return onWrapped(f);
      case 'reported': return onReported(f);
      default: return undefined;
    }
  }

  function onWelcome(f) {
    welcomed = true;
    renderE2E();
    backoff.reset();
    opening = false;
    chatId = f.chat;
    chatState = f.state;
    if (f.agent) agentName = f.agent;  // the agent who has the chat NOW (after a transfer too)
    consented = f.consent || 0;
    if (f.token) { saved = { chat: f.chat, token: f.token, last_seq: 0 }; save(); }
    replayUntil = f.last_seq || 0;
    flushNotes(lastSeq);
    if (replayUntil <= lastSeq) flushNotes(Infinity);
    if (f.state === 'closed') { chatEnded(t('widget.chat_has_ended')); return; }
    if (f.state === 'queued') {
      waiting(f.agents_online === 0);
    } else {
      setStatus(agentName ? t('widget.status.chatting_with', { name: agentName }) : t('widget.status.connected'));
    }
    showAlert('');
    sendConsent();  // accepted before the chat existed: recorded before any message
    showStage();
    flushPending();
  }

  // nobodyOnline: the gateway said no agent of this tenant is connected (welcome frame's
  // agents_online == 0): offer the offline form at once instead of after the timer.
  function waiting(nobodyOnline) {
    setStatus(nobodyOnline ? t('widget.status.nobody_online') : t('widget.status.waiting'));
    clearTimeout(offlineTimer);
    offlineTimer = setTimeout(function () {
      if (!agentName && chatId && !closedChat) {
        log.appendChild(h('div', { class: 'offline', role: 'note' },
          h('strong', { text: t('widget.busy_title') }),
          h('span', { text: ' ' + (profile && profile.email ? t('widget.busy_text_email', { email: profile.email }) : t('widget.busy_text')) })));
        scrollDown();
      }
    }, nobodyOnline ? 0 : cfg.offlineAfter * 1000);
  }

  function onMsg(f) {
    if (f.c && !f.opened) {
      // Opened in order, after any sealing queued before it (its key may be one we make).
      openChain = openChain.then(function () { return openRelayed(f); }).then(function (opened) {
        f.text = opened.text; f.fk = opened.fk; f.opened = true; onMsg(f);
      }, function () {
        f.text = t('widget.e2e.unreadable'); f.opened = true; onMsg(f);
      });
      return;
    }
    if (f.c && f.file && !f.file.record) {  // an end-to-end file: its record is the text
      var sealed = Files.sealedFile(f);
      f.file = sealed;  // the text stays the franked record (reports reveal exactly it)
    }
    if (rendered.has(f.seq)) return;
    rendered.add(f.seq);
    var fresh = f.seq > lastSeq;
    if (fresh) lastSeq = f.seq;
    if (f.from === 'customer') {
      var own = f.id ? bubbles.get(f.id) : null;
      if (own) {
        if (f.file) own.replaceChild(fileBody(f.file), own.querySelector('.text'));
        else CipherdeskUI.rich(own.querySelector('.text'), f.text);  // what was delivered (masked)
        own.querySelector('.time').textContent = CipherdeskUI.clock(f.ts);
        pending.delete(f.id);
        setTick(own, 'stored');
      } else {
        var el = bubble('me', f.text, f.ts, null, f.file);
        if (f.id) bubbles.set(f.id, el);
        setTick(el, 'stored');
      }
    } else if (f.from === 'agent') {
      typingEl.hidden = true;
      if (f.agent && !agentName && chatState === 'active' && !closedChat) {
        agentName = f.agent;
        clearTimeout(offlineTimer);
        setStatus(t('widget.status.chatting_with', { name: agentName }));
      }
      var said = bubble('agent', f.text, f.ts, f.agent || t('common.agent'), f.file);
      if (f.fk) said.querySelector('.meta').appendChild(reportButton(f));
      if (f.fk && fresh && !f.file) heardInWindow(f.text);
    } else {
      systemLine(f.text, null, true);  // stored server-side: it comes back by itself
    }
    flushNotes(f.seq);
    if (f.seq >= replayUntil) flushNotes(Infinity);
    if (isOpen && !document.hidden) markSeen();
    else if (f.seq > seenSeq && f.from !== 'customer') { unread++; renderBadge(); }
  }

  function openRelayed(f) {
    if (!e2e) return Promise.reject(new E.E2EError('no_keys'));
    if (f.from === 'agent' && !e2e.known[f.dev]) return Promise.reject(new E.E2EError('unverified'));
    var key = e2e.keys[f.e] || (e2e.pending && e2e.pending[f.e]);
    if (!key) return Promise.reject(new E.E2EError('no_key'));
    return E.openMessage(key, f, chatId, E.senderOf(f));
  }

  /* Who takes part now: verify each certificate against the pinned tenant key, wrap the
   * chat key to members that lack it (with earlier epochs: they read the history), and
   * re-key when a device that held the key is no longer a member. */
  function onMembers(f) {
    if (!e2e || f.chat !== chatId) return;
    var now = Date.now() / 1000, ok = {}, refused = 0;
    f.devices.forEach(function (d) {
      try {
        var c = E.verifyCertificate(e2e.tenantKey, d.cert, d.sig, now, cfg.tenant);
        if (c.device !== d.device || c.agent !== d.agent) throw new E.E2EError('mismatch');
        ok[d.device] = { cert: c, reason: d.reason };
      } catch (e) { refused++; }
    });
    Object.keys(ok).forEach(function (dev) {
      if (e2e.known[dev]) return;
      e2e.known[dev] = ok[dev].cert.name;
      systemLine(ok[dev].reason === 'watch'
        ? t('widget.e2e.supervisor_joined', { name: ok[dev].cert.name })
        : t('widget.e2e.verified_agent', { name: ok[dev].cert.name }), 'e2e-member');
    });
    showAlert(refused ? t('widget.e2e.refused_key') : '');
    if (!e2e.keys[f.epoch]) { showAlert(t('widget.e2e.lost_key')); return; }
    var holders = new Set(f.holders);
    var removed = f.holders.some(function (d) { return !ok[d]; });
    var epoch = f.epoch, keys = Object.assign({}, e2e.keys);
    var members = Object.keys(ok);
    var needing = members;
    if (removed) { epoch = f.epoch + 1; keys[epoch] = nacl.randomBytes(32); }
    else needing = members.filter(function (d) { return !holders.has(d); });
    if (!needing.length && !removed) { save(); return; }
    var joining = needing.filter(function (d) { return !holders.has(d); });
    var wrap = { t: 'wrap', id: P.newId(), rekey: removed, epoch: epoch, keys: needing.map(function (d) {
      return { device: d, k: E.wrapChatKey(keys[epoch], ok[d].cert.pk, chatId, epoch) };
    }) };
    if (joining.length) {
      wrap.older = {};
      Object.keys(keys).map(Number).filter(function (e) { return e < epoch; }).forEach(function (e) {
        wrap.older[String(e)] = joining.map(function (d) {
          return { device: d, k: E.wrapChatKey(keys[e], ok[d].cert.pk, chatId, e) };
        });
      });
    }
    // In the chain: a message sealed before this goes under the epoch the gateway knows;
    // a new epoch is adopted once the gateway stored it (`wrapped`). Refused or lost (the
    // socket dropped): the next member list, after the reconnect, decides again.
    var state = e2e;  // this chat's state, even if the customer starts a new chat meanwhile
    sealChain = sealChain.then(function () { state.pending = keys; return sendWrap(wrap); })
      .then(function () { state.keys = keys; state.pending = null; if (state === e2e) save(); },
        function () { state.pending = null; /* see above */ });
  }

  var wrapWaiters = new Map();  // wrap id -> {resolve, reject}
  function sendWrap(wrap) {
    return new Promise(function (resolve, reject) {
      if (!sock || !sock.send(wrap)) { reject(new E.E2EError('offline')); return; }
      wrapWaiters.set(wrap.id, { resolve: resolve, reject: reject });
      setTimeout(function () {
        if (wrapWaiters.delete(wrap.id)) reject(new E.E2EError('timeout'));
      }, 15000);
    });
  }
  function onWrapped(f) {
    var waiter = wrapWaiters.get(f.id);
    if (waiter) { wrapWaiters.delete(f.id); waiter.resolve(f); }
  }

  /* Report an agent's e2e message: its text and franking key go to the gateway, which
   * checks them against what it relayed and alerts the company's supervisors. */
  function reportButton(f) {
    var button = h('button', { type: 'button', class: 'link-btn report', title: t('widget.e2e.report_hint') }, t('widget.e2e.report'));
    button.addEventListener('click', function () {
      if (!window.confirm(t('widget.e2e.report_confirm'))) return;
      button.disabled = true;
      if (sock) sock.send({ t: 'report', seq: f.seq, text: f.text, fk: f.fk, gt: f.gt, reason: 'abuse' });
    });
    return button;
  }
  function onReported(f) {
    systemLine(f.verified ? t('widget.e2e.reported') : t('widget.e2e.report_failed'), 'notice');
  }

  function onAck(f) {
    var p = pending.get(f.id);
    pending.delete(f.id);
    var el = bubbles.get(f.id) || (p && p.el);
    // lastSeq stays: a message ordered before this one may still be on its way, and a
    // resume from lastSeq replays it (our own come back too, matched by id).
    if (f.seq > ackedSeq) ackedSeq = f.seq;
    if (el) {
      if (f.ts) el.querySelector('.time').textContent = CipherdeskUI.clock(f.ts);
      setTick(el, 'stored');
    }
  }

  function onNotice(f) {
    var el = f.id ? bubbles.get(f.id) : null;
    if (f.action === 'blocked') {
      pending.delete(f.id);
      if (el) setTick(el, 'failed');
      systemLine(CipherdeskNotices.text(f, 'customer'), 'notice blocked');
    } else if (f.action === 'limited') {
      var wait = Math.max(1, f.retry_after || 2);
      systemLine(CipherdeskNotices.text(f, 'customer'), 'notice');
      setTimeout(function () {
        var p = pending.get(f.id);
        // an e2e message is re-sent as the same ciphertext, never as plaintext
        if (!p || !sock || !welcomed) return;
        if (p.frame) sock.send(p.frame);
        else if (!e2e) sock.send({ t: 'msg', id: p.id, text: p.text });
      }, wait * 1000);
    } else {
      systemLine(CipherdeskNotices.text(f, 'customer'), 'notice ' + f.action);
    }
  }

  /* The company paused the chat service (tenant frozen) or resumed it. */
  function onService(f) {
    var paused = f.state === 'paused';
    pausedEl.hidden = !paused;
    input.disabled = paused;
    sendBtn.disabled = paused;
    if (!paused) systemLine(t('widget.resumed'));
  }

  function onAgentTyping(f) {
    if (f.from !== 'agent') return;
    clearTimeout(agentTypingTimer);
    typingEl.textContent = t('widget.typing', { name: agentName || t('widget.the_agent') });
    typingEl.hidden = !f.on;
    if (f.on) agentTypingTimer = setTimeout(function () { typingEl.hidden = true; }, 8000);
  }

  function onChatEvent(f) {
    if (f.event === 'joined' && f.reason !== 'watch') {
      agentName = f.agent || t('common.an_agent');
      chatState = 'active';
      upgradeTicks();
      clearTimeout(offlineTimer);
      systemLine(t('common.joined', { name: agentName }));
      setStatus(t('widget.status.chatting_with', { name: agentName }));
    } else if (f.event === 'left') {
      systemLine(t('common.left', { name: f.agent || t('widget.the_agent') }));
      agentName = null;
      chatState = 'queued';
      typingEl.hidden = true;
      if (!closedChat) waiting();
    } else if (f.event === 'closed') {
      chatEnded(f.reason === 'customer_left' ? t('widget.you_ended') : t('widget.agent_ended'));
    }
  }

  function onError(f) {
    if (f.ref && wrapWaiters.has(f.ref)) {  // a wrap the gateway refused (stale member list)
      var waiter = wrapWaiters.get(f.ref);
      wrapWaiters.delete(f.ref);
      waiter.reject(new E.E2EError(f.code));
      return;
    }
    if (f.code === 'resume_refused') {
      forget();
      chatId = null;
      lastSeq = 0; ackedSeq = 0;
      systemLine(t('widget.resume_refused'));
      if (sock) { sock.close('resume refused'); sock = null; }
      showStage();
      return;
    }
    if (f.code === 'chat_closed') { chatEnded(t('widget.chat_has_ended')); return; }
    if (f.code === 'consent_required' || f.code === 'notice_outdated') {
      // Not stored: the message stays pending and is sent again once the customer agrees.
      consented = 0; agreed = 0;
      if (f.ref && bubbles.get(f.ref)) setTick(bubbles.get(f.ref), 'sending');
      showAlert(t('widget.notice.needed'));
      fetchNotice(true);  // the notice changed (or became required) since this page read it
      return;
    }
    if (f.ref && bubbles.get(f.ref)) {
      pending.delete(f.ref);
      setTick(bubbles.get(f.ref), 'failed');
    }
    systemLine(CipherdeskNotices.error(f), 'notice');
  }

  /* ------------------------------------------------------------------ actions */
  function startChat(ev) {
    if (ev) ev.preventDefault();
    profile = {};
    if (nameIn.value.trim()) profile.name = nameIn.value.trim().slice(0, 200);
    if (emailIn.value.trim()) profile.email = emailIn.value.trim().slice(0, 200);
    if (topicIn.value) profile.topic = topicIn.value.slice(0, 200);
    if (!Object.keys(profile).length) profile = null;
    beginChat();
    showStage();
    input.focus();
  }

  function beginChat() {
    opening = true;
    closedChat = false;
    rating.hidden = true;
    newChatBtn.hidden = true;
    systemLine(t('widget.starting'));
    connect();
  }

  function sendText() {
    var text = input.value.replace(/\s+$/, '');
    if (!text.trim() || closedChat || fatal) return;
    input.value = '';
    stopTyping();
    if (!chatId && !opening) { profile = profile || null; beginChat(); showStage(); }
    var id = P.newId();
    var el = bubble('me', text, Date.now() / 1000, null);
    bubbles.set(id, el);
    var entry = { id: id, text: text, el: el, frame: null };
    pending.set(id, entry);
    setTick(el, 'sending');
    if (e2e) {
      if (chatId && welcomed) sealAndSend(entry);  // else sealed once the chat exists
      else if (!sock) connect();
      return;
    }
    if (sock && welcomed) {
      if (sock.send({ t: 'msg', id: id, text: text })) setTick(el, 'sent');
    } else if (!sock) {
      connect();
    }
  }

  /* Send a file: a ticket over the sealed socket, then the sealed bytes over HTTP. The
   * message comes back through the socket like any other (seq, resume, both ends). */
  function sendFile(file) {
    if (closedChat || fatal) return;
    if (!chatId || !sock || !welcomed) { showAlert(t('common.file_start_first')); return; }
    var id = P.newId();
    var el = bubble('me', '', Date.now() / 1000, null);
    el.cdFile = file;
    el.classList.add('has-file');
    el.replaceChild(h('span', { class: 'text file pending' },
      h('span', { class: 'file-name', text: file.name }),
      h('span', { class: 'file-size', text: ' · ' + Files.size(file.size) }),
      h('span', { class: 'file-status', role: 'status', text: t('common.file_uploading') })), el.querySelector('.text'));
    bubbles.set(id, el);
    setTick(el, 'sending');
    var name = (file.name || 'file').slice(0, 255);
    file.arrayBuffer().then(function (buf) {
      if (e2e) return sendSealedFile(id, el, name, new Uint8Array(buf));
      return tickets.ask(id, function () {
        return sock && sock.send({ t: 'upload', id: id, size: buf.byteLength });
      }).then(function (ticket) { return Files.upload(gateway, ticket, name, new Uint8Array(buf), 'omit'); });
    }).then(function (answer) {
      if (answer.e2e) { if (el.getAttribute('data-state') === 'sending') setTick(el, 'sent'); }  // stored at its ack
      else if (el.getAttribute('data-state') !== 'stored') setTick(el, 'stored');
      if (answer.notice) systemLine(CipherdeskNotices.text(answer.notice, 'customer'), 'notice masked');
    }, function (err) {
      var status = el.querySelector('.file-status');
      if (status) status.textContent = '';
      setTick(el, 'failed');
      systemLine(CipherdeskNotices.error({ code: err.code, message: err.message }), 'notice');
    });
  }

  /* End-to-end: the gateway cannot sniff, clean or read the file, so this end does --
   * type from the bytes, the tenant's end policy on the name, the image drawn again
   * without its metadata -- then seals the bytes under the chat key, uploads them and
   * sends the sealed message naming them (kept pending, re-sent after a reconnect). */
  function sendSealedFile(id, el, name, bytes) {
    var state = e2e, chat = chatId;
    var type = Files.sniff(bytes);
    if (!type) return Promise.reject(new Files.FileError(0, 'file_type'));
    if (!Object.keys(state.keys).length) return Promise.reject(new Files.FileError(0, 'no_key'));
    var decision;
    return endPolicyFor(state).then(function (policy) {
      decision = policy.evaluate(name, 'customer');
      if (decision.action === 'block') throw new Files.FileError(0, 'blocked', '', decision.kinds);
      return Files.withoutMetadata(bytes, type);
    }).then(function (clean) {
      var epoch = Math.max.apply(null, Object.keys(state.keys).map(Number));
      var key = state.keys[epoch];
      var body = E.sealFile(key, clean);
      return tickets.ask(id, function () { return sock && sock.send({ t: 'upload', id: id, size: body.length }); })
        .then(function (ticket) { return Files.upload(gateway, ticket, '', body, 'omit'); })
        .then(function (answer) { return E.fileText(decision.text, type, clean).then(function (text) {
          return E.sealMessage(key, chat, 'customer', id, epoch, text).then(function (s) {
            var frame = { t: 'emsg', id: id, c: s.c, fc: s.fc, e: epoch, file: answer.file };
            var flags = CipherdeskPolicy.flags(decision);
            if (flags.length) frame.flags = flags;
            pending.set(id, { id: id, text: '', el: el, frame: frame, checked: true, sealing: true });
            if (sock && welcomed) sock.send(frame);
            var shown = CipherdeskPolicy.notice(decision);
            return { e2e: true, notice: decision.action === 'mask' ? shown : null };
          });
        }); });
    });
  }

  function onTyping() {
    if (!sock || !welcomed) return;
    if (!typingOn) { typingOn = true; sock.send({ t: 'typing', on: true }); }
    clearTimeout(typingTimer);
    typingTimer = setTimeout(stopTyping, 3000);
  }
  function stopTyping() {
    clearTimeout(typingTimer);
    if (typingOn && sock && welcomed) sock.send({ t: 'typing', on: false });
    typingOn = false;
  }

  function endChat() {
    if (sock && welcomed) sock.send({ t: 'close' });
    else chatEnded(t('widget.you_ended'));
  }

  function chatEnded(text) {
    if (closedChat) return;
    closedChat = true;
    clearTimeout(offlineTimer);
    typingEl.hidden = true;
    systemLine(text);
    setStatus(t('widget.status.ended'));
    forget();
    pending.clear();
    showStage();
    renderRating();
    newChatBtn.hidden = false;
  }

  /* Stars first, then an optional comment: one `close` frame with both. The gateway
     records the first rating of a chat, also after the agent closed it. */
  function renderRating() {
    CipherdeskUI.clear(rating);
    rating.hidden = false;
    rating.appendChild(h('p', { id: 'cdw-rate', text: t('widget.rate_question') }));
    var chosen = 0;
    var stars = [];
    var row = h('div', { class: 'stars', role: 'group', 'aria-labelledby': 'cdw-rate' });
    var comment = h('textarea', { class: 'rate-comment', rows: '2', maxlength: '1000', hidden: true,
      placeholder: t('widget.rate_comment'), 'aria-label': t('widget.rate_comment') });
    var send = h('button', { type: 'button', class: 'primary rate-send', hidden: true, onclick: function () {
      var frame = { t: 'close', csat: chosen };
      var text = comment.value.trim();
      if (text) frame.comment = text.slice(0, 1000);
      if (sock && welcomed) sock.send(frame);
      CipherdeskUI.clear(rating).appendChild(h('p', { text: t('widget.thanks') }));
      setTimeout(function () { if (sock) { sock.close('done'); sock = null; } }, 300);
    } }, t('widget.rate_send'));
    [1, 2, 3, 4, 5].forEach(function (n) {
      var star = h('button', { type: 'button', class: 'star', 'aria-pressed': 'false', 'aria-label': t('widget.stars', { count: n }), onclick: function () {
        chosen = n;
        stars.forEach(function (s, i) {
          s.setAttribute('aria-pressed', String(i + 1 === n));
          s.classList.toggle('on', i < n);
        });
        comment.hidden = false; send.hidden = false;
      } }, '★');
      stars.push(star);
      row.appendChild(star);
    });
    rating.appendChild(row);
    rating.appendChild(comment);
    rating.appendChild(send);
  }

  function newChat() {
    if (sock) { sock.close('new chat'); sock = null; }
    chatId = null; lastSeq = 0; ackedSeq = 0; agentName = null; closedChat = false; opening = false;
    consented = 0;
    chatState = null; ui.notes = []; replayNotes = []; saveUi();
    rendered.clear(); bubbles.clear(); pending.clear();
    CipherdeskUI.clear(log);
    rating.hidden = true; newChatBtn.hidden = true;
    setStatus(t('widget.status.secure'));
    showStage();
    if (!prechatForm.hidden) nameIn.focus(); else input.focus();
  }

  document.addEventListener('visibilitychange', function () { if (!document.hidden && isOpen) markSeen(); });

  fetchNotice();

  /* A stored chat: reconnect at once so replies arrive (and count as unread). */
  if (!chatId) { ui.notes = []; replayNotes = []; }
  if (chatId) connect();
  showStage();
  if (chatId && ui.open) openPanel();  // it was open before the reload
})();
