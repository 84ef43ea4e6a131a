"""Passkeys (WebAuthn): the phishing-resistant factor (issue 20.1). No I/O here.

Why passkeys: a TOTP code typed into a look-alike page is relayed in real time; a passkey
signature names the origin the browser was really on (``clientDataJSON.origin``) and
the relying-party id it was made for (the hash in the authenticator data), so a
credential used on a phishing page is refused by :func:`verify_login`. Both ceremonies
require **user verification** (PIN or biometric on the authenticator), so a passkey
alone is two factors: something the agent has, unlocked by something they know or are.

The ceremony maths (CBOR, COSE keys, signatures, the sign-counter rule) is py_webauthn's
(``webauthn`` on PyPI, Duo Labs); this module fixes the choices cipherdesk makes:
attestation ``none`` (we trust the account, not an authenticator make), resident keys
preferred (a login needs no e-mail), ES256/EdDSA/RS256, user verification required, the
origins and RP id the gateway is configured with, and a sign counter that must grow
whenever an authenticator keeps one (a cloned key shows up as a counter that did not).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import (
    InvalidAuthenticationResponse,
    InvalidCBORData,
    InvalidJSONStructure,
    InvalidRegistrationResponse,
)
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

CEREMONY_TIMEOUT_MS = 120_000
MAX_CREDENTIAL_JSON = 16_384
"""A real credential response is a few kilobytes; anything larger is refused unread."""

_TRANSPORTS = {t.value for t in AuthenticatorTransport}


class PasskeyError(ValueError):
    """A ceremony response was malformed, for another challenge, origin or RP id,
    without user verification, or with a sign counter that did not grow. ``str()`` is
    a short reason safe to log (never key material)."""


@dataclass(frozen=True, slots=True)
class RelyingParty:
    """Who the passkeys are for: the RP id (a host name such as ``support.example.com``;
    browsers refuse IP addresses) and the exact origins the pages are served from."""

    rp_id: str
    name: str
    origins: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Ceremony:
    """Options for the browser (``PublicKeyCredential*Options`` as JSON) and the
    challenge the answer must sign (kept by the server, single use)."""

    options_json: str
    challenge: bytes


@dataclass(frozen=True, slots=True)
class NewPasskey:
    """A verified registration, ready to store."""

    credential_id: str  # base64url
    public_key: bytes  # COSE
    sign_count: int
    transports: tuple[str, ...]
    backed_up: bool


@dataclass(frozen=True, slots=True)
class KnownPasskey:
    """What the server stored of a credential, to verify an assertion against."""

    credential_id: str
    public_key: bytes
    sign_count: int
    transports: tuple[str, ...] = ()


def _descriptors(known: list[KnownPasskey]) -> list[PublicKeyCredentialDescriptor]:
    return [
        PublicKeyCredentialDescriptor(
            id=base64url_to_bytes(k.credential_id),
            transports=[AuthenticatorTransport(t) for t in k.transports if t in _TRANSPORTS],
        )
        for k in known
    ]


def registration(
    rp: RelyingParty, user_handle: bytes, email: str, display_name: str, known: list[KnownPasskey]
) -> Ceremony:
    """Options to create a passkey for the agent (``user_handle``: opaque, never the
    e-mail); the agent's existing passkeys are excluded (no duplicate on one device)."""
    options = generate_registration_options(
        rp_id=rp.rp_id,
        rp_name=rp.name,
        user_id=user_handle,
        user_name=email,
        user_display_name=display_name or email,
        timeout=CEREMONY_TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=_descriptors(known),
    )
    return Ceremony(options_to_json(options), options.challenge)


def login(rp: RelyingParty, known: list[KnownPasskey] | None = None) -> Ceremony:
    """Options to sign in: with ``known`` (the passkeys of a named account) or none at
    all (the browser offers the discoverable passkeys it holds for this RP id)."""
    options = generate_authentication_options(
        rp_id=rp.rp_id,
        timeout=CEREMONY_TIMEOUT_MS,
        allow_credentials=_descriptors(known or []),
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return Ceremony(options_to_json(options), options.challenge)


def _parsed(credential_json: str) -> dict[str, Any]:
    if len(credential_json) > MAX_CREDENTIAL_JSON:
        raise PasskeyError("credential response too large")
    try:
        value = json.loads(credential_json)
    except ValueError:
        raise PasskeyError("credential response is not JSON") from None
    if not isinstance(value, dict) or not isinstance(value.get("id"), str):
        raise PasskeyError("credential response has no id")
    return value


def credential_id_of(credential_json: str) -> str:
    """The credential id an assertion claims (to find the stored key); unverified."""
    raw = _parsed(credential_json)["id"]
    if not 1 <= len(raw) <= 1366 or not all(c.isalnum() or c in "-_" for c in raw):
        raise PasskeyError("malformed credential id")
    return str(raw)


def verify_registration(rp: RelyingParty, challenge: bytes, credential_json: str) -> NewPasskey:
    """Check a ``navigator.credentials.create()`` answer; raises :class:`PasskeyError`."""
    data = _parsed(credential_json)
    try:
        verified = verify_registration_response(
            credential=data,
            expected_challenge=challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=list(rp.origins),
            require_user_verification=True,
        )
    except (InvalidRegistrationResponse, InvalidJSONStructure, InvalidCBORData) as exc:
        raise PasskeyError(str(exc)[:200]) from None
    except (KeyError, TypeError, ValueError):
        raise PasskeyError("malformed registration response") from None
    response = data.get("response")
    transports = response.get("transports") if isinstance(response, dict) else None
    return NewPasskey(
        credential_id=bytes_to_base64url(verified.credential_id),
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=tuple(t for t in (transports or []) if isinstance(t, str) and t in _TRANSPORTS)[
            :8
        ],
        backed_up=verified.credential_backed_up,
    )


def verify_login(
    rp: RelyingParty, challenge: bytes, credential_json: str, known: KnownPasskey
) -> int:
    """Check a ``navigator.credentials.get()`` answer against the stored credential;
    returns the new sign count. Raises :class:`PasskeyError` (wrong origin or RP id,
    no user verification, another challenge, a bad signature, a counter that did not
    grow)."""
    data = _parsed(credential_json)
    try:
        verified = verify_authentication_response(
            credential=data,
            expected_challenge=challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=list(rp.origins),
            credential_public_key=known.public_key,
            credential_current_sign_count=known.sign_count,
            require_user_verification=True,
        )
    except (InvalidAuthenticationResponse, InvalidJSONStructure, InvalidCBORData) as exc:
        raise PasskeyError(str(exc)[:200]) from None
    except (KeyError, TypeError, ValueError):
        raise PasskeyError("malformed authentication response") from None
    return int(verified.new_sign_count)
