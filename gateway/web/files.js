/* Attachments (issue 16.6), shared by the widget and the console. Needs tweetnacl
 * (`nacl`), CipherdeskProtocol and CipherdeskUI in scope.
 *
 * A file never travels in the clear, not even inside TLS: the sealed socket hands out a
 * ticket (`upload`/`file` frames) with a one-time key, and the bytes go over HTTP as
 * nonce ‖ secretbox(key, file) -- what a TLS-terminating proxy sees is ciphertext and
 * an opaque ticket. A downloaded file is shown only as what its bytes are (checked
 * against the type the gateway sniffed), from a blob: URL, never from the network. */
var CipherdeskFiles = (function (nacl, P, UI, E) {
  'use strict';
  var h = UI.h;
  var ACCEPT = 'image/png,image/jpeg,image/gif,image/webp,application/pdf';
  var MAGIC = {
    'image/png': [[0x89, 0x50, 0x4e, 0x47]],
    'image/jpeg': [[0xff, 0xd8, 0xff]],
    'image/gif': [[0x47, 0x49, 0x46, 0x38]],
    'image/webp': [[0x52, 0x49, 0x46, 0x46]],
    'application/pdf': [[0x25, 0x50, 0x44, 0x46, 0x2d]]
  };

  /* Icons drawn as SVG: an emoji paperclip is missing from many system fonts. */
  var ICONS = {
    clip: 'M16.5 6.5v10a4.5 4.5 0 0 1-9 0V5a3 3 0 0 1 6 0v10.5a1.5 1.5 0 0 1-3 0V6.5',
    doc: 'M6 2h9l5 5v15H6z M15 2v5h5 M9 13h7 M9 17h7'
  };
  function icon(name) {
    var NS = 'http://www.w3.org/2000/svg';
    var svg = document.createElementNS(NS, 'svg');
    var attrs = { viewBox: '0 0 24 24', width: '18', height: '18', 'aria-hidden': 'true', focusable: 'false', class: 'icon' };
    Object.keys(attrs).forEach(function (k) { svg.setAttribute(k, attrs[k]); });
    var path = document.createElementNS(NS, 'path');
    var line = { d: ICONS[name], fill: 'none', stroke: 'currentColor', 'stroke-width': '2', 'stroke-linecap': 'round', 'stroke-linejoin': 'round' };
    Object.keys(line).forEach(function (k) { path.setAttribute(k, line[k]); });
    svg.appendChild(path);
    return svg;
  }

  function FileError(status, code, message, kinds) {
    this.name = 'FileError';
    this.status = status;
    this.code = code;
    this.message = message || code;
    this.kinds = kinds || [];
  }
  FileError.prototype = Object.create(Error.prototype);

  function refusal(r) {
    return r.json().catch(function () { return {}; }).then(function (j) {
      var e = (j && j.error) || {};
      throw new FileError(r.status, e.code || 'upload_failed', e.message, e.kinds);
    });
  }

  /* Seal the name and `bytes` with the ticket's key and POST them (body:
   * nonce ‖ secretbox(len(name) as 2 bytes ‖ name ‖ file)); resolves with the gateway's
   * answer ({id, seq, chat, notice?}). The name is inside the seal, never in a URL. */
  function upload(base, ticket, name, bytes, credentials) {
    var raw = new TextEncoder().encode(name).subarray(0, 1020);
    var plain = new Uint8Array(2 + raw.length + bytes.length);
    plain[0] = raw.length >> 8;
    plain[1] = raw.length & 0xff;
    plain.set(raw, 2);
    plain.set(bytes, 2 + raw.length);
    var nonce = nacl.randomBytes(24);
    var box = nacl.secretbox(plain, nonce, P.b64decode(ticket.key));
    var body = new Uint8Array(24 + box.length);
    body.set(nonce);
    body.set(box, 24);
    return fetch(base + ticket.url, {
      method: 'POST', body: body, credentials: credentials, cache: 'no-store',
      headers: { 'Content-Type': 'application/octet-stream' }
    }).then(function (r) { return r.status === 201 ? r.json() : refusal(r); });
  }

  function looksLike(bytes, type) {
    return (MAGIC[type] || []).some(function (sig) {
      return sig.every(function (b, i) { return bytes[i] === b; });
    });
  }

  /* GET a file with a `file` ticket and open the transfer seal: the stored bytes (for an
   * end-to-end chat, still sealed under the chat key). */
  function fetchBytes(base, ticket, credentials) {
    return fetch(base + ticket.url, { credentials: credentials, cache: 'no-store' })
      .then(function (r) { return r.ok ? r.arrayBuffer() : refusal(r); })
      .then(function (buf) {
        var raw = new Uint8Array(buf);
        var plain = raw.length > 24 ?
          nacl.secretbox.open(raw.subarray(24), raw.subarray(0, 24), P.b64decode(ticket.key)) : null;
        if (!plain) throw new FileError(0, 'bad_body');
        return plain;
      });
  }

  /* Bytes shown only as what they are: a Blob of `type` when the bytes look like it. */
  function asBlob(bytes, type) {
    if (!looksLike(bytes, type)) throw new FileError(0, 'file_type');
    return new Blob([bytes], { type: type });
  }

  /* GET the sealed file, open it, check it is what the gateway said; resolves a Blob. */
  function download(base, ticket, type, credentials) {
    return fetchBytes(base, ticket, credentials).then(function (bytes) { return asBlob(bytes, type); });
  }

  /* The type of a file from its first bytes (null: not one the gateway accepts). */
  function sniff(bytes) {
    for (var type in MAGIC) {
      if (Object.prototype.hasOwnProperty.call(MAGIC, type) && looksLike(bytes, type)) {
        if (type !== 'image/webp' || String.fromCharCode.apply(null, bytes.subarray(8, 12)) === 'WEBP') return type;
      }
    }
    return null;
  }

  /* An image drawn again from its pixels (the end-to-end widget and console cannot rely
   * on the gateway to drop EXIF): resolves the new bytes; GIFs and PDFs pass unchanged
   * (a canvas would flatten an animation; neither carries EXIF). */
  function withoutMetadata(bytes, type) {
    if (!/^image\/(png|jpeg|webp)$/.test(type) || typeof createImageBitmap !== 'function') {
      return Promise.resolve(bytes);
    }
    return createImageBitmap(new Blob([bytes], { type: type }), { imageOrientation: 'from-image' })
      .then(function (bitmap) {
        var canvas = document.createElement('canvas');
        canvas.width = bitmap.width;
        canvas.height = bitmap.height;
        canvas.getContext('2d').drawImage(bitmap, 0, 0);
        return new Promise(function (resolve, reject) {
          canvas.toBlob(function (blob) { blob ? resolve(blob) : reject(new FileError(0, 'file_unreadable')); }, type, 0.9);
        });
      }, function () { throw new FileError(0, 'file_unreadable'); })
      .then(function (blob) { return blob.arrayBuffer(); })
      .then(function (buf) { return new Uint8Array(buf); });
  }

  /* The `file` of an opened end-to-end message in the shape cards use, with the record
   * its bytes are checked against; null when the message names no file. */
  function sealedFile(f) {
    var record = f.file ? E.parseFileText(f.text) : null;
    if (!record) return null;
    return { id: f.file.id, name: record.name, type: record.type, size: record.size, record: record, epoch: f.e };
  }

  /* Download an end-to-end chat's file and open it with the chat key. */
  function downloadSealed(base, ticket, key, file, credentials) {
    return fetchBytes(base, ticket, credentials)
      .then(function (bytes) { return E.openFile(key, bytes, file.record); })
      .then(function (plain) { return asBlob(plain, file.type); });
  }

  /* "12 KB" / "1.5 MB" in the page's language. */
  function size(bytes) {
    var lang = document.documentElement.lang || undefined;
    var mb = bytes >= 1024 * 1024;
    try {
      return new Intl.NumberFormat(lang, {
        style: 'unit', unit: mb ? 'megabyte' : 'kilobyte', maximumFractionDigits: mb ? 1 : 0
      }).format(mb ? bytes / 1048576 : Math.max(1, bytes / 1024));
    } catch (e) {
      return mb ? (bytes / 1048576).toFixed(1) + ' MB' : Math.max(1, Math.round(bytes / 1024)) + ' KB';
    }
  }

  function isImage(type) { return /^image\//.test(type); }

  /* The body of a file message: images load their preview at once (the customer sent it
   * to be seen), other files on request. `load()` resolves a Blob; `t` translates. */
  function card(file, t, load) {
    var caption = h('span', { class: 'file-caption' },
      h('span', { class: 'file-name', text: file.name }),
      h('span', { class: 'file-size', text: ' · ' + size(file.size) }));
    var status = h('span', { class: 'file-status', role: 'status' });
    var el = h('span', { class: 'file', 'data-type': file.type });
    var url = null;
    function fetchOnce() {
      if (url) return Promise.resolve(url);
      status.textContent = t('common.file_loading');
      return load().then(function (blob) {
        url = URL.createObjectURL(blob);
        status.textContent = '';
        return url;
      }, function (err) {
        status.textContent = t('common.file_unavailable');
        el.setAttribute('data-error', (err && err.code) || 'failed');
        throw err;
      });
    }
    if (isImage(file.type)) {
      var img = h('img', { class: 'file-preview', alt: file.name, width: file.w || null, height: file.h || null });
      var open = h('a', { class: 'file-open', download: file.name, target: '_blank', rel: 'noopener' }, img);
      el.appendChild(open);
      fetchOnce().then(function (u) { img.src = u; open.href = u; }, function () {});
    } else {
      var link = h('a', { class: 'file-open', download: file.name, rel: 'noopener', role: 'button',
        href: '#', 'aria-label': t('common.file_download', { name: file.name }) },
      icon('doc'), t('common.file_download_short'));
      link.addEventListener('click', function (ev) {
        if (link.getAttribute('href') !== '#') return;  // loaded: the browser saves it
        ev.preventDefault();
        fetchOnce().then(function (u) { link.href = u; link.click(); }, function () {});
      });
      el.appendChild(link);
    }
    el.appendChild(caption);
    el.appendChild(status);
    return el;
  }

  /* A waiting list of ticket requests over the socket: `ask(id)` resolves with the
   * frame that answers `id` (`upload`.id or `file`.file), rejects on its `error`. */
  function Tickets() { this.waiting = new Map(); }
  Tickets.prototype.ask = function (id, send) {
    var self = this;
    var asked = this.waiting.get(id);
    if (asked) return asked.promise;  // the same file asked twice (two cards): one answer
    var entry = {};
    entry.promise = new Promise(function (resolve, reject) {
      entry.resolve = resolve;
      entry.reject = reject;
    });
    this.waiting.set(id, entry);
    if (!send()) { this.waiting.delete(id); entry.reject(new FileError(0, 'offline')); }
    return entry.promise;
  };
  /* Settle from a frame; true when the frame answered a request. */
  Tickets.prototype.settle = function (f) {
    var id = f.t === 'upload' ? f.id : f.t === 'file' ? f.file : f.t === 'error' ? f.ref : null;
    var w = id != null && this.waiting.get(id);
    if (!w) return false;
    this.waiting.delete(id);
    if (f.t === 'error') w.reject(new FileError(0, f.code, f.message)); else w.resolve(f);
    return true;
  };
  Tickets.prototype.failAll = function () {
    this.waiting.forEach(function (w) { w.reject(new FileError(0, 'offline')); });
    this.waiting.clear();
  };

  return { ACCEPT: ACCEPT, icon: icon, FileError: FileError, upload: upload, download: download, card: card,
    size: size, isImage: isImage, Tickets: Tickets, sniff: sniff, withoutMetadata: withoutMetadata,
    sealedFile: sealedFile, downloadSealed: downloadSealed };
})(nacl, CipherdeskProtocol, CipherdeskUI, CipherdeskE2E);
