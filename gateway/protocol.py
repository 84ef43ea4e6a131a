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

from gateway.jsonlimits import MAX_FRAME_DEPTH, JsonTooDeep, check_depth

PROTOCOL_VERSION = 1
HELLO_CONTEXT = "cipherdesk/v1/hello|"

# Limits enforced by the decoder itself (the gateway adds configurable, tighter ones).
Id = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-:.]+$")]
B64Key = Annotated[str, Meta(min_length=44, max_length=44)]
Text = Annotated[str, Meta(max_length=16_000)]
ShortText = Annotated[str, Meta(max_length=200)]
Seq = Annotated[int, Meta(ge=0, le=2**53)]
# The channel rejects counters past 2**64-1; JSON decoding caps at int64 (msgspec), which
# a client would need 292 years at a billion frames per second to exhaust.
Counter = Annotated[int, Meta(ge=1, le=2**63 - 1)]
# End-to-end mode (issue 13): ciphertext and commitments the gateway relays, never opens.
Ciphertext = Annotated[str, Meta(min_length=40, max_length=32_000, pattern=r"^[A-Za-z0-9+/=]+$")]
Mac = Annotated[str, Meta(min_length=44, max_length=44, pattern=r"^[A-Za-z0-9+/=]+$")]
Epoch = Annotated[int, Meta(ge=1, le=1_000_000)]
PolicyKinds = Annotated[
    list[
        Annotated[str, Meta(min_length=1, max_length=38, pattern=r"^(?:split:)?[a-z0-9_]{1,32}$")]
    ],
    Meta(max_length=8),
]
"""Finding kinds an end's policy flagged in the message it seals (``flag`` action), and
``split:<kind>`` for a number the end found completed across its messages: the gateway
alerts supervisors with the kinds, never with text it does not have."""
WrappedKeyText = Annotated[str, Meta(min_length=40, max_length=400, pattern=r"^[A-Za-z0-9+/=]+$")]
EpochKey = Annotated[str, Meta(min_length=1, max_length=7, pattern=r"^[0-9]+$")]
# Attachments (issue 16.6): the size is checked against the installation's and tenant's
# limits (at most 50 MiB anywhere).
FileSize = Annotated[int, Meta(ge=1, le=50 * 1024 * 1024)]
FileId = Annotated[str, Meta(min_length=8, max_length=32, pattern=r"^f[A-Za-z0-9_\-]+$")]


class Frame(Struct, kw_only=True, omit_defaults=True):
    """Base of every frame: fields equal to their default are omitted on the wire, so
    a reader must treat a missing optional field as its documented default."""


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


class Hello(Frame, tag_field="t", tag="hello"):
    v: int
    sid: str
    server_pk: str
    sig: str
    mode: Literal["inspect", "e2e"]
    limits: dict[str, Any]


class Resume(Frame):
    chat: Id
    token: Annotated[str, Meta(min_length=16, max_length=128)]
    last_seq: Seq = 0


class Key(Frame, tag_field="t", tag="key"):
    client_pk: B64Key
    resume: Resume | None = None
    # False: the client shows its own messages as it sends them, so a customer's message
    # stored exactly as written is not sent back to this connection (its ``ack`` carries
    # ``ts``); a changed (masked) one still is, as are all messages on other connections.
    echo: bool = True
    # Agents: queue changes come as ``queue_update`` frames (only what changed). Without
    # it every change sends the whole ``queue``, as to consoles from before the frame
    # existed (a page left open across an upgrade keeps a live queue).
    queue_updates: bool = False


class Error(Frame, tag_field="t", tag="error"):
    code: str
    message: str
    ref: str | None = None  # the client frame id this error refers to, if any


class Sealed(Frame, tag_field="t", tag="sealed"):
    n: Counter
    c: Annotated[str, Meta(min_length=24)]


PlainInbound = Key | Sealed

# ------------------------------------------------------------------- client → server (inner)


class Profile(Frame, forbid_unknown_fields=True):
    """Optional pre-chat form from the widget."""

    name: ShortText | None = None
    email: ShortText | None = None
    topic: ShortText | None = None


class Open(Frame, tag_field="t", tag="open"):
    """Customer: start a new chat (first frame after the handshake unless resuming)."""

    identity: Annotated[str, Meta(max_length=4096)] | None = None  # signed widget identity
    profile: Profile | None = None
    queue: Id = "default"


class CustomerMsg(Frame, tag_field="t", tag="msg"):
    id: Id
    text: Text


class CustomerUpload(Frame, tag_field="t", tag="upload"):
    """Customer: ask to send a file of ``size`` bytes as message ``id``; answered with an
    ``upload`` ticket (the name and bytes then go over HTTP, sealed with the ticket's key:
    docs/PROTOCOL.md "Attachments")."""

    id: Id
    size: FileSize


class CustomerFetch(Frame, tag_field="t", tag="fetch"):
    """Customer: ask to read a file of the chat; answered with a ``file`` ticket."""

    file: FileId


class CustomerTyping(Frame, tag_field="t", tag="typing"):
    on: bool = True


class CustomerClose(Frame, tag_field="t", tag="close"):
    """Customer: end the chat, or rate it after the agent closed it (``csat`` 1-5 and an
    optional ``comment``, policy-screened like a message; recorded once per chat)."""

    csat: Annotated[int, Meta(ge=1, le=5)] | None = None
    comment: Annotated[str, Meta(max_length=1000)] | None = None


class CustomerConsent(Frame, tag_field="t", tag="consent"):
    """The customer accepted the tenant's privacy notice ``version`` (the current one)."""

    version: Annotated[int, Meta(ge=1, le=1_000_000)]


class Ping(Frame, tag_field="t", tag="ping"):
    """Application-level keepalive; answered with ``pong`` (sealed)."""


class CustomerSealedMsg(Frame, tag_field="t", tag="emsg"):
    """Customer, e2e chats: a message encrypted under the chat key of epoch ``e``
    (``c``), with its franking commitment ``fc`` (crypto/e2e.py); ``flags``: what the end's
    policy flagged in it."""

    id: Id
    c: Ciphertext
    fc: Mac
    e: Epoch
    flags: PolicyKinds = []
    file: FileId | None = None  # a file uploaded as this message (docs: "Attachments")


class WrappedKey(Frame, forbid_unknown_fields=True):
    device: Id
    k: WrappedKeyText


class WrapKeys(Frame, tag_field="t", tag="wrap"):
    """Customer, e2e chats: chat keys wrapped to member devices. Without ``rekey``,
    ``epoch`` is the current epoch (keys for devices that lack it); with it, the next one
    (a fresh key, so a device that left cannot read on) -- of two ends re-keying at once
    one wins, the other gets ``stale_epoch``. ``older`` carries earlier epochs' keys for
    devices that joined later, so they can read the history. With an ``id`` the gateway
    answers ``wrapped`` once stored (an end adopts a new epoch only then)."""

    epoch: Epoch
    keys: Annotated[list[WrappedKey], Meta(max_length=64)]
    older: Annotated[
        dict[EpochKey, Annotated[list[WrappedKey], Meta(max_length=64)]], Meta(max_length=64)
    ] = {}
    id: Id | None = None
    rekey: bool = False


class ReportMsg(Frame, tag_field="t", tag="report"):
    """Either end, e2e chats: report message ``seq`` by revealing its text and franking
    key (and the gateway's tag ``gt`` as relayed); verified by the gateway, sent to
    supervisors. Agents name the ``chat``."""

    seq: Seq
    text: Text
    fk: B64Key
    gt: Mac
    reason: Literal["abuse", "spam", "fraud", "personal_data", "other"] = "abuse"
    chat: Id | None = None


CustomerInbound = (
    Open
    | CustomerMsg
    | CustomerUpload
    | CustomerFetch
    | CustomerSealedMsg
    | WrapKeys
    | ReportMsg
    | CustomerTyping
    | CustomerClose
    | CustomerConsent
    | Ping
)


class AgentMsg(Frame, tag_field="t", tag="msg"):
    chat: Id
    id: Id
    text: Text


class AgentSealedMsg(Frame, tag_field="t", tag="emsg"):
    """Agent, e2e chats: like :class:`CustomerSealedMsg`; the sender device is the one the
    socket was opened with (``/ws/agent?device=``)."""

    chat: Id
    id: Id
    c: Ciphertext
    fc: Mac
    e: Epoch
    flags: PolicyKinds = []
    file: FileId | None = None


class AgentUpload(Frame, tag_field="t", tag="upload"):
    """Agent: like :class:`CustomerUpload`, into an assigned chat."""

    chat: Id
    id: Id
    size: FileSize


class AgentFetch(Frame, tag_field="t", tag="fetch"):
    """Agent: like :class:`CustomerFetch`, for a chat the agent may read."""

    chat: Id
    file: FileId


class AgentTyping(Frame, tag_field="t", tag="typing"):
    chat: Id
    on: bool = True


class Accept(Frame, tag_field="t", tag="accept"):
    chat: Id


class Transfer(Frame, tag_field="t", tag="transfer"):
    """Hand a chat to another agent (``to_agent``) or back to a queue (``to_queue``).

    The targets are any short text here, not ``Id``: a mistyped target (an e-mail
    address) is an ``unknown_agent``/``unknown_queue`` error frame the console can show,
    not a protocol violation that closes the agent's socket."""

    chat: Id
    to_agent: ShortText | None = None
    to_queue: ShortText | None = None


class AgentClose(Frame, tag_field="t", tag="close"):
    chat: Id
    reason: ShortText = "resolved"


class Watch(Frame, tag_field="t", tag="watch"):
    """Supervisor: follow a chat without taking it (audited as a transcript access)."""

    chat: Id


class Unwatch(Frame, tag_field="t", tag="unwatch"):
    chat: Id


class QueueRequest(Frame, tag_field="t", tag="queue"):
    """Ask for a fresh queue snapshot."""


class History(Frame, tag_field="t", tag="history"):
    chat: Id
    after_seq: Seq = 0


AgentInbound = (
    AgentMsg
    | AgentSealedMsg
    | AgentUpload
    | AgentFetch
    | ReportMsg
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


class Welcome(Frame, tag_field="t", tag="welcome"):
    chat: str
    token: str | None  # resume token; only sent when the chat is created
    state: str
    last_seq: int
    verified: bool = False
    # Agents of the tenant connected right now (any node); -1 (omitted) when unknown.
    agents_online: int = -1
    # Display name of the agent the chat is assigned to now (after a transfer too).
    agent: str | None = None
    # The privacy-notice version the customer accepted in this chat (omitted: none yet).
    consent: int | None = None


class Ready(Frame, tag_field="t", tag="ready"):
    """Agent: the session is established; who you are."""

    agent: str
    name: str
    role: str
    tenant: str
    # The certified e2e device this socket speaks for (``/ws/agent?device=``); omitted
    # when none was named or it is not certified (e2e chats then refuse this socket).
    device: str | None = None


class Ack(Frame, tag_field="t", tag="ack"):
    id: str
    seq: int
    chat: str | None = None
    ts: float | None = None  # when it was stored (the time to show without an echo)


class FileRef(Frame):
    """The file a message carries: its ``id`` (for ``fetch``), the ``name`` as the policy
    left it, the sniffed ``type``, the stored ``size`` and, for images, their pixels."""

    id: str
    name: str
    type: str
    size: int
    w: int | None = None
    h: int | None = None


class UploadTicket(Frame, tag_field="t", tag="upload"):
    """Answer to ``upload``: ``POST`` the file, sealed with ``key``
    (``nonce ‖ secretbox``), to ``url`` before ``expires``."""

    id: str
    url: str
    key: str
    expires: float
    chat: str | None = None


class FileTicket(Frame, tag_field="t", tag="file"):
    """Answer to ``fetch``: ``GET`` ``url`` before ``expires`` and open the body with
    ``key``."""

    file: str
    url: str
    key: str
    expires: float
    chat: str | None = None


class Msg(Frame, tag_field="t", tag="msg"):
    seq: int
    sender: Literal["agent", "customer", "system"] = msgspec.field(name="from")
    text: str
    ts: float
    id: str | None = None
    chat: str | None = None  # set on agent connections (several chats per socket)
    agent: str | None = None  # display name of the sending agent
    # e2e chats (``text`` is empty): ciphertext, franking commitment, the gateway's
    # franking tag, the key epoch and the sending device (agents) -- crypto/e2e.py.
    c: str | None = None
    fc: str | None = None
    gt: str | None = None
    e: int | None = None
    dev: str | None = None
    # An attachment (``text`` is its name, for readers that do not know files).
    file: FileRef | None = None


class MemberDevice(Frame):
    """A device the customer's end must wrap the chat key to, with its certificate."""

    device: str
    agent: str
    reason: str  # "assigned" or "watch" (a supervisor following the chat)
    cert: str  # the signed certificate text (crypto/e2e.py)
    sig: str


class Members(Frame, tag_field="t", tag="members"):
    """Customer, e2e chats: who takes part now. ``holders`` are the devices holding the
    current ``epoch``'s key; a holder that is no longer a member means the customer's end
    re-keys (epoch + 1) so it cannot read what follows."""

    chat: str
    epoch: int
    devices: list[MemberDevice]
    holders: list[str]


class KeyForEpoch(Frame):
    e: int
    k: str


class ChatKeys(Frame, tag_field="t", tag="ckeys"):
    """Agent, e2e chats: the chat keys wrapped to this socket's device."""

    chat: str
    device: str
    keys: list[KeyForEpoch]


class Wrapped(Frame, tag_field="t", tag="wrapped"):
    """Answer to a ``wrap`` with an ``id``: the keys are stored; ``epoch`` is now current."""

    id: str
    epoch: int


class Reported(Frame, tag_field="t", tag="reported"):
    """Answer to ``report``: ``verified`` true when the franking checks passed (the report
    went to supervisors); false when the text or key does not match what was relayed."""

    seq: int
    verified: bool
    chat: str | None = None


class Notice(Frame, tag_field="t", tag="notice"):
    id: str | None
    action: Literal["masked", "blocked", "flagged", "limited"]
    kinds: list[str]
    message: str
    chat: str | None = None
    retry_after: float | None = None


class Typing(Frame, tag_field="t", tag="typing"):
    sender: Literal["agent", "customer"] = msgspec.field(name="from")
    on: bool
    chat: str | None = None


class ChatEvent(Frame, tag_field="t", tag="chat"):
    """Something happened to a chat: ``joined``/``left`` (agents), ``transferred``,
    ``closed``, ``assigned`` (to you), ``removed`` (no longer yours), ``handled`` (agents
    only: the tenant's helpdesk marked it dealt with — ``agent`` is the helpdesk agent,
    ``reason`` the ticket status; the customer's chat stays open)."""

    chat: str
    event: Literal["joined", "left", "assigned", "transferred", "closed", "removed", "handled"]
    agent: str | None = None
    reason: str | None = None


class QueueEntry(Frame):
    chat: str
    queue: str
    waiting_since: float
    verified: bool
    state: str
    agent: str | None = None
    name: str | None = None
    topic: str | None = None
    handled: bool = False  # the tenant's helpdesk marked the chat handled (inbound API)
    e2e: bool = False  # end-to-end encrypted: the console needs a certified device


class QueueSnapshot(Frame, tag_field="t", tag="queue"):
    """The whole queue as this agent sees it (on connect and when asked for)."""

    chats: list[QueueEntry]
    mine: list[QueueEntry]
    waiting_unlisted: int = 0
    """Waiting chats of this agent's queues that ``chats`` leaves out: each queue lists its
    longest-waiting chats only (``websocket.queue_listed``), so a flood of customers cannot
    make every console's queue unbounded; the console shows the number."""


class QueueUpdate(Frame, tag_field="t", tag="queue_update"):
    """What changed in this agent's queue since the ``queue`` or ``queue_update`` before.

    Why: every queue change reached every console as the whole queue; with 1,000 waiting
    chats and 50 consoles a burst of accepts sent each console a full list every 50 ms,
    megabytes a second the node sealed and the consoles parsed for a few changed rows.
    An entry in ``chats`` or ``mine`` is new or changed and now listed there (it leaves the
    other list if it was in it); a chat in ``gone`` is listed no more."""

    chats: list[QueueEntry]
    mine: list[QueueEntry]
    gone: list[str]
    waiting_unlisted: int = 0
    """As in ``queue``: the current number, sent with every update."""


class HelpdeskNote(Frame, tag_field="t", tag="note"):
    """Agents only: an internal note written in the tenant's helpdesk (inbound API). Never
    sent on a customer socket and outside the chat's message sequence (no ``seq``), so a
    customer's history and gap-filling cannot reach it; ``text`` has passed the tenant's
    policy as an agent message would."""

    chat: str
    id: str
    text: str
    ts: float
    agent: str  # the helpdesk agent's display name (policy-checked, else "Helpdesk")
    plugin: str


class Flag(Frame, tag_field="t", tag="flag"):
    """Supervisors: a flagged message (original text is fetched via the audited API)."""

    chat: str
    seq: int
    flag_id: int
    kinds: list[str]


class Pong(Frame, tag_field="t", tag="pong"):
    pass


class Service(Frame, tag_field="t", tag="service"):
    """The tenant's service state changed while you are connected: ``paused`` (an admin
    froze the tenant: messages are refused with ``tenant_frozen`` until ``live``)."""

    state: Literal["paused", "live"]


Outbound = (
    Welcome
    | Ready
    | Ack
    | Msg
    | Notice
    | Typing
    | ChatEvent
    | QueueSnapshot
    | QueueUpdate
    | Flag
    | HelpdeskNote
    | Pong
    | Error
    | Service
    | Members
    | ChatKeys
    | Reported
    | Wrapped
    | UploadTicket
    | FileTicket
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
    """Decode one frame from outside; every failure is a :class:`FrameError` (close 1008),
    never another exception: nesting is bounded before the parser recurses into it."""
    try:
        check_depth(data, MAX_FRAME_DEPTH)
        return decoder.decode(data)
    except JsonTooDeep as exc:
        raise FrameError(f"invalid frame: {exc}") from None
    except msgspec.ValidationError as exc:
        raise FrameError(f"invalid frame: {exc}") from None
    except (msgspec.DecodeError, RecursionError, UnicodeError):
        raise FrameError("invalid frame: not JSON") from None


def decode_plain(data: bytes | str) -> Key | Sealed:
    return _decode(_plain_decoder, data)


def decode_customer(data: bytes) -> CustomerInbound:
    return _decode(_customer_decoder, data)


def decode_agent(data: bytes) -> Any:
    return _decode(_agent_decoder, data)


def decode_hello(data: bytes | str) -> Hello:
    return _decode(_hello_decoder, data)
