/* Localisation for the widget, the console and the admin pages, on i18next (npm,
 * pinned in package-lock.json, bundled by gateway/http/web.py). The catalogues
 * (gateway/web/i18n/*.json) are bundled too, as CIPHERDESK_CATALOGUES, so the widget
 * needs no extra request and Subresource Integrity covers the texts as well.
 * Dates, times and numbers go through Intl in the chosen language. */
var CipherdeskI18n = (function () {
  'use strict';
  var SUPPORTED = ['en', 'zh-CN', 'zh-TW'];

  /* Same rules as gateway/i18n.py pick_language: zh-TW/HK/MO/Hant -> zh-TW, other zh ->
   * zh-CN, en -> en, first match wins, English when nothing matches. */
  function pick(wanted) {
    for (var i = 0; i < wanted.length; i++) {
      var tag = String(wanted[i] || '').trim().toLowerCase().replace(/_/g, '-');
      if (!tag) continue;
      if (tag.indexOf('zh') === 0) {
        return /-(tw|hk|mo|hant)/.test(tag) ? 'zh-TW' : 'zh-CN';
      }
      if (tag === 'en' || tag.indexOf('en-') === 0) return 'en';
    }
    return 'en';
  }

  function browserLanguages() {
    var list = [];
    if (navigator.languages) list = list.concat(Array.prototype.slice.call(navigator.languages));
    if (navigator.language) list.push(navigator.language);
    return list;
  }

  var inst = null;
  var current = 'en';

  function setup(lang) {
    current = SUPPORTED.indexOf(lang) >= 0 ? lang : 'en';
    var resources = {};
    SUPPORTED.forEach(function (l) {
      if (CIPHERDESK_CATALOGUES[l]) resources[l] = { translation: CIPHERDESK_CATALOGUES[l] };
    });
    inst = i18next.createInstance();
    inst.init({
      lng: current,
      fallbackLng: 'en',
      supportedLngs: SUPPORTED,
      load: 'currentOnly',
      resources: resources,
      initAsync: false,
      returnNull: false,
      returnEmptyString: true,  // zh: sentences join without a space (server.sentence_gap)
      // Every text is put into the page with textContent, never parsed as HTML.
      interpolation: { escapeValue: false }
    });
    return api;
  }

  function t(key, values) { return inst ? inst.t(key, values) : key; }

  /* Has the catalogue a text for this key (in this language or English)? */
  function has(key) { return !!inst && inst.exists(key); }

  function date(ts) { return new Date(ts * 1000); }
  function time(ts) {
    return new Intl.DateTimeFormat(current, { hour: '2-digit', minute: '2-digit' }).format(date(ts));
  }
  function dateTime(ts) {
    if (!ts) return '';
    return new Intl.DateTimeFormat(current, { dateStyle: 'short', timeStyle: 'medium' }).format(date(ts));
  }
  function number(n) { return new Intl.NumberFormat(current).format(n); }
  /* "a, b and c" in the language (Intl.ListFormat). */
  function list(items) {
    try { return new Intl.ListFormat(current, { style: 'long', type: 'conjunction' }).format(items); }
    catch (e) { return items.join(', '); }
  }

  /* Static markup: data-i18n="key" sets textContent, data-i18n-attr="attr:key;attr:key". */
  function translateTree(rootEl) {
    rootEl.querySelectorAll('[data-i18n]').forEach(function (el) { el.textContent = t(el.getAttribute('data-i18n')); });
    rootEl.querySelectorAll('[data-i18n-attr]').forEach(function (el) {
      el.getAttribute('data-i18n-attr').split(';').forEach(function (pair) {
        var i = pair.indexOf(':');
        if (i > 0) el.setAttribute(pair.slice(0, i).trim(), t(pair.slice(i + 1).trim()));
      });
    });
  }

  var api = {
    SUPPORTED: SUPPORTED, pick: pick, browserLanguages: browserLanguages, setup: setup,
    t: t, has: has, time: time, dateTime: dateTime, number: number, list: list,
    translateTree: translateTree,
    lang: function () { return current; }
  };
  return api;
})();

/* The sentence shown for a policy notice or an error frame, in the reader's language.
 * Built from the frame's codes (action, kinds, error code) so the gateway need not know
 * the reader's language; the gateway's own `message` (English or Chinese, by the text's
 * script) is the fallback for codes this catalogue does not know. */
var CipherdeskNotices = (function () {
  'use strict';
  var I = CipherdeskI18n;
  var ACTIONS = { blocked: 'block', masked: 'mask', flagged: 'flag' };

  function unique(items) { return items.filter(function (x, i) { return items.indexOf(x) === i; }); }

  function what(kinds) {
    return I.list(unique(kinds.map(function (k) {
      return I.has('server.what.' + k) ? I.t('server.what.' + k) : I.t('server.what.other');
    })));
  }

  /* direction: whose message it was ('customer' in the widget, 'agent' in the console). */
  function text(f, direction) {
    if (f.action === 'limited') return I.t('server.limited');
    var action = ACTIONS[f.action];
    var kinds = f.kinds || [];
    if (!action || !kinds.length) return f.message || I.t('server.hidden');
    var allLinks = kinds.every(function (k) { return k.indexOf('link') === 0; });
    var parts = [action === 'mask' && allLinks ? I.t('server.links_as_text') : I.t('server.lead.' + action, { what: what(kinds) })];
    unique(kinds.map(function (k) { return 'server.advice.' + direction + '.' + k; }))
      .forEach(function (key) { if (I.has(key)) parts.push(I.t(key)); });
    return unique(parts).join(I.t('server.sentence_gap'));
  }

  function error(f) {
    var key = 'server.error.' + f.code;
    return I.has(key) ? I.t(key) : (f.message || I.t('server.error.generic'));
  }

  function closeReason(reason) {
    var key = 'server.close.' + (reason || 'resolved');
    return I.has(key) ? I.t(key) : I.t('server.close.other', { reason: reason });
  }

  return { text: text, error: error, closeReason: closeReason };
})();
