"""The Python SDK for protocol v1 (customer and agent clients), usable without the rest
of the gateway."""
