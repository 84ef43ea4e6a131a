/* cipherdesk policy at the ends (end-to-end mode, issue 13): the browser twin of
 * gateway/policy for the kinds an end can check -- cards, PRC IDs, IBANs, bank accounts,
 * identity documents, phones, QQ/WeChat accounts, e-mails, postal addresses, person
 * names, one-time codes, passwords, API keys, private keys -- and every keyword category.
 * In an e2e chat the gateway cannot read, so the widget masks the customer's personal data
 * BEFORE it seals (cards never leave the device in clear) and the console checks agents'
 * messages; links are judged against the tenant's allowed domains and defanged; what a
 * message says with the ones before it is read by policy_window.js.
 *
 * It reads the document gateway/policy/end.py compiles (actions, masks, folded keyword
 * terms, Traditional -> Simplified entries, libphonenumber's and stdnum's data), signed by
 * the tenant key; tests/policy/vectors.jsonl is run through both engines in Chromium.
 * The structure follows the Python modules one to one (normalize, numbers, detectors,
 * engine, masking): a difference is a bug in one of them.
 *
 *   CipherdeskPolicy.engine(doc) -> {evaluate(text, direction) -> decision}
 *   CipherdeskPolicy.forTenant(signed, tenantKey, tenant) -> the tenant's signed engine or
 *     the bundled default (CipherdeskPolicyDefault)
 *   CipherdeskPolicy.notice(decision) -> {action, kinds} for CipherdeskNotices.text
 *   CipherdeskPolicy.flags(decision) -> the kinds to send as `emsg.flags`
 *   engine.render(text, findings) -> what the recipient sees (policy_window.js)
 *   engine.fold(text) -> the matching view, engine.carried(key) -> the document's patterns
 *   decision = {action, text (null when blocked), findings: [{kind, start, end, start_utf16,
 *               end_utf16, action, rule}], kinds: [kinds that changed something],
 *               split_kinds: [kinds completed across messages] (policy_window.js only)}
 *
 * Offsets are code points like Python's (plus UTF-16 ones for the page). Every pattern is
 * bounded; possessive quantifiers of the Python patterns are spelt as atomic lookahead
 * captures, so no input makes them backtrack more than the Python ones do.
 */
var CipherdeskPolicy = (function () {
  'use strict';

  var SEVERITY = { allow: 0, mask: 1, flag: 2, block: 3 };
  var DIRECTIONS = ['customer', 'agent'];
  var NUMERIC = { card: 1, cn_id: 1, phone: 1, bank_account: 1 };
  var BIDI_OVERRIDES = '\u202a\u202b\u202d\u202e\u2066\u2067\u2068';

  /* ------------------------------------------------------------------ atoms */

  var atomicId = 0;
  /** A possessive/atomic group: `(?=(X))\N` matches what X matches greedily, never less. */
  function atomic(x) {
    atomicId += 1;
    var name = 'a' + atomicId;
    return '(?=(?<' + name + '>' + x + '))\\k<' + name + '>';
  }

  function escapeRe(s) {
    return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }

  var RE_FORMAT = /\p{Cf}/u;
  var RE_MARK = /[\p{Mn}\p{Me}]/u;
  var RE_MARKS = /[\p{Mn}\p{Me}]/gu;
  var RE_CONTROL = /\p{Cc}/u;
  var RE_SURROGATE = /^[\ud800-\udfff]$/;
  var RE_ND = /\p{Nd}/u;
  var RE_ALNUM = /[\p{L}\p{N}]/u;
  var RE_EAST_ASIAN = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/u;
  var INVISIBLE = '\u115f\u1160\u3164\uffa0\u2800\u180e';
  var DOTS = { '\u3002': '.', '\uff61': '.' };
  var ASTRAL_LETTER = '\u3400';   // stands in for an astral letter in the view (one unit)
  var ASTRAL_OTHER = '\ufffc';    // ... and for any other astral character

  function isAlnum(ch) { return RE_ALNUM.test(ch); }

  /** Latin-like letters/digits need word boundaries; CJK/kana/hangul never have them. */
  function needsBoundary(ch) { return isAlnum(ch) && !RE_EAST_ASIAN.test(ch); }

  /** Signs that are a digit without being a decimal digit or having a compatibility mapping
   * (normalize.py _fold_char: unicodedata.digit): [first code point, last, value of first]. */
  var DIGIT_SIGNS = [
    [0x1369, 0x1371, 1], [0x19da, 0x19da, 1], [0x24f5, 0x24fd, 1], [0x24ff, 0x24ff, 0],
    [0x2776, 0x277e, 1], [0x2780, 0x2788, 1], [0x278a, 0x2792, 1], [0x10a40, 0x10a43, 1],
    [0x10e60, 0x10e68, 1], [0x11052, 0x1105a, 1]
  ];
  function digitSign(c) {
    var cp = c.codePointAt(0);
    for (var i = 0; i < DIGIT_SIGNS.length; i++) {
      var r = DIGIT_SIGNS[i];
      if (cp >= r[0] && cp <= r[1]) return String(r[2] + cp - r[0]);
    }
    return c;
  }

  var digitCache = Object.create(null);
  /** The value of a decimal digit: Unicode keeps each script's 0-9 contiguous. */
  function digitValue(c) {
    if (c in digitCache) return digitCache[c];
    var cp = c.codePointAt(0), start = cp;
    while (RE_ND.test(String.fromCodePoint(start - 1))) start -= 1;
    return (digitCache[c] = String((cp - start) % 10));
  }

  var foldCache = new Map();
  var CASEFOLD = null;

  /** Python's str.casefold: the lower case, but where the fold differs from it (ß -> ss,
   * ſ -> s, Cherokee, ...) the bundled default document's `casefold`, which the gateway
   * computes from its own Unicode data (end.py _casefold). */
  function casefold(text) {
    if (CASEFOLD === null) {
      CASEFOLD = (typeof CipherdeskPolicyDefault === 'object' && CipherdeskPolicyDefault.casefold) || {};
    }
    var out = '';
    for (var c of text.toLowerCase()) out += CASEFOLD[c] || c;
    return out;
  }
  /** The matching view of one code point (normalize.py _fold_char): may be '' or several. */
  function foldChar(ch) {
    var hit = foldCache.get(ch);
    if (hit !== undefined) return hit;
    var out;
    if (DOTS[ch]) out = DOTS[ch];
    else if (RE_SURROGATE.test(ch)) out = ch;
    else if (RE_FORMAT.test(ch) || RE_MARK.test(ch) || INVISIBLE.indexOf(ch) >= 0 ||
             (RE_CONTROL.test(ch) && ch !== '\t' && ch !== '\n' && ch !== '\r')) out = '';
    else {
      var s = ch.normalize('NFKD').replace(RE_MARKS, '');
      s = casefold(s.normalize('NFKC')).normalize('NFKC');
      out = '';
      for (var c of s) {
        if (INVISIBLE.indexOf(c) >= 0 || RE_FORMAT.test(c) || RE_MARK.test(c)) continue;
        out += RE_ND.test(c) ? digitValue(c) : digitSign(c);
      }
    }
    if (foldCache.size < 20000) foldCache.set(ch, out);
    return out;
  }

  /** Letters/digits one original character contributes once normalised (masking.py). */
  function weight(ch) {
    var n = 0;
    for (var c of foldChar(ch)) if (isAlnum(c)) n += 1;
    return n;
  }

  /* ------------------------------------------------------------------ escapes */

  var ESCAPES = /&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z][a-zA-Z0-9]{1,31});|(?:%[0-9a-fA-F]{2})+/g;
  var NAMED = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

  function unescapeEntity(raw) {
    var body = raw.slice(1, -1), cp;
    if (body[0] === '#') {
      cp = body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
      if (!(cp > 0 && cp <= 0x10ffff) || (cp >= 0xd800 && cp <= 0xdfff)) return '\ufffd';
      return String.fromCodePoint(cp);
    }
    if (typeof DOMParser === 'function') {  // every named reference, as the browser renders it
      var doc = new DOMParser().parseFromString('<p>' + raw + '</p>', 'text/html');
      return doc.body ? doc.body.textContent : raw;
    }
    return NAMED[body] || raw;
  }

  /** [decoded code points, starts]: starts[i] = original code point index of decoded char i
   * (plus one entry: the length); starts = null when nothing was decoded. */
  function decodeEscapes(chars, text) {
    if (text.indexOf('&') < 0 && text.indexOf('%') < 0) return [chars, null];
    var u16ToCp = utf16ToCp(chars), out = [], starts = [], last = 0, any = false, m;
    ESCAPES.lastIndex = 0;
    while ((m = ESCAPES.exec(text)) !== null) {
      var raw = m[0], decoded;
      if (raw[0] === '&') decoded = unescapeEntity(raw);
      else {
        try { decoded = decodeURIComponent(raw); } catch (e) { decoded = raw; }
      }
      if (decoded === raw || !decoded) continue;
      var s = u16ToCp[m.index], e2 = u16ToCp[m.index + raw.length];
      for (var i = last; i < s; i++) { out.push(chars[i]); starts.push(i); }
      for (var c of decoded) { out.push(c); starts.push(s); }
      last = e2;
      any = true;
    }
    if (!any) return [chars, null];
    for (var j = last; j < chars.length; j++) { out.push(chars[j]); starts.push(j); }
    starts.push(chars.length);
    return [out, starts];
  }

  function utf16ToCp(chars) {
    var map = [], at = 0;
    for (var i = 0; i < chars.length; i++) {
      map[at] = i;
      if (chars[i].length === 2) map[at + 1] = i;
      at += chars[i].length;
    }
    map[at] = chars.length;
    return map;
  }

  /* ------------------------------------------------------------------ normalised text */

  /** Push the view of one character onto `view` (one unit per code point: an astral one is
   * stood in for); answers how many were pushed. */
  function foldInto(ch, t2s, view) {
    var n = 0;
    for (var c of foldChar(ch)) {
      if (t2s[c]) c = t2s[c];
      if (c.length === 2) c = isAlnum(c) ? ASTRAL_LETTER : ASTRAL_OTHER;
      view.push(c);
      n++;
    }
    return n;
  }

  /** The matching view of `text` without escapes decoded or offsets (normalize.py fold). */
  function foldText(text, t2s) {
    var view = [];
    for (var ch of text) foldInto(ch, t2s, view);
    return view.join('');
  }

  /** A message with its matching views and the maps back to the original (normalize.py
   * NormalizedText). The view holds one UTF-16 unit per code point (astral characters are
   * stood in for), so regex indices on it are code point indices. */
  function Normalized(text, t2s) {
    this.original = Array.from(text);
    var decoded = decodeEscapes(this.original, text);
    var source = decoded[0];
    this.pre = decoded[1];
    var view = [], toSource = [];
    for (var i = 0; i < source.length; i++) {
      for (var n = foldInto(source[i], t2s, view); n > 0; n--) toSource.push(i);
    }
    this.view = view.join('');
    this.toSource = toSource;
    this._compact = null;
  }

  Normalized.prototype.toOriginal = function (pos) {
    var s = this.toSource[pos];
    return this.pre === null ? s : this.pre[s];
  };

  /** The original span covering view span [start, end) (normalize.py span_to_original). */
  Normalized.prototype.span = function (start, end) {
    var first = this.toSource[start], last = this.toSource[end - 1];
    if (this.pre === null) return [first, last + 1];
    var stop = last + 1, pre = this.pre;
    while (stop < pre.length - 1 && pre[stop] === pre[last]) stop += 1;
    return [pre[first], pre[stop]];
  };

  /** The view without separators, and each compact character's view index. */
  Normalized.prototype.compact = function () {
    if (this._compact) return this._compact;
    var chars = [], at = [];
    for (var i = 0; i < this.view.length; i++) {
      if (isAlnum(this.view[i])) { chars.push(this.view[i]); at.push(i); }
    }
    this._compact = { text: chars.join(''), at: at };
    return this._compact;
  };

  /* ------------------------------------------------------------------ digit runs */

  var CJK_DIGITS = {
    '〇': '0', '零': '0', '一': '1', '二': '2', '三': '3', '四': '4', '五': '5', '六': '6',
    '七': '7', '八': '8', '九': '9', '两': '2', '幺': '1', '壹': '1', '贰': '2', '叁': '3',
    '参': '3', '肆': '4', '伍': '5', '陆': '6', '柒': '7', '捌': '8', '玖': '9'
  };
  var WORDS = {
    zero: '0', one: '1', two: '2', three: '3', four: '4', five: '5', six: '6', seven: '7',
    eight: '8', nine: '9', ling: '0', yi: '1', yao: '1', er: '2', liang: '2', san: '3',
    si: '4', wu: '5', liu: '6', qi: '7', ba: '8', jiu: '9', oh: '0'
  };
  /** Words that repeat the digit word after them; with "oh", digits only next to another
   * digit word (numbers.py _REPEATS, _SPOKEN_ONLY, _SPOKEN_GAP). */
  var REPEATS = { double: 2, triple: 3 };
  var SPOKEN_GAP = /^[ ,\-]{1,3}$/;
  var HOMOGLYPHS = { o: '0', l: '1', i: '1', '|': '1' };
  var CJK_CLASS = Object.keys(CJK_DIGITS).join('');
  var WORD_ALT = Object.keys(WORDS).concat(Object.keys(REPEATS)).sort(function (a, b) { return b.length - a.length; }).join('|');
  var MAX_SEPARATOR = 12, LONG_RUN = 24, MIN_RUN_DIGITS = 7;
  var DIGITISH = new RegExp('[0-9' + CJK_CLASS + '][0-9' + CJK_CLASS + 'oil|x]*', 'g');
  var WORD_TOKEN = new RegExp('(?:' + WORD_ALT + ')(?![a-z])', 'g');
  var LONE_AFTER = new RegExp(
    '[^\\p{L}\\p{N}]{1,' + MAX_SEPARATOR + '}?((?<![a-z0-9|])' + atomic('[oil|x]{1,4}') +
    ')(?![a-z0-9])', 'uy');
  var SEPARATOR = new RegExp('^[^\\p{L}\\p{N}]{1,' + MAX_SEPARATOR + '}$', 'u');
  var SOFT = /^[ \-.]{1,3}$/;
  var BLANK = /^\s+$/;  // whitespace of any length between two groups (numbers.py _BLANK)
  var GLUE = 'oil|x';

  var DIGIT_OR_NUMERAL = '[0-9' + CJK_CLASS + ']';  // numbers.py DIGIT_OR_NUMERAL
  var NUMBERISH_RUN = new RegExp(DIGIT_OR_NUMERAL + '{2,}', 'g');

  /** The view with each Chinese numeral and capital as its digit where it stands in a run
   * of numerals and digits, one for one (numbers.py numerals_as_digits): offsets stay, and
   * a numeral alone (the 四 of 后四位) stays a word. A run holds no homoglyph, so toDigits
   * changes its numerals only. */
  function numeralsAsDigits(view) {
    return view.replace(NUMBERISH_RUN, toDigits);
  }

  var DIGIT_WORD_SET = new Set(Object.keys(WORDS).filter(function (w) { return w !== 'oh'; }));
  var DIGIT_OR_NUMERAL_RE = new RegExp(DIGIT_OR_NUMERAL);

  /** Whether a message's text, as typed, holds a digit, a Chinese numeral or a digit word
   * standing alone (numbers.py number_like): what the window keeps tails for. */
  function numberLike(text) {
    if (DIGIT_OR_NUMERAL_RE.test(text)) return true;
    return (text.toLowerCase().match(/[a-z]+/g) || []).some(function (w) { return DIGIT_WORD_SET.has(w); });
  }

  function toDigits(s) {
    var out = '';
    for (var c of s) out += CJK_DIGITS[c] || HOMOGLYPHS[c] || c;
    return out;
  }

  function isLetter(view, pos) {
    if (pos < 0 || pos >= view.length) return false;
    var c = view.charCodeAt(pos);
    return c >= 97 && c <= 122;
  }

  function cmpTuple(a, b) {
    for (var i = 0; i < a.length; i++) {
      if (a[i] < b[i]) return -1;
      if (a[i] > b[i]) return 1;
    }
    return 0;
  }

  var SCRIPT_PIECE = new RegExp('[0-9oil|x]+|[' + CJK_CLASS + ']+', 'g');
  /** A chunk of ASCII digits then Chinese numerals (or the other way round) as two tokens,
   * kind d and n, a group boundary between them; a chunk that changes more often stays one
   * token (numbers.py _script_pieces). */
  function scriptPieces(chunk, start) {
    var pieces = chunk.match(SCRIPT_PIECE);
    if (pieces.length !== 2) return [[start, start + chunk.length, toDigits(chunk), 'd']];
    return pieces.map(function (text) {
      var token = [start, start + text.length, toDigits(text), CJK_DIGITS[text[0]] ? 'n' : 'd'];
      start += text.length;
      return token;
    });
  }

  /** [start, end, digits, kind] of every digit token (numbers.py _tokens). */
  function tokens(view) {
    var out = [], m;
    DIGITISH.lastIndex = 0;
    while ((m = DIGITISH.exec(view)) !== null) {
      var start = m.index, end = start + m[0].length, chunk = m[0];
      while (GLUE.indexOf(chunk[chunk.length - 1]) >= 0 && isLetter(view, end)) {
        chunk = chunk.slice(0, -1);
        end -= 1;
      }
      var lead = start;
      while (lead > 0 && GLUE.indexOf(view[lead - 1]) >= 0) lead -= 1;
      if (lead < start && !isLetter(view, lead - 1)) {
        chunk = view.slice(lead, start) + chunk;
        start = lead;
      }
      out.push.apply(out, scriptPieces(chunk, start));
    }
    var words = digitWords(view);
    if (out.length || words.length) {
      out.push.apply(out, words);
      out.push.apply(out, loneTokens(view, out));
      out.sort(cmpTuple);
    }
    return out;
  }

  /** [start, end, digits, 'w'] of every digit word with no letter on either side, as read
   * aloud (numbers.py _digit_words); none unless one that is no spoken-only word ("oh",
   * "double") stands alone, as the engine's gate tells numbers.py (holds_digit_word). */
  function digitWords(view) {
    var words = [], real = false, m;
    WORD_TOKEN.lastIndex = 0;
    while ((m = WORD_TOKEN.exec(view)) !== null) {
      if (isLetter(view, m.index - 1)) continue;
      words.push([m.index, m.index + m[0].length, WORDS[m[0]] || m[0], 'w']);
      real = real || DIGIT_WORD_SET.has(m[0]);
    }
    return real ? spoken(view, words) : [];
  }

  var WORD_GAP = /^[ \-]{1,3}$/;  // between two digit words of one group (numbers.py _WORD_GAP)

  /** The view with each digit word written as its digits, the gap between two of them
   * dropped, except words overlapping a span of `kept` (numbers.py words_as_digits): its
   * text, and toView(start, end), the view's span of text.slice(start, end); null when no
   * other digit word is there. */
  function wordsAsDigits(view, kept) {
    var words = digitWords(view).filter(function (w) {
      return !kept.some(function (k) { return k[0] < w[1] && w[0] < k[1]; });
    });
    if (!words.length) return null;
    var text = '', starts = [], ends = [], at = -1, i;
    function copy(from, to) {
      text += view.slice(from, to);
      for (i = from; i < to; i++) { starts.push(i); ends.push(i + 1); }
    }
    words.forEach(function (w) {
      if (at < 0 || !WORD_GAP.test(view.slice(at, w[0]))) copy(Math.max(at, 0), w[0]);
      text += w[2];
      for (i = 0; i < w[2].length; i++) { starts.push(w[0]); ends.push(w[1]); }
      at = w[1];
    });
    copy(at, view.length);
    return { text: text, toView: function (start, end) { return [starts[start], ends[end - 1]]; } };
  }

  /** Digit words as numbers are read aloud (numbers.py _spoken): "double"/"triple" and the
   * digit word after it become one token; "oh" is a zero only next to another digit word. */
  function spoken(view, words) {
    function gap(a, b) { return SPOKEN_GAP.test(view.slice(a[1], b[0])); }
    var merged = [];
    for (var k = 0; k < words.length; k++) {
      var times = REPEATS[words[k][2]];
      if (!times) { merged.push(words[k]); continue; }
      var after = words[k + 1];
      if (after && !REPEATS[after[2]] && gap(words[k], after)) {
        merged.push([words[k][0], after[1], after[2].repeat(times), 'w']);
        k += 1;
      }
    }
    return merged.filter(function (w, k) {
      return view.slice(w[0], w[1]) !== 'oh' || (k > 0 && gap(merged[k - 1], w)) ||
        (k + 1 < merged.length && gap(w, merged[k + 1]));
    });
  }

  /** Lone homoglyphs and x's a short separator run after a token or after each other: only
   * there can they join a run (numbers.py _lone_tokens). */
  function loneTokens(view, anchors) {
    var found = [], seen = new Set(), m;
    for (var a = 0; a < anchors.length; a++) seen.add(anchors[a][0]);
    for (var k = 0; k < anchors.length; k++) {
      LONE_AFTER.lastIndex = anchors[k][1];
      while ((m = LONE_AFTER.exec(view)) !== null) {
        var text = m[1], stop = LONE_AFTER.lastIndex, start = stop - text.length;
        if (seen.has(start)) break;
        seen.add(start);
        var x = text.indexOf('x');
        if (x < 0) found.push([start, stop, toDigits(text), 'h']);
        else if (x === text.length - 1) found.push([start, stop, toDigits(text.slice(0, -1)) + 'x', 'x']);
        else break;
      }
    }
    return found;
  }

  function Window(digits, start, end, plus) {
    this.digits = digits; this.start = start; this.end = end; this.plus = plus;
  }

  function digitCount(groups) {
    var n = 0;
    for (var i = 0; i < groups.length; i++) n += groups[i][2].length;
    return n;
  }

  function joinDigits(groups) {
    return groups.map(function (g) { return g[2]; }).join('');
  }

  function bisectLeft(a, x, lo) {
    var hi = a.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (a[mid] < x) lo = mid + 1; else hi = mid; }
    return lo;
  }

  function bisectRight(a, x, lo) {
    var hi = a.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (x < a[mid]) hi = mid; else lo = mid + 1; }
    return lo;
  }

  /** One run of digit groups (numbers.py NumberRun); groups are [start, end, digits]. */
  function NumberRun(start, end, plus, groups, hard) {
    this.start = start; this.end = end; this.plus = plus;
    this.groups = groups; this.hard = hard || [];
    this.digitCount = digitCount(groups);
  }

  NumberRun.prototype.reversed = function () {
    var n = this.groups.length;
    var groups = this.groups.slice().reverse().map(function (g) {
      return [g[0], g[1], g[2].split('').reverse().join('')];
    });
    var hard = this.hard.map(function (k) { return n - k; }).sort(function (a, b) { return a - b; });
    return new NumberRun(this.start, this.end, false, groups, hard);
  };

  NumberRun.prototype.segments = function (minDigits) {
    var out = [];
    if (!this.hard.length) return out;
    var bounds = [0].concat(this.hard, [this.groups.length]);
    for (var i = 0; i + 1 < bounds.length; i++) {
      var part = this.groups.slice(bounds[i], bounds[i + 1]);
      if (digitCount(part) >= (minDigits || MIN_RUN_DIGITS)) {
        out.push(new NumberRun(part[0][0], part[part.length - 1][1], this.plus && bounds[i] === 0, part));
      }
    }
    return out;
  };

  NumberRun.prototype.blocks = function (lo, hi) {
    var out = [];
    if (lo <= this.digitCount && this.digitCount <= hi) {
      out.push(new Window(joinDigits(this.groups), this.start, this.end, this.plus));
    }
    if (this.groups.length > 1) {
      for (var k = 0; k < this.groups.length; k++) {
        var g = this.groups[k];
        if (lo <= g[2].length && g[2].length <= hi) out.push(new Window(g[2], g[0], g[1], this.plus && k === 0));
      }
    }
    return out;
  };

  NumberRun.prototype.ends = function (lo, hi) {
    var out = [];
    if (this.digitCount <= LONG_RUN || this.groups.length < 2) return out;
    var orders = [this.groups.slice().reverse(), this.groups];
    for (var o = 0; o < 2; o++) {
      var picked = [], total = 0;
      for (var i = 0; i < orders[o].length; i++) {
        var group = orders[o][i];
        if (total + group[2].length > hi) break;
        picked.push(group);
        total += group[2].length;
        if (total >= lo && picked.length > 1) {
          var sorted = picked.slice().sort(cmpTuple);
          var first = sorted[0], last = sorted[sorted.length - 1];
          out.push(new Window(joinDigits(sorted), first[0], last[1], this.plus && first === this.groups[0]));
        }
      }
    }
    return out;
  };

  /** Accepted windows, left to right, longest first per start, never overlapping an earlier
   * accepted one; a window ending in a spelt word yields to a shorter accepted one from the
   * same start that does not (numbers.py NumberRun.claim). */
  NumberRun.prototype.claim = function (lo, hi, first, accept) {
    var groups = this.groups, n = groups.length, out = [];
    var joined = joinDigits(groups), offsets = [0];
    for (var g = 0; g < n; g++) offsets.push(offsets[g] + groups[g][2].length);
    var forward = groups[0][0] <= groups[n - 1][0];
    var i, j;
    if (n > 1 && this.digitCount <= LONG_RUN && groups.every(function (x) { return x[2].length === 1 || spelt(x); })) {
      if (lo <= joined.length && joined.length <= hi && first.indexOf(joined[0]) >= 0 && accept(joined)) {
        out.push(new Window(joined, Math.min(groups[0][0], groups[n - 1][0]),
          Math.max(groups[0][1], groups[n - 1][1]), this.plus));
      }
      return out;
    }
    if (joined.length === n) {
      var takenUntil = -1;
      for (i = 0; i < n; i++) {
        if (i < takenUntil || first.indexOf(joined[i]) < 0) continue;
        var chosenLength = 0;  // a window ending in a spelt word yields (see below)
        for (var length = Math.min(hi, n); length >= lo; length--) {
          if (i + length > n || !accept(joined.slice(i, i + length))) continue;
          chosenLength = chosenLength || length;
          if (!spelt(groups[i + length - 1])) { chosenLength = length; break; }
        }
        if (chosenLength) {
          var a = groups[i], b = groups[i + chosenLength - 1];
          var digits = joined.slice(i, i + chosenLength);
          out.push(forward ? new Window(digits, a[0], b[1], this.plus && i === 0)
            : new Window(digits, b[0], a[1], this.plus && i === 0));
          takenUntil = i + chosenLength;
        }
      }
      return out;
    }
    var taken = [-1, -1];
    for (i = 0; i < n; i++) {
      var gs = groups[i][0], ge = groups[i][1];
      if (first.indexOf(groups[i][2][0]) < 0 || (gs < taken[1] && ge > taken[0])) continue;
      var base = offsets[i], chosen = null;  // longest accepted; one not ending in a word wins
      var jLo = bisectLeft(offsets, base + lo, i + 1) - 1;
      var jHi = bisectRight(offsets, base + hi, i + 1) - 2;
      for (j = Math.min(jHi, n - 1); j >= Math.max(jLo, i); j--) {
        var total = offsets[j + 1] - base;
        if (total < lo || total > hi) continue;
        var start = forward ? gs : groups[j][0], end = forward ? groups[j][1] : ge;
        if (start < taken[1] && end > taken[0]) continue;
        var d = joined.slice(base, offsets[j + 1]);
        if (!accept(d)) continue;
        var window = new Window(d, start, end, this.plus && i === 0);
        chosen = chosen || window;
        if (!spelt(groups[j])) { chosen = window; break; }
      }
      if (chosen) {
        out.push(chosen);
        taken = [chosen.start, chosen.end];
      }
    }
    return out;
  };

  /** Whether a group was written as a word ("ba", "four"): longer in the view than its
   * digits (numbers.py _spelt). */
  function spelt(group) {
    return group[1] - group[0] > group[2].length;
  }

  /** Every digit run of at least MIN_RUN_DIGITS digits (numbers.py find_number_runs). */
  function findNumberRuns(view, reversedToo) {
    var runs = [], groups = [], hard = [], weak = new Set(), loneX = new Set();
    var plus = false, lastEnd = -1, lastStart = -1, lastKind = '';

    function flush() {
      var lo = 0, hi = groups.length;
      while (lo < hi && (weak.has(lo) || loneX.has(lo))) lo += 1;
      while (hi > lo && weak.has(hi - 1)) hi -= 1;
      var kept = groups.slice(lo, hi);
      if (digitCount(kept) >= MIN_RUN_DIGITS) {
        var cuts = hard.filter(function (k) { return lo < k && k < hi; }).map(function (k) { return k - lo; });
        var run = new NumberRun(kept[0][0], kept[kept.length - 1][1], plus && lo === 0, kept, cuts);
        runs.push(run);
        if (reversedToo) runs.push(run.reversed());
      }
    }

    var toks = tokens(view);
    for (var t = 0; t < toks.length; t++) {
      var start = toks[t][0], end = toks[t][1], digits = toks[t][2], kind = toks[t][3];
      if (start < lastEnd || start === lastStart) continue;
      lastStart = start;
      var isWeak = kind === 'h', isX = kind === 'x';
      var scriptChange = (kind === 'd' && lastKind === 'n') || (kind === 'n' && lastKind === 'd');
      if (groups.length && start === lastEnd && !scriptChange) {
        var last = groups[groups.length - 1];
        groups[groups.length - 1] = [last[0], end, last[2] + digits];
        if (!isWeak) weak.delete(groups.length - 1);
        if (!isX) loneX.delete(groups.length - 1);
      } else if (groups.length && (start === lastEnd || SEPARATOR.test(view.slice(lastEnd, start)) ||
                 BLANK.test(view.slice(lastEnd, start)))) {
        // digits meeting numerals (start === lastEnd): a hard group boundary
        if (start === lastEnd || !SOFT.test(view.slice(lastEnd, start))) hard.push(groups.length);
        groups.push([start, end, digits]);
        if (isWeak) weak.add(groups.length - 1);
        if (isX) loneX.add(groups.length - 1);
      } else {
        if (groups.length) flush();
        groups = [[start, end, digits]];
        hard = [];
        weak = new Set(isWeak ? [0] : []);
        loneX = new Set(isX ? [0] : []);
        plus = start > 0 && view[start - 1] === '+';
      }
      lastEnd = end;
      lastKind = kind;
    }
    if (groups.length) flush();
    return runs;
  }

  /** Accepted windows that do not overlap an earlier accepted one. */
  function claimWindows(windows, accept) {
    var out = [], takenUntil = -1;
    for (var i = 0; i < windows.length; i++) {
      var w = windows[i];
      if (w.start >= takenUntil && accept(w)) { takenUntil = w.end; out.push(w); }
    }
    return out;
  }

  /* ------------------------------------------------------------------ validators */

  var ISSUERS = [
    [4, 4, [13, 16, 19]], [51, 55, [16]], [2221, 2720, [16]], [34, 34, [15]], [37, 37, [15]],
    [300, 305, [14, 15, 16, 17, 18, 19]], [36, 36, [14, 15, 16, 17, 18, 19]],
    [38, 39, [14, 15, 16, 17, 18, 19]], [3528, 3589, [16, 17, 18, 19]],
    [6011, 6011, [16, 17, 18, 19]], [644, 649, [16, 17, 18, 19]], [65, 65, [16, 17, 18, 19]],
    [62, 62, [16, 17, 18, 19]], [50, 50, [16, 17, 18, 19]], [56, 58, [16, 17, 18, 19]],
    [2200, 2204, [16, 17, 18, 19]]
  ];

  /* (first four digits) -> lengths that issuer uses, expanded once like card.py _ALLOWED:
   * one lookup per window instead of a loop over the issuers. */
  var ALLOWED = (function () {
    var table = Object.create(null);
    ISSUERS.forEach(function (r) {
      var width = String(r[0]).length, span = Math.pow(10, 4 - width);
      for (var p = r[0]; p <= r[1]; p++) {
        for (var rest = 0; rest < span; rest++) {
          var head = String(p * span + rest);
          table[head] = (table[head] || []).concat(r[2]);
        }
      }
    });
    return table;
  })();

  function luhnValid(digits) {
    var sum = 0, dbl = false;
    for (var i = digits.length - 1; i >= 0; i--) {
      var d = digits.charCodeAt(i) - 48;
      if (dbl) { d *= 2; if (d > 9) d -= 9; }
      sum += d;
      dbl = !dbl;
    }
    return sum % 10 === 0;
  }

  /** card.py is_card_number: Luhn-valid, in a real issuer range, with its lengths. */
  function isCard(digits) {
    if (digits.length < 13 || digits.length > 19) return false;
    var lengths = ALLOWED[digits.slice(0, 4)];
    return !!lengths && lengths.indexOf(digits.length) >= 0 && /^[0-9]+$/.test(digits) &&
      luhnValid(digits);
  }

  var PROVINCES = new Set(('11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 ' +
    '53 54 61 62 63 64 65 71 81 82 83 91').split(' '));

  /** cn_id.py is_cn_id: mod 11-2 check, a province, a real birth date since 1900. */
  function isCnId(value, today) {
    if (value.length !== 18 || !/^[0-9]{17}/.test(value)) return false;
    if (!PROVINCES.has(value.slice(0, 2))) return false;
    var total = 0;
    for (var i = 0; i < 17; i++) total += (value.charCodeAt(i) - 48) * (Math.pow(2, 17 - i) % 11);
    if ('10x98765432'[total % 11] !== value[17].toLowerCase()) return false;
    return bornInTime(value, today);
  }

  /** cn_id.py _born_in_time: a real birth date (positions 7-14) from 1900 to today. */
  function bornInTime(value, today) {
    var y = +value.slice(6, 10), m = +value.slice(10, 12), d = +value.slice(12, 14);
    var born = new Date(Date.UTC(y, m - 1, d));
    if (born.getUTCFullYear() !== y || born.getUTCMonth() !== m - 1 || born.getUTCDate() !== d) return false;
    return y >= 1900 && born.getTime() <= today;
  }

  /** cn_id.py is_legacy_cn_id: 15 digits, a province, a real 19YYMMDD birth date. */
  function isLegacyCnId(digits) {
    if (!/^[0-9]{15}$/.test(digits) || !PROVINCES.has(digits.slice(0, 2))) return false;
    var y = 1900 + +digits.slice(6, 8), m = +digits.slice(8, 10), d = +digits.slice(10, 12);
    var born = new Date(Date.UTC(y, m - 1, d));
    return born.getUTCFullYear() === y && born.getUTCMonth() === m - 1 && born.getUTCDate() === d;
  }

  /** cn_id.py is_mistyped_cn_id: 18 characters, a province, a real birth date, any check. */
  function isMistypedCnId(value, today) {
    if (!/^[0-9]{17}[0-9x]$/i.test(value) || !PROVINCES.has(value.slice(0, 2))) return false;
    return bornInTime(value, today);
  }

  /* ------------------------------------------------------------------ detectors */

  function Hit(kind, start, end, rule) {
    this.kind = kind; this.start = start; this.end = end; this.rule = rule;
  }

  function numberDetector(kind, rule, lo, hi, leading, valid) {
    return function (ctx) {
      var hits = [];
      ctx.runs().forEach(function (run) {
        if (run.digitCount < lo) return;
        run.claim(lo, hi, leading, valid).forEach(function (w) {
          hits.push(new Hit(kind, w.start, w.end, rule));
        });
      });
      return hits;
    };
  }

  /** A context rule of the document (end.py _rules): a phrase not after a letter, then the
   * rule's filler and value as the gateway's engine writes them (translated by jsregex.py);
   * with `before`, also a value standing before a phrase (context.py ContextRule.before). */
  function contextRule(kind, rule, phrases, after, more, needsNonLetter, valid, about, before) {
    var alt = phrases.slice().sort(function (a, b) { return b.length - a.length; }).map(escapeRe).join('|');
    var pattern = new RegExp('(?<![a-z])(?:' + alt + ')' + after, 'gdu');
    var joined = more ? new RegExp(more, 'ydu') : null;
    var preceding = before ? new RegExp(before, 'gdu') : null;
    function holds(v) {
      if (needsNonLetter && /^\p{L}+$/u.test(v)) return false;
      return !valid || valid(v.replace(/[ \-]/g, ''));
    }
    return {
      triggers: phrases,
      about: about || [],
      scan: function (view) {
        var hits = [], m, j;
        pattern.lastIndex = 0;
        while ((m = pattern.exec(view)) !== null) {
          var at = m.indices.groups.value;
          if (m[0].length === 0) pattern.lastIndex += 1;
          if (!holds(m.groups.value)) continue;
          hits.push(new Hit(kind, at[0], at[1], rule));
          // Values joined to this one ("A or B"), three at most (context.py _MORE_VALUES).
          for (var n = 0; joined && n < MORE_VALUES; n++) {
            joined.lastIndex = at[1];
            if ((j = joined.exec(view)) === null || !holds(j.groups.value)) break;
            at = j.indices.groups.value;
            hits.push(new Hit(kind, at[0], at[1], rule));
            pattern.lastIndex = at[1];
          }
        }
        if (preceding) {
          var found = valuesBefore(view, hits);
          if (found.length) hits = hits.concat(found).sort(function (a, b) { return a.start - b.start; });
        }
        return hits;
      }
    };

    /** The values standing before a phrase (the `before` pattern's matches, left to right),
     * each overlapping none of `hits` (the values found after one: left to right, apart;
     * context.py ContextRule._before). */
    function valuesBefore(view, hits) {
      var found = [], k = 0;
      matches(preceding, view, 0, view.length).forEach(function (m) {
        var at = m.indices.groups.value;
        while (k < hits.length && hits[k].end <= at[0]) k++;
        if ((k === hits.length || at[1] <= hits[k].start) && holds(m.groups.value)) {
          found.push(new Hit(kind, at[0], at[1], rule));
        }
      });
      return found;
    }
  }
  var MORE_VALUES = 3;

  /** The detector of one context rule: it runs when one of the rule's phrases is in the view. */
  function ruleDetector(rule) {
    return function (ctx) { return rule && contains(ctx.view, rule.triggers) ? rule.scan(ctx.view) : []; };
  }

  /** A card's expiry date after its cue, in a message about a card: a word of the rule's
   * `about` or a number as long as a card's (card.py CardExpiryDetector). */
  function expiryDetector(rule) {
    return function (ctx) {
      if (!rule || !contains(ctx.view, rule.triggers)) return [];
      var about = contains(ctx.view, rule.about) || ctx.runs().some(function (run) { return run.digitCount >= 13; });
      return about ? rule.scan(ctx.view) : [];
    };
  }

  var KEY_SHAPES = new RegExp('(?<![0-9a-z])(?:akia[0-9a-z]{16}|gh[pousr]_' + atomic('[0-9a-z]{36,251}') +
    '|xox[abprs]-' + atomic('[0-9a-z\\-]{10,200}') + '|[sr]k_(?:live|test)_' + atomic('[0-9a-z]{16,200}') +
    '|aiza[0-9a-z_\\-]{35}|sk-' + atomic('[0-9a-z_\\-]{20,200}') + '|eyj' + atomic('[0-9a-z_\\-]{8,2000}') +
    '\\.eyj' + atomic('[0-9a-z_\\-]{8,4000}') + '\\.' + atomic('[0-9a-z_\\-]{8,2000}') + ')(?![0-9a-z])', 'g');
  var KEY_TRIGGERS = ['akia', 'gh', 'xox', 'k_live_', 'k_test_', 'aiza', 'sk-', 'eyj'];
  var PEM_BEGIN = new RegExp('-----begin (?:' + atomic('[a-z0-9]{1,12}') + ' ){0,3}?private key' + atomic('(?: block)?') + '-----', 'g');
  var PEM_END = new RegExp('-----end (?:' + atomic('[a-z0-9]{1,12}') + ' ){0,3}?private key' + atomic('(?: block)?') + '-----', 'g');

  function contains(view, list) {
    return list.some(function (t) { return view.indexOf(t) >= 0; });
  }

  /** Secrets (secrets.py): one-time codes, passwords and keys after their cue, key shapes and
   * PEM private keys, one detector as in the gateway. */
  function secretsDetector(rules) {
    return function (ctx) { return secrets(ctx, rules); };
  }

  function secrets(ctx, rules) {
    var view = ctx.view, hits = [], m;
    rules.forEach(function (rule) {
      if (contains(view, rule.triggers)) hits = hits.concat(rule.scan(view));
    });
    if (contains(view, KEY_TRIGGERS)) {
      KEY_SHAPES.lastIndex = 0;
      while ((m = KEY_SHAPES.exec(view)) !== null) hits.push(new Hit('api_key', m.index, m.index + m[0].length, 'api_key.shape'));
    }
    if (view.indexOf('-----begin') >= 0) {
      var pos = 0;
      for (;;) {
        PEM_BEGIN.lastIndex = pos;
        var begin = PEM_BEGIN.exec(view);
        if (begin === null) break;
        PEM_END.lastIndex = begin.index + begin[0].length;
        var end = PEM_END.exec(view);
        var stop = end !== null ? end.index + end[0].length : view.length;
        hits.push(new Hit('private_key', begin.index, stop, 'private_key.pem'));
        pos = stop;
      }
    }
    return hits;
  }

  /** Hong Kong identity card numbers with their bracketed check digit (id_document.py). */
  var HKID = /[a-z](?<![0-9a-z].)[a-z]?[0-9]{6}\([0-9a]\)/g;
  function isHkid(value) {
    var letters = value.slice(0, -9), digits = value.slice(-9, -3), check = value[value.length - 2];
    if (letters.length === 1) letters = ' ' + letters;
    var total = 0, w = 9;
    for (var i = 0; i < letters.length; i++) {
      total += (letters[i] === ' ' ? 36 : letters.charCodeAt(i) - 87) * w--;
    }
    for (var j = 0; j < digits.length; j++) total += (digits.charCodeAt(j) - 48) * w--;
    var expected = (11 - total % 11) % 11;
    return check === (expected === 10 ? 'a' : String(expected));
  }
  function hkids(ctx) {
    var hits = [], m;
    if (!/[0-9a]\)/.test(ctx.view)) return hits;
    HKID.lastIndex = 0;
    while ((m = HKID.exec(ctx.view)) !== null) {
      if (isHkid(m[0])) hits.push(new Hit('id_document', m.index, m.index + m[0].length, 'id_document.hkid'));
    }
    return hits;
  }
  /** US social-security numbers written 123-45-6789 (id_document.py SsnDetector; the checks
   * of python-stdnum's us.ssn). */
  var SSN = /(?<![0-9\-])[0-9]{3}-[0-9]{2}-[0-9]{4}(?![0-9\-])/g;
  var SSN_EXAMPLES = ['078-05-1120', '219-09-9999', '457-55-5462'];
  function ssns(ctx) {
    var hits = [], m;
    if (!/[0-9]-/.test(ctx.view)) return hits;
    SSN.lastIndex = 0;
    while ((m = SSN.exec(ctx.view)) !== null) {
      var area = m[0].slice(0, 3), group = m[0].slice(4, 6), serial = m[0].slice(7);
      if (area === '000' || area === '666' || area[0] === '9' || group === '00' || serial === '0000') continue;
      if (SSN_EXAMPLES.indexOf(m[0]) >= 0) continue;
      hits.push(new Hit('id_document', m.index, m.index + m[0].length, 'id_document.ssn'));
    }
    return hits;
  }
  /** Separators between an IBAN's characters: those digit runs allow (iban.py _START). */
  function ibanSeparator() {
    return '(?:' + atomic('\\s+') + '|' + atomic('[^\\p{L}\\p{N}]{0,' + MAX_SEPARATOR + '}') + ')';
  }
  var IBAN_START = new RegExp(
    '(?<![a-z0-9])[a-z]{2}[0-9]{2}' + atomic('(?:' + ibanSeparator() + '[a-z0-9]){10,32}'), 'gu');
  /** Separators inside the country code and check digits too, when the message says "iban"
   * (iban.py _LOOSE_START). */
  var IBAN_LOOSE_START = new RegExp(
    '(?<![a-z0-9])[a-z]' + ibanSeparator() + '[a-z]' + ibanSeparator() + '[0-9]' + ibanSeparator() + '[0-9]' +
    atomic('(?:' + ibanSeparator() + '[a-z0-9]){10,32}'), 'gu');

  function ibanLengths(chars, lo, hi) {
    var found = [];
    if (hi < lo) return found;
    var head = '';
    for (var i = 0; i < 4; i++) head += String(parseInt(chars[i], 36));
    var headRem = Number(BigInt(head) % 97n);
    var shift = Number((10n ** BigInt(head.length)) % 97n), rem = 0;
    for (var n = 5; n <= hi; n++) {
      var value = parseInt(chars[n - 1], 36);
      rem = (rem * (value > 9 ? 100 : 10) + value) % 97;
      if (n >= lo && (rem * shift + headRem) % 97 === 1) found.push(n);
    }
    return found.reverse();
  }

  function ibanDetector(formats) {
    var compiled = {}, kinds = {};
    Object.keys(formats).forEach(function (cc) {
      compiled[cc] = [formats[cc][0], new RegExp('^' + formats[cc][1] + '$')];
      // What each position holds: n a digit (the check digits too), x a letter or either.
      var kind = 'xxnn', part, parts = /\[([^\]]+)\]\{(\d+)\}/g;
      while ((part = parts.exec(formats[cc][1])) !== null) kind += (part[1] === '0-9' ? 'n' : 'x').repeat(+part[2]);
      kinds[cc] = kind;
    });
    /** Homoglyphs where the country's format has digits read as those digits (iban.py _is_iban). */
    function undisguised(chars) {
      var kind = kinds[chars.slice(0, 2).toUpperCase()], out = '';
      if (!kind) return chars;
      for (var q = 0; q < chars.length; q++) {
        var c = chars[q];
        out += q < kind.length && kind[q] === 'n' && c !== '|' && HOMOGLYPHS[c] ? HOMOGLYPHS[c] : c;
      }
      return out;
    }
    function validLength(chars) {
      var lengths = ibanLengths(chars, 15, Math.min(chars.length, 34));
      for (var i = 0; i < lengths.length; i++) {
        var value = chars.slice(0, lengths[i]).toUpperCase(), format = compiled[value.slice(0, 2)];
        if (format && format[0] === value.length && format[1].test(value.slice(4))) return lengths[i];
      }
      return null;
    }
    return function (ctx) {
      var hits = [], m;
      var view = ctx.view, start = view.indexOf('iban') >= 0 ? IBAN_LOOSE_START : IBAN_START;
      start.lastIndex = 0;
      while ((m = start.exec(view)) !== null) {
        // A candidate that is no IBAN is searched again from its second character; the
        // search goes on after an IBAN's last character (iban.py scan).
        var positions = [];
        for (var k = 0; k < m[0].length; k++) if (/[a-z0-9]/.test(m[0][k])) positions.push(m.index + k);
        var chars = positions.map(function (p) { return view[p]; }).join('');
        var found = validLength(chars);
        if (found === null) {
          var undone = undisguised(chars);
          if (undone !== chars) found = validLength(undone);
        }
        if (found !== null) {
          hits.push(new Hit('iban', positions[0], positions[found - 1] + 1, 'iban.mod97'));
          start.lastIndex = positions[found - 1] + 1;
        } else {
          start.lastIndex = m.index + 1;
        }
      }
      return hits;
    };
  }

  function fullMatch(pattern) { return new RegExp('^(?:' + pattern + ')$'); }

  var CN_SHAPE = /^(?:(?:86)?1[3-9][0-9]{9}|0[1-9][0-9]{8,10})$/;

  /** A document's phone regions (end.py _region) compiled: calling code, national prefix,
   * general description and number types. */
  function phoneRegions(data) {
    var regions = {};
    Object.keys(data || {}).forEach(function (r) {
      var d = data[r];
      regions[r] = {
        cc: d[0],
        prefix: d[1] ? new RegExp('^(?:' + d[1] + ')') : null,
        general: [fullMatch(d[2][0]), d[2][1]],
        types: d[3].map(function (t) { return [fullMatch(t[0]), t[1]]; })
      };
    });
    return regions;
  }

  function matchesDesc(desc, national) {
    return desc[0].test(national) && (!desc[1].length || desc[1].indexOf(national.length) >= 0);
  }

  function validNational(national, region) {
    if (!matchesDesc(region.general, national)) return false;
    return region.types.some(function (t) {
      return matchesDesc([t[0], t[1].length ? t[1] : region.general[1]], national);
    });
  }

  /** libphonenumber's parse + is_valid_number for a number without '+' in `region`. */
  function validIn(digits, region) {
    var candidates = [digits];
    if (digits.indexOf(region.cc) === 0) candidates.push(digits.slice(region.cc.length));
    return candidates.some(function (c) {
      if (validNational(c, region)) return true;
      var m = region.prefix && region.prefix.exec(c);
      return !!(m && m[0].length && validNational(c.slice(m[0].length), region));
    });
  }

  /** The check of a number after a phone cue (phone.py valid_after_cue): 7 to 15 digits,
   * valid in one of the document's cue regions (China by its shape first). */
  function phoneCueCheck(data) {
    var regions = phoneRegions(data.cue_regions), names = Object.keys(regions);
    return function (value) {
      var digits = value.replace(/[^0-9]/g, '');
      if (digits.length < 7 || digits.length > 15) return false;
      return names.some(function (r) { return (r !== 'CN' || CN_SHAPE.test(digits)) && validIn(digits, regions[r]); });
    };
  }

  function phoneDetector(data) {
    var regions = phoneRegions(data.regions), codes = {};
    Object.keys(data.cc || {}).forEach(function (cc) {
      codes[cc] = data.cc[cc].map(function (p) { return [fullMatch(p[0]), p[1]]; });
    });

    /** An international number: its calling code's regions (their full data when the
     * tenant's regions include one, else the general "possible number" pattern). */
    function validIntl(digits) {
      for (var k = 1; k <= 3; k++) {
        var cc = digits.slice(0, k), national = digits.slice(k);
        var full = Object.keys(regions).filter(function (r) { return regions[r].cc === cc; });
        if (full.length) return full.some(function (r) { return validNational(national, regions[r]); });
        if (codes[cc]) return codes[cc].some(function (p) { return matchesDesc(p, national); });
      }
      return false;
    }

    function accept(w) {
      if (!/^[0-9]+$/.test(w.digits)) return false;
      if (w.plus) return validIntl(w.digits);
      if (w.digits.indexOf('00') === 0) return validIntl(w.digits.slice(2));
      return Object.keys(regions).some(function (r) {
        return (r !== 'CN' || CN_SHAPE.test(w.digits)) && validIn(w.digits, regions[r]);
      });
    }

    /** 3-4-4 groups starting with 1 inside a longer run: a Chinese mobile as people write
     * one (phone.py _grouped_mobiles). */
    function groupedMobiles(run) {
      var out = [], g = run.groups;
      if (!regions.CN) return out;
      for (var i = 0; i + 2 < g.length; i++) {
        var a = g[i], b = g[i + 1], c = g[i + 2];
        if (a[2][0] === '1' && a[2].length === 3 && b[2].length === 4 && c[2].length === 4) {
          out.push(new Window(a[2] + b[2] + c[2], Math.min(a[0], c[0]), Math.max(a[1], c[1]), run.plus && i === 0));
        }
      }
      return out;
    }

    return function (ctx) {
      var hits = [];
      ctx.runs().forEach(function (run) {
        if (run.digitCount < 7) return;
        var candidates = run.blocks(7, 15).concat(run.ends(7, 15));
        run.segments().forEach(function (seg) { candidates = candidates.concat(seg.blocks(7, 15)); });
        candidates = candidates.concat(groupedMobiles(run));
        candidates.sort(function (a, b) { return a.start - b.start || (b.end - b.start) - (a.end - a.start); });
        claimWindows(candidates, accept).forEach(function (w) {
          hits.push(new Hit('phone', w.start, w.end, 'phone.libphonenumber'));
        });
      });
      return hits;
    };
  }

  /** The kind of the number `head` then `tail` make (`head`'s last digits may repeat up to
   * three of `tail`'s first ones), null when they make none (parts.py whole_number). */
  function wholeNumber(head, tail, cn) {
    for (var overlap = 0; overlap <= Math.min(3, tail.length - 1); overlap++) {
      if (overlap && head.slice(-overlap) !== tail.slice(0, overlap)) continue;
      var digits = head + tail.slice(overlap);
      if (digits.length === 18 && isCnId(digits, Date.now())) return 'cn_id';
      if (!/^[0-9]+$/.test(digits)) continue;
      if (digits.length >= 13 && digits.length <= 19 && isCard(digits)) return 'card';
      if (digits.length === 11 && cn && CN_SHAPE.test(digits) && validIn(digits, cn)) return 'phone';
    }
    return null;
  }

  /** A number given in two or three parts in one message, its last digits named apart
   * ("尾号5678，前七位1380013", "前六位110105，中间19491231，后四位002X"; parts.py), or its
   * first digits ("138开头，后面是00138000", "starts with 4111, the rest 1111 1111 1111"),
   * in digits or Chinese numerals (read as their digits: "尾号八零零零"):
   * every part, rule `parts`, when together they validate. A digit run is tried before the
   * tail first, then two consecutive parts (the document's `part`); a head is tried before
   * each other part, then two consecutive ones after it (the document's `head`). A document
   * signed before `part` or `head` was carried finds what it carries. */
  function partsDetector(parts, cn) {
    var tail = contextRule('tail', 'parts.tail', parts.phrases, parts.after, parts.more, false, null);
    var part = parts.part ? new RegExp(parts.part, 'gu') : null;
    var head = parts.head && part ?
      contextRule('head', 'parts.head', parts.head.phrases, parts.head.after, parts.head.more, false, null) : null;
    /** Every part of each number the message gives in parts (parts.py scan): read with its
     * digit words as digits when it holds some, the words of the phrases kept. */
    return function (ctx) {
      var hasTail = contains(ctx.view, tail.triggers), hasHead = head && contains(ctx.view, head.triggers);
      if (!hasTail && !hasHead) return [];
      var spelt = wordsAsDigits(ctx.view, phraseSpans(ctx.view, hasTail, hasHead));
      if (!spelt) return scan(numeralsAsDigits(ctx.view), ctx.runs, hasTail, hasHead);
      var runs = null;
      var found = scan(numeralsAsDigits(spelt.text), function () {
        return runs || (runs = findNumberRuns(spelt.text, ctx.bidi));
      }, hasTail, hasHead);
      return found.map(function (h) {
        var span = spelt.toView(h.start, h.end);
        return new Hit(h.kind, span[0], span[1], h.rule);
      });
    };

    /** Where the tail and head phrases stand in the view, overlapping ones too. */
    function phraseSpans(view, hasTail, hasHead) {
      return occurrences(view, (hasTail ? tail.triggers : []).concat(hasHead ? head.triggers : []));
    }

    /** The parts of numbers in `view`, whose digit runs `runs()` gives (parts.py _scan). */
    function scan(view, runs, hasTail, hasHead) {
      var hits = [], taken = [], messageParts = null;
      function report(kind, spans) {
        spans.forEach(function (span) {
          taken.push(span);
          hits.push(new Hit(kind, span[0], span[1], 'parts'));
        });
      }
      function partsOf() {
        if (messageParts === null) {
          messageParts = [];
          var m;
          part.lastIndex = 0;
          while ((m = part.exec(view)) !== null) {
            messageParts.push([m.index, m.index + m[0].length, m[0].replace(/[ \-]/g, '')]);
          }
        }
        return messageParts;
      }
      if (hasTail) {
        tail.scan(view).forEach(function (t) {
          var last = view.slice(t.start, t.end), found = twoParts(runs(), t, last) || threeParts(t, last);
          if (found) report(found.kind, found.spans.concat([[t.start, t.end]]));
        });
      }
      if (hasHead) {
        heads(view).forEach(function (h) {
          if (taken.some(function (s) { return s[0] < h.end && h.start < s[1]; })) return;
          var found = afterHead(h);
          if (found) report(found.kind, [[h.start, h.end]].concat(found.spans));
        });
      }
      return hits;

      function threeParts(t, last) {
        if (!part) return null;
        var others = partsOf().filter(function (p) { return p[1] <= t.start || p[0] >= t.end; });
        return firstOfConsecutive(others, function (digits) { return wholeNumber(digits, last, cn); });
      }

      /** The parts that make a number after head `h` (parts.py _after_head): one part, those
       * after it first, then two consecutive ones after it; a trailing x counts. */
      function afterHead(h) {
        var first = view.slice(h.start, h.end), kind, k;
        var after = partsOf().filter(function (p) { return p[0] >= h.end; }).map(withCheckX);
        var before = partsOf().filter(function (p) { return p[1] <= h.start; }).map(withCheckX);
        var rests = after.concat(before);
        for (k = 0; k < rests.length; k++) {
          if ((kind = wholeNumber(first, rests[k][2], cn))) return { kind: kind, spans: [rests[k].slice(0, 2)] };
        }
        return firstOfConsecutive(after, function (digits) { return wholeNumber(first, digits, cn); });
      }

      /** The first two consecutive parts that `make` a number of, read as one (parts.py
       * _consecutive): its kind and both spans. */
      function firstOfConsecutive(list, make) {
        for (var k = 0; k + 1 < list.length; k++) {
          var kind = make(list[k][2] + list[k + 1][2]);
          if (kind) return { kind: kind, spans: [list[k].slice(0, 2), list[k + 1].slice(0, 2)] };
        }
        return null;
      }

      function withCheckX(p) {
        if (view[p[1]] === 'x' && !/[\p{L}\p{N}]/u.test(view[p[1] + 1] || ' ')) return [p[0], p[1] + 1, p[2] + 'x'];
        return p;
      }
    };

    /** Heads after their phrase, and before a phrase that may follow its head ("138开头"). */
    function heads(view) {
      var found = head.scan(view);
      occurrences(view, parts.head.leading).forEach(function (span) {
        var h = digitsBefore(view, span[0]);
        if (h) found.push(h);
      });
      return found;
    }

    /** The head whose digits end at `at`, past at most two spaces (parts.py _digits_before). */
    function digitsBefore(view, at) {
      var end = at, start;
      while (end > at - 2 && end > 0 && view[end - 1] === ' ') end--;
      start = end;
      while (start > end - 9 && start > 0 && view[start - 1] >= '0' && view[start - 1] <= '9') start--;
      return end - start >= 2 && end - start <= 8 ? new Hit('head', start, end, 'parts.head') : null;
    }

    function twoParts(runs, t, last) {
      for (var i = 0; i < runs.length; i++) {
        var run = runs[i];
        if ((run.start <= t.start && t.start < run.end) || run.plus) continue;
        var kind = wholeNumber(joinDigits(run.groups), last, cn);
        if (kind) return { kind: kind, spans: [[run.start, run.end]] };
      }
      return null;
    }
  }

  /** Every match of the global `pattern` in view.slice(0, hi) from `lo`: Python's
   * finditer(view, lo, hi) (search() below gives its first one). Cutting the view at
   * `hi` is what Python's endpos does (its $ matches there); starting at lastIndex is what
   * its pos does (its look-behind sees before it, its ^ does not match there). */
  function matches(pattern, view, lo, hi) {
    var text = hi < view.length ? view.slice(0, hi) : view, out = [], m;
    pattern.lastIndex = lo;
    while ((m = pattern.exec(text)) !== null) {
      out.push(m);
      if (m[0].length === 0) pattern.lastIndex += 1;
    }
    return out;
  }

  /** The first match of the global `pattern` in view.slice(lo, hi), or null: Python's
   * search(view, lo, hi), as matches() reads its pos and endpos. */
  function search(pattern, view, lo, hi) {
    pattern.lastIndex = lo;
    return pattern.exec(hi < view.length ? view.slice(0, hi) : view);
  }

  /** [start, end] of every occurrence of each of `phrases` in `view`, overlapping ones too,
   * by start (the shorter phrase first at one start). */
  function occurrences(view, phrases) {
    var spans = [];
    phrases.forEach(function (phrase) {
      for (var i = view.indexOf(phrase); i >= 0; i = view.indexOf(phrase, i + 1)) spans.push([i, i + phrase.length]);
    });
    return spans.sort(function (a, b) { return a[0] - b[0] || a[1] - b[1]; });
  }

  /** The match of the sticky `pattern` at `pos` of `view`, or null (Python's match(view, pos)). */
  function at(pattern, view, pos) {
    pattern.lastIndex = pos;
    return pattern.exec(view);
  }

  /** The administrative divisions of the document's `address` (end.py _address): find(view,
   * lo, hi) gives every name in view.slice(lo, hi), overlapping ones too, in the order
   * address.py's automaton gives them (by end, the longer first); prefix(view) how many
   * leading characters of an address name divisions (address.py division_prefix). */
  function Divisions(data) {
    var names = new Set(data.divisions.split(' ')), lengths = [];
    this.names = names;
    names.forEach(function (n) { if (lengths.indexOf(n.length) < 0) lengths.push(n.length); });
    var leading = new RegExp(data.patterns.leading_places, 'uy');
    this.find = function (view, lo, hi) {
      var found = [];
      for (var i = lo; i < hi; i++) {
        for (var k = 0; k < lengths.length; k++) {
          if (i + lengths[k] <= hi && names.has(view.slice(i, i + lengths[k]))) found.push([i, i + lengths[k]]);
        }
      }
      return found.sort(function (a, b) { return a[1] - b[1] || a[0] - b[0]; });
    };
    this.prefix = function (view) {
      var m = at(leading, view, 0);
      if (!m) return 0;
      return this.find(view, 0, m[0].length).reduce(function (most, d) { return Math.max(most, d[1]); }, 0);
    };
  }

  /** Postal addresses (address.py AddressDetector) with the document's data and patterns
   * (end.py _address): Chinese ones around a number and its unit (88号), anchored on
   * division names or a road, or a flat in an estate; English ones by house number and
   * street type, a flat with its floor or tower, a PO box. */
  function addressDetector(data, divisions) {
    var P = data.patterns, numerals = data.numerals, maxGap = data.max_gap;
    var DETAIL = new RegExp(P.detail, 'uy'), LEAD = new RegExp(P.lead, 'uy');
    var ROAD = new RegExp(P.road_number, 'gu'), FLAT = new RegExp(P.flat, 'gu');
    var BUILDING_UNIT = new RegExp(P.building_unit, 'u'), HOUSEHOLD = new RegExp(P.household, 'u');
    var UNIT = new RegExp(P.unit, 'gu'), EN = new RegExp(P.en, 'gu'), EN_HEAD = new RegExp(P.en_head, 'gu');
    var EN_FLAT = new RegExp(P.en_flat, 'gu'), PO_BOX = new RegExp(P.po_box, 'gu');

    /** Number-and-unit spans (address.py _numbered_units), searched from the unit. */
    function numberedUnits(view) {
      var out = [];
      matches(UNIT, view, 0, view.length).forEach(function (m) {
        var unit = m.index, numberEnd = unit;
        while (numberEnd > 0 && unit - numberEnd < maxGap && view[numberEnd - 1] === ' ') numberEnd--;
        var start = numberEnd;
        while (start > 0 && numberEnd - start < 5 && numerals.indexOf(view[start - 1]) >= 0) start--;
        if (start < numberEnd) out.push([start, m.index + m[0].length]);
      });
      return out;
    }

    /** Division names followed by street-level detail in view.slice(lo, hi) (address.py _anchored). */
    function anchored(view, lo, hi) {
      var anchors = [], chained = [], out = [];
      divisions.find(view, lo, hi).forEach(function (d) {
        var last = anchors[anchors.length - 1];
        if (last && d[0] < last[1]) {
          if (d[1] > last[1] && d[0] >= last[0]) last[1] = d[1];  // overlapping names: the longer
          return;
        }
        anchors.push([d[0], d[1]]);
      });
      anchors.forEach(function (a) {
        var last = chained[chained.length - 1];
        if (last && a[0] - last[1] <= maxGap && view.slice(last[1], a[0]) === ' '.repeat(a[0] - last[1])) last[1] = a[1];
        else chained.push([a[0], a[1]]);
      });
      chained.forEach(function (c) {
        var m = at(DETAIL, view, c[1]);
        if (m && m.index + m[0].length - c[1] <= data.detail_chars) out.push([c[0], m.index + m[0].length]);
      });
      return out;
    }

    function chinese(view) {
      var windows = [], out = [], covered = -1;
      numberedUnits(view).forEach(function (u) {
        var lo = Math.max(0, u[0] - data.window[0]), hi = Math.min(view.length, u[1] + data.window[1]);
        var last = windows[windows.length - 1];
        if (last && lo <= last[1]) last[1] = hi;
        else windows.push([lo, hi]);
      });
      windows.forEach(function (w) {
        var lo = w[0], hi = w[1];
        anchored(view, lo, hi).forEach(function (span) {
          covered = Math.max(covered, span[1]);
          out.push(span);
        });
        matches(ROAD, view, lo, hi).forEach(function (m) {
          var start = m.index, end = m.index + m[0].length, lead = at(LEAD, view, start);
          if (lead && lead.index + lead[0].length < end - 3) start = lead.index + lead[0].length;
          if (start >= covered) {
            covered = end;
            out.push([start, end]);
          }
        });
        if (!BUILDING_UNIT.test(view.slice(lo, hi))) return;  // no building: no flat
        matches(FLAT, view, lo, hi).forEach(function (m) {
          if (m.index >= covered && (m.groups.estate || HOUSEHOLD.test(m.groups.flat))) {
            covered = m.index + m[0].length;
            out.push([m.index, covered]);
          }
        });
      });
      return out;
    }

    return function (ctx) {
      var view = ctx.view, hits = [], taken = -1, found = [], end = -1;
      if (/[^\x00-\x7f]/.test(view)) {
        chinese(view).forEach(function (span) {
          if (span[0] >= taken) {
            taken = span[1];
            hits.push(new Hit('address', span[0], span[1], 'address.cn'));
          }
        });
      }
      matches(EN, view, 0, view.length).forEach(function (m) {
        var heads = matches(EN_HEAD, view, Math.max(0, m.index - data.en_head_reach), m.index);
        found.push([heads.length ? heads[0].index : m.index, m.index + m[0].length]);
      });
      if (contains(view, data.en_flat_words) && contains(view, data.en_flat_parts)) {
        matches(EN_FLAT, view, 0, view.length).forEach(function (m) { found.push([m.index, m.index + m[0].length]); });
      }
      if (contains(view, data.po_box_gate)) {
        matches(PO_BOX, view, 0, view.length).forEach(function (m) { found.push([m.index, m.index + m[0].length]); });
      }
      found.sort(function (a, b) { return a[0] - b[0] || a[1] - b[1]; }).forEach(function (span) {
        if (span[0] >= end) {
          end = span[1];
          hits.push(new Hit('address', span[0], span[1], 'address.en'));
        }
      });
      return hits;
    };
  }

  /** Person names (names.py NameDetector) with the document's `names` (end.py _names):
   * Chinese ones after a cue, before an honorific, after "寄给我妈妈", "我姓王，叫…", before a
   * possession ("查一下张三的订单") or right before a mobile number (a shipping label);
   * English ones after a cue or a title, a closing, "my wife", before "here"/"speaking", or
   * after a delivery word, each capitalised as names.py asks, or after the last four typed in
   * lower case as a given name and a surname the document's lexicons hold (names.py
   * lower_case_name; a document signed before it carries none: capitals only). Each pattern
   * runs only where one of its phrases is. */
  function nameDetector(data, divisions) {
    var W = data.words, P = data.patterns;
    function set(list) { return new Set(list); }
    function re(name, flags) { return new RegExp(P[name], flags); }
    var zh = [
      [re('zh_cued', 'gdu'), 'name.cue', W.zh_cued, 'cued'],
      [re('zh_given_to', 'gdu'), 'name.cue', W.zh_given_to, ''],
      [re('zh_surname_first', 'gdu'), 'name.cue', W.zh_surname_first, 'surname'],
      [re('zh_honorific', 'gdu'), 'name.honorific', W.zh_honorific, ''],
      [re('zh_possessive', 'gdu'), 'name.possessive', W.zh_possessive, '']
    ];
    var en = [[re('en_cued', 'gdu'), 'name.cue_en', W.en_cued, ''], [re('en_title', 'gdu'), 'name.title', W.en_title, 'title']];
    var MOBILE = re('mobile', 'gu'), NAME_BEFORE = re('name_before', 'gdu'), EN_DELIVERY = re('en_delivery', 'gdu');
    var AFTER_SIGN_OFF = re('after_sign_off', 'ydu'), AFTER_RELATION = re('after_relation', 'ydu'), SPEAKER = re('speaker', 'gdu');
    var signOffs = set(W.sign_offs), myRelations = set(W.my_relations_en), speaking = set(W.speaking);
    var delivery = set(W.delivery), weak = set(W.weak_cues), latinAfter = set(W.latin_after);
    var common = set(W.common_words), notLabel = set(W.not_label_names), enNot = set(W.en_not_names);
    var notSpeakers = set(W.not_speakers), notLatin = set(W.not_latin_names), placeStarts = set(W.place_starts);
    var givenNames = set(W.given_names_en || []), surnames = set(W.surnames_en || []);
    // the detector's gate phrases (names.py NameDetector.gate_phrases), each under its first
    // character: one pass over the view finds them all
    var phrases = new Set(), byFirst = new Map();
    zh.concat(en).forEach(function (z) { z[2].forEach(function (p) { phrases.add(p); }); });
    [W.sign_offs, W.my_relations_en, W.speaking, W.delivery].forEach(function (list) {
      list.forEach(function (p) { phrases.add(p); });
    });
    phrases.forEach(function (phrase) {
      if (!byFirst.has(phrase[0])) byFirst.set(phrase[0], []);
      byFirst.get(phrase[0]).push(phrase);
    });
    var places = null;

    /** China's division names and their stems (江苏省 -> 江苏): names.py _places. */
    function placeSet() {
      if (places) return places;
      places = new Set();
      divisions.names.forEach(function (name) {
        places.add(name);
        for (var k = 0; k < W.division_suffixes.length; k++) {
          var suffix = W.division_suffixes[k];
          if (name.endsWith(suffix) && name.length - suffix.length >= 2) {
            places.add(name.slice(0, -suffix.length));
            break;
          }
        }
      });
      return places;
    }

    function startsWithAny(view, list, at) {
      return list.some(function (w) { return view.startsWith(w, at); });
    }
    function words(text) { return text.split(/\s+/).filter(Boolean); }
    function group(m, name) { return m.indices.groups[name]; }

    /** Whether the original character behind view[pos] is upper case (names.py _upper_at). */
    function upperAt(ctx, pos) {
      var c = ctx.original[ctx.toOriginal(pos)];
      return c !== undefined && /^\p{Uppercase}$/u.test(c);
    }
    function capitalised(ctx, start, list) {
      return upperAt(ctx, start) || (list.length >= 2 && !enNot.has(list[0]));
    }
    function allCapitalised(ctx, start, end) {
      for (var k = start; k < end; k++) if (/\s/.test(ctx.view[k]) && !upperAt(ctx, k + 1)) return false;
      return upperAt(ctx, start);
    }
    /** A given name and a surname typed in lower case (names.py lower_case_name). */
    function lowerCaseName(list) {
      return list.length >= 2 && list.length <= 3 && givenNames.has(list[0]) && surnames.has(list[list.length - 1]);
    }

    /** Whether a cued candidate is a word, a place or an affiliation (names.py _no_name_after_cue). */
    function noNameAfterCue(view, m) {
      var name = m.groups.name, span = group(m, 'name');
      if (common.has(name) || common.has(name.slice(0, 2))) return true;
      if (startsWithAny(view, W.titles_zh, span[0] + 1) || startsWithAny(view, W.titles_zh, span[0] + 2)) return true;
      if (placeSet().has(name) || placeSet().has(name.slice(0, 2))) return true;
      return weak.has(m.groups.cue) && view.startsWith('的', span[1]) && !startsWithAny(view, W.relations, span[1] + 1);
    }

    function namedNear(view, start, end) {
      var phrase = view.slice(start, end);
      if (signOffs.has(phrase) || myRelations.has(phrase)) {
        if (start && isLetter(view, start - 1)) return null;
        return at(signOffs.has(phrase) ? AFTER_SIGN_OFF : AFTER_RELATION, view, end);
      }
      if (speaking.has(phrase) && !isLetter(view, end)) return search(SPEAKER, view, Math.max(0, start - 48), start);
      return null;
    }

    return function (ctx) {
      var view = ctx.view, spans = [], found = new Set(), seen = new Set(), hits = [];
      for (var i = 0; i < view.length; i++) {
        var starting = byFirst.get(view[i]);
        if (!starting) continue;
        for (var k = 0; k < starting.length; k++) {
          if (view.startsWith(starting[k], i)) {
            spans.push([i, i + starting[k].length]);
            found.add(starting[k]);
          }
        }
      }
      spans.sort(function (a, b) { return a[1] - b[1] || a[0] - b[0]; });
      function has(list) { return list.some(function (p) { return found.has(p); }); }
      function report(span, rule) {
        seen.add(span[0]);
        hits.push(new Hit('name', span[0], span[1], rule));
      }
      if (/[^\x00-\x7f]/.test(view)) {
        zh.forEach(function (z) {
          if (!has(z[2])) return;
          matches(z[0], view, 0, view.length).forEach(function (m) {
            if (z[3] === 'cued' && m.groups.latin !== undefined) {
              if (latinAfter.has(m.groups.cue) && !notLatin.has(m.groups.latin.split(' ')[0])) report(group(m, 'latin'), z[1]);
              return;
            }
            if (z[3] === 'cued' && noNameAfterCue(view, m)) return;
            var span = group(m, 'name');
            if (seen.has(span[0])) return;
            var given = z[3] === 'surname' && !m.groups.name.startsWith(m.groups.surname);
            report(span, given ? 'name.given' : z[1]);
          });
        });
        matches(MOBILE, view, 0, view.length).forEach(function (m) {
          var before = search(NAME_BEFORE, view, Math.max(0, m.index - 8), m.index);
          if (!before || seen.has(group(before, 'name')[0])) return;
          var name = before.groups.name;
          if (notLabel.has(name) || notLabel.has(name.slice(0, 2)) || placeSet().has(name)) return;
          report(group(before, 'name'), 'name.label');
        });
      }
      en.forEach(function (e) {
        if (!has(e[2])) return;
        matches(e[0], view, 0, view.length).forEach(function (m) {
          var list = words(m.groups.name), span = group(m, 'name');
          if (enNot.has(list[0]) || seen.has(span[0]) || !capitalised(ctx, span[0], list)) return;
          var end = span[1];
          if (e[3] === 'title' && list.length === 2 && !upperAt(ctx, span[0] + list[0].length + 1)) end = span[0] + list[0].length;
          report([span[0], end], e[1]);
        });
      });
      spans.forEach(function (s) {
        var named = namedNear(view, s[0], s[1]);
        if (!named) return;
        var span = group(named, 'name');
        var list = words(view.slice(span[0], span[1]));
        if (seen.has(span[0]) || notSpeakers.has(list[0])) return;
        if (allCapitalised(ctx, span[0], span[1]) || lowerCaseName(list)) report(span, 'name.cue_en');
      });
      if (has(W.delivery)) {
        matches(EN_DELIVERY, view, 0, view.length).forEach(function (m) {
          var span = group(m, 'name'), list = words(m.groups.name);
          if (seen.has(span[0]) || placeStarts.has(list[0]) || enNot.has(list[0])) return;
          if (allCapitalised(ctx, span[0], span[1]) || lowerCaseName(list)) report(span, 'name.cue_en');
        });
      }
      return hits;
    };
  }

  var BRACKETED_AT_END = /at\s?[)\]}】]/;  // in every address match but those with an @
  var SPACED = /\s[@.]|[@.]\s/;  // in every spelt match with an @ but no spelt dot

  /** E-mail addresses (email.py) with the document's patterns (end.py _email): written as
   * typed or with a bracketed at; spelt out or set apart by spaces; after a word for e-mail,
   * matched from where the word ends. */
  function emailDetector(data) {
    var address = new RegExp(data.address, 'gu'), spelt = new RegExp(data.spelt, 'gu');
    var cues = Object.keys(data.cued).map(function (cue) { return [cue, new RegExp(data.cued[cue], 'ydu')]; });
    return function (ctx) {
      var view = ctx.view, hits = [], m;
      var at = view.indexOf('@') >= 0;
      if (at || BRACKETED_AT_END.test(view)) {
        address.lastIndex = 0;
        while ((m = address.exec(view)) !== null) hits.push(new Hit('email', m.index, m.index + m[0].length, 'email.address'));
      }
      var more = false;
      if (view.indexOf('dot') >= 0 || view.indexOf('点') >= 0 || (at && SPACED.test(view))) {
        more = true;
        spelt.lastIndex = 0;
        while ((m = spelt.exec(view)) !== null) hits.push(new Hit('email', m.index, m.index + m[0].length, 'email.address'));
      }
      cues.forEach(function (entry) {
        for (var pos = view.indexOf(entry[0]); pos >= 0; pos = view.indexOf(entry[0], pos + 1)) {
          entry[1].lastIndex = pos + entry[0].length;
          if ((m = entry[1].exec(view)) === null) continue;
          more = true;
          hits.push(new Hit('email', m.indices.groups.address[0], m.indices.groups.address[1], 'email.address'));
        }
      });
      if (more) {  // in text order, each span once (email.py scan)
        hits.sort(function (x, y) { return x.start - y.start || x.end - y.end; });
        hits = hits.filter(function (h, i) { return i === 0 || h.start !== hits[i - 1].start || h.end !== hits[i - 1].end; });
      }
      return hits;
    };
  }

  /* ------------------------------------------------------------------ links */

  /** Links (links.py LinkDetector) with the document's `links` pattern, judged against the
   * tenant's allowed domains (`link_domains`): `link` (allowed), `link_external`,
   * `link_homoglyph` (punycode, or a label mixing scripts or in one that passes for Latin).
   * The host is judged from the original characters, as the gateway does. A document
   * without `link_domains` (signed before links were found at the ends) finds none. */
  function linkDetector(links, domains) {
    if (!Array.isArray(domains)) return function () { return []; };
    var url = new RegExp(links.url, 'gu'), scripts = scriptTable(links);
    return function (ctx) {
      var view = ctx.view, hits = [], m;
      if (view.indexOf('://') < 0 && view.indexOf('.') < 0) return hits;
      url.lastIndex = 0;
      while ((m = url.exec(view)) !== null) {
        var start = m.index, end = start + m[0].length;
        while (end > start && links.trailing.indexOf(view[end - 1]) >= 0) end--;
        if (end - start < links.min_chars) continue;
        var span = ctx.span(start, end), host = hostOf(ctx.original.slice(span[0], span[1]).join(''));
        if (!host) continue;
        if (isHomoglyphHost(host, scripts)) hits.push(new Hit('link_homoglyph', start, end, 'link.homoglyph'));
        else if (domainAllowed(host, domains)) hits.push(new Hit('link', start, end, 'link.allowed_domain'));
        else hits.push(new Hit('link_external', start, end, 'link.external_domain'));
      }
      return hits;
    };
  }

  function domainAllowed(host, domains) {
    return domains.some(function (d) { return host === d || host.slice(-d.length - 1) === '.' + d; });
  }

  /** The script of each letter or digit outside ASCII (links.py script_of), from the
   * document's runs of code points: {lookalike, of(ch) -> name or null (not a letter or
   * digit)}. */
  function scriptTable(links) {
    var runs = links.scripts.runs, names = links.scripts.names;
    return {
      lookalike: links.lookalike,
      of: function (ch) {
        var code = ch.codePointAt(0);
        if (code < 0x80) return /[A-Za-z0-9]/.test(ch) ? 'ascii' : null;
        var lo = 0, hi = runs.length - 1;
        while (lo <= hi) {
          var mid = (lo + hi) >> 1, run = runs[mid];
          if (code < run[0]) hi = mid - 1;
          else if (code >= run[0] + run[1]) lo = mid + 1;
          else return names[run[2]];
        }
        return null;
      }
    };
  }

  /** Punycode labels, a label mixing scripts, or one in a script that passes for Latin
   * (links.py is_homoglyph_host). */
  function isHomoglyphHost(host, scripts) {
    return host.split('.').some(function (label) {
      if (label.slice(0, 4) === 'xn--') return true;
      if (/^[\x00-\x7f]*$/.test(label)) return false;
      var seen = [];
      for (var ch of label) {
        var script = scripts.of(ch);
        if (script !== null && seen.indexOf(script) < 0) seen.push(script);
      }
      return seen.length > 1 || seen.some(function (s) { return scripts.lookalike.indexOf(s) >= 0; });
    });
  }

  /** The real host of a URL or bare domain as a browser would resolve it, lower case
   * (links.py host_of, which asks Python's urlsplit: its hostname is read the same way
   * here, and what urlsplit refuses -- an unmatched bracket, a bracketed host that is no
   * IPv6 address -- has no host). */
  function hostOf(url) {
    var text = url.normalize('NFKC').replace(/\u3002/g, '.');
    if (text.indexOf('://') < 0) text = 'http://' + text;
    text = text.replace(/^[\x00-\x20]+/, '').replace(/[\t\r\n]/g, '');
    var colon = text.indexOf(':');
    if (colon > 0 && /^[A-Za-z][A-Za-z0-9+\-.]*$/.test(text.slice(0, colon))) text = text.slice(colon + 1);
    if (text.slice(0, 2) !== '//') return '';
    var rest = text.slice(2), netloc = rest.slice(0, authorityEnd(rest)), open = netloc.indexOf('[') >= 0;
    if (open !== (netloc.indexOf(']') >= 0)) return '';
    if (open && !isBracketedHost(netloc.split('[')[1].split(']')[0])) return '';
    var info = netloc.slice(netloc.lastIndexOf('@') + 1), hostname, bracket = info.indexOf('[');
    if (bracket >= 0) hostname = info.slice(bracket + 1).split(']')[0];
    else hostname = info.split(':')[0];
    return casefold(hostname.replace(/\.+$/, ''));
  }

  /** Where a URL's authority ends after its `//`: at the first /, ? or # (urlsplit's
   * netloc, links.py defang's authority). */
  function authorityEnd(rest) {
    var cut = rest.length;
    for (var c of '/?#') { var at = rest.indexOf(c); if (at >= 0 && at < cut) cut = at; }
    return cut;
  }

  /** An IPvFuture or IPv6 address in brackets, as urlsplit checks it (the address by the
   * browser's own parser; a zone after % is Python's). */
  function isBracketedHost(host) {
    if (host[0] === 'v') return /^v[a-fA-F0-9]+\..+$/s.test(host);
    var zone = host.indexOf('%');
    if (zone >= 0) {
      if (zone === host.length - 1 || host.indexOf('%', zone + 1) >= 0) return false;
      host = host.slice(0, zone);
    }
    try { new URL('http://[' + host + ']/'); } catch (e) { return false; }
    return host.indexOf(':') >= 0;
  }

  /** The host as shown after defanging: ASCII when it is a homoglyph suspect (links.py
   * display_host: each label as IDNA, by the browser's own IDNA; what it refuses, with
   * backslash escapes as Python's "backslashreplace"). */
  function displayHost(host, scripts) {
    if (isHomoglyphHost(host, scripts)) host = asciiHost(host);
    return host.replace(/\./g, '[.]');
  }

  function asciiHost(host) {
    try {
      var labels = host.split(/[.\u3002\uff0e\uff61]/), trailing = '';
      if (labels.length > 1 && labels[labels.length - 1] === '') { labels.pop(); trailing = '.'; }
      return labels.map(function (label) {
        if (/^[\x00-\x7f]*$/.test(label)) {
          if (!label.length || label.length > 63) throw new Error('label');
          return label;
        }
        if (label.slice(0, 4) === 'xn--') throw new Error('label');
        var ace = new URL('http://' + label + '.invalid/').hostname.slice(0, -'.invalid'.length);
        if (ace.indexOf('.') >= 0 || ace.length > 63 || !/^[\x00-\x7f]+$/.test(ace)) throw new Error('label');
        return ace;
      }).join('.') + trailing;
    } catch (e) {
      return Array.from(host).map(function (ch) {
        var code = ch.codePointAt(0), hex = code.toString(16);
        if (code < 0x80) return ch;
        if (code < 0x100) return '\\x' + hex.padStart(2, '0');
        if (code < 0x10000) return '\\u' + hex.padStart(4, '0');
        return '\\U' + hex.padStart(8, '0');
      }).join('');
    }
  }

  /** `https://user@example.com/p` -> `hxxps://example[.]com/p`, the real host visible
   * (links.py defang). */
  function defang(url, scripts) {
    var text = url.normalize('NFKC'), scheme = '', rest = text, sep = text.indexOf('://');
    if (sep >= 0) { scheme = text.slice(0, sep); rest = text.slice(sep + 3); }
    var cut = authorityEnd(rest), authority = rest.slice(0, cut);
    var hostport = authority.slice(authority.lastIndexOf('@') + 1);
    var colon = hostport.indexOf(':'), host = colon >= 0 ? hostport.slice(0, colon) : hostport;
    var port = colon >= 0 ? hostport.slice(colon + 1) : '';
    var shown = displayHost(hostOf(host) || host, scripts) + (/^\p{Nd}+$/u.test(port) ? ':' + port : '');
    var prefix = scheme ? scheme.toLowerCase().replace(/t/g, 'x').replace(/f/g, 'x') + '://' : '';
    return prefix + shown + rest.slice(cut);
  }

  /* ------------------------------------------------------------------ masking */

  var BRACKET_AT = /\s*[\(\[\{（【]\s*[aAａＡ][tTｔＴ]|\s+[aAａＡ][tTｔＴ]\s|\s*艾特/;

  function star(chars, mask) {
    var weights = [], i, m;
    for (i = mask.start; i < mask.end; i++) weights.push(weight(chars[i]));
    var style = mask.style, visible = 0;
    if ((m = /^last([0-9])$/.exec(style))) visible = +m[1];
    else if (style === 'email') {
      var text = chars.slice(mask.start, mask.end).join(''), at = text.indexOf('@');
      if (at < 0 && (m = BRACKET_AT.exec(text))) at = Array.from(text.slice(0, m.index)).length;
      var keptFirst = false;
      for (i = 0; i < (at > 0 ? at : weights.length); i++) {
        if (!weights[i]) continue;
        if (keptFirst) chars[mask.start + i] = '*';
        keptFirst = true;
      }
      return;
    } else if (style === 'name') {  // masking.py _star_name: 李 * as 张**, J*** S****
      var wordStart = false, kept = false;
      for (i = 0; i < weights.length; i++) {
        if (!weights[i]) { wordStart = true; continue; }
        if (kept && !(wordStart && !/[\u3400-\u9fff\uf900-\ufaff]/.test(chars[mask.start + i]))) chars[mask.start + i] = '*';
        kept = true;
        wordStart = false;
      }
      return;
    } else if (style === 'address') {  // masking.py _star_address: the divisions kept
      for (i = mask.keep || 0; i < weights.length; i++) if (weights[i]) chars[mask.start + i] = '*';
      return;
    } else if (style === 'phone' || (m = /^first([0-9])last([0-9])$/.exec(style))) {
      var head = style === 'phone' ? 3 : +m[1], tail = style === 'phone' ? 4 : +m[2];
      var total = weights.reduce(function (a, b) { return a + b; }, 0), seen = 0;
      if (total < head + tail + 3) { head = 0; tail = Math.min(tail, 2); }
      for (i = 0; i < weights.length; i++) {
        if (!weights[i]) continue;
        seen += weights[i];
        if (seen <= head || seen > total - tail) continue;
        chars[mask.start + i] = '*';
      }
      return;
    }
    var shown = 0;
    for (i = weights.length - 1; i >= 0; i--) {
      if (!weights[i]) continue;
      if (shown + weights[i] <= visible) shown += weights[i];
      else { visible = shown; chars[mask.start + i] = '*'; }
    }
  }

  /** Apply masks (possibly overlapping) to the original's code points (masking.py render):
   * the length-changing ones (`redact`, `defang`) last, merged where they overlap, `redact`
   * winning. `scripts`: what a defanged link's host is judged by (scriptTable). */
  function render(chars, masks, scripts) {
    chars = chars.slice();
    var spans = [];
    masks.forEach(function (mask) {
      if (mask.style === 'redact' || mask.style === 'defang') spans.push(mask);
      else if (mask.style !== 'keep') star(chars, mask);
    });
    spans.sort(function (a, b) { return a.start - b.start || b.end - a.end; });
    var merged = [];
    spans.forEach(function (s) {
      var last = merged[merged.length - 1];
      if (last && s.start < last.end) {
        last.end = Math.max(last.end, s.end);
        if (s.style === 'redact') last.style = 'redact';
      } else merged.push({ start: s.start, end: s.end, style: s.style });
    });
    for (var k = merged.length - 1; k >= 0; k--) {
      var span = merged[k], segment = chars.slice(span.start, span.end).join('');
      var replacement = span.style === 'redact' || !scripts ? '[redacted]' : defang(segment, scripts);
      chars.splice(span.start, span.end - span.start, replacement);
    }
    return chars.join('');
  }

  /* ------------------------------------------------------------------ engine */

  function hasBidiOverride(text) {
    for (var b = 0; b < BIDI_OVERRIDES.length; b++) if (text.indexOf(BIDI_OVERRIDES[b]) >= 0) return true;
    return false;
  }

  /** UTF-16 offset of each code point of `chars` (and of their end), for the page. */
  function utf16Offsets(chars) {
    var u16 = [0];
    chars.forEach(function (c, i) { u16.push(u16[i] + c.length); });
    return u16;
  }

  function isStyle(style) {
    return /^(?:last[0-9]|first[0-9]last[0-9]|full|email|keep|phone|name|address|redact|defang)$/.test(style);
  }

  /** Check a document's shape (it came over the network, signed or not). */
  function checkDocument(doc) {
    var bad = !doc || doc.v !== 1 || typeof doc.actions !== 'object' || typeof doc.masks !== 'object' ||
      !Array.isArray(doc.keywords) || typeof doc.fold !== 'object' || typeof doc.phone !== 'object' ||
      typeof doc.iban !== 'object';
    if (!bad) {
      bad = Object.keys(doc.actions).some(function (k) {
        var a = doc.actions[k];
        return !Array.isArray(a) || a.length !== 2 || !(a[0] in SEVERITY) || !(a[1] in SEVERITY);
      }) || Object.keys(doc.masks).some(function (k) { return !isStyle(doc.masks[k]); }) ||
        (doc.rules !== undefined && (typeof doc.rules !== 'object' || doc.rules === null ||
          Object.keys(doc.rules).some(function (k) { return !isRule(k, doc.rules[k]); }))) ||
        (doc.email !== undefined && !isEmail(doc.email)) ||
        (doc.window !== undefined && !isWindow(doc.window)) ||
        (doc.parts !== undefined && !isParts(doc.parts)) ||
        (doc.links !== undefined && !isLinks(doc.links)) ||
        (doc.address !== undefined && !isAddress(doc.address)) ||
        (doc.names !== undefined && !isNames(doc.names)) ||
        (doc.link_domains !== undefined && !isDomains(doc.link_domains)) ||
        (doc.hidden !== undefined && !isRuleNames(doc.hidden));
    }
    if (bad) throw new Error('policy_document_invalid');
  }

  /** The document's patterns under `key` (end.py: `rules`, `email`); a signed document from
   * before they were carried takes the bundled default's. */
  function carried(doc, key) {
    var value = doc[key] || (typeof CipherdeskPolicyDefault === 'object' ? CipherdeskPolicyDefault[key] : null);
    if (!value) throw new Error('policy_document_invalid');
    return value;
  }

  /** The document's context rules compiled (end.py _rules); a signed document from before
   * they were carried takes the bundled default's. A rule whose value needs a check this
   * bundle does not have is not run (it would report values the gateway would not). */
  function contextRules(doc) {
    var defined = carried(doc, 'rules');
    var checks = {
      'cn_id.legacy': isLegacyCnId,
      'cn_id.cued': function (v) { return isMistypedCnId(v, Date.now()); },
      'phone.cue': phoneCueCheck(doc.phone)
    }, out = {};
    Object.keys(defined).forEach(function (name) {
      var r = defined[name];
      if (r.checked && !checks[name]) return;
      // `about` came with the expiry rule later: a document signed before takes the default's
      var about = r.about || ((carried({}, 'rules')[name] || {}).about);
      out[name] = contextRule(r.kind, name, r.phrases, r.after, r.more || null, r.letters,
        r.checked ? checks[name] : null, about, r.before || null);
    });
    return out;
  }

  var RULE_NAME = /^[a-z_]{1,32}\.[a-z_]{1,32}$/;

  function isRule(name, r) {
    return RULE_NAME.test(name) && !!r && typeof r === 'object' &&
      typeof r.kind === 'string' && /^[a-z_]{1,32}$/.test(r.kind) &&
      isWords(r.phrases, 1, 256) && isPattern(r.after) && (r.more === undefined || isPattern(r.more)) &&
      (r.before === undefined || isPattern(r.before)) &&
      (r.about === undefined || isWords(r.about, 0, 64)) &&
      typeof r.letters === 'boolean' && typeof r.checked === 'boolean';
  }

  /** Whether `list` is an array of `min`..`max` phrases of 1..64 characters. */
  function isWords(list, min, max) {
    return Array.isArray(list) && list.length >= min && list.length <= max &&
      list.every(function (w) { return typeof w === 'string' && w.length >= 1 && w.length <= 64; });
  }

  function isPattern(p) { return typeof p === 'string' && p.length <= 8192; }

  /** A list of rule names (`card.cvv`, `parts`): the document's `hidden`. */
  function isRuleNames(list) {
    return Array.isArray(list) && list.length <= 64 && list.every(function (name) {
      return typeof name === 'string' && /^[a-z_]{1,32}(?:\.[a-z_]{1,32})?$/.test(name);
    });
  }

  function isEmail(e) {
    return !!e && typeof e === 'object' && isPattern(e.address) && isPattern(e.spelt) &&
      !!e.cued && typeof e.cued === 'object' &&
      Object.keys(e.cued).every(function (cue) { return cue.length >= 1 && cue.length <= 16 && isPattern(e.cued[cue]); });
  }

  function isParts(p) {
    return !!p && typeof p === 'object' && isWords(p.phrases, 1, 64) && isPattern(p.after) &&
      isPattern(p.more) && (p.part === undefined || isPattern(p.part)) &&
      (p.head === undefined || isHead(p.head));
  }

  function isHead(h) {
    return !!h && typeof h === 'object' && isWords(h.phrases, 1, 64) && isPattern(h.after) &&
      isPattern(h.more) && isWords(h.leading, 0, 8);
  }

  var ADDRESS_PATTERNS = ['detail', 'road_number', 'flat', 'building_unit', 'household', 'unit', 'lead',
    'leading_places', 'en', 'en_head', 'en_flat', 'po_box'];

  /** The document's `address` (end.py _address): at most 8,192 division names of at most 32
   * characters (a space between them, 128 KB at most), numerals, small bounds, and each
   * pattern the detector runs. */
  function isAddress(a) {
    var small = function (n, max) { return Number.isInteger(n) && n >= 0 && n <= max; };
    return !!a && typeof a === 'object' && typeof a.divisions === 'string' && a.divisions.length <= 131072 &&
      a.divisions.split(' ').length <= 8192 &&
      a.divisions.split(' ').every(function (n) { return n.length >= 1 && n.length <= 32; }) &&
      typeof a.numerals === 'string' && a.numerals.length >= 1 && a.numerals.length <= 64 &&
      small(a.max_gap, 8) && Array.isArray(a.window) && a.window.length === 2 &&
      small(a.window[0], 256) && small(a.window[1], 256) && small(a.detail_chars, 256) &&
      small(a.en_head_reach, 256) && isWords(a.en_flat_words, 1, 64) &&
      isWords(a.en_flat_parts, 1, 64) && isWords(a.po_box_gate, 1, 64) &&
      !!a.patterns && typeof a.patterns === 'object' &&
      ADDRESS_PATTERNS.every(function (name) { return isPattern(a.patterns[name]); });
  }

  var NAME_PATTERNS = ['zh_cued', 'zh_given_to', 'zh_surname_first', 'zh_honorific', 'zh_possessive',
    'mobile', 'name_before', 'en_cued', 'en_title', 'en_delivery', 'after_sign_off', 'after_relation', 'speaker'];

  /** The document's `names` (end.py _names): word lists of at most 1,024 words of at most 64
   * characters (every list the detector reads present), the English lexicons of at most
   * 10,000 when present, and each pattern it runs. */
  function isNames(n) {
    var words = n && n.words;
    return !!n && typeof n === 'object' && !!words && typeof words === 'object' &&
      NAME_WORD_LISTS.every(function (name) { return isWords(words[name], 1, 1024); }) &&
      NAME_LEXICONS.every(function (name) { return words[name] === undefined || isWords(words[name], 1, 10000); }) &&
      !!n.patterns && typeof n.patterns === 'object' &&
      NAME_PATTERNS.every(function (name) { return isPattern(n.patterns[name]); });
  }
  var NAME_WORD_LISTS = ['zh_cued', 'zh_given_to', 'zh_surname_first', 'zh_honorific', 'zh_possessive',
    'en_cued', 'en_title', 'sign_offs', 'my_relations_en', 'speaking', 'delivery', 'weak_cues', 'relations',
    'latin_after', 'common_words', 'titles_zh', 'not_label_names', 'en_not_names', 'not_speakers',
    'not_latin_names', 'place_starts', 'division_suffixes'];
  /** Lexicons of English given names and surnames (names.py lower_case_name): optional, as a
   * document signed before them carries none. */
  var NAME_LEXICONS = ['given_names_en', 'surnames_en'];

  function isLinks(l) {
    var scripts = l && l.scripts;
    return !!l && typeof l === 'object' && isPattern(l.url) && typeof l.trailing === 'string' &&
      l.trailing.length <= 32 && Number.isInteger(l.min_chars) && l.min_chars >= 1 && l.min_chars <= 64 &&
      !!scripts && Array.isArray(scripts.names) && scripts.names.length <= 1024 &&
      scripts.names.every(function (n) { return typeof n === 'string' && n.length <= 64; }) &&
      Array.isArray(scripts.runs) && scripts.runs.length <= 8192 &&
      scripts.runs.every(function (r) {
        return Array.isArray(r) && r.length === 3 && r.every(Number.isInteger) && r[0] >= 0x80 &&
          r[0] + r[1] <= 0x110000 && r[1] >= 1 && r[2] >= 0 && r[2] < scripts.names.length;
      }) && isWords(l.lookalike, 0, 64);
  }

  /** The tenant's allowed link domains (schema.MAX_LINK_DOMAINS of hosts at most). */
  function isDomains(d) {
    return Array.isArray(d) && d.length <= 500 &&
      d.every(function (h) { return typeof h === 'string' && h.length >= 1 && h.length <= 253; });
  }

  function isWindow(w) {
    return !!w && typeof w === 'object' && Array.isArray(w.asked) && w.asked.length <= 64 &&
      w.asked.every(function (n) { return typeof n === 'string' && RULE_NAME.test(n); }) &&
      isPattern(w.ending) && isPattern(w.lead_in) && (w.names === undefined || isWords(w.names, 1, 256)) &&
      Number.isInteger(w.ending_chars) && w.ending_chars >= 1 && w.ending_chars <= 1000;
  }

  function engine(doc) {
    checkDocument(doc);
    var t2s = doc.fold || {};
    var keywords = doc.keywords.map(function (k) { return { key: k[0], left: !!k[1], right: !!k[2], rules: k[3] }; });
    var rules = contextRules(doc);
    var divisions = doc.actions.address || doc.actions.name ? new Divisions(carried(doc, 'address')) : null;
    var detectors = [
      [secretsDetector(['otp.context', 'password.context', 'api_key.context'].map(placed).filter(Boolean)), true],
      [numberDetector('cn_id', 'cn_id.mod11_2', 18, 18, '123456789', function (d) { return isCnId(d, Date.now()); }), true],
      [ruleDetector(placed('cn_id.legacy')), true],
      [ruleDetector(placed('cn_id.cued')), true],
      [numberDetector('card', 'card.luhn', 13, 19, '23456', isCard), true],
      [ruleDetector(placed('card.cvv')), true],
      [expiryDetector(placed('card.expiry')), true],
      [ibanDetector(doc.iban), true],
      [hkids, true],
      [ssns, true],
      [ruleDetector(placed('id_document.context')), true],
      [ruleDetector(placed('bank_account.context')), true],
      [phoneDetector(doc.phone), true],
      [ruleDetector(placed('phone.cue')), true],
      [partsDetector(carried(doc, 'parts'), phoneRegions(doc.phone.cue_regions).CN), true],
      [ruleDetector(placed('im_account.context')), true],
      [emailDetector(carried(doc, 'email')), true]
    ];
    // A document signed before the ends found addresses and names has no action for them
    // unless its tenant set one (an unknown kind would flag): it finds only those.
    if (doc.actions.address) detectors.push([addressDetector(carried(doc, 'address'), divisions), true]);
    if (doc.actions.name) detectors.push([nameDetector(carried(doc, 'names'), divisions), true]);
    var links = carried(doc, 'links'), scripts = scriptTable(links);
    var linksAfter = [linkDetector(links, doc.link_domains), false];  // after any rule placed below
    // A rule of a newer document that this bundle does not place runs after the others.
    Object.keys(rules).forEach(function (name) { detectors.push([ruleDetector(placed(name)), true]); });
    detectors.push(linksAfter);

    function placed(name) {
      var rule = rules[name] || null;
      delete rules[name];
      return rule;
    }

    function actionFor(kind, direction) {
      var per = doc.actions[kind];
      return per ? per[DIRECTIONS.indexOf(direction)] : 'flag';
    }

    function keywordHits(norm) {
      var found = [];
      if (!keywords.length) return found;
      var compact = norm.compact(), view = norm.view;
      if (!compact.text) return found;
      keywords.forEach(function (entry) {
        var from = 0, at;
        while ((at = compact.text.indexOf(entry.key, from)) >= 0) {
          from = at + 1;
          var start = compact.at[at], end = compact.at[at + entry.key.length - 1] + 1;
          if (entry.left && start > 0 && needsBoundary(view[start - 1])) continue;
          if (entry.right && end < view.length && needsBoundary(view[end])) continue;
          entry.rules.forEach(function (rule) {
            found.push({ hit: new Hit(rule[0], start, end, 'keyword:' + entry.key), fixed: rule[1] || null });
          });
        }
      });
      return found;
    }

    function candidates(norm, bidi) {
      var found = [], runs = null;
      keywordHits(norm).forEach(function (k) {
        var span = norm.span(k.hit.start, k.hit.end);
        found.push({ hit: k.hit, start: span[0], end: span[1], fixed: k.fixed });
      });
      var ctx = {
        view: norm.view,
        original: norm.original,
        span: function (start, end) { return norm.span(start, end); },
        toOriginal: function (pos) { return norm.toOriginal(pos); },
        bidi: bidi,
        runs: function () { return runs || (runs = findNumberRuns(norm.view, bidi)); }
      };
      var claimed = [];
      detectors.forEach(function (d) {
        d[0](ctx).forEach(function (hit) {
          var span = norm.span(hit.start, hit.end);
          var inside = claimed.some(function (c) { return c[0] <= span[0] && c[1] >= span[1]; });
          if (inside) return;
          if (d[1]) claimed.push(span);
          found.push({ hit: hit, start: span[0], end: span[1], fixed: null });
        });
      });
      return found;
    }

    var hidden = carried(doc, 'hidden');

    function styleFor(chars, f, bidi) {
      var style = doc.masks[f.kind] || 'full';
      if (hidden.indexOf(f.rule) >= 0 && style !== 'keep') return 'full';  // any last N is all of it
      if (NUMERIC[f.kind] && style !== 'keep') {
        if (bidi) return 'full';
        for (var i = f.start; i < f.end; i++) {
          var c = chars[i];
          if ((/^\p{L}$/u.test(c) && c !== 'x' && c !== 'X') || c === '&' || c === '%' || c === '|') return 'full';
        }
      }
      return style;
    }

    /** How many leading code points of an address the 'address' style keeps: those naming
     * divisions, read on its view (masking.py _star_address; none when folding changed its
     * length). */
    function placesKept(chars) {
      var view = foldText(chars.join(''), t2s);
      return view.length === chars.length ? divisions.prefix(view) : 0;
    }

    /** What the recipient sees of the code points `chars` given `findings` (engine.py
     * render): mask and flag findings masked in their kind's style, the part of a number
     * completed across messages (a `.split` rule, policy_window.js) hidden completely. */
    function shown(chars, findings, bidi) {
      var masks = findings.filter(function (f) { return f.action === 'mask' || f.action === 'flag'; })
        .map(function (f) {
          var mask = { start: f.start, end: f.end, style: /\.split$/.test(f.rule) ? 'full' : styleFor(chars, f, bidi) };
          if (mask.style === 'address') mask.keep = placesKept(chars.slice(f.start, f.end));
          return mask;
        });
      return masks.length ? render(chars, masks, scripts) : null;
    }

    /** What happens to `text` sent by `direction` (engine.py evaluate). */
    function evaluate(text, direction) {
      if (DIRECTIONS.indexOf(direction) < 0) throw new Error('direction must be customer or agent');
      var bidi = hasBidiOverride(text);
      var norm = new Normalized(text, t2s);
      var found = candidates(norm, bidi);
      if (!found.length) return { action: 'allow', text: text, findings: [], kinds: [] };
      var u16 = utf16Offsets(norm.original);
      var findings = found.map(function (c) {
        return {
          kind: c.hit.kind, start: c.start, end: c.end, rule: c.hit.rule,
          action: c.fixed || actionFor(c.hit.kind, direction),
          start_utf16: u16[c.start], end_utf16: u16[c.end]
        };
      });
      findings.sort(function (a, b) {
        return a.start - b.start || a.end - b.end || (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0);
      });
      var worst = findings[0];
      findings.forEach(function (f) { if (SEVERITY[f.action] > SEVERITY[worst.action]) worst = f; });
      var visible = worst.action === 'block' ? null : (shown(norm.original, findings, bidi) || text);
      var kinds = [];
      findings.forEach(function (f) { if (f.action !== 'allow' && kinds.indexOf(f.kind) < 0) kinds.push(f.kind); });
      kinds.sort();
      return { action: worst.action, text: visible, findings: findings, kinds: kinds, worst: worst.kind };
    }

    /** `text` as its recipient sees it with `findings` (code point offsets), for a decision
     * extended after `evaluate` (policy_window.js). */
    function renderText(text, findings) {
      return shown(Array.from(text), findings, hasBidiOverride(text)) || text;
    }

    return {
      evaluate: evaluate,
      render: renderText,
      fold: function (text) { return foldText(text, t2s); },
      /** The document's `rules`, `email`, `window`, `parts`, `links` or `hidden`, else the bundled default's. */
      carried: function (key) { return carried(doc, key); },
      document: doc
    };
  }

  var defaultEngine = null;

  /** The engine an end runs for its tenant: the document its admins signed if `tenantKey`
   * verifies it for `tenant` (CipherdeskE2E.verifyPolicy), else the default compiled into
   * this SRI-pinned bundle. A gateway can withhold a signed policy, never forge one. */
  function forTenant(signed, tenantKey, tenant) {
    if (signed && tenantKey) {
      try {
        return engine(CipherdeskE2E.verifyPolicy(tenantKey, signed.body, signed.sig, tenant));
      } catch (e) { /* not signed by this tenant's key: the default applies */ }
    }
    return defaultEngine || (defaultEngine = engine(CipherdeskPolicyDefault));
  }

  /** The kinds to send as `emsg.flags` (chats.py's flag kinds): the gateway alerts
   * supervisors with them, never with text (it has none). A flagged message names every
   * kind that changed something; a number completed across messages (policy_window.js)
   * always alerts, and names its kinds as `split:<kind>` too. */
  function flags(decision) {
    var split = decision.split_kinds || [];
    if (decision.action !== 'flag' && !split.length) return [];
    var out = decision.kinds.slice();
    split.forEach(function (k) { out.push('split:' + k); });
    return out.filter(function (k, i) { return out.indexOf(k) === i; }).sort().slice(0, 8);
  }

  /** The notice frame shape the pages already localise (CipherdeskNotices.text). */
  function notice(decision) {
    var names = { block: 'blocked', mask: 'masked', flag: 'flagged' };
    return { action: names[decision.action] || 'allowed', kinds: decision.kinds };
  }

  return {
    engine: engine, checkDocument: checkDocument, forTenant: forTenant, notice: notice, flags: flags,
    // for policy_window.js
    numberLike: numberLike,
    SEVERITY: SEVERITY,
    isLetter: isLetter,
    utf16Offsets: utf16Offsets
  };
})();
