/* cipherdesk policy at the ends: numbers split across messages (the browser twin of
 * gateway/policy/split.py's rolling window, issue 12).
 *
 * "4111 1111" then "1111 1111" passes a per-message check although the reader gets the
 * whole card. In an end-to-end chat the gateway cannot join the two, so the end that seals
 * does: it keeps the tails of its own last two messages -- only while they end in something
 * number-like, at most TAIL_CHARS each, for at most TTL_MS, in memory only -- and checks
 * each new message together with them. A number of a SPLIT_KINDS kind that starts in an
 * earlier message and ends in the new one is reported on the new message (rule
 * `<rule>.split`): its part there is hidden completely, the message takes the kind's
 * action, and `CipherdeskPolicy.flags` names `split:<kind>` so the gateway alerts
 * supervisors, as it does for inspect-mode chats. tests/policy/window_vectors.jsonl is run
 * through both windows.
 *
 *   var w = CipherdeskPolicyWindow.create(clock)   // one per chat; clock() in ms
 *   decision = w.check(engine, direction, text, engine.evaluate(text, direction))
 */
var CipherdeskPolicyWindow = (function () {
  'use strict';

  var TAIL_CHARS = 48;  // code points kept of a message: a 19-digit card spelt with separators
  var MAX_PARTS = 2;  // earlier messages kept per sender (a number in three messages is found)
  var TTL_MS = 120000;
  var SPLIT_KINDS = ['bank_account', 'card', 'cn_id', 'iban', 'phone'];
  var SEVERITY = { allow: 0, mask: 1, flag: 2, block: 3 };
  var JOIN = '\n';

  function Window(clock) {
    this.clock = clock || Date.now;
    this.tails = {};  // direction -> {at, parts}
  }

  /** `decision` for `text`, extended by numbers completed across messages; then the new
   * message's tail is remembered (unless it was blocked: a blocked message was not sent). */
  Window.prototype.check = function (engine, direction, text, decision) {
    var now = this.clock();
    var entry = this.tails[direction];
    delete this.tails[direction];
    var parts = entry && now - entry.at <= TTL_MS ? entry.parts : [];
    var chars = Array.from(text);
    var result = decision;
    if (parts.length && CipherdeskPolicy.NUMBERISH.test(chars.slice(0, TAIL_CHARS).join(''))) {
      result = combined(engine, parts, direction, text, chars, decision);
    }
    if (result.action !== 'block') this.remember(direction, now, parts, chars);
    return result;
  };

  Window.prototype.remember = function (direction, now, parts, chars) {
    var tail = chars.slice(-TAIL_CHARS).join('');
    if (!CipherdeskPolicy.NUMBERISH.test(tail)) return;  // nothing to continue: nothing kept
    this.tails[direction] = { at: now, parts: parts.concat([tail]).slice(-MAX_PARTS) };
  };

  /** Drop what the window holds (the chat ended). */
  Window.prototype.forget = function () { this.tails = {}; };

  function combined(engine, parts, direction, text, chars, decision) {
    var prefix = parts.join(JOIN) + JOIN;
    var offset = Array.from(prefix).length;
    var own = {};
    decision.findings.forEach(function (f) { own[f.kind + ':' + f.start + ':' + f.end] = true; });
    var more = [];
    engine.evaluate(prefix + text, direction).findings.forEach(function (f) {
      if (SPLIT_KINDS.indexOf(f.kind) < 0 || !(f.start < offset && offset < f.end)) return;
      var end = f.end - offset;
      if (own[f.kind + ':0:' + end]) return;
      more.push({ kind: f.kind, start: 0, end: end, rule: f.rule + '.split', action: f.action });
    });
    return more.length ? extended(engine, decision, text, chars, more) : decision;
  }

  /** `decision` with the split findings `more` added (split.py _with). */
  function extended(engine, decision, text, chars, more) {
    var u16 = [0];
    chars.forEach(function (c, i) { u16.push(u16[i] + c.length); });
    more.forEach(function (f) { f.start_utf16 = u16[f.start]; f.end_utf16 = u16[f.end]; });
    var findings = decision.findings.concat(more);
    findings.sort(function (a, b) { return a.start - b.start || a.end - b.end; });  // stable
    var worst = findings[0];
    findings.forEach(function (f) { if (SEVERITY[f.action] > SEVERITY[worst.action]) worst = f; });
    var kinds = decision.kinds.slice();
    var split = [];
    more.forEach(function (f) {
      if (f.action !== 'allow' && kinds.indexOf(f.kind) < 0) kinds.push(f.kind);
      if (split.indexOf(f.kind) < 0) split.push(f.kind);
    });
    return {
      action: worst.action,
      text: worst.action === 'block' ? null : engine.render(text, findings),
      findings: findings,
      kinds: kinds.sort(),
      worst: worst.kind,
      split_kinds: split.sort()
    };
  }

  return {
    create: function (clock) { return new Window(clock); },
    // split.py's constants, compared with them by a test
    SPLIT_KINDS: SPLIT_KINDS,
    TAIL_CHARS: TAIL_CHARS,
    MAX_PARTS: MAX_PARTS,
    TTL_MS: TTL_MS
  };
})();
