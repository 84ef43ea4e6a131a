"""Agent passwords: strength rules and argon2id hashing.

Strength (:func:`check_password_strength`) follows NIST SP 800-63B rather than
composition rules: a minimum length, a generous maximum, and a refusal of passwords
that are known to be guessed first — the ~10,000 most common passwords shipped in
``common_passwords.txt`` (the head of the Xato 10M-password frequency list as
distributed with zxcvbn, MIT, plus keyboard walks, repeated runs and year/number
suffix variants), the same words with a predictable suffix (``Dragon2024!``), a
single repeated character, and the user's own e-mail local part. On top of those
rules, a maintained strength estimator — ``zxcvbn`` (Dropbox's algorithm; the PyPI
port) — scores the password with the user's e-mail and name as extra dictionary words;
a score below :data:`MIN_ZXCVBN_SCORE` ("safely unguessable" is 3 of 4) is refused, which
catches sequences (``abcdefghijkl``), repeats (``pwpol1pwpol1``), dates, l33t spellings
and keyboard patterns that no fixed list holds.

Hashing (:class:`PasswordHasher`) is argon2id through argon2-cffi. Passwords are
NFKC-normalised before hashing and verifying, so the same password typed on two
keyboards (composed vs decomposed accents, full-width digits) always matches.

Hashing and verifying are deliberately slow, synchronous CPU work (tens of
milliseconds and ~19 MiB each): the gateway must run them in a thread pool
(``loop.run_in_executor``), never on the event loop.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import resources

import argon2
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn

__all__ = [
    "DEFAULT_MEMORY_COST",
    "DEFAULT_PARALLELISM",
    "DEFAULT_TIME_COST",
    "PasswordHasher",
    "PasswordPolicy",
    "WeakPassword",
    "check_password_strength",
    "common_passwords",
]

DEFAULT_TIME_COST = 2
"""argon2id iterations; OWASP's minimum recommendation with 19 MiB."""

DEFAULT_MEMORY_COST = 19456
"""argon2id memory in KiB (19 MiB), OWASP's minimum recommendation."""

DEFAULT_PARALLELISM = 1
"""argon2id lanes; one keeps a login to one core of the thread pool."""

_TRAILING_JUNK = "0123456789!@#$%^&*()-_=+.,?~ "

MIN_ZXCVBN_SCORE = 3
"""zxcvbn's "safely unguessable: moderate protection from offline slow-hash scenario"."""

ZXCVBN_MAX_CHARS = 72
"""zxcvbn's cost grows with length; beyond this a password is estimated on its prefix
(zxcvbn 4.5 refuses longer input; a guessable 72-character prefix is not a strong password)."""


def _nfkc(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    """Length limits for new passwords, counted in code points after NFKC.

    ``max_length`` exists to bound hashing cost and request size, not to limit
    users: 1024 allows any passphrase a human or a password manager produces.
    """

    min_length: int = 12
    max_length: int = 1024

    def __post_init__(self) -> None:
        if not 1 <= self.min_length <= self.max_length:
            raise ValueError("PasswordPolicy needs 1 <= min_length <= max_length")


DEFAULT_POLICY = PasswordPolicy()


class WeakPassword(ValueError):
    """A new password was refused.

    ``code`` is stable for programs (``too_short``, ``too_long``, ``common``,
    ``contains_email``, ``one_char``, ``guessable``); ``reason`` (also ``str(exc)``) is a message
    safe to show the user: it never repeats the password.
    """

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords (lowercase), loaded once on first use."""
    text = resources.files(__package__).joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(line for line in text.splitlines() if line)


def check_password_strength(
    password: str,
    *,
    email: str | None = None,
    user_inputs: tuple[str, ...] = (),
    policy: PasswordPolicy = DEFAULT_POLICY,
) -> None:
    """Raise :class:`WeakPassword` if ``password`` must not be accepted as new.

    Call it when a password is set or changed, never at login (old passwords
    keep working until the user changes them). ``email`` is the account's
    address; a password containing its local part (if 4+ characters) is refused.
    ``user_inputs`` (display name, tenant name...) join the e-mail as words the
    estimator treats as known to an attacker.
    """
    pw = _nfkc(password)
    if len(pw) < policy.min_length:
        raise WeakPassword(
            "too_short", f"Use at least {policy.min_length} characters; a short phrase works well."
        )
    if len(pw) > policy.max_length:
        raise WeakPassword("too_long", f"Use at most {policy.max_length} characters.")
    if len(set(pw)) == 1:
        raise WeakPassword("one_char", "A password made of one repeated character is too easy.")
    folded = pw.casefold()
    common = common_passwords()
    stem = folded.rstrip(_TRAILING_JUNK)
    if folded in common or (len(stem) >= 4 and stem in common):
        raise WeakPassword(
            "common", "This password is among the most commonly used ones; choose another."
        )
    if email:
        local = _nfkc(email).strip().casefold().partition("@")[0]
        if len(local) >= 4 and local in folded:
            raise WeakPassword("contains_email", "Do not use your e-mail address in the password.")
    words = [*_email_words(email)]
    for value in user_inputs:
        if isinstance(value, str) and value.strip():
            folded_value = _nfkc(value).strip().casefold()
            words += [folded_value, re.sub(r"\s+", "", folded_value), *folded_value.split()]
    score = zxcvbn(pw[:ZXCVBN_MAX_CHARS], user_inputs=[w[:100] for w in words[:20]])["score"]
    if score < MIN_ZXCVBN_SCORE:
        raise WeakPassword(
            "guessable",
            f"This password is too easy to guess (strength {score} of 4, at least "
            f"{MIN_ZXCVBN_SCORE} needed): avoid sequences, repeats, names and dates; "
            "a phrase of four or more unrelated words works well.",
        )


def _email_words(email: str | None) -> list[str]:
    """The address and its parts (``li.wei@shop.cn`` -> address, local, li, wei, shop)."""
    if not email:
        return []
    folded = _nfkc(email).strip().casefold()
    local, _, domain = folded.partition("@")
    parts = [p for p in re.split(r"[._+\-]", local) if len(p) >= 3]
    return [folded, local, *parts, domain.partition(".")[0]]


class PasswordHasher:
    """argon2id hashing with OWASP-level defaults and timing-safe misses.

    The defaults (``time_cost=2``, ``memory_cost=19456`` KiB, ``parallelism=1``)
    meet OWASP's Password Storage Cheat Sheet. RFC 9106's second recommended
    option (``time_cost=3, memory_cost=65536``) or anything stronger is a
    constructor argument away; existing hashes then report
    :meth:`needs_rehash` and are upgraded on the next successful login.

    All methods are synchronous and CPU/memory heavy: run them in a thread pool.
    """

    def __init__(
        self,
        *,
        time_cost: int = DEFAULT_TIME_COST,
        memory_cost: int = DEFAULT_MEMORY_COST,
        parallelism: int = DEFAULT_PARALLELISM,
        hash_len: int = 32,
        salt_len: int = 16,
    ) -> None:
        self._ph = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            hash_len=hash_len,
            salt_len=salt_len,
            type=argon2.Type.ID,
        )
        # A hash of a random, forgotten password with *these* parameters: verifying
        # against it costs exactly what a real verify costs and never succeeds.
        self._dummy_hash = self._ph.hash(secrets.token_urlsafe(24))

    @property
    def dummy_hash(self) -> str:
        """The instance's timing-equalisation hash (matches no password)."""
        return self._dummy_hash

    def hash(self, password: str) -> str:
        """Return a PHC-format argon2id hash (``$argon2id$v=19$...``) to store."""
        return self._ph.hash(_nfkc(password))

    def verify(self, stored_hash: str, password: str) -> bool:
        """True iff ``password`` matches ``stored_hash``.

        Returns False, never raises, for a wrong password *and* for a malformed,
        truncated or unsupported stored hash: the login path has one outcome to
        handle, and a corrupted row cannot be turned into an error oracle.
        """
        try:
            return self._ph.verify(stored_hash, _nfkc(password))
        except (VerificationError, InvalidHashError, TypeError, ValueError):
            return False

    def verify_dummy(self, password: str) -> bool:
        """Spend the time of a real :meth:`verify`, for a login to an unknown account.

        Without it, "no such user" answers in microseconds and "wrong password"
        in tens of milliseconds, which lets anyone enumerate accounts. Always
        returns False.
        """
        self.verify(self._dummy_hash, password)
        return False

    def needs_rehash(self, stored_hash: str) -> bool:
        """True if ``stored_hash`` was made with other parameters (or type) than ours.

        Call after a successful :meth:`verify` and store :meth:`hash` of the
        password if so. A malformed hash also answers True.
        """
        try:
            return self._ph.check_needs_rehash(stored_hash)
        except (InvalidHashError, VerificationError, TypeError, ValueError):
            return True
