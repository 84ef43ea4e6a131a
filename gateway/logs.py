"""Structured JSON logs that cannot carry chat text or secrets.

Why a processor and not discipline: one careless ``log.info("sent", text=...)`` would put
a customer's card number into a log pipeline that many people can read. The
:func:`redact` processor runs last before rendering and replaces

* the value of any key that names content or a secret (``text``, ``body``, ``password``,
  ``otp``, ``token``, ``secret``, ``cookie``, ``authorization``, ...), at any depth;
* any string that looks like key material or a bearer token (long base64/hex runs);
* any run of 12+ digits (card, ID or account numbers in an exception message)

so that even an exception string quoting a frame is safe. Tests assert it.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

REDACTED = "[redacted]"

SENSITIVE_KEYS = frozenset(
    {
        "text",
        "body",
        "content",
        "transcript",
        "original",
        "plaintext",
        "payload",
        "password",
        "passwd",
        "otp",
        "code",
        "recovery_code",
        "totp",
        "totp_secret",
        "token",
        "session",
        "session_token",
        "resume_token",
        "secret",
        "secrets",
        "api_key",
        "api_token",
        "key",
        "master_key",
        "data_key",
        "private_key",
        "cookie",
        "cookies",
        "authorization",
        "identity",
        "profile",
        "email_body",
        "c",
    }
)

_SECRETISH = re.compile(r"[A-Za-z0-9+/_\-]{32,}={0,2}")
# Our own identifiers (chat ids, "agt_<hex>", token *hashes") are lowercase hex with an
# optional short prefix: useful in logs and not secret. Tokens and keys are base64/base32.
_IDENTIFIER = re.compile(r"(?:[a-z]{1,8}_)?[0-9a-f]{32,64}")
_LONG_DIGITS = re.compile(r"(?:\d[ \-.]?){12,}")


def _secretish(match: re.Match[str]) -> str:
    text = match.group(0)
    return text if _IDENTIFIER.fullmatch(text) else REDACTED


# Long digit runs are redacted, except inside one of our identifiers: a random hex id such as
# "agt_308539226338409d9e..." holds a 12+ digit run now and then, and an audit record that
# names it must keep it whole (an id with no letter a-f at all is treated as digits).
_ID_OR_DIGITS = re.compile(
    r"(?P<id>(?<![0-9A-Za-z])(?:[a-z]{1,8}_)?(?=[0-9a-f]*[a-f])[0-9a-f]{32,64}(?![0-9A-Za-z]))"
    r"|(?P<digits>" + _LONG_DIGITS.pattern + ")"
)


def _digits_outside_ids(match: re.Match[str]) -> str:
    return match.group("id") if match.group("id") is not None else REDACTED


def _scrub_string(value: str) -> str:
    value = _SECRETISH.sub(_secretish, value)
    return _ID_OR_DIGITS.sub(_digits_outside_ids, value)


def _scrub(value: Any, depth: int = 0) -> Any:
    if depth > 6:
        return REDACTED
    if isinstance(value, str):
        return _scrub_string(value)
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if str(k).lower() in SENSITIVE_KEYS else _scrub(v, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(v, depth + 1) for v in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    return value


def redact(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    """structlog processor: remove content and secrets from an event before rendering."""
    cleaned: dict[str, Any] = {}
    for key, value in event_dict.items():
        if key.lower() in SENSITIVE_KEYS:
            cleaned[key] = REDACTED
        else:
            cleaned[key] = _scrub(value)
    return cleaned


def configure_logging(level: str = "info", stream: Any = None) -> None:
    """Configure structlog (and stdlib logging, for aiohttp's own loggers) to JSON lines."""
    numeric = getattr(logging, level.upper(), logging.INFO)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    structlog.configure(
        processors=[*shared, redact, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                redact,
                structlog.processors.JSONRenderer(),
            ],
            foreign_pre_chain=[*shared, redact],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.INFO))
    # aiohttp's access log would print paths with query strings; ours is structured.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name) if name else structlog.get_logger()


def error_location(exc: BaseException) -> str:
    """``file:line`` of the innermost frame of our own code that raised ``exc``.

    Unexpected errors are logged as one line (type, location, a reference id) rather than
    a multi-line traceback: one line per event keeps log pipelines parseable and an
    attacker who can trigger an error cannot flood them; the location is enough to find
    the bug, and the exception's message (which may quote input) is never logged.
    """
    from pathlib import Path
    from traceback import extract_tb

    frames = extract_tb(exc.__traceback__)
    ours = [f for f in frames if "site-packages" not in f.filename] or frames
    if not ours:
        return "?"
    return f"{Path(ours[-1].filename).name}:{ours[-1].lineno}"
