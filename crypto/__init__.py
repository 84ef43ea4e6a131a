"""cipherdesk cryptography: a pure library (no I/O beyond key files, no event loop).

- :mod:`crypto.encoding`: strict base64 at the trust boundary.
- :mod:`crypto.channel`: per-connection X25519 key agreement and sealed, counted frames.
- :mod:`crypto.identity`: the gateway's Ed25519 identity that signs ``hello``.
- :mod:`crypto.envelope`: at-rest data keys, master-key wrapping, rotation, shredding.
"""

from crypto.channel import (
    CLIENT_TO_SERVER,
    MAX_COUNTER,
    SERVER_TO_CLIENT,
    Channel,
    ChannelError,
    DecryptError,
    EphemeralKey,
    KeyFormatError,
    ReplayError,
    nonce_for,
)
from crypto.encoding import EncodingError, b64decode, b64encode
from crypto.envelope import (
    EnvelopeError,
    Keyring,
    KeyringError,
    MasterKey,
    UnknownKeyError,
    new_data_key,
    open_record,
    seal_record,
)
from crypto.identity import GatewayIdentity, hello_transcript, verify_hello

__all__ = [
    "CLIENT_TO_SERVER",
    "MAX_COUNTER",
    "SERVER_TO_CLIENT",
    "Channel",
    "ChannelError",
    "DecryptError",
    "EncodingError",
    "EnvelopeError",
    "EphemeralKey",
    "GatewayIdentity",
    "KeyFormatError",
    "Keyring",
    "KeyringError",
    "MasterKey",
    "ReplayError",
    "UnknownKeyError",
    "b64decode",
    "b64encode",
    "hello_transcript",
    "new_data_key",
    "nonce_for",
    "open_record",
    "seal_record",
    "verify_hello",
]
