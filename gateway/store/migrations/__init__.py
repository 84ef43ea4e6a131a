"""Versioned schema migrations, applied by :mod:`gateway.store.migrate`.

One file per engine and version: ``NNNN_name.sqlite.sql`` and ``NNNN_name.postgres.sql``.
Both engines share the numbering; every version exists for both (a test checks it).
Never edit a released migration: add the next number.
"""
