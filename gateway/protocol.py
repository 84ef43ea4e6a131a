"""Wire protocol v1: every frame as a typed msgspec struct (docs/PROTOCOL.md is the prose).

Why structs: decoding *is* validation. A frame that does not match its struct (wrong
type, missing field, unknown ``t``, text too long) raises :class:`FrameError` before any
handler runs, and the handlers receive typed values only.

Three layers of frames:

* plain frames (``hello``, ``key``, ``error``) travel as websocket text before the channel
  is keyed;
* ``sealed`` carries an inner frame encrypted with the connection's channel key;
* inner frames, decoded per role: :data:`CustomerInbound` and :data:`AgentInbound`
  (client → server), and the server's outbound structs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

PROTOCOL_VERSION = 1
HELLO_CONTEXT = "cipherdesk/v1/hello|"

# Limits enforced by the decoder itself (the gateway adds configurable, tighter ones).
Id = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-:.]+$")]
B64Key = Annotated[str, Meta(min_length=44, max_length=44)]
Text = Annotated[str, Meta(max_length=16_000)]
ShortText = Annotated[str, Meta(max_length=200)]
Seq = Annotated[int, Meta(ge=0, le=2**53)]
Counter = Annotated[int, Meta(ge=1, le=2**64 - 1)]


class FrameError(ValueError):
    """A frame could not be decoded or validated. ``str()`` is safe to show a client."""


class CloseCode:
    """Websocket close codes of the protocol (DESIGN.md, docs/PROTOCOL.md)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    POLICY = 1008  # policy or protocol violation: malformed frame, replay, bad order
    TOO_BIG = 1009
    INTERNAL = 1011
    TRY_AGAIN_LATER = 1013  # global connection cap reached
    UNAUTHENTICATED = 4401
    FORBIDDEN = 4403  # origin, role, tenant, frozen tenant, identity enforcement
    RATE_LIMITED = 4429


# --------------------------------------------------------------------------- plain frames


class Hello(Struct, tag_field="t", tag="hello", kw_only=True):
    v: int
    sid: str
    server_pk: str
    sig: str
    mode: Literal["inspect", "e2e"]
    limits: dict[str, Any]


class Resume(Struct, kw_only=True):
    chat: Id
    token: Annotated[str, Meta(min_length=16, max_length=128)]
    last_seq: Seq = 0


class Key(Struct, tag_field="t", tag="key", kw_only=True):
    client_pk: B64Key
    resume: Resume | None = None


class Error(Struct, tag_field="t", tag="error", kw_only=True):
    code: str
    message: str
    ref: str | None = None  # the client frame id this error refers to, if any


class Sealed(Struct, tag_field="t", tag="sealed", kw_only=True):
    n: Counter
    c: Annotated[str, Meta(min_length=24)]


PlainInbound = Key | Sealed

# ------------------------------------------------------------------- client → server (inner)


class Profile(Struct, kw_only=True, forbid_unknown_fields=True):
    """Optional pre-chat form from the widget."""

    name: ShortText | None = None
    email: ShortText | None = None
    topic: ShortText | None = None


class Open(Struct, tag_field="t", tag="open", kw_only=True):
    """Customer: start a new chat (first frame after the handshake unless resuming)."""

    identity: Annotated[str, Meta(max_length=4096)] | None = None  # signed widget identity
    profile: Profile | None = None
    queue: Id = "default"


class CustomerMsg(Struct, tag_field="t", tag="msg", kw_only=True):
    id: Id
    text: Text


class CustomerTyping(Struct, tag_field="t", tag="typing", kw_only=True):
    on: bool = True


class CustomerClose(Struct, tag_field="t", tag="close", kw_only=True):
    csat: Annotated[int, Meta(ge=1, le=5)] | None = None


class Ping(Struct, tag_field="t", tag="ping", kw_only=True):
    """Application-level keepalive; answered with ``pong`` (sealed)."""


CustomerInbound = Open | CustomerMsg | CustomerTyping | CustomerClose | Ping


class AgentMsg(Struct, tag_field="t", tag="msg", kw_only=True):
    chat: Id
    id: Id
    text: Text


class AgentTyping(Struct, tag_field="t", tag="typing", kw_only=True):
    chat: Id
    on: bool = True


class Accept(Struct, tag_field="t", tag="accept", kw_only=True):
    chat: Id


class Transfer(Struct, tag_field="t", tag="transfer", kw_only=True):
    """Hand a chat to another agent (``to_agent``) or back to a queue (``to_queue``)."""

    chat: Id
    to_agent: Id | None = None
    to_queue: Id | None = None


class AgentClose(Struct, tag_field="t", tag="close", kw_only=True):
    chat: Id
    reason: ShortText = "resolved"


class Watch(Struct, tag_field="t", tag="watch", kw_only=True):
    """Supervisor: follow a chat without taking it (audited as a transcript access)."""

    chat: Id


class Unwatch(Struct, tag_field="t", tag="unwatch", kw_only=True):
    chat: Id


class QueueRequest(Struct, tag_field="t", tag="queue", kw_only=True):
    """Ask for a fresh queue snapshot."""


class History(Struct, tag_field="t", tag="history", kw_only=True):
    chat: Id
    after_seq: Seq = 0


AgentInbound = (
    AgentMsg
    | AgentTyping
    | Accept
    | Transfer
    | AgentClose
    | Watch
    | Unwatch
    | QueueRequest
    | History
    | Ping
)

# ------------------------------------------------------------------- server → client (inner)


class Welcome(Struct, tag_field="t", tag="welcome", kw_only=True):
    chat: str
    token: str | None  # resume token; only sent when the chat is created
    state: str
    last_seq: int
    verified: bool = False


class Ready(Struct, tag_field="t", tag="ready", kw_only=True):
    """Agent: the session is established; who you are."""

    agent: str
    name: str
    role: str
    tenant: str


class Ack(Struct, tag_field="t", tag="ack", kw_only=True):
    id: str
    seq: int
    chat: str | None = None


class Msg(Struct, tag_field="t", tag="msg", kw_only=True):
    seq: int
    sender: Literal["agent", "customer", "system"] = msgspec.field(name="from")
    text: str
    ts: float
    id: str | None = None
    chat: str | None = None  # set on agent connections (several chats per socket)
    agent: str | None = None  # display name of the sending agent


class Notice(Struct, tag_field="t", tag="notice", kw_only=True):
    id: str | None
    action: Literal["masked", "blocked", "flagged", "limited"]
    kinds: list[str]
    message: str
    chat: str | None = None
    retry_after: float | None = None


class Typing(Struct, tag_field="t", tag="typing", kw_only=True):
    sender: Literal["agent", "customer"] = msgspec.field(name="from")
    on: bool
    chat: str | None = None


class ChatEvent(Struct, tag_field="t", tag="chat", kw_only=True):
    """Something happened to a chat: ``joined``/``left`` (agents), ``transferred``,
    ``closed``, ``assigned`` (to you), ``removed`` (no longer yours)."""

    chat: str
    event: Literal["joined", "left", "assigned", "transferred", "closed", "removed"]
    agent: str | None = None
    reason: str | None = None


class QueueEntry(Struct, kw_only=True):
    chat: str
    queue: str
    waiting_since: float
    verified: bool
    state: str
    agent: str | None = None
    name: str | None = None
    topic: str | None = None


class QueueSnapshot(Struct, tag_field="t", tag="queue", kw_only=True):
    chats: list[QueueEntry]
    mine: list[QueueEntry]


class Flag(Struct, tag_field="t", tag="flag", kw_only=True):
    """Supervisors: a flagged message (original text is fetched via the audited API)."""

    chat: str
    seq: int
    flag_id: int
    kinds: list[str]


class Pong(Struct, tag_field="t", tag="pong", kw_only=True):
    pass


Outbound = (
    Welcome | Ready | Ack | Msg | Notice | Typing | ChatEvent | QueueSnapshot | Flag | Pong | Error
)

# ------------------------------------------------------------------------------ codecs

_encoder = msgspec.json.Encoder()
_plain_decoder = msgspec.json.Decoder(PlainInbound)
_customer_decoder = msgspec.json.Decoder(CustomerInbound)
_agent_decoder = msgspec.json.Decoder(AgentInbound)
_hello_decoder = msgspec.json.Decoder(Hello)


def encode(frame: Struct) -> bytes:
    """Serialise any frame to compact JSON bytes."""
    return _encoder.encode(frame)


def _decode(decoder: msgspec.json.Decoder, data: bytes | str) -> Any:
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise FrameError(f"invalid frame: {exc}") from None
    except msgspec.DecodeError:
        raise FrameError("invalid frame: not JSON") from None


def decode_plain(data: bytes | str) -> Key | Sealed:
    return _decode(_plain_decoder, data)


def decode_customer(data: bytes) -> Open | CustomerMsg | CustomerTyping | CustomerClose | Ping:
    return _decode(_customer_decoder, data)


def decode_agent(data: bytes) -> Any:
    return _decode(_agent_decoder, data)


def decode_hello(data: bytes | str) -> Hello:
    return _decode(_hello_decoder, data)
