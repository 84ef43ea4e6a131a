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

  return { h: h, append: append, clear: clear, clock: clock, duration: duration };
})();
