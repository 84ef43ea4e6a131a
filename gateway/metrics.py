"""Prometheus metrics of one gateway app.

Each :class:`Metrics` owns its own :class:`prometheus_client.CollectorRegistry` instead of
the process-global default: tests (and the benchmark) run several apps in one process,
and the global registry refuses a second collector with the same name. The app creates
one ``Metrics`` at start-up and hands it to the parts that count things (rate limiters,
connection handlers, the plugin dispatcher); ``/metrics`` serves :meth:`Metrics.render`.

Exposed names carry the ``namespace`` prefix (``cipherdesk_`` by default), e.g.
``cipherdesk_rate_limited_total{scope="ws_connect"}``. Label values must come from small,
fixed sets (scope names, close codes, plugin names): never put an IP, a key or any
user-supplied text in a label — every distinct value is a new time series held forever.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["SERVICE_BUCKETS", "Metrics"]

#: Histogram buckets (seconds) for queue wait, first response and handle time: from a
#: quick pick-up to a long support conversation.
SERVICE_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)


class Metrics:
    """The gateway's counters and gauges, registered on a private registry.

    Attributes are the prometheus-client metric objects themselves, so callers use the
    familiar API (``metrics.messages_total.labels(direction="in", action="pass").inc()``);
    the few helpers below cover the calls made on hot paths.
    """

    def __init__(self, namespace: str = "cipherdesk") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ns, reg = namespace, self.registry

        # abuse protection
        self.rate_limited_total = Counter(
            "rate_limited_total",
            "Requests refused by a rate or concurrency limit.",
            ["scope"],
            namespace=ns,
            registry=reg,
        )
        self._limited_by_scope: dict[str, Counter] = {}
        self.ratelimit_backend_errors_total = Counter(
            "ratelimit_backend_errors_total",
            "Failed calls to the shared (Redis) rate-limit backend; the local fallback "
            "decided instead.",
            namespace=ns,
            registry=reg,
        )
        self.ratelimit_degraded = Gauge(
            "ratelimit_degraded",
            "1 while the shared rate-limit backend is unreachable and limits are node-local.",
            namespace=ns,
            registry=reg,
        )

        # governance (gateway/governance/alerts.py): label values are rule names and severities only
        self.alerts_total = Counter(
            "alerts_total",
            "Anomaly alerts fired, by rule and severity.",
            ["rule", "severity"],
            namespace=ns,
            registry=reg,
        )

        # connections and traffic
        self.connections = Gauge(
            "connections",
            "Open websocket connections.",
            ["kind"],
            namespace=ns,
            registry=reg,
        )
        self.connections_refused_total = Counter(
            "connections_refused_total",
            "Connections refused before or at the handshake.",
            ["reason"],
            namespace=ns,
            registry=reg,
        )
        self.messages_total = Counter(
            "messages_total",
            "Chat messages by direction and policy action.",
            ["direction", "action"],
            namespace=ns,
            registry=reg,
        )
        self.ws_closed_total = Counter(
            "ws_closed_total",
            "Websocket closes by close code.",
            ["code"],
            namespace=ns,
            registry=reg,
        )

        # auth and plugins
        self.logins_total = Counter(
            "logins_total",
            "Agent login attempts by result.",
            ["result"],
            namespace=ns,
            registry=reg,
        )
        self.plugin_deliveries_total = Counter(
            "plugin_deliveries_total",
            "Outbox deliveries to plugins by result.",
            ["plugin", "result"],
            namespace=ns,
            registry=reg,
        )
        # data lifecycle (issue 15)
        self.retention_total = Counter(
            "retention_total",
            "Rows the retention job handled by data class (chats closed for idle_chats,"
            " destroyed otherwise).",
            ["data_class"],
            namespace=ns,
            registry=reg,
        )
        self.destruction_reports_total = Counter(
            "destruction_reports_total",
            "Signed destruction reports by kind (erase, retention).",
            ["kind"],
            namespace=ns,
            registry=reg,
        )
        # the process's garbage collector (gateway/gc_pauses.py)
        self.gc_pause_seconds = Histogram(
            "gc_pause_seconds",
            "Seconds the garbage collector stopped the process, by generation (1, 2: a "
            "full collection); young collections are not timed.",
            ["generation"],
            namespace=ns,
            registry=reg,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        # service quality (issue 15.4): no labels, so no tenant or agent becomes a series
        self.queue_wait_seconds = Histogram(
            "queue_wait_seconds",
            "Seconds a chat waited in the queue until its first accept.",
            namespace=ns,
            registry=reg,
            buckets=SERVICE_BUCKETS,
        )
        self.first_response_seconds = Histogram(
            "first_response_seconds",
            "Seconds from a chat's first accept to the first agent reply.",
            namespace=ns,
            registry=reg,
            buckets=SERVICE_BUCKETS,
        )
        self.handle_seconds = Histogram(
            "handle_seconds",
            "Seconds from a chat's first accept to its close.",
            namespace=ns,
            registry=reg,
            buckets=SERVICE_BUCKETS,
        )
        self.csat_total = Counter(
            "csat_total",
            "Customer ratings recorded, by stars (1-5).",
            ["rating"],
            namespace=ns,
            registry=reg,
        )
        self.sla_breaches_total = Counter(
            "sla_breaches_total",
            "Chats that passed an SLA target (queue_wait, first_response), counted once each.",
            ["kind"],
            namespace=ns,
            registry=reg,
        )
        self.outbox_pending = Gauge(
            "outbox_pending",
            "Events waiting in the durable plugin outbox.",
            namespace=ns,
            registry=reg,
        )

    # -- helpers used by the limiters -------------------------------------------------

    def limited(self, scope: str) -> None:
        """Count one request refused by the limit of ``scope``.

        The labelled child is cached: ``labels()`` costs about a microsecond, and a flood
        is exactly when this runs most.
        """
        child = self._limited_by_scope.get(scope)
        if child is None:
            child = self._limited_by_scope[scope] = self.rate_limited_total.labels(scope=scope)
        child.inc()

    def backend_error(self) -> None:
        """Count one failed call to the shared rate-limit backend."""
        self.ratelimit_backend_errors_total.inc()

    def set_degraded(self, degraded: bool) -> None:
        """Flag whether limits currently come from the node-local fallback."""
        self.ratelimit_degraded.set(1 if degraded else 0)

    # -- exposition --------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition: ``(body, content_type)`` for ``/metrics``."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """Current value of a sample by its exposed name (tests, admin panel); 0 if absent."""
        found = self.registry.get_sample_value(name, labels or {})
        return 0.0 if found is None else found
