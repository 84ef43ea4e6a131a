/* cipherdesk wire protocol v1 (docs/PROTOCOL.md): the sealed channel shared by the
 * customer widget and the agent console. Needs tweetnacl (`nacl`) in scope.
 *
 *   var sock = new CipherdeskProtocol.SecureSocket(url, {
 *     gatewayKey: "<base64 Ed25519 verify key>",   // optional pin; mismatch = abort
 *     keyExtra: function () { return {resume: {...}}; },  // extra fields of `key`
 *     onready: function (hello) {}, onframe: function (inner) {},
 *     onclose: function (info) {}   // {code, reason, error, refusal}
 *   });
 *   sock.send({t: "msg", id: ..., text: ...});
 */
var CipherdeskProtocol = (function (nacl) {
  'use strict';

  var HELLO_CONTEXT = 'cipherdesk/v1/hello|';
  var TO_SERVER = 0x01;
  var TO_CLIENT = 0x02;
  var encoder = new TextEncoder();
  var decoder = new TextDecoder('utf-8', { fatal: true });

  function b64encode(bytes) {
    var s = '';
    for (var i = 0; i < bytes.length; i += 0x8000) {
      s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(s);
  }

  function b64decode(text) {
    var bin = atob(text);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  /* nonce = direction byte ‖ 15 zero bytes ‖ 8-byte big-endian counter */
  function nonce(direction, counter) {
    var n = new Uint8Array(24);
    n[0] = direction;
    var view = new DataView(n.buffer);
    view.setUint32(16, Math.floor(counter / 4294967296));
    view.setUint32(20, counter >>> 0);
    return n;
  }

  /* True if `hello.sig` is the gateway's signature over "cipherdesk/v1/hello|S|PK". */
  function verifyHello(hello, gatewayKeyB64) {
    try {
      var key = b64decode(gatewayKeyB64);
      var sig = b64decode(hello.sig);
      if (key.length !== 32 || sig.length !== 64) return false;
      var msg = encoder.encode(HELLO_CONTEXT + hello.sid + '|' + hello.server_pk);
      return nacl.sign.detached.verify(msg, sig, key);
    } catch (e) {
      return false;
    }
  }

  function newId() {
    var b = nacl.randomBytes(16);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join('');
    return hex.slice(0, 8) + '-' + hex.slice(8, 12) + '-' + hex.slice(12, 16) + '-' +
      hex.slice(16, 20) + '-' + hex.slice(20);
  }

  /* Seconds from a close reason such as "retry-after=12", or null. */
  function retryAfter(reason) {
    var m = /retry-after=(\d+(?:\.\d+)?)/.exec(reason || '');
    return m ? parseFloat(m[1]) : null;
  }

  /* Exponential backoff with jitter: 0.5 s, 1 s, 2 s … capped. */
  function Backoff(base, cap) {
    this.base = base || 500;
    this.cap = cap || 15000;
    this.attempt = 0;
  }
  Backoff.prototype.next = function () {
    var d = Math.min(this.cap, this.base * Math.pow(2, this.attempt++));
    return Math.round(d / 2 + Math.random() * d / 2);
  };
  Backoff.prototype.reset = function () { this.attempt = 0; };

  function SecureSocket(url, opts) {
    this.url = url;
    this.opts = opts || {};
    this.state = 'connecting';
    this.hello = null;
    this.refusal = null;   // plain {"t":"error"} frame sent before a refusal close
    this.error = null;     // "signature" | "protocol" when WE aborted
    this._key = null;
    this._out = 0;
    this._in = 0;
    var ws = new WebSocket(url);
    this.ws = ws;
    var self = this;
    ws.onmessage = function (ev) { self._receive(ev.data); };
    ws.onclose = function (ev) {
      var was = self.state;
      self.state = 'closed';
      if (self._key) self._key.fill(0);
      self._key = null;
      if (self.opts.onclose) {
        self.opts.onclose({ code: ev.code, reason: ev.reason, error: self.error,
                            refusal: self.refusal, established: was === 'open' });
      }
    };
  }

  SecureSocket.prototype._abort = function (error, reason) {
    this.error = error;
    try { this.ws.close(4000, reason); } catch (e) { /* already closing */ }
  };

  SecureSocket.prototype._receive = function (data) {
    if (typeof data !== 'string') return this._abort('protocol', 'binary frame');
    var frame;
    try { frame = JSON.parse(data); } catch (e) { return this._abort('protocol', 'bad json'); }
    if (this.state === 'connecting') {
      if (frame.t === 'error') { this.refusal = frame; return; }
      if (frame.t !== 'hello' || frame.v !== 1) return this._abort('protocol', 'expected hello');
      if (this.opts.gatewayKey && !verifyHello(frame, this.opts.gatewayKey)) {
        return this._abort('signature', 'gateway signature mismatch');
      }
      var kp = nacl.box.keyPair();
      var serverPk;
      try { serverPk = b64decode(frame.server_pk); } catch (e) { serverPk = null; }
      if (!serverPk || serverPk.length !== 32) return this._abort('protocol', 'bad server key');
      this._key = nacl.box.before(serverPk, kp.secretKey);
      kp.secretKey.fill(0);
      var key = { t: 'key', client_pk: b64encode(kp.publicKey) };
      var extra = this.opts.keyExtra ? this.opts.keyExtra() : null;
      if (extra) for (var k in extra) if (Object.prototype.hasOwnProperty.call(extra, k)) key[k] = extra[k];
      this.ws.send(JSON.stringify(key));
      this.hello = frame;
      this.state = 'open';
      if (this.opts.onready) this.opts.onready(frame);
      return;
    }
    if (frame.t === 'error') { this.refusal = frame; return; }
    if (frame.t !== 'sealed' || typeof frame.n !== 'number' || frame.n <= this._in) {
      return this._abort('protocol', 'replayed or unexpected frame');
    }
    var plain;
    try {
      plain = nacl.secretbox.open(b64decode(frame.c), nonce(TO_CLIENT, frame.n), this._key);
    } catch (e) { plain = null; }
    if (!plain) return this._abort('protocol', 'frame failed authentication');
    this._in = frame.n;
    var inner;
    try { inner = JSON.parse(decoder.decode(plain)); } catch (e) { return this._abort('protocol', 'bad inner frame'); }
    if (this.opts.onframe) this.opts.onframe(inner);
  };

  /* Seal and send one inner frame; false if the channel is not open. */
  SecureSocket.prototype.send = function (inner) {
    if (this.state !== 'open' || this.ws.readyState !== WebSocket.OPEN) return false;
    var n = ++this._out;
    var box = nacl.secretbox(encoder.encode(JSON.stringify(inner)), nonce(TO_SERVER, n), this._key);
    this.ws.send(JSON.stringify({ t: 'sealed', n: n, c: b64encode(box) }));
    return true;
  };

  SecureSocket.prototype.close = function (reason) {
    this.opts.onclose = null;
    this.state = 'closed';
    try { this.ws.close(1000, reason || 'bye'); } catch (e) { /* ignore */ }
  };

  /* Human text for a close code (docs/PROTOCOL.md "Close codes"). */
  function describeClose(info) {
    if (info.error === 'signature') return 'The secure connection could not be verified.';
    switch (info.code) {
      case 4401: return 'Your session has ended. Please log in again.';
      case 4403: return (info.refusal && info.refusal.message) || 'Not allowed.';
      case 4429: case 1013: return 'Too busy right now; retrying shortly.';
      case 1009: return 'That message was too large.';
      default: return 'Connection lost; reconnecting…';
    }
  }

  return {
    SecureSocket: SecureSocket,
    Backoff: Backoff,
    verifyHello: verifyHello,
    newId: newId,
    retryAfter: retryAfter,
    describeClose: describeClose,
    b64encode: b64encode,
    b64decode: b64decode,
    nonce: nonce
  };
})(nacl);
