/* cipherdesk end-to-end mode (issue 13): the browser ends' cryptography, the twin of
 * crypto/e2e.py (docs/PROTOCOL.md, "End-to-end mode"). Needs tweetnacl (`nacl`) and
 * CipherdeskProtocol in scope; HMAC-SHA256 comes from WebCrypto (secure contexts only:
 * https, or localhost). tests/crypto/e2e_vectors.json binds this file and the Python.
 *
 *   CipherdeskE2E.verifyCertificate(tenantKey, body, sig, nowSeconds, tenant) -> cert
 *   CipherdeskE2E.verifyPolicy(tenantKey, body, sig, tenant) -> end policy document
 *   CipherdeskE2E.wrapChatKey(key, devicePkB64, chat, epoch) -> b64
 *   CipherdeskE2E.unwrapChatKey(wrappedB64, device, chat, epoch) -> Promise<key>
 *   CipherdeskE2E.sealMessage(key, chat, sender, id, epoch, text) -> Promise<{c, fc}>
 *   CipherdeskE2E.openMessage(key, frame, chat, sender) -> Promise<{text, fk}>
 *   CipherdeskE2E.DeviceKey.load/create(...)  -- the console's device key (IndexedDB)
 */
var CipherdeskE2E = (function (nacl, P) {
  'use strict';

  var CERT_CONTEXT = 'cipherdesk/v1/device-cert|';
  var WRAP_CONTEXT = 'cipherdesk/v1/chat-key|';
  var FRANK_CONTEXT = 'cipherdesk/v1/frank|';
  var POLICY_CONTEXT = 'cipherdesk/v1/end-policy|';
  var encoder = new TextEncoder();
  var decoder = new TextDecoder('utf-8', { fatal: true });

  function E2EError(code, message) {
    this.code = code;
    this.message = message || code;
  }

  function concat() {
    var total = 0, i;
    for (i = 0; i < arguments.length; i++) total += arguments[i].length;
    var out = new Uint8Array(total), at = 0;
    for (i = 0; i < arguments.length; i++) { out.set(arguments[i], at); at += arguments[i].length; }
    return out;
  }

  function b64(text, length) {
    var bytes;
    try { bytes = P.b64decode(text); } catch (e) { throw new E2EError('malformed', 'not base64'); }
    if (length !== undefined && bytes.length !== length) throw new E2EError('malformed', 'bad length');
    return bytes;
  }

  function supported() {
    return !!(window.crypto && window.crypto.subtle);
  }

  /* ------------------------------------------------------------ certificates */

  function verifyCertificate(tenantKey, body, sig, now, tenant) {
    if (typeof body !== 'string' || body.length > 2048) throw new E2EError('malformed');
    var key = b64(tenantKey, 32), signature = b64(sig, 64);
    if (!nacl.sign.detached.verify(encoder.encode(CERT_CONTEXT + body), signature, key)) {
      throw new E2EError('bad_signature', 'not signed by the tenant key');
    }
    var c;
    try { c = JSON.parse(body); } catch (e) { throw new E2EError('malformed'); }
    var strings = ['tenant', 'agent', 'name', 'role', 'device', 'pk'];
    if (!c || c.v !== 1 || !strings.every(function (k) { return typeof c[k] === 'string' && c[k].length > 0 && c[k].length <= 200; }) ||
        !Number.isInteger(c.iat) || !Number.isInteger(c.exp)) {
      throw new E2EError('malformed', 'not a v1 certificate');
    }
    b64(c.pk, 32);
    if (tenant && c.tenant !== tenant) throw new E2EError('wrong_tenant');
    if (!(c.iat - 300 <= now && now < c.exp)) throw new E2EError('expired');
    return c;
  }

  /** The tenant's end policy document if `tenantKey` signed it for `tenant`
   * (crypto/e2e.py verify_policy). */
  function verifyPolicy(tenantKey, body, sig, tenant) {
    if (typeof body !== 'string' || body.length > 2000000) throw new E2EError('malformed');  // crypto/e2e.py MAX_POLICY_CHARS
    var key = b64(tenantKey, 32), signature = b64(sig, 64);
    if (!nacl.sign.detached.verify(encoder.encode(POLICY_CONTEXT + body), signature, key)) {
      throw new E2EError('bad_signature', 'not signed by the tenant key');
    }
    var doc;
    try { doc = JSON.parse(body); } catch (e) { throw new E2EError('malformed'); }
    if (!doc || doc.v !== 1) throw new E2EError('malformed', 'not a v1 end policy document');
    if (doc.tenant !== tenant) throw new E2EError('wrong_tenant');
    return doc;
  }

  /* ------------------------------------------------------------ chat keys */

  function wrapPlain(chat, epoch) {
    return encoder.encode(WRAP_CONTEXT + chat + '|' + epoch + '|');
  }

  function wrapChatKey(key, devicePk, chat, epoch) {
    var eph = nacl.box.keyPair();
    var nonce = nacl.randomBytes(24);
    var sealed = nacl.box(concat(wrapPlain(chat, epoch), key), nonce, b64(devicePk, 32), eph.secretKey);
    eph.secretKey.fill(0);
    return P.b64encode(concat(eph.publicKey, nonce, sealed));
  }

  /* `device` is a DeviceKey (its `sharedKey(ephemeralPk)` gives nacl.box.before). */
  function unwrapChatKey(wrapped, device, chat, epoch) {
    var raw = b64(wrapped);
    if (raw.length < 32 + 24 + 16) return Promise.reject(new E2EError('malformed'));
    var eph = raw.subarray(0, 32), nonce = raw.subarray(32, 56), sealed = raw.subarray(56);
    return device.sharedKey(eph).then(function (shared) {
      var plain = nacl.box.open.after(sealed, nonce, shared);
      if (!plain) throw new E2EError('no_open', 'does not open with this device key');
      var prefix = wrapPlain(chat, epoch);
      if (plain.length !== prefix.length + 32 || !nacl.verify(plain.subarray(0, prefix.length), prefix)) {
        throw new E2EError('wrong_chat', 'made for another chat or epoch');
      }
      return plain.slice(prefix.length);
    });
  }

  /* ------------------------------------------------------------ messages */

  function hmac(keyBytes, data) {
    return crypto.subtle.importKey('raw', keyBytes, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign'])
      .then(function (k) { return crypto.subtle.sign('HMAC', k, data); })
      .then(function (mac) { return P.b64encode(new Uint8Array(mac)); });
  }

  function commitment(fk, chat, sender, id, text) {
    return hmac(fk, encoder.encode(FRANK_CONTEXT + JSON.stringify([chat, sender, id, text])));
  }

  function sealMessage(key, chat, sender, id, epoch, text) {
    var fk = nacl.randomBytes(32);
    var record = { v: 1, chat: chat, from: sender, id: id, e: epoch, text: text, fk: P.b64encode(fk) };
    var nonce = nacl.randomBytes(24);
    var c = P.b64encode(concat(nonce, nacl.secretbox(encoder.encode(JSON.stringify(record)), nonce, key)));
    return commitment(fk, chat, sender, id, text).then(function (fc) { return { c: c, fc: fc }; });
  }

  /* Open a relayed `msg` frame's ciphertext and check it against the frame. */
  function openMessage(key, f, chat, sender) {
    var raw;
    try { raw = b64(f.c); } catch (e) { return Promise.reject(e); }
    var plain = raw.length > 24 ? nacl.secretbox.open(raw.subarray(24), raw.subarray(0, 24), key) : null;
    if (!plain) return Promise.reject(new E2EError('no_open', 'does not open with the chat key'));
    var r;
    try { r = JSON.parse(decoder.decode(plain)); } catch (e) { return Promise.reject(new E2EError('malformed')); }
    if (!r || r.v !== 1 || r.chat !== chat || r.from !== sender || r.id !== f.id || r.e !== f.e ||
        typeof r.text !== 'string' || typeof r.fk !== 'string') {
      return Promise.reject(new E2EError('mismatch', 'record does not match its frame'));
    }
    var fk;
    try { fk = b64(r.fk, 32); } catch (e) { return Promise.reject(e); }
    return commitment(fk, chat, sender, f.id, r.text).then(function (fc) {
      if (fc !== f.fc) throw new E2EError('commitment', 'franking commitment does not match');
      return { text: r.text, fk: r.fk };
    });
  }

  /* ------------------------------------------------------------ files (crypto/e2e.py) */
  /* A file is its bytes sealed under the chat key (an opaque blob for the gateway) and a
   * message whose franked text is the file record: name, type, size, SHA-256. */
  var FILE_PREFIX = '\u0000cipherdesk-file:';

  function sha256b64(bytes) {
    return crypto.subtle.digest('SHA-256', bytes).then(function (d) { return P.b64encode(new Uint8Array(d)); });
  }
  function fileText(name, type, bytes) {
    return sha256b64(bytes).then(function (digest) {
      return FILE_PREFIX + JSON.stringify({ name: name, sha256: digest, size: bytes.length, type: type });
    });
  }
  /* The record of a message text, or null for an ordinary text (or a malformed record). */
  function parseFileText(text) {
    if (typeof text !== 'string' || text.indexOf(FILE_PREFIX) !== 0) return null;
    var r;
    try { r = JSON.parse(text.slice(FILE_PREFIX.length)); } catch (e) { return null; }
    if (!r || typeof r.name !== 'string' || !r.name || r.name.length > 255 || typeof r.type !== 'string' ||
        typeof r.size !== 'number' || r.size < 0 || typeof r.sha256 !== 'string' || r.sha256.length !== 44) return null;
    return { name: r.name, type: r.type, size: r.size, sha256: r.sha256 };
  }
  function sealFile(key, bytes) {
    var nonce = nacl.randomBytes(24);
    return concat(nonce, nacl.secretbox(bytes, nonce, key));
  }
  /* The plain bytes of a sealed file, checked against its franked record. */
  function openFile(key, body, record) {
    var plain = body.length > 24 ? nacl.secretbox.open(body.subarray(24), body.subarray(0, 24), key) : null;
    if (!plain) return Promise.reject(new E2EError('no_open', 'file does not open with the chat key'));
    return sha256b64(plain).then(function (digest) {
      if (plain.length !== record.size || digest !== record.sha256) throw new E2EError('mismatch', 'file does not match its record');
      return plain;
    });
  }

  function senderOf(f) {
    return f.from === 'customer' ? 'customer' : 'agent:' + (f.dev || '');
  }

  /* ------------------------------------------------------------ device keys (console) */

  var HSALSA_SIGMA = encoder.encode('expand 32-byte k');

  /* An agent's X25519 device key. With WebCrypto X25519 (current Chromium, Firefox,
   * Safari) the private key is a non-extractable CryptoKey: script can use it, never
   * read it. Otherwise a tweetnacl key pair kept in IndexedDB. */
  function DeviceKey(record) {
    this.id = record.id || null;
    this.publicKey = record.publicKey;   // base64
    this._crypto = record.cryptoKey || null;
    this._secret = record.secret || null;
  }
  DeviceKey.prototype.sharedKey = function (peerPk) {
    if (this._secret) return Promise.resolve(nacl.box.before(peerPk, this._secret));
    return crypto.subtle.importKey('raw', peerPk, { name: 'X25519' }, false, [])
      .then(function (pub) { return crypto.subtle.deriveBits({ name: 'X25519', public: pub }, this._crypto, 256); }.bind(this))
      .then(function (bits) {
        var k = new Uint8Array(32);
        nacl.lowlevel.crypto_core_hsalsa20(k, new Uint8Array(16), new Uint8Array(bits), HSALSA_SIGMA);
        return k;
      });
  };
  DeviceKey.prototype.nonExtractable = function () { return !!this._crypto; };
  DeviceKey.prototype.record = function () {
    return { id: this.id, publicKey: this.publicKey, cryptoKey: this._crypto, secret: this._secret };
  };

  DeviceKey.generate = function () {
    var subtle = window.crypto && window.crypto.subtle;
    var viaWebCrypto = subtle ? subtle.generateKey({ name: 'X25519' }, false, ['deriveBits']) : Promise.reject(new Error('no subtle'));
    return viaWebCrypto.then(function (pair) {
      return subtle.exportKey('raw', pair.publicKey).then(function (raw) {
        return new DeviceKey({ publicKey: P.b64encode(new Uint8Array(raw)), cryptoKey: pair.privateKey });
      });
    }, function () {
      var kp = nacl.box.keyPair();
      return new DeviceKey({ publicKey: P.b64encode(kp.publicKey), secret: kp.secretKey });
    });
  };

  var DB = 'cipherdesk-e2e', STORE = 'devices';
  function db() {
    return new Promise(function (resolve, reject) {
      var req = indexedDB.open(DB, 1);
      req.onupgradeneeded = function () { req.result.createObjectStore(STORE); };
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
    });
  }
  function tx(mode, run) {
    return db().then(function (d) {
      return new Promise(function (resolve, reject) {
        var t = d.transaction(STORE, mode);
        var out = run(t.objectStore(STORE));
        t.oncomplete = function () { d.close(); resolve(out && 'result' in out ? out.result : undefined); };
        t.onerror = function () { d.close(); reject(t.error); };
      });
    });
  }
  /* The device key stored for `slot` (the agent id), or null. */
  DeviceKey.load = function (slot) {
    return tx('readonly', function (s) { return s.get(slot); })
      .then(function (r) { return r && r.publicKey ? new DeviceKey(r) : null; });
  };
  DeviceKey.prototype.save = function (slot) {
    var rec = this.record();
    return tx('readwrite', function (s) { s.put(rec, slot); });
  };
  DeviceKey.forget = function (slot) {
    return tx('readwrite', function (s) { s.delete(slot); });
  };

  /* SHA-256 fingerprint of a public key, 8 groups of 4 hex digits (as the admin sees). */
  function fingerprint(pkB64) {
    return crypto.subtle.digest('SHA-256', b64(pkB64)).then(function (d) {
      var hex = Array.prototype.map.call(new Uint8Array(d).subarray(0, 16),
        function (x) { return (x + 0x100).toString(16).slice(1); }).join('');
      return hex.match(/.{4}/g).join(' ');
    });
  }

  return {
    E2EError: E2EError,
    supported: supported,
    verifyCertificate: verifyCertificate,
    verifyPolicy: verifyPolicy,
    wrapChatKey: wrapChatKey,
    unwrapChatKey: unwrapChatKey,
    sealMessage: sealMessage,
    openMessage: openMessage,
    fileText: fileText,
    parseFileText: parseFileText,
    sealFile: sealFile,
    openFile: openFile,
    commitment: commitment,
    senderOf: senderOf,
    fingerprint: fingerprint,
    DeviceKey: DeviceKey
  };
})(nacl, CipherdeskProtocol);
