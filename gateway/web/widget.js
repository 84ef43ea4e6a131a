/* cipherdesk customer widget. Embed:
 *   <script src="https://chat.example.com/widget.js" data-tenant="acme"
 *           data-gateway-key="<verify key>" integrity="sha384-…" crossorigin="anonymous" async>
 * Optional: data-title, data-prechat="off", data-queue, data-offline-after (seconds).
 *
 * localStorage holds ONLY {chat, token, last_seq} (the resume credentials); unsent
 * messages live in memory and are re-sent with the same id after a reconnect.
 */
(function () {
  'use strict';
  var script = document.currentScript;
  if (!script || window.__cipherdeskWidget) return;
  window.__cipherdeskWidget = true;

  var P = CipherdeskProtocol;
  var h = CipherdeskUI.h;
  var CSS_INTEGRITY = '__CSS_INTEGRITY__';

  var base = new URL(script.src, location.href);
  var gateway = base.origin;
  var cfg = {
    tenant: script.getAttribute('data-tenant') || '',
    gatewayKey: script.getAttribute('data-gateway-key') || '',
    title: script.getAttribute('data-title') || 'Chat with us',
    prechat: script.getAttribute('data-prechat') !== 'off',
    queue: script.getAttribute('data-queue') || 'default',
    offlineAfter: parseFloat(script.getAttribute('data-offline-after') || '45')
  };
  var wsUrl = gateway.replace(/^http/, 'ws') + '/ws/customer?tenant=' + encodeURIComponent(cfg.tenant);
  var STORE = 'cipherdesk:' + cfg.tenant;

  /* ------------------------------------------------------------------ state */
  var saved = load();
  var sock = null;
  var chatId = saved ? saved.chat : null;
  var lastSeq = 0;                 // highest seq rendered on this page
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
  var chatState = null;
  var unread = 0;
  var isOpen = false;

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
    try { localStorage.setItem(STORE, JSON.stringify(saved)); } catch (e) { /* ignore */ }
  }
  function forget() {
    saved = null;
    try { localStorage.removeItem(STORE); } catch (e) { /* ignore */ }
  }

  /* ------------------------------------------------------------------ DOM */
  var host = h('div', { id: 'cipherdesk-widget' });
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

  var statusEl = h('p', { class: 'status', role: 'status' }, 'Secure chat');
  var closeBtn = h('button', { class: 'icon-btn', type: 'button', 'aria-label': 'Close chat window', onclick: function () { closePanel(); } }, '×');
  var endBtn = h('button', { class: 'text-btn', type: 'button', hidden: true, onclick: endChat }, 'End chat');
  var header = h('header', { class: 'head' },
    h('div', { class: 'head-text' }, h('h2', { id: 'cdw-title', text: cfg.title }), statusEl),
    endBtn, closeBtn);

  var log = h('div', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions', 'aria-label': 'Conversation', tabindex: '0' });
  var typingEl = h('p', { class: 'typing', hidden: true, 'aria-live': 'polite' });
  var alertEl = h('p', { class: 'alert', role: 'alert', hidden: true });

  var nameIn = h('input', { id: 'cdw-name', name: 'name', autocomplete: 'name', maxlength: '200' });
  var emailIn = h('input', { id: 'cdw-email', name: 'email', type: 'email', autocomplete: 'email', maxlength: '200' });
  var topicIn = h('select', { id: 'cdw-topic', name: 'topic' },
    ['General question', 'Orders & delivery', 'Billing', 'Technical problem'].map(function (t) { return h('option', { value: t, text: t }); }));
  var prechatForm = h('form', { class: 'prechat', onsubmit: startChat, 'aria-label': 'Start a chat' },
    h('p', { class: 'intro', text: 'Hi! Tell us a little about you and we will connect you with an agent.' }),
    h('label', { for: 'cdw-name' }, 'Name ', h('span', { class: 'opt', text: '(optional)' })), nameIn,
    h('label', { for: 'cdw-email' }, 'E-mail ', h('span', { class: 'opt', text: '(optional, for a reply if we are offline)' })), emailIn,
    h('label', { for: 'cdw-topic' }, 'Topic'), topicIn,
    h('button', { class: 'primary', type: 'submit' }, 'Start chat'),
    h('p', { class: 'fine', text: 'Messages are encrypted between your browser and us. Please never share passwords or full card numbers.' }));

  var input = h('textarea', { id: 'cdw-input', rows: '1', placeholder: 'Write a message…', 'aria-label': 'Message', maxlength: '4000' });
  var sendBtn = h('button', { class: 'send', type: 'submit', 'aria-label': 'Send message' }, h('span', { 'aria-hidden': 'true', text: '➤' }));
  var composer = h('form', { class: 'composer', hidden: true, onsubmit: function (ev) { ev.preventDefault(); sendText(); } }, input, sendBtn);

  var rating = h('div', { class: 'rating', hidden: true });
  var newChatBtn = h('button', { class: 'primary', type: 'button', hidden: true, onclick: newChat }, 'Start a new chat');

  var panel = h('section', { id: 'cdw-panel', class: 'panel', role: 'dialog', 'aria-modal': 'false', 'aria-labelledby': 'cdw-title', hidden: true },
    header, h('div', { class: 'body' }, prechatForm, log, typingEl, alertEl, rating, newChatBtn), composer);
  panel.addEventListener('keydown', function (ev) {
    if (ev.key === 'Escape') { ev.preventDefault(); closePanel(); }
  });
  input.addEventListener('keydown', function (ev) {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); sendText(); }
  });
  input.addEventListener('input', onTyping);

  root.appendChild(css);
  root.appendChild(panel);
  root.appendChild(launcher);
  function mount() { document.body.appendChild(host); }
  if (document.body) mount(); else document.addEventListener('DOMContentLoaded', mount);

  /* ------------------------------------------------------------------ panel */
  function openPanel() {
    isOpen = true;
    panel.hidden = false;
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
  }
  function renderBadge() {
    badge.hidden = unread === 0;
    badge.textContent = unread > 9 ? '9+' : String(unread);
    launcher.setAttribute('aria-label', unread ? cfg.title + ' (' + unread + ' new)' : cfg.title);
  }
  function markSeen() {
    if (lastSeq > seenSeq) { seenSeq = lastSeq; save(); }
  }
  function setStatus(text) { statusEl.textContent = text; }
  function showAlert(text) { alertEl.textContent = text || ''; alertEl.hidden = !text; }

  /* ------------------------------------------------------------------ log */
  function scrollDown() { log.scrollTop = log.scrollHeight; }
  function systemLine(text, kind) {
    log.appendChild(h('p', { class: 'sys' + (kind ? ' ' + kind : ''), text: text }));
    scrollDown();
  }
  function bubble(from, text, ts, who) {
    var body = h('span', { class: 'text', text: text });
    var meta = h('span', { class: 'meta' }, who ? h('span', { class: 'who', text: who }) : null,
      h('span', { class: 'time', text: ts ? CipherdeskUI.clock(ts) : '' }));
    var el = h('div', { class: 'msg ' + from }, body, meta);
    log.appendChild(el);
    scrollDown();
    return el;
  }
  function setTick(el, state) {
    var tick = el.querySelector('.tick');
    if (!tick) { tick = h('span', { class: 'tick' }); el.querySelector('.meta').appendChild(tick); }
    var labels = { sending: ['🕓', 'Sending'], sent: ['✓', 'Sent'], stored: ['✓✓', 'Delivered'], failed: ['!', 'Not delivered'] };
    tick.textContent = labels[state][0];
    tick.setAttribute('aria-label', labels[state][1]);
    tick.setAttribute('title', labels[state][1]);
    el.setAttribute('data-state', state);
  }

  /* ------------------------------------------------------------------ connection */
  function connect() {
    if (sock || fatal) return;
    clearTimeout(reconnectTimer);
    welcomed = false;
    setStatus(chatId ? 'Reconnecting…' : 'Connecting…');
    var resuming = !!(chatId && saved);
    sock = new P.SecureSocket(wsUrl, {
      gatewayKey: cfg.gatewayKey,
      keyExtra: function () {
        return resuming ? { resume: { chat: chatId, token: saved.token, last_seq: lastSeq } } : null;
      },
      onready: function () {
        if (!resuming && opening) {
          var open = { t: 'open', queue: cfg.queue };
          if (profile) open.profile = profile;
          sock.send(open);
        }
      },
      onframe: onFrame,
      onclose: onClose
    });
  }

  function onClose(info) {
    sock = null;
    welcomed = false;
    typingEl.hidden = true;
    if (info.error === 'signature') {
      fatal = 'signature';
      setStatus('Chat unavailable');
      showAlert('We could not verify the secure connection to our chat service, so the chat is disabled. Please try again later or contact us another way.');
      showStage();
      return;
    }
    if (info.code === 4403) {
      fatal = 'refused';
      setStatus('Chat offline');
      showAlert('Chat is unavailable right now. Please try again later or contact us by e-mail.');
      showStage();
      return;
    }
    if (closedChat || (!chatId && !opening && pending.size === 0)) { setStatus('Secure chat'); return; }
    var delay = backoff.next();
    var hint = P.retryAfter(info.reason);
    if (hint !== null) delay = Math.max(delay, hint * 1000);
    setStatus('Connection lost — reconnecting…');
    markPendingSending();
    reconnectTimer = setTimeout(connect, delay);
  }

  function markPendingSending() {
    pending.forEach(function (p) { setTick(p.el, 'sending'); });
  }

  function flushPending() {
    pending.forEach(function (p) {
      if (sock && sock.send({ t: 'msg', id: p.id, text: p.text })) setTick(p.el, 'sent');
    });
  }

  function onFrame(f) {
    switch (f.t) {
      case 'welcome': return onWelcome(f);
      case 'msg': return onMsg(f);
      case 'ack': return onAck(f);
      case 'notice': return onNotice(f);
      case 'typing': return onAgentTyping(f);
      case 'chat': return onChatEvent(f);
      case 'error': return onError(f);
      default: return undefined;
    }
  }

  function onWelcome(f) {
    welcomed = true;
    backoff.reset();
    opening = false;
    chatId = f.chat;
    chatState = f.state;
    if (f.token) { saved = { chat: f.chat, token: f.token, last_seq: 0 }; save(); }
    if (f.state === 'closed') { chatEnded('This chat has ended.'); return; }
    if (f.state === 'queued') {
      waiting(f.agents_online === 0);
    } else {
      setStatus(agentName ? 'Chatting with ' + agentName : 'Connected to an agent');
    }
    showAlert('');
    showStage();
    flushPending();
  }

  // nobodyOnline: the gateway said no agent of this tenant is connected (welcome frame's
  // agents_online == 0): offer the offline form at once instead of after the timer.
  function waiting(nobodyOnline) {
    setStatus(nobodyOnline ? 'No agent online right now' : 'Waiting for an agent…');
    clearTimeout(offlineTimer);
    offlineTimer = setTimeout(function () {
      if (!agentName && chatId && !closedChat) {
        log.appendChild(h('div', { class: 'offline', role: 'note' },
          h('strong', { text: 'Our agents are busy right now.' }),
          h('span', { text: ' Leave your message here — it is kept in your chat and we will answer as soon as someone is available' +
            (profile && profile.email ? ' (or by e-mail to ' + profile.email + ').' : '.') })));
        scrollDown();
      }
    }, nobodyOnline ? 0 : cfg.offlineAfter * 1000);
  }

  function onMsg(f) {
    if (rendered.has(f.seq)) return;
    rendered.add(f.seq);
    if (f.seq > lastSeq) lastSeq = f.seq;
    if (f.from === 'customer') {
      var own = f.id ? bubbles.get(f.id) : null;
      if (own) {
        own.querySelector('.text').textContent = f.text;  // what was delivered (masked)
        own.querySelector('.time').textContent = CipherdeskUI.clock(f.ts);
        pending.delete(f.id);
        setTick(own, 'stored');
      } else {
        var el = bubble('me', f.text, f.ts, null);
        if (f.id) bubbles.set(f.id, el);
        setTick(el, 'stored');
      }
    } else if (f.from === 'agent') {
      typingEl.hidden = true;
      if (f.agent && !agentName && chatState === 'active' && !closedChat) {
        agentName = f.agent;
        clearTimeout(offlineTimer);
        setStatus('Chatting with ' + agentName);
      }
      bubble('agent', f.text, f.ts, f.agent || 'Agent');
    } else {
      systemLine(f.text);
    }
    if (isOpen && !document.hidden) markSeen();
    else if (f.seq > seenSeq && f.from !== 'customer') { unread++; renderBadge(); }
  }

  function onAck(f) {
    var p = pending.get(f.id);
    pending.delete(f.id);
    var el = bubbles.get(f.id) || (p && p.el);
    if (el) setTick(el, 'stored');
  }

  function onNotice(f) {
    var el = f.id ? bubbles.get(f.id) : null;
    if (f.action === 'blocked') {
      pending.delete(f.id);
      if (el) setTick(el, 'failed');
      systemLine(f.message || 'Your message was not sent because of our chat policy.', 'notice blocked');
    } else if (f.action === 'limited') {
      var wait = Math.max(1, f.retry_after || 2);
      systemLine(f.message || 'You are sending messages too quickly; we will send it in a moment.', 'notice');
      setTimeout(function () {
        var p = pending.get(f.id);
        if (p && sock && welcomed) sock.send({ t: 'msg', id: p.id, text: p.text });
      }, wait * 1000);
    } else {
      systemLine(f.message || 'Part of your message was hidden for your safety.', 'notice ' + f.action);
    }
  }

  function onAgentTyping(f) {
    if (f.from !== 'agent') return;
    clearTimeout(agentTypingTimer);
    typingEl.textContent = (agentName || 'The agent') + ' is typing…';
    typingEl.hidden = !f.on;
    if (f.on) agentTypingTimer = setTimeout(function () { typingEl.hidden = true; }, 8000);
  }

  function onChatEvent(f) {
    if (f.event === 'joined' && f.reason !== 'watch') {
      agentName = f.agent || 'An agent';
      chatState = 'active';
      clearTimeout(offlineTimer);
      systemLine(agentName + ' joined the chat');
      setStatus('Chatting with ' + agentName);
    } else if (f.event === 'left') {
      systemLine((f.agent || 'The agent') + ' left the chat');
      agentName = null;
      chatState = 'queued';
      typingEl.hidden = true;
      if (!closedChat) waiting();
    } else if (f.event === 'closed') {
      chatEnded(f.reason === 'customer_left' ? 'You ended the chat.' : 'The agent ended the chat.');
    }
  }

  function onError(f) {
    if (f.code === 'resume_refused') {
      forget();
      chatId = null;
      lastSeq = 0;
      systemLine('Your previous conversation is no longer available. Start a new one below.');
      if (sock) { sock.close('resume refused'); sock = null; }
      showStage();
      return;
    }
    if (f.code === 'chat_closed') { chatEnded('This chat has ended.'); return; }
    if (f.ref && bubbles.get(f.ref)) {
      pending.delete(f.ref);
      setTick(bubbles.get(f.ref), 'failed');
    }
    systemLine(f.message || 'Something went wrong.', 'notice');
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
    systemLine('Starting a secure chat…');
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
    pending.set(id, { id: id, text: text, el: el });
    setTick(el, 'sending');
    if (sock && welcomed) {
      if (sock.send({ t: 'msg', id: id, text: text })) setTick(el, 'sent');
    } else if (!sock) {
      connect();
    }
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
    else chatEnded('You ended the chat.');
  }

  function chatEnded(text) {
    if (closedChat) return;
    closedChat = true;
    clearTimeout(offlineTimer);
    typingEl.hidden = true;
    systemLine(text);
    setStatus('Chat ended');
    forget();
    pending.clear();
    showStage();
    renderRating();
    newChatBtn.hidden = false;
  }

  function renderRating() {
    CipherdeskUI.clear(rating);
    rating.hidden = false;
    rating.appendChild(h('p', { id: 'cdw-rate', text: 'How was your chat?' }));
    var row = h('div', { class: 'stars', role: 'group', 'aria-labelledby': 'cdw-rate' });
    [1, 2, 3, 4, 5].forEach(function (n) {
      row.appendChild(h('button', { type: 'button', class: 'star', 'aria-label': n + ' out of 5', onclick: function () {
        if (sock && welcomed) sock.send({ t: 'close', csat: n });
        CipherdeskUI.clear(rating).appendChild(h('p', { text: 'Thank you for your feedback!' }));
        setTimeout(function () { if (sock) { sock.close('done'); sock = null; } }, 300);
      } }, '★'));
    });
    rating.appendChild(row);
  }

  function newChat() {
    if (sock) { sock.close('new chat'); sock = null; }
    chatId = null; lastSeq = 0; agentName = null; closedChat = false; opening = false;
    rendered.clear(); bubbles.clear(); pending.clear();
    CipherdeskUI.clear(log);
    rating.hidden = true; newChatBtn.hidden = true;
    setStatus('Secure chat');
    showStage();
    if (!prechatForm.hidden) nameIn.focus(); else input.focus();
  }

  document.addEventListener('visibilitychange', function () { if (!document.hidden && isOpen) markSeen(); });

  /* A stored chat: reconnect at once so replies arrive (and count as unread). */
  if (chatId) connect();
  showStage();
})();
