"""End-to-end mode (issue 13): what the ends compute so the gateway relays what it cannot read.

Pure functions over PyNaCl and the standard library; no I/O. The browser does the same
with tweetnacl (X25519, XSalsa20-Poly1305, Ed25519) and WebCrypto (HMAC-SHA256), so every
construction here is built from those primitives only, and ``tests/crypto/e2e_vectors.json``
binds both implementations.

* **Device certificates.** A tenant signing key (Ed25519) that the gateway never holds
  signs each agent device key (X25519). The certificate is a JSON text signed *as sent*
  (``body`` + detached ``sig`` over ``CERT_CONTEXT + body``): no canonical form to agree
  on between languages, and nothing outside the signed bytes is trusted.
* **Chat keys.** The customer's end makes a 32-byte key per chat *epoch* and wraps it to
  each certified device: an ephemeral X25519 key, a random 24-byte nonce, ``crypto_box``
  (the sealed-box idea, spelt with primitives tweetnacl has). The wrapped plaintext names
  the chat and epoch, so a wrap replayed into another chat or epoch is refused.
* **Messages.** ``secretbox`` (XSalsa20-Poly1305, random 24-byte nonce) over a JSON record
  naming chat, sender, message id and epoch; the reader checks each against the frame it
  came in, so a ciphertext moved to another chat, sender or id does not open.
* **Franking** (Facebook Messenger's scheme): the sender commits to the text with a fresh
  franking key (``fc = HMAC-SHA256(fk, context ‖ text)``, the key inside the ciphertext, the
  commitment outside); the gateway binds ``fc`` to chat, sender, seq and time with its own
  key (``gt``). A recipient who reports a message reveals text and ``fk``; the gateway checks
  both MACs and so learns that exactly this text was sent, without having read it before.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from dataclasses import dataclass
from typing import Any

import nacl.exceptions
import nacl.public
import nacl.pwhash
import nacl.secret
import nacl.signing
import nacl.utils

from crypto.encoding import EncodingError, b64decode, b64encode

__all__ = [
    "CERT_CONTEXT",
    "KEY_FILE_KIND",
    "POLICY_CONTEXT",
    "CertificateError",
    "DeviceCertificate",
    "E2EError",
    "FileRecord",
    "OpenedMessage",
    "SealedMessage",
    "SignedCertificate",
    "TenantSigningKey",
    "commitment",
    "file_text",
    "gateway_tag",
    "new_chat_key",
    "open_file_content",
    "open_message",
    "open_signing_key",
    "parse_file_text",
    "seal_file_content",
    "seal_message",
    "seal_signing_key",
    "unwrap_chat_key",
    "verify_certificate",
    "verify_franking",
    "verify_policy",
    "wrap_chat_key",
]

CERT_CONTEXT = b"cipherdesk/v1/device-cert|"
WRAP_CONTEXT = b"cipherdesk/v1/chat-key|"
FRANK_CONTEXT = b"cipherdesk/v1/frank|"
GATEWAY_TAG_CONTEXT = b"cipherdesk/v1/frank-gateway|"
POLICY_CONTEXT = b"cipherdesk/v1/end-policy|"
"""Signature context of the end policy (gateway/policy/end.py): a certificate signature can
never pass for a policy one, or the other way round."""
MAX_POLICY_CHARS = 2_000_000
"""The longest end policy document: a tenant at every keyword bound (20 lists of 48 KB,
20,000 terms, 200 inline terms) compiles to 1.5 million characters with the gateway's own
data (tests/gateway/policy/test_end_document.py), and its admins must be able to sign it.
The browser twin (``CipherdeskE2E.verifyPolicy``) holds the same bound."""
CERT_VERSION = 1
MESSAGE_VERSION = 1
MAX_CERT_CHARS = 2048
MAX_CIPHERTEXT_CHARS = 32_000  # 16,000 characters of text, JSON-escaped, sealed, base64
NONCE_SIZE = nacl.secret.SecretBox.NONCE_SIZE  # 24


class E2EError(ValueError):
    """Something an end refuses: a wrap, message or report that does not verify. ``str()``
    is safe to show (it never contains key material or plaintext)."""


class CertificateError(E2EError):
    """A device certificate that does not verify; ``code`` says why (documented)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# ------------------------------------------------------------------------ certificates


@dataclass(frozen=True, slots=True)
class DeviceCertificate:
    """What the tenant vouches for: this X25519 ``public_key`` is agent ``agent`` (shown as
    ``name``, acting as ``role``) of ``tenant``, on device ``device``, until ``expires_at``."""

    tenant: str
    agent: str
    name: str
    role: str
    device: str
    public_key: str  # base64, 32 bytes
    issued_at: int
    expires_at: int

    def body(self) -> str:
        """The JSON text to sign (any key order would do: the text is signed as sent)."""
        return json.dumps(
            {
                "v": CERT_VERSION,
                "tenant": self.tenant,
                "agent": self.agent,
                "name": self.name,
                "role": self.role,
                "device": self.device,
                "pk": self.public_key,
                "iat": self.issued_at,
                "exp": self.expires_at,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        )


@dataclass(frozen=True, slots=True)
class SignedCertificate:
    """A certificate as it travels: the signed JSON text and the base64 signature."""

    body: str
    sig: str

    def as_json(self) -> dict[str, str]:
        return {"body": self.body, "sig": self.sig}


class TenantSigningKey:
    """The tenant's Ed25519 certificate key. Lives with the tenant's admins (a key file on
    their own machine, ``cipherdesk e2e keygen``); the gateway only ever sees
    :attr:`verify_key`."""

    def __init__(self, seed: bytes) -> None:
        self._key = nacl.signing.SigningKey(seed)

    @classmethod
    def generate(cls) -> TenantSigningKey:
        return cls(nacl.utils.random(32))

    @property
    def seed(self) -> bytes:
        return bytes(self._key)

    @property
    def verify_key(self) -> str:
        """Base64 of the 32-byte Ed25519 public key (``data-tenant-key`` on the embed)."""
        return b64encode(bytes(self._key.verify_key))

    def certify(self, cert: DeviceCertificate) -> SignedCertificate:
        body = cert.body()
        return SignedCertificate(body=body, sig=self.sign_body(body))

    def sign_body(self, body: str) -> str:
        """The base64 signature of a certificate text as sent (any JSON the signer wrote)."""
        return b64encode(self._key.sign(CERT_CONTEXT + body.encode("utf-8")).signature)

    def sign_policy(self, body: str) -> str:
        """The base64 signature of an end policy document's text, as sent."""
        return b64encode(self._key.sign(POLICY_CONTEXT + body.encode("utf-8")).signature)


def verify_certificate(
    verify_key: str, signed: SignedCertificate, *, now: float, tenant: str | None = None
) -> DeviceCertificate:
    """The certificate inside ``signed`` if ``verify_key`` signed it, it is well formed,
    current at ``now`` and (when given) of ``tenant``; else :class:`CertificateError` with
    ``code`` ``malformed``, ``bad_signature``, ``expired`` or ``wrong_tenant``."""
    if len(signed.body) > MAX_CERT_CHARS:
        raise CertificateError("malformed", "certificate too long")
    try:
        key = nacl.signing.VerifyKey(b64decode(verify_key, expected_len=32))
        sig = b64decode(signed.sig, expected_len=64)
    except EncodingError as exc:
        raise CertificateError("malformed", f"certificate key or signature: {exc}") from None
    try:
        key.verify(CERT_CONTEXT + signed.body.encode("utf-8"), sig)
    except nacl.exceptions.BadSignatureError:
        raise CertificateError("bad_signature", "not signed by the tenant key") from None
    cert = _parse_certificate(signed.body)
    if tenant is not None and cert.tenant != tenant:
        raise CertificateError("wrong_tenant", "certificate of another tenant")
    if not cert.issued_at - 300 <= now < cert.expires_at:
        raise CertificateError("expired", "certificate not valid now")
    return cert


def verify_policy(verify_key: str, body: str, sig: str, *, tenant: str) -> dict[str, Any]:
    """The end policy document ``body`` if ``verify_key`` signed it for ``tenant``; else
    :class:`CertificateError` (``malformed``, ``bad_signature``, ``wrong_tenant``). The
    browser twin is ``CipherdeskE2E.verifyPolicy``; the widget runs only a document that
    passes it against the key its page pins."""
    if len(body) > MAX_POLICY_CHARS:
        raise CertificateError("malformed", "policy document too long")
    try:
        key = nacl.signing.VerifyKey(b64decode(verify_key, expected_len=32))
        raw_sig = b64decode(sig, expected_len=64)
    except EncodingError as exc:
        raise CertificateError("malformed", f"policy key or signature: {exc}") from None
    try:
        key.verify(POLICY_CONTEXT + body.encode("utf-8"), raw_sig)
    except nacl.exceptions.BadSignatureError:
        raise CertificateError("bad_signature", "not signed by the tenant key") from None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # json recurses once per nesting level
        data = None
    if not isinstance(data, dict) or data.get("v") != 1:
        raise CertificateError("malformed", "not a v1 end policy document")
    if data.get("tenant") != tenant:
        raise CertificateError("wrong_tenant", "policy of another tenant")
    return data


def _parse_certificate(body: str) -> DeviceCertificate:
    try:
        data = json.loads(body)
        if not isinstance(data, dict) or data.get("v") != CERT_VERSION:
            raise ValueError("version")
        strings = {k: data[k] for k in ("tenant", "agent", "name", "role", "device", "pk")}
        if not all(isinstance(v, str) and 0 < len(v) <= 200 for v in strings.values()):
            raise ValueError("fields")
        iat, exp = data["iat"], data["exp"]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (iat, exp)):
            raise ValueError("times")
        b64decode(strings["pk"], expected_len=32)
    except (ValueError, KeyError, TypeError, EncodingError, RecursionError):
        raise CertificateError("malformed", "certificate body is not a v1 certificate") from None
    return DeviceCertificate(
        tenant=strings["tenant"],
        agent=strings["agent"],
        name=strings["name"],
        role=strings["role"],
        device=strings["device"],
        public_key=strings["pk"],
        issued_at=iat,
        expires_at=exp,
    )


def fingerprint(public_key: str) -> str:
    """A short, human-comparable digest of a public key (admins compare it with the
    console's before certifying): 8 groups of 4 hex digits of SHA-256."""
    digest = hashlib.sha256(b64decode(public_key)).hexdigest()[:32]
    return " ".join(digest[i : i + 4] for i in range(0, 32, 4))


# ------------------------------------------------------------------------ chat keys


def new_chat_key() -> bytes:
    return nacl.utils.random(32)


def _wrap_plaintext(chat: str, epoch: int, key: bytes) -> bytes:
    return WRAP_CONTEXT + f"{chat}|{epoch}|".encode() + key


def wrap_chat_key(
    key: bytes,
    device_public_key: str,
    *,
    chat: str,
    epoch: int,
    _fixed: tuple[nacl.public.PrivateKey, bytes] | None = None,
) -> str:
    """``key`` (epoch ``epoch`` of ``chat``) readable only by the holder of the device's
    private key: base64 of ephemeral public key ‖ nonce ‖ crypto_box. (``_fixed``:
    ephemeral key and nonce for the documented example only.)"""
    ephemeral, nonce = _fixed or (nacl.public.PrivateKey.generate(), nacl.utils.random(NONCE_SIZE))
    recipient = nacl.public.PublicKey(b64decode(device_public_key, expected_len=32))
    box = nacl.public.Box(ephemeral, recipient)
    sealed = box.encrypt(_wrap_plaintext(chat, epoch, key), nonce).ciphertext
    return b64encode(bytes(ephemeral.public_key) + nonce + sealed)


def unwrap_chat_key(
    wrapped: str, device_key: nacl.public.PrivateKey, *, chat: str, epoch: int
) -> bytes:
    """The chat key inside ``wrapped``; :class:`E2EError` unless it opens with this device's
    key *and* names this chat and epoch."""
    try:
        raw = b64decode(wrapped)
    except EncodingError:
        raise E2EError("wrapped key: not base64") from None
    if len(raw) < 32 + NONCE_SIZE + 16:
        raise E2EError("wrapped key: too short")
    ephemeral, nonce, sealed = raw[:32], raw[32 : 32 + NONCE_SIZE], raw[32 + NONCE_SIZE :]
    try:
        plain = nacl.public.Box(device_key, nacl.public.PublicKey(ephemeral)).decrypt(sealed, nonce)
    except nacl.exceptions.CryptoError:
        raise E2EError("wrapped key: does not open with this device key") from None
    prefix = WRAP_CONTEXT + f"{chat}|{epoch}|".encode()
    if not plain.startswith(prefix) or len(plain) != len(prefix) + 32:
        raise E2EError("wrapped key: made for another chat or epoch")
    return plain[len(prefix) :]


# ------------------------------------------------------------------------ messages


@dataclass(frozen=True, slots=True)
class SealedMessage:
    """What the sender puts on the wire: ciphertext ``c`` and franking commitment ``fc``."""

    c: str
    fc: str


@dataclass(frozen=True, slots=True)
class OpenedMessage:
    """A message that opened and whose commitment matched: the text and its franking key
    (kept by the reader: revealing it with the text is how a message is reported)."""

    text: str
    franking_key: str


def _commitment_input(chat: str, sender: str, msg_id: str, text: str) -> bytes:
    return FRANK_CONTEXT + json.dumps(
        [chat, sender, msg_id, text], separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def commitment(franking_key: bytes, *, chat: str, sender: str, msg_id: str, text: str) -> str:
    """``fc``: HMAC-SHA256 under the franking key of the context and the text."""
    mac = hmac.digest(franking_key, _commitment_input(chat, sender, msg_id, text), "sha256")
    return b64encode(mac)


def seal_message(
    key: bytes,
    *,
    chat: str,
    sender: str,
    msg_id: str,
    epoch: int,
    text: str,
    _fixed: tuple[bytes, bytes] | None = None,
) -> SealedMessage:
    """Encrypt ``text`` under the chat key of ``epoch``. ``sender`` is ``customer`` or
    ``agent:<device id>``: who the reader must see as the author. (``_fixed``: franking
    key and nonce for the documented example only.)"""
    franking_key, nonce = _fixed or (nacl.utils.random(32), nacl.utils.random(NONCE_SIZE))
    record = {
        "v": MESSAGE_VERSION,
        "chat": chat,
        "from": sender,
        "id": msg_id,
        "e": epoch,
        "text": text,
        "fk": b64encode(franking_key),
    }
    plain = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    sealed = nacl.secret.SecretBox(key).encrypt(plain, nonce)  # nonce ‖ ciphertext
    fc = commitment(franking_key, chat=chat, sender=sender, msg_id=msg_id, text=text)
    return SealedMessage(c=b64encode(bytes(sealed)), fc=fc)


def open_message(
    key: bytes, *, c: str, fc: str, chat: str, sender: str, msg_id: str, epoch: int
) -> OpenedMessage:
    """The text of a relayed message, checked against the frame it arrived in (chat,
    sender, id, epoch) and its commitment; :class:`E2EError` on any mismatch."""
    try:
        raw = b64decode(c)
        plain = nacl.secret.SecretBox(key).decrypt(raw)
        record: Any = json.loads(plain.decode("utf-8"))
    except (EncodingError, nacl.exceptions.CryptoError):
        raise E2EError("message does not open with the chat key") from None
    except (UnicodeError, ValueError):
        raise E2EError("message record is not JSON") from None
    if not isinstance(record, dict) or record.get("v") != MESSAGE_VERSION:
        raise E2EError("message record has an unknown version")
    expected = {"chat": chat, "from": sender, "id": msg_id, "e": epoch}
    for field, value in expected.items():
        if record.get(field) != value:
            raise E2EError(f"message record names another {field}")
    text, fk = record.get("text"), record.get("fk")
    if not isinstance(text, str) or not isinstance(fk, str):
        raise E2EError("message record lacks text or franking key")
    if not verify_commitment(fc, fk, chat=chat, sender=sender, msg_id=msg_id, text=text):
        raise E2EError("franking commitment does not match the text")
    return OpenedMessage(text=text, franking_key=fk)


def verify_commitment(
    fc: str, franking_key: str, *, chat: str, sender: str, msg_id: str, text: str
) -> bool:
    try:
        fk = b64decode(franking_key, expected_len=32)
    except EncodingError:
        return False
    expected = commitment(fk, chat=chat, sender=sender, msg_id=msg_id, text=text)
    return hmac.compare_digest(expected, fc)


# ------------------------------------------------------------------------ files
#
# A file in an e2e chat is two things: its bytes, sealed by the sender's end under the chat
# key (``seal_file_content``) and kept by the gateway as an opaque blob, and an ordinary
# sealed message whose text is a *file record* -- name, type, size and SHA-256 of the bytes
# behind FILE_TEXT_PREFIX. The record is franked like any text, so a report of a file
# message commits to the file's hash; a reader opens the bytes and checks them against it.

FILE_TEXT_PREFIX = "\u0000cipherdesk-file:"
"""Starts the text of a file message (a NUL: no keyboard types it)."""
MAX_FILE_NAME = 255


@dataclass(frozen=True, slots=True)
class FileRecord:
    """What a file message says about its file (only the ends read it)."""

    name: str
    type: str
    size: int
    sha256: str  # base64 of the SHA-256 of the plain bytes


def file_text(record: FileRecord) -> str:
    """The message text that carries ``record``."""
    body = {"name": record.name, "sha256": record.sha256, "size": record.size, "type": record.type}
    return FILE_TEXT_PREFIX + json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def parse_file_text(text: str) -> FileRecord | None:
    """The file record of a message text; None for an ordinary text; :class:`E2EError`
    for a malformed record."""
    if not text.startswith(FILE_TEXT_PREFIX):
        return None
    try:
        body: Any = json.loads(text[len(FILE_TEXT_PREFIX) :])
    except ValueError:
        raise E2EError("file record is not JSON") from None
    if not isinstance(body, dict):
        raise E2EError("file record is not an object")
    name, kind, size, digest = (body.get(k) for k in ("name", "type", "size", "sha256"))
    if not (
        isinstance(name, str)
        and 0 < len(name) <= MAX_FILE_NAME
        and isinstance(kind, str)
        and 0 < len(kind) <= 100
        and isinstance(size, int)
        and not isinstance(size, bool)
        and size >= 0
        and isinstance(digest, str)
        and len(digest) == 44
    ):
        raise E2EError("file record has a bad field")
    return FileRecord(name=name, type=kind, size=size, sha256=digest)


def seal_file_content(key: bytes, data: bytes) -> bytes:
    """A file's bytes under the chat key: ``nonce ‖ secretbox`` (tweetnacl's layout)."""
    return bytes(nacl.secret.SecretBox(key).encrypt(data))


def open_file_content(key: bytes, body: bytes, record: FileRecord) -> bytes:
    """The plain bytes, checked against the franked record (size and SHA-256)."""
    try:
        data = nacl.secret.SecretBox(key).decrypt(body)
    except (nacl.exceptions.CryptoError, ValueError):
        raise E2EError("file does not open with the chat key") from None
    digest = b64encode(hashlib.sha256(data).digest())
    if len(data) != record.size or not hmac.compare_digest(digest, record.sha256):
        raise E2EError("file does not match its record")
    return data


# ------------------------------------------------------------------------ franking


def _tag_input(*, chat: str, sender: str, msg_id: str, seq: int, ts: float, fc: str) -> bytes:
    # ts travels as a JSON float; repr() is the shortest round-trip spelling in Python and
    # JavaScript alike, and a non-finite value never reaches here (the store's clock).
    if not math.isfinite(ts):
        raise E2EError("timestamp must be finite")
    return GATEWAY_TAG_CONTEXT + json.dumps(
        [chat, sender, msg_id, seq, repr(float(ts)), fc], separators=(",", ":")
    ).encode("utf-8")


def gateway_tag(
    secret: bytes, *, chat: str, sender: str, msg_id: str, seq: int, ts: float, fc: str
) -> str:
    """``gt``: the gateway's binding of commitment ``fc`` to who sent it, where and when."""
    data = _tag_input(chat=chat, sender=sender, msg_id=msg_id, seq=seq, ts=ts, fc=fc)
    return b64encode(hmac.digest(secret, data, "sha256"))


def verify_franking(
    secrets: list[bytes],
    *,
    chat: str,
    sender: str,
    msg_id: str,
    seq: int,
    ts: float,
    fc: str,
    gt: str,
    text: str,
    franking_key: str,
) -> bool:
    """True when a report is genuine: the gateway relayed commitment ``fc`` from
    ``sender`` at ``seq``/``ts`` (``gt`` under one of ``secrets``, current first), and
    ``text`` with ``franking_key`` opens that commitment."""
    if not verify_commitment(fc, franking_key, chat=chat, sender=sender, msg_id=msg_id, text=text):
        return False
    return any(
        hmac.compare_digest(
            gateway_tag(s, chat=chat, sender=sender, msg_id=msg_id, seq=seq, ts=ts, fc=fc), gt
        )
        for s in secrets
    )


# ------------------------------------------------------------------------ key files


def seal_signing_key(
    key: TenantSigningKey, tenant: str, passphrase: str, *, strength: str = "moderate"
) -> dict[str, Any]:
    """The tenant signing key as a JSON-able record for the admin's own disk: the seed
    under XSalsa20-Poly1305 with a key stretched from ``passphrase`` by Argon2id
    (``moderate``: libsodium's 3 passes over 256 MiB; ``interactive`` for tests)."""
    ops, mem = _ARGON2_STRENGTHS[strength]
    salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
    box_key = nacl.pwhash.argon2id.kdf(32, passphrase.encode("utf-8"), salt, ops, mem)
    sealed = nacl.secret.SecretBox(box_key).encrypt(key.seed)
    return {
        "kind": KEY_FILE_KIND,
        "v": 1,
        "tenant": tenant,
        "verify_key": key.verify_key,
        "kdf": {"alg": "argon2id13", "salt": b64encode(salt), "ops": ops, "mem": mem},
        "sealed_seed": b64encode(bytes(sealed)),
    }


def open_signing_key(record: dict[str, Any], passphrase: str) -> TenantSigningKey:
    """The key inside a :func:`seal_signing_key` record; :class:`E2EError` for a wrong
    passphrase or a record that is not one."""
    try:
        if record.get("kind") != KEY_FILE_KIND or record.get("v") != 1:
            raise E2EError("not a cipherdesk tenant key file")
        kdf = record["kdf"]
        salt = b64decode(kdf["salt"], expected_len=nacl.pwhash.argon2id.SALTBYTES)
        ops, mem = int(kdf["ops"]), int(kdf["mem"])
        if (ops, mem) not in _ARGON2_STRENGTHS.values():
            raise E2EError("unknown key-stretching parameters")
        box_key = nacl.pwhash.argon2id.kdf(32, passphrase.encode("utf-8"), salt, ops, mem)
        seed = nacl.secret.SecretBox(box_key).decrypt(b64decode(record["sealed_seed"]))
    except nacl.exceptions.CryptoError:
        raise E2EError("wrong passphrase (or a damaged key file)") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise E2EError(f"not a cipherdesk tenant key file: {exc}") from None
    key = TenantSigningKey(seed)
    if key.verify_key != record.get("verify_key"):
        raise E2EError("the key file's verify key does not match its key")
    return key


KEY_FILE_KIND = "cipherdesk-tenant-signing-key"
_ARGON2_STRENGTHS = {
    "moderate": (nacl.pwhash.argon2id.OPSLIMIT_MODERATE, nacl.pwhash.argon2id.MEMLIMIT_MODERATE),
    "interactive": (
        nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE,
        nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE,
    ),
}
