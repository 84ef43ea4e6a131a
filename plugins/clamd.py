"""ClamAV's ``clamd`` as the attachment scanner (:class:`plugins.api.FileScanner`).

The protocol, from clamd(8) ("COMMANDS", INSTREAM): the client sends ``zINSTREAM\\0``, then
the file in chunks, each ``<length><data>`` with the length a 4-byte unsigned integer in
network byte order, and a zero-length chunk to end. clamd answers one NUL-terminated line
(the ``z`` prefix): ``stream: OK``, ``stream: <signature> FOUND``, or ``... ERROR`` --
among them ``INSTREAM size limit exceeded. ERROR`` when the file passes clamd's
``StreamMaxLength`` (clamd then closes the connection).

Written by hand, after looking at the clients on the package index: ``clamd`` (1.0.2, 2014)
and its maintained fork ``clamdpy`` use blocking sockets (a thread per scan here) and call
their NUL-terminated mode untested; ``aioclamd`` is asyncio but, in its public source,
connects over TCP only, while Debian's and Ubuntu's clamd listen on a unix socket
(``/run/clamav/clamd.ctl``) by default; ``pyvalve`` is a young single-author package. The
exchange itself is twenty lines of asyncio, and this module maps every clamd answer to a
verdict or :class:`ScanUnavailable` for the gateway's fail-closed rule.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

from plugins.api import ScanUnavailable, ScanVerdict

CHUNK: Final = 64 * 1024
MAX_REPLY: Final = 1024


@dataclass(frozen=True, slots=True)
class ClamdAddress:
    """Where clamd listens: a TCP ``host``/``port`` or a unix socket ``path``."""

    host: str = ""
    port: int = 0
    path: str = ""


def parse_clamd_address(text: str) -> ClamdAddress:
    """``tcp:HOST:PORT`` or ``unix:/path`` (ValueError otherwise). Operator config only."""
    scheme, _, rest = text.partition(":")
    if scheme == "unix" and rest.startswith("/"):
        return ClamdAddress(path=rest)
    if scheme == "tcp":
        host, _, port = rest.rpartition(":")
        if host and port.isdigit() and 0 < int(port) < 65536:
            return ClamdAddress(host=host.strip("[]"), port=int(port))
    raise ValueError(f"expected tcp:HOST:PORT or unix:/path, got {text[:80]!r}")


class ClamdScanner:
    """One INSTREAM exchange per file, on a fresh connection (clamd's own advice for
    one-off scans; no session state to lose when clamd restarts)."""

    def __init__(self, address: ClamdAddress | str, *, timeout: float = 30.0) -> None:
        self.address = parse_clamd_address(address) if isinstance(address, str) else address
        self.timeout = timeout

    async def scan(self, data: bytes) -> ScanVerdict:
        try:
            async with asyncio.timeout(self.timeout):
                reply = await self._exchange(data)
        except TimeoutError:
            raise ScanUnavailable("clamd did not answer in time") from None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ScanUnavailable(f"clamd unreachable: {reason}") from None
        return verdict(reply)

    async def _exchange(self, data: bytes) -> str:
        if self.address.path:
            reader, writer = await asyncio.open_unix_connection(self.address.path)
        else:
            reader, writer = await asyncio.open_connection(self.address.host, self.address.port)
        try:
            writer.write(b"zINSTREAM\0")
            for start in range(0, len(data), CHUNK):
                chunk = data[start : start + CHUNK]
                writer.write(len(chunk).to_bytes(4, "big") + chunk)
                await writer.drain()
            writer.write(b"\0\0\0\0")
            await writer.drain()
            try:
                raw = await reader.readuntil(b"\0")
            except asyncio.IncompleteReadError as exc:
                raw = exc.partial  # clamd closed after an error line without its NUL
            except asyncio.LimitOverrunError:
                raise ScanUnavailable("clamd answered with an overlong line") from None
            return raw[:MAX_REPLY].rstrip(b"\0").decode("utf-8", "replace").strip()
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass


def verdict(reply: str) -> ScanVerdict:
    """clamd's answer line as a verdict; anything but OK/FOUND is :class:`ScanUnavailable`."""
    if reply == "stream: OK":
        return ScanVerdict(clean=True)
    if reply.startswith("stream: ") and reply.endswith(" FOUND"):
        return ScanVerdict(clean=False, signature=reply[len("stream: ") : -len(" FOUND")][:200])
    raise ScanUnavailable(f"clamd: {reply[:200] or 'no answer'}")
