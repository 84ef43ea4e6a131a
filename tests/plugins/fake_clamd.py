"""A clamd that speaks the real INSTREAM protocol, for tests (no virus database here).

Per clamd(8), "COMMANDS": after ``zINSTREAM\\0`` the client sends chunks
``<4-byte big-endian length><data>`` and a zero-length chunk; clamd answers one
NUL-terminated line, ``stream: OK`` or ``stream: <signature> FOUND``, and above its
``StreamMaxLength`` ``INSTREAM size limit exceeded. ERROR`` before closing the
connection. This fake "detects" the EICAR test string (the signature name is ClamAV's,
``Eicar-Test-Signature``) and refuses any other command with ``UNKNOWN COMMAND``, as clamd does.
"""

from __future__ import annotations

import asyncio
from typing import Self

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


class FakeClamd:
    """``async with FakeClamd() as clamd``: listens on 127.0.0.1:``clamd.port``;
    ``scanned`` holds every stream it received; :meth:`stop` makes it unreachable."""

    def __init__(self, stream_max: int = 25 * 1024 * 1024) -> None:
        self.stream_max = stream_max
        self.scanned: list[bytes] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            command = await reader.readuntil(b"\0")
            if command != b"zINSTREAM\0":
                writer.write(b"UNKNOWN COMMAND\0")
                return
            data = bytearray()
            while True:
                size = int.from_bytes(await reader.readexactly(4), "big")
                if size == 0:
                    break
                data += await reader.readexactly(size)
                if len(data) > self.stream_max:
                    writer.write(b"INSTREAM size limit exceeded. ERROR\0")
                    return
            self.scanned.append(bytes(data))
            found = EICAR in data
            writer.write(b"stream: Eicar-Test-Signature FOUND\0" if found else b"stream: OK\0")
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            await writer.drain()
            writer.close()
