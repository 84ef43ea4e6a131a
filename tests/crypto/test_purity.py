"""crypto/ is a pure library: it must import without aiohttp or any other cipherdesk package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys
import crypto, crypto.auditchain, crypto.channel, crypto.encoding, crypto.envelope, crypto.identity
forbidden = ("aiohttp", "asyncio", "socket", "gateway", "auth", "plugins")
loaded = sorted(m for m in sys.modules if m.split(".")[0] in forbidden)
print(",".join(loaded))
"""


def test_crypto_imports_no_network_or_sibling_packages() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
