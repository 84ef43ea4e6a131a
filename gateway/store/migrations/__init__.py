"""Versioned schema migrations, applied by :mod:`gateway.store.migrate`.

One file per engine and version: ``NNNN_name.sqlite.sql`` and ``NNNN_name.postgres.sql``.
Both engines share the numbering; every version exists for both (a test checks it).
Never edit a released migration: add the next number.

Forward only. A migration that only adds (tables, nullable or defaulted columns, indexes)
may start with the line ``-- cipherdesk: compatible-with-previous`` in both files: the
previous release may then keep running on it (rolling upgrades); without the mark an
older release refuses the database. See gateway/store/migrate.py and deploy/README.md.
"""
