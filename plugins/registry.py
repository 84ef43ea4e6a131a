"""Finding installed plugins and validating their configuration.

Plugins are found through the ``cipherdesk.plugins`` entry-point group: each entry point
resolves to a factory — any object (or module) with an ``info`` (:class:`PluginInfo`) and
a ``create(config, secrets, http)`` callable. Built-ins can also be registered explicitly
(:func:`builtin_factories`), so the registry works in a source checkout before the
package's entry points are installed.

Problems (an entry point that fails to import, an unsupported ``api_version``, a name
clash) never abort start-up: they are collected in :attr:`Registry.problems` for
``cipherdesk plugins list`` to show.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from plugins.api import (
    ALL_SCOPES,
    ENTRY_POINT_GROUP,
    SUPPORTED_API_VERSIONS,
    ConfigError,
    ConfigField,
    Plugin,
    PluginContext,
    PluginFactory,
    PluginInfo,
    create_accepts_context,
)
from plugins.netguard import check_target_url

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True, slots=True)
class Problem:
    name: str  # entry-point or plugin name
    source: str  # "builtin" or the distribution providing the entry point
    reason: str


@dataclass(frozen=True, slots=True)
class Registered:
    factory: PluginFactory
    source: str  # "builtin" or "entry-point:<distribution>"


def check_factory(obj: Any) -> PluginInfo:
    """Validate that ``obj`` is a usable factory; returns its info or raises ValueError."""
    info = getattr(obj, "info", None)
    if not isinstance(info, PluginInfo):
        raise ValueError("entry point has no 'info' of type plugins.api.PluginInfo")
    if not callable(getattr(obj, "create", None)):
        raise ValueError("entry point has no callable 'create'")
    if not _NAME.match(info.name):
        raise ValueError(f"invalid plugin name {info.name!r}")
    if info.api_version not in SUPPORTED_API_VERSIONS:
        supported = ", ".join(str(v) for v in sorted(SUPPORTED_API_VERSIONS))
        raise ValueError(
            f"plugin API version {info.api_version} is not supported (supported: {supported})"
        )
    unknown = set(info.scopes) - ALL_SCOPES
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(sorted(unknown))}")
    names = [f.name for f in info.config_schema]
    if len(names) != len(set(names)):
        raise ValueError("duplicate config field names")
    for f in info.config_schema:
        if f.pattern is not None:
            try:
                re.compile(f.pattern)
            except re.error:
                raise ValueError(f"config field {f.name!r}: invalid pattern") from None
    validate = getattr(obj, "validate", None)
    if validate is not None and not callable(validate):
        raise ValueError("'validate' must be callable: validate(config, secrets)")
    return info


class Registry:
    def __init__(self) -> None:
        self._plugins: dict[str, Registered] = {}
        self.problems: list[Problem] = []

    # -- registration -------------------------------------------------------------------
    def register(self, factory: Any, *, source: str = "builtin", label: str | None = None) -> bool:
        """Add a factory. Returns False (and records a problem) when it is unusable or its
        name is taken by a *different* factory; registering the same one twice is a no-op."""
        label = label or getattr(getattr(factory, "info", None), "name", None) or repr(factory)
        try:
            info = check_factory(factory)
        except ValueError as exc:
            self.problems.append(Problem(str(label), source, str(exc)))
            return False
        existing = self._plugins.get(info.name)
        if existing is not None:
            if existing.factory is factory:
                return True
            self.problems.append(
                Problem(info.name, source, f"name already provided by {existing.source}")
            )
            return False
        self._plugins[info.name] = Registered(factory, source)
        return True

    def discover(
        self, group: str = ENTRY_POINT_GROUP, entry_points: Iterable[Any] | None = None
    ) -> int:
        """Load every entry point of ``group``; returns how many plugins were added."""
        eps = metadata.entry_points(group=group) if entry_points is None else entry_points
        added = 0
        for ep in eps:
            dist = getattr(getattr(ep, "dist", None), "name", None) or "unknown"
            source = f"entry-point:{dist}"
            try:
                obj = ep.load()
            except Exception as exc:  # a broken third-party package must not stop us
                self.problems.append(
                    Problem(ep.name, source, f"failed to load: {type(exc).__name__}")
                )
                continue
            if self.register(obj, source=source, label=ep.name):
                added += 1
        return added

    # -- queries ------------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(self._plugins)

    def __contains__(self, name: object) -> bool:
        return name in self._plugins

    def get(self, name: str) -> PluginFactory:
        try:
            return self._plugins[name].factory
        except KeyError:
            raise KeyError(f"plugin {name!r} is not installed") from None

    def source(self, name: str) -> str:
        return self._plugins[name].source

    def info(self, name: str) -> PluginInfo:
        return self.get(name).info

    def validate(
        self,
        name: str,
        values: Mapping[str, Any],
        *,
        existing_secrets: Mapping[str, Any] | None = None,
        allow_private: bool = False,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        return validate_config(
            self.info(name), values, existing_secrets=existing_secrets, allow_private=allow_private
        )

    def create(
        self,
        name: str,
        config: dict[str, Any],
        secrets: dict[str, Any],
        http: Any,
        context: PluginContext | None = None,
    ) -> Plugin | Awaitable[Plugin]:
        """Build an instance; ``create`` may be async (await the result when awaitable)
        and gets ``context`` when it takes a fourth argument."""
        factory = self.get(name)
        if context is not None and create_accepts_context(factory.create):
            return factory.create(config, secrets, http, context)
        return factory.create(config, secrets, http)


def builtin_factories() -> list[PluginFactory]:
    from plugins import freshdesk, webhook, zendesk

    return [webhook.factory, zendesk.factory, freshdesk.factory]


def default_registry(*, discover: bool = True) -> Registry:
    """Built-ins first (they win name clashes), then whatever entry points provide."""
    reg = Registry()
    for factory in builtin_factories():
        reg.register(factory, source="builtin")
    if discover:
        reg.discover()
    return reg


# --------------------------------------------------------------------------- config


def _coerce(plugin: str, f: ConfigField, value: Any, allow_private: bool = False) -> Any:
    def bad(msg: str) -> ConfigError:
        # Never echo a secret's value in the error.
        shown = "" if f.secret else f" (got {str(value)[:60]!r})"
        return ConfigError(plugin, f.name, msg + shown)

    t = f.type
    if t == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise bad("expected a boolean (true/false)")
    if t in ("int", "float"):
        if isinstance(value, bool):
            raise bad("expected an integer" if t == "int" else "expected a number")
        try:
            number: float = int(value) if t == "int" else float(value)
        except (TypeError, ValueError, OverflowError):
            raise bad("expected an integer" if t == "int" else "expected a number") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise bad("expected a finite number")
        if f.minimum is not None and number < f.minimum:
            raise bad(f"must be at least {_num(f.minimum)}")
        if f.maximum is not None and number > f.maximum:
            raise bad(f"must be at most {_num(f.maximum)}")
        return number
    if t == "list":
        if isinstance(value, str):
            items = [v.strip() for v in value.split(",") if v.strip()]
        elif isinstance(value, list | tuple):
            items = [str(v) for v in value]
        else:
            raise bad("expected a list (or a comma-separated string)")
        if len(items) > 100:
            raise bad("at most 100 items")
        for item in items:
            _check_text(plugin, f, item, bad)
        if f.choices is not None:
            wrong = [v for v in items if v not in f.choices]
            if wrong:
                raise bad(f"allowed values: {', '.join(f.choices)}")
        return items
    if not isinstance(value, str):
        raise bad("expected a string")
    value = value.strip()
    if t != "url":
        _check_text(plugin, f, value, bad)
    if t == "url":
        if len(value) > 2048:
            raise ConfigError(plugin, f.name, "URL longer than 2048 characters")
        problem = check_target_url(value, allow_private=allow_private)
        if problem is not None:
            raise bad(problem)
    elif t == "email":
        if not _EMAIL.match(value):
            raise bad("expected an e-mail address")
    if f.choices is not None and value not in f.choices:
        raise bad(f"allowed values: {', '.join(f.choices)}")
    return value


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _check_text(plugin: str, f: ConfigField, value: str, bad: Any) -> None:
    if len(value) > f.max_length:
        raise ConfigError(plugin, f.name, f"longer than {f.max_length} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ConfigError(plugin, f.name, "control characters are not allowed")
    if f.pattern is not None and not re.fullmatch(f.pattern, value):
        raise bad(f"must match {f.pattern}")


def validate_config(
    info: PluginInfo,
    values: Mapping[str, Any],
    *,
    existing_secrets: Mapping[str, Any] | None = None,
    allow_private: bool = False,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check ``values`` against ``info.config_schema``; returns ``(config, secrets)``.

    ``url`` fields are plugin *targets*: without ``allow_private`` (the operator's
    allowance) only https URLs to names or public addresses pass
    (:func:`plugins.netguard.check_target_url`; names are checked again at connect time).

    Strings are coerced to the field's type (CLI ``--set key=value``). Unknown keys and
    missing required fields raise :class:`ConfigError` naming the field. A required
    secret already stored (``existing_secrets``) need not be given again.
    """
    known = {f.name: f for f in info.config_schema}
    for key in values:
        if key not in known:
            raise ConfigError(info.name, key, "unknown setting")
    config: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    for f in info.config_schema:
        target = secrets if f.secret else config
        if f.name in values and values[f.name] not in (None, ""):
            target[f.name] = _coerce(info.name, f, values[f.name], allow_private)
        elif f.secret and existing_secrets and f.name in existing_secrets:
            target[f.name] = existing_secrets[f.name]
        elif f.required:
            raise ConfigError(info.name, f.name, "is required")
        elif f.default is not None:
            target[f.name] = copy.deepcopy(f.default)
    return config, secrets


def redacted_config(info: PluginInfo, config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with every secret field replaced by ``"***"`` (for display)."""
    out = {}
    for key, value in config.items():
        f = info.get_field(key)
        out[key] = "***" if f is not None and f.secret else value
    return out
