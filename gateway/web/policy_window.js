/* cipherdesk policy at the ends: what one message says with the messages before it (the
 * browser twin of gateway/policy/split.py's window, issue 12).
 *
 * Numbers split across messages: "4111 1111" then "1111 1111" passes a per-message check
 * although the reader gets the whole card. In an end-to-end chat the gateway cannot join
 * the two, so the end that seals does: it keeps the tails of its own last two messages --
 * only while they hold something number-like (a digit, a numeral, a digit word:
 * numberLike), at most TAIL_CHARS each, for at most TTL_MS, in memory only -- and checks
 * each new message together with them. A number of a
 * SPLIT_KINDS kind that starts in an earlier message and ends in the new one is reported
 * on the new message (rule `<rule>.split`): its part there is hidden completely, the
 * message takes the kind's action, and `CipherdeskPolicy.flags` names `split:<kind>` so
 * the gateway alerts supervisors, as it does for inspect-mode chats.
 *
 * A question and its answer: an agent's message naming a value found by the phrase before
 * it ("请提供您的护照号码", "what is the CVV?") without the value, or a customer's message
 * ending with such a phrase ("我的护照号码是"), makes the customer's next message or two be
 * read as the answer: a value right at their start ("E12345678", "好的，482913") is found
 * as if the phrase stood before it. The phrases, the words that may end such a message and
 * the acknowledgement an answer may start with come in the signed document (`window`).
 * The widget hands this window the agent's messages it opens (`heard`).
 *
 * tests/policy/window_vectors.jsonl is run through both windows.
 *
 *   var w = CipherdeskPolicyWindow.create(clock)   // one per chat; clock() in ms
 *   decision = w.check(engine, direction, text, engine.evaluate(text, direction))
 *   w.heard(engine, agentText)                     // an agent's message the widget opened
 */
var CipherdeskPolicyWindow = (function () {
  'use strict';

  var TAIL_CHARS = 48;  // code points kept of a message: a 19-digit card spelt with separators
  var MAX_PARTS = 2;  // earlier messages kept per sender (a number in three messages is found)
  var TTL_MS = 120000;
  var SPLIT_KINDS = ['bank_account', 'card', 'cn_id', 'iban', 'phone'];
  var P = CipherdeskPolicy;
  var JOIN = '\n';
  var ANSWERS = 2;  // customer messages after a question read as its answer

  var compiled = new WeakMap();  // engine -> its document's question-and-answer data

  /** The document's question-and-answer data (end.py `window`), compiled once per engine. */
  function askedOf(engine) {
    var data = compiled.get(engine);
    if (data) return data;
    var w = engine.carried('window'), rules = engine.carried('rules');
    var asked = w.asked.filter(function (name) { return rules[name]; }).map(function (name) {
      return { kind: rules[name].kind, phrases: rules[name].phrases };
    });
    // then a person's name by the cues that name one (a document signed before has none)
    if (w.names) asked.push({ kind: 'name', phrases: w.names });
    data = {
      asked: asked,
      kinds: asked.map(function (r) { return r.kind; }),
      ending: new RegExp('^(?:' + w.ending + ')$', 'u'),
      endingChars: w.ending_chars,
      leadIn: new RegExp('^(?:' + w.lead_in + ')', 'iu')
    };
    compiled.set(engine, data);
    return data;
  }

  /** The (kind, start, end) of each finding, to tell a new finding from one made already. */
  function spansOf(findings) {
    var own = {};
    findings.forEach(function (f) { own[f.kind + ':' + f.start + ':' + f.end] = true; });
    return own;
  }

  function Window(clock) {
    this.clock = clock || Date.now;
    this.tails = {};  // direction -> {at, parts}
    this.asked = null;  // the open question: {at, phrase, left (answers)}
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
    if (parts.length && P.numberLike(chars.slice(0, TAIL_CHARS).join(''))) {
      result = combined(engine, parts, direction, text, chars, decision);
    }
    var phrase = null;
    if (direction === 'customer') {
      result = this.answered(engine, now, text, chars, result);
      // a customer's own phrase, the value held back for the next message ("护照号码")
      if (result.action !== 'block') phrase = named(engine, text, result, true);
    } else if (result.action !== 'block') {
      phrase = named(engine, text, result, false);
    }
    if (phrase) this.asked = { at: now, phrase: phrase, left: ANSWERS };
    if (result.action !== 'block') this.remember(direction, now, parts, chars);
    return result;
  };

  /** An agent's message this end opened (the widget), checked as the gateway checks an
   * inspect-mode agent's: a question it names is read with the customer's next answer. */
  Window.prototype.heard = function (engine, text) {
    this.check(engine, 'agent', text, engine.evaluate(text, 'agent'));
  };

  /** `decision` extended by the value a customer's answer gives to the open question
   * (split.py _answered). */
  Window.prototype.answered = function (engine, now, text, chars, decision) {
    var entry = this.asked;
    this.asked = null;
    if (!entry || now - entry.at > TTL_MS) return decision;
    if (entry.left > 1) this.asked = { at: entry.at, phrase: entry.phrase, left: entry.left - 1 };
    var data = askedOf(engine);
    // The answer without its acknowledgement, after the phrase: a value found right there
    // (where the rule's filler ends) is the answer's.
    var lead = data.leadIn.exec(text);
    var cutUnits = lead ? lead[0].length : 0;
    var cut = Array.from(text.slice(0, cutUnits)).length;
    var prefix = entry.phrase + '\uff1a';
    var prefixLength = Array.from(prefix).length;
    var shift = cut - prefixLength;
    var own = spansOf(decision.findings);
    var answers = [];
    engine.evaluate(prefix + text.slice(cutUnits), 'customer').findings.forEach(function (f) {
      if (data.kinds.indexOf(f.kind) < 0 || f.start !== prefixLength) return;
      var start = f.start + shift, end = f.end + shift;
      if (own[f.kind + ':' + start + ':' + end]) return;
      answers.push({ kind: f.kind, start: start, end: end, rule: f.rule, action: f.action });
    });
    if (!answers.length) return decision;
    this.asked = null;  // answered
    return extended(engine, decision, text, chars, answers, false);
  };

  Window.prototype.remember = function (direction, now, parts, chars) {
    var tail = chars.slice(-TAIL_CHARS).join('');
    if (!P.numberLike(tail)) return;  // nothing to continue: nothing kept
    this.tails[direction] = { at: now, parts: parts.concat([tail]).slice(-MAX_PARTS) };
  };

  function combined(engine, parts, direction, text, chars, decision) {
    var prefix = parts.join(JOIN) + JOIN;
    var offset = Array.from(prefix).length;
    var own = spansOf(decision.findings);
    var more = [];
    engine.evaluate(prefix + text, direction).findings.forEach(function (f) {
      if (SPLIT_KINDS.indexOf(f.kind) < 0) return;
      var start;
      if (f.start < offset && offset < f.end) start = 0;  // a number running on into this message
      // a part of a number given in two whose other part came before (parts.py)
      else if (f.rule === 'parts' && f.start >= offset) start = f.start - offset;
      else return;
      var end = f.end - offset;
      if (own[f.kind + ':' + start + ':' + end]) return;
      more.push({ kind: f.kind, start: start, end: end, rule: f.rule + '.split', action: f.action });
    });
    return more.length ? extended(engine, decision, text, chars, more, true) : decision;
  }

  /** `decision` with the findings `more` added (split.py _with); `split`: they completed
   * numbers across messages (supervisors are alerted). */
  function extended(engine, decision, text, chars, more, split) {
    var u16 = P.utf16Offsets(chars);
    more.forEach(function (f) { f.start_utf16 = u16[f.start]; f.end_utf16 = u16[f.end]; });
    var findings = decision.findings.concat(more);
    findings.sort(function (a, b) { return a.start - b.start || a.end - b.end; });  // stable
    var worst = findings[0];
    findings.forEach(function (f) { if (P.SEVERITY[f.action] > P.SEVERITY[worst.action]) worst = f; });
    var kinds = decision.kinds.slice();
    var splitKinds = split ? [] : (decision.split_kinds || []).slice();
    more.forEach(function (f) {
      if (f.action !== 'allow' && kinds.indexOf(f.kind) < 0) kinds.push(f.kind);
      if (split && splitKinds.indexOf(f.kind) < 0) splitKinds.push(f.kind);
    });
    return {
      action: worst.action,
      text: worst.action === 'block' ? null : engine.render(text, findings),
      findings: findings,
      kinds: kinds.sort(),
      worst: worst.kind,
      split_kinds: splitKinds.sort()
    };
  }

  /** The last phrase of a rule a question may name that `text` names without a value of
   * its kind (`decision` found none); with `ending`, only one ending the message but for
   * punctuation and the words announcing a value, looked for in its last `ending_chars`
   * (split.py _named: whole words, each rule's phrases read leftmost and longest first). */
  function named(engine, text, decision, ending) {
    var data = askedOf(engine);
    var view = engine.fold(text);
    var start = 0;
    if (ending) {
      var end = view.length;
      while (end && !/[\p{L}\p{N}]/u.test(view[end - 1])) end--;
      start = Math.max(0, end - data.endingChars);
    }
    var found = {};
    decision.findings.forEach(function (f) { found[f.kind] = true; });
    var best = null;
    data.asked.forEach(function (rule) {
      if (found[rule.kind]) return;
      var spans = [];
      rule.phrases.forEach(function (phrase) {
        for (var at = view.indexOf(phrase, start); at >= 0; at = view.indexOf(phrase, at + 1)) {
          var stop = at + phrase.length;
          if (!P.isLetter(view, at - 1) && !P.isLetter(view, stop)) spans.push([at, stop]);
        }
      });
      spans.sort(function (a, b) { return a[0] - b[0] || b[1] - a[1]; });
      var after = -1;
      spans.forEach(function (span) {
        if (span[0] < after) return;  // inside the rule's previous phrase
        after = span[1];
        if (ending && !data.ending.test(view.slice(after))) return;
        if (!best || span[0] > best[0]) best = span;
      });
    });
    return best ? view.slice(best[0], best[1]) : null;
  }

  return {
    create: function (clock) { return new Window(clock); },
    // split.py's constants, compared with them by a test
    SPLIT_KINDS: SPLIT_KINDS,
    TAIL_CHARS: TAIL_CHARS,
    MAX_PARTS: MAX_PARTS,
    TTL_MS: TTL_MS,
    ANSWERS: ANSWERS
  };
})();
