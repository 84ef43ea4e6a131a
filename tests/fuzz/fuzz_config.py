"""Fuzz target: configuration loading (``gateway/config.py``, TOML + validation).

Any bytes as the config file → :func:`gateway.config.parse_config` and the values built
from it at start-up (paths, URLs, the ``[ratelimit.limits]`` table). Contract: a
:class:`Config` or :class:`ConfigError` (a one-line message for the operator), and a
config that loads also yields its derived values or a ``ValueError`` naming the limit.
"""

from __future__ import annotations

from gateway.config import ConfigError, parse_config
from gateway.ratelimit.limits import Limits


def test_one_input(data: bytes) -> None:
    try:
        config = parse_config(data, environ={})
    except ConfigError as exc:
        assert "\n" not in str(exc).strip() or "TOML" in str(exc)
        return
    _ = (config.base_url, config.store_url)
    try:
        Limits.from_dict(config.ratelimit.limits)
    except ValueError:
        return
