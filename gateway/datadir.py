"""The data directory is private to the gateway's user (issue 11.13).

It holds the SQLite database, the master key ring and the gateway's signing seed. The key
files are created 0600 on their own (``crypto/keyfile.py``), but a 0755 directory still
lets every local user list it and read any file a later tool writes with a default mode
(backups, a copied database). So the directory is created 0700, and an existing one of
ours that is group/other-accessible is tightened to 0700 with one warning line.
A directory owned by someone else is left alone (an operator's explicit choice, e.g. a
shared volume); the key files themselves still refuse loose modes.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

import structlog

log = structlog.get_logger("cipherdesk.datadir")

MODE = 0o700

MASTER_KEY_FILE = "master.key"
"""The master key ring's file inside the data directory (serve, rotation, backup)."""
IDENTITY_FILE = "gateway_ed25519.key"
"""The gateway's Ed25519 signing seed inside the data directory (serve, backup)."""


def prepare_data_dir(path: Path) -> None:
    """Create ``path`` (0700) or tighten it to 0700 if it is ours and looser."""
    path.mkdir(mode=MODE, parents=True, exist_ok=True)
    info = path.stat()
    loose = stat.S_IMODE(info.st_mode) & 0o077
    if loose and info.st_uid == os.getuid():
        with contextlib.suppress(OSError):
            os.chmod(path, MODE)
            log.warning("data_dir_permissions_tightened", mode=f"{stat.S_IMODE(info.st_mode):04o}")
