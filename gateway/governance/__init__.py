"""Governance: the tamper-evident audit chain, anomaly alerts, approvals, incidents,
the emergency panel, SIEM export and dormant accounts; :mod:`gateway.governance.wiring`
connects them to one gateway node."""
