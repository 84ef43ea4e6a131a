"""cipherdesk: plugins — the helpdesk plugin API, registry, durable outbox dispatcher and
the built-in plugins (signed webhook, Zendesk, Freshdesk).

Dependency rule: nothing here imports ``gateway``; the gateway imports us.
"""

__version__ = "0.1.0"
