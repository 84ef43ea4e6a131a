/* Tiny DOM helpers shared by the widget and the console. Text is always set with
 * textContent / text nodes: nothing a user typed is ever parsed as HTML. */
var CipherdeskUI = (function () {
  'use strict';

  /* h('div', {class: 'x', onclick: fn, 'aria-label': 'y'}, 'text', childNode, ...) */
  function h(tag, attrs) {
    var el = document.createElement(tag);
    if (attrs) {
      for (var k in attrs) {
        if (!Object.prototype.hasOwnProperty.call(attrs, k)) continue;
        var v = attrs[k];
        if (v === null || v === undefined || v === false) continue;
        if (k.slice(0, 2) === 'on' && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = v;
        else if (k === 'hidden') el.hidden = !!v;
        else if (k === 'value') el.value = v;
        else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (var i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }

  function append(el, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { append(el, c); }); return; }
    el.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }

  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

  function clock(ts) {
    // In the page's language (Intl, through CipherdeskI18n).
    return CipherdeskI18n.time(ts);
  }

  /* "0:42", "12:05", "1:02:03" */
  function duration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var hh = Math.floor(seconds / 3600), mm = Math.floor(seconds / 60) % 60, ss = seconds % 60;
    var two = function (n) { return (n < 10 ? '0' : '') + n; };
    return hh ? hh + ':' + two(mm) + ':' + two(ss) : mm + ':' + two(ss);
  }

  /* A message body into ``el`` (issue 16 item 11): text nodes, with http(s) links the
   * policy left intact as real anchors built with DOM APIs. Line breaks are kept by the
   * bubbles' ``white-space: pre-wrap``. A defanged link (``hxxps://x[.]com``), a
   * ``javascript:`` text or markup stays plain text: only a string that parses as an
   * http(s) URL without credentials becomes an <a>, and its text is the exact substring,
   * so ``el.textContent`` is always the message as sent. */
  var LINK = /\bhttps?:\/\/[^\s<>"'`]+/gi;
  var TRAILING = /[.,;:!?)\]}'"\u3002\uff0c\uff1b\uff1a\uff01\uff1f\uff09\u300d\u300f]+$/;
  function safeUrl(raw) {
    var url;
    try { url = new URL(raw); } catch (e) { return null; }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return null;
    if (url.username || url.password || url.hostname.indexOf('[.]') !== -1) return null;
    return url.href;
  }
  function rich(el, text) {
    clear(el);
    text = String(text == null ? '' : text);
    var at = 0, m;
    LINK.lastIndex = 0;
    while ((m = LINK.exec(text)) !== null) {
      var raw = m[0].replace(TRAILING, '');
      var href = raw ? safeUrl(raw) : null;
      if (!href) continue;
      if (m.index > at) el.appendChild(document.createTextNode(text.slice(at, m.index)));
      var a = document.createElement('a');
      a.href = href;
      a.target = '_blank';
      a.rel = 'noopener noreferrer nofollow';
      a.referrerPolicy = 'no-referrer';
      a.className = 'msg-link';
      a.textContent = raw;
      el.appendChild(a);
      at = m.index + raw.length;
      LINK.lastIndex = at;
    }
    if (at < text.length) el.appendChild(document.createTextNode(text.slice(at)));
    return el;
  }

  return { h: h, append: append, clear: clear, clock: clock, duration: duration, rich: rich };
})();
