"""MQTT contract version 1 (DESIGN section 6): topic builders and the typed payload of every topic.

Both sides import this module: the terminal builds payloads with it, the fleet side parses them with
``parse_payload``. Models are strict and closed (``extra="forbid"``) wherever the contract is, so a
typo or a stray field fails at the sender, not silently at the receiver. Timestamps are ISO 8601 in
UTC, written as ``2024-06-01T08:30:00.000Z``.

No payload may carry a name, an ID number, a card number, a phone number or an address. Events are
the one open payload (type-specific fields), so ``personal_data_reason`` screens their field names
and values, and ``EventPayload`` refuses anything it flags.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal, Self, TypeVar, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from contracts.identifiers import SITE_MAX_CHARS, SITE_PATTERN, TopicError, checked_identifier
from contracts.personal import (
    EVENT_FIELDS_MAX,
    EventValue,
    event_field_problem,
)

# Identifier checks live in a stdlib-only module: config loading uses them before pydantic is in.
from contracts.rating import RatingLevel

CONTRACT_VERSION: Final = 1
TOPIC_PREFIX = "kiosk/v1"
# A receiver refuses anything bigger unread: the largest payload of the contract is a heartbeat
# of a few kB, and a bound keeps a hostile or broken sender from costing memory or time.
MAX_PAYLOAD_BYTES: Final = 64 * 1024
# DESIGN 6: ``expires_at`` may be at most this far ahead of the time a command is received.
COMMAND_LIFETIME_MAX: Final = dt.timedelta(days=7)

# --- identifiers and topics ----------------------------------------------------------------------

TopicKind = Literal["status", "heartbeat", "event", "cmd", "ack", "ota"]


def status_topic(terminal_id: str) -> str:
    return f"{TOPIC_PREFIX}/{checked_identifier('terminal id', terminal_id)}/status"


def heartbeat_topic(terminal_id: str) -> str:
    return f"{TOPIC_PREFIX}/{checked_identifier('terminal id', terminal_id)}/heartbeat"


def event_topic(terminal_id: str) -> str:
    return f"{TOPIC_PREFIX}/{checked_identifier('terminal id', terminal_id)}/event"


def ota_topic(terminal_id: str) -> str:
    return f"{TOPIC_PREFIX}/{checked_identifier('terminal id', terminal_id)}/ota"


def command_topic(terminal_id: str, request_id: str) -> str:
    tid = checked_identifier("terminal id", terminal_id)
    return f"{TOPIC_PREFIX}/{tid}/cmd/{checked_identifier('request id', request_id)}"


def ack_topic(terminal_id: str, request_id: str) -> str:
    return f"{command_topic(terminal_id, request_id)}/ack"


def command_filter(terminal_id: str) -> str:
    """What a terminal subscribes to: every command addressed to it, one level per request id."""
    return f"{TOPIC_PREFIX}/{checked_identifier('terminal id', terminal_id)}/cmd/+"


_SINGLE_LEVEL_KINDS: dict[str, TopicKind] = {
    "status": "status", "heartbeat": "heartbeat", "event": "event", "ota": "ota",
}


@dataclass(frozen=True)
class Topic:
    """A parsed contract topic; ``request_id`` is set for ``cmd`` and ``ack`` only."""

    terminal_id: str
    kind: TopicKind
    request_id: str | None = None


def parse_topic(topic: str) -> Topic:
    """Split a contract topic into its parts; raise TopicError for anything else."""
    parts = topic.split("/")
    if len(parts) < 4 or "/".join(parts[:2]) != TOPIC_PREFIX:
        raise TopicError("not a kiosk/v1 topic")
    tid = checked_identifier("terminal id", parts[2])
    rest = parts[3:]
    if len(rest) == 1 and rest[0] in _SINGLE_LEVEL_KINDS:
        return Topic(tid, _SINGLE_LEVEL_KINDS[rest[0]])
    if len(rest) == 2 and rest[0] == "cmd":
        return Topic(tid, "cmd", checked_identifier("request id", rest[1]))
    if len(rest) == 3 and rest[0] == "cmd" and rest[2] == "ack":
        return Topic(tid, "ack", checked_identifier("request id", rest[1]))
    raise TopicError("unknown kiosk/v1 topic kind")


# --- common types --------------------------------------------------------------------------------


def utc_now() -> dt.datetime:
    """Now in UTC to the millisecond (as on the wire), so a parsed payload equals its model."""
    now = dt.datetime.now(dt.UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _to_utc(value: dt.datetime) -> dt.datetime:
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        # 9999-12-31T23:59:59-00:01 is a valid ISO 8601 time whose UTC is past year 9999.
        raise ValueError("time is out of range once converted to UTC") from None


def _format_utc(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# A timezone-aware instant: naive times are refused (a kiosk's local clock zone must never leak in
# as if it were UTC), any offset is accepted and normalised to UTC, JSON always says "Z".
UtcDatetime = Annotated[
    AwareDatetime,
    AfterValidator(_to_utc),
    PlainSerializer(_format_utc, return_type=str, when_used="json"),
]

TerminalState = Literal[
    "idle", "in_session", "maintenance", "updating", "degraded", "out_of_service"
]
TERMINAL_STATES: tuple[TerminalState, ...] = get_args(TerminalState)
DeviceHealth = Literal["ok", "degraded", "fault"]
Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
AckStatus = Literal["accepted", "in_progress", "succeeded", "failed", "rejected"]
FINAL_ACK_STATUSES: frozenset[AckStatus] = frozenset({"succeeded", "failed", "rejected"})
OtaState = Literal[
    "idle",
    "downloading",
    "verifying",
    "installing",
    "pending_commit",
    "committed",
    "rolled_back",
    "failed",
]
# The wire spelling of contracts.rating.RatingLevel (checked against it below).
RatingKey = Literal["1", "2", "3", "4", "5"]
RATING_KEYS: tuple[RatingKey, ...] = get_args(RatingKey)
if set(RATING_KEYS) != {level.wire for level in RatingLevel}:
    raise TypeError("RatingKey must spell every RatingLevel")

# Machine-readable codes (device names, reasons, event types, command names): lower-case words.
CODE_PATTERN: Final = r"^[a-z][a-z0-9_]{0,63}$"
_CODE = re.compile(CODE_PATTERN)
Code = Annotated[str, Field(pattern=CODE_PATTERN)]
Reason = Annotated[str, Field(pattern=r"^[a-z0-9_]{0,64}$")]
NonNegativeInt = Annotated[int, Field(ge=0)]
Percent = Annotated[float, Field(ge=0, le=100)]
ShortText = Annotated[str, Field(max_length=256)]


Site = Annotated[str, Field(min_length=1, max_length=SITE_MAX_CHARS,
                            pattern=f"^{SITE_PATTERN}$")]


def is_code(text: str) -> bool:
    """Whether ``text`` is a valid ``Code``, for callers that check before building a payload."""
    return _CODE.match(text) is not None


class Payload(BaseModel):
    """Fields every payload carries: the contract version and when it was made."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    v: Literal[1] = CONTRACT_VERSION
    ts: UtcDatetime = Field(default_factory=utc_now)


class _Part(BaseModel):
    """A closed nested object inside a payload."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# --- status --------------------------------------------------------------------------------------


class StatusPayload(Payload):
    """``status`` (QoS 1, retained): the birth (online) and the Will / clean goodbye (offline).

    The Will is registered before the connection it guards, so both carry the same ``bdseq``; a
    receiver pairs an ``online: false`` with the birth of the same ``bdseq`` and ignores stale ones.
    """

    online: bool
    bdseq: NonNegativeInt
    boot_id: Annotated[str, Field(min_length=1, max_length=64)]
    version: Annotated[str, Field(min_length=1, max_length=64)]
    site: Site
    started_at: UtcDatetime


# --- heartbeat -----------------------------------------------------------------------------------


class DeviceReport(_Part):
    """One device in a heartbeat: its health and, unless ok, a reason such as ``paper_out``."""

    state: DeviceHealth
    reason: Reason = ""


class SystemFigures(_Part):
    """Host figures; each is null where this machine cannot tell (no thermal zone, no /proc)."""

    cpu_pct: Percent | None
    mem_pct: Percent | None
    disk_free_mb: NonNegativeInt | None
    temp_c: float | None


class Counters(_Part):
    """Today's counts since local midnight; ``ratings`` by level, "1" 非常不满意 .. "5" 非常满意."""

    sessions: NonNegativeInt
    completed_errands: NonNegativeInt
    receipts: NonNegativeInt
    ratings: dict[RatingKey, NonNegativeInt]

    @field_validator("ratings")
    @classmethod
    def _every_level(cls, ratings: dict[RatingKey, int]) -> dict[RatingKey, int]:
        # Always all five levels, so a dashboard never has to guess whether a missing key means 0.
        return {level: ratings.get(level, 0) for level in RATING_KEYS}

    @classmethod
    def zero(cls) -> Self:
        return cls(sessions=0, completed_errands=0, receipts=0, ratings={})


class HeartbeatPayload(Payload):
    """``heartbeat`` (QoS 0, not retained): every ``interval_s``; stale after 3 x ``interval_s``."""

    seq: NonNegativeInt
    interval_s: Annotated[float, Field(gt=0, le=86400)]
    uptime_s: Annotated[float, Field(ge=0)]
    state: TerminalState
    version: Annotated[str, Field(min_length=1, max_length=64)]
    devices: dict[Code, DeviceReport]
    system: SystemFigures
    outbox: NonNegativeInt
    counters: Counters


# --- events and personal data --------------------------------------------------------------------

class EventPayload(Payload):
    """``event`` (QoS 1, not retained): an operations event plus its type-specific scalar fields.

    ``seq`` grows by one per event recorded on this terminal and is never reused, even across
    restarts, so a receiver can drop the duplicates that at-least-once delivery allows.
    """

    # Open on purpose: each event type adds its own fields; they are checked below.
    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    seq: NonNegativeInt
    type: Code
    severity: Severity

    @model_validator(mode="after")
    def _scalar_impersonal_fields(self) -> Self:
        extra = self.model_extra or {}
        if len(extra) > EVENT_FIELDS_MAX:
            raise ValueError(f"at most {EVENT_FIELDS_MAX} type-specific fields")
        for key, value in extra.items():
            problem = event_field_problem(key, value)
            if problem is not None:
                raise ValueError(problem)
        return self

    @property
    def fields(self) -> dict[str, EventValue]:
        """The type-specific fields."""
        return dict(self.model_extra or {})


# --- commands ------------------------------------------------------------------------------------


class CommandPayload(Payload):
    """``cmd/{request_id}`` (QoS 1, from the central side): run ``name`` with ``args`` once.

    The terminal rejects unknown names, bad args and commands past ``expires_at``, and answers a
    repeated request id with the ack it already gave.
    """

    name: Code
    args: dict[str, JsonValue] = Field(default_factory=dict)
    expires_at: UtcDatetime

    def expired(self, now: dt.datetime | None = None) -> bool:
        return (now or utc_now()) >= self.expires_at

    def too_far_ahead(self, now: dt.datetime | None = None,
                      max_lifetime: dt.timedelta = COMMAND_LIFETIME_MAX) -> bool:
        """Whether ``expires_at`` lies further ahead than a command may live: a receiver must
        remember a request id until its command expires, so the lifetime bounds that memory."""
        return self.expires_at - (now or utc_now()) > max_lifetime


class AckPayload(Payload):
    """``cmd/{request_id}/ack`` (QoS 1): progress and outcome of one command."""

    status: AckStatus
    error: ShortText | None = None
    result: dict[str, JsonValue] | None = None

    @model_validator(mode="after")
    def _error_says_why(self) -> Self:
        if self.status in ("failed", "rejected") and not self.error:
            raise ValueError(f"an ack with status {self.status} must say why in 'error'")
        if self.status == "succeeded" and self.error is not None:
            raise ValueError("a succeeded ack carries no error")
        return self

    @property
    def final(self) -> bool:
        return self.status in FINAL_ACK_STATUSES


# --- OTA -----------------------------------------------------------------------------------------


class OtaPayload(Payload):
    """``ota`` (QoS 1, retained): the update client's current state."""

    state: OtaState
    version: Annotated[str, Field(max_length=64)] | None = None
    percent: Percent | None = None
    reason: Reason | None = None

    @model_validator(mode="after")
    def _state_details(self) -> Self:
        if self.state == "downloading" and self.percent is None:
            raise ValueError("state downloading needs 'percent'")
        if self.state in ("failed", "rolled_back") and not self.reason:
            raise ValueError(f"state {self.state} needs a 'reason'")
        return self


# --- encoding and parsing ------------------------------------------------------------------------

AnyPayload = (
    StatusPayload | HeartbeatPayload | EventPayload | CommandPayload | AckPayload | OtaPayload
)
P = TypeVar("P", bound=Payload)


class PayloadError(ValueError):
    """A payload that is not valid contract v1 JSON; ``message`` says what is wrong.

    The message names fields and rules but never repeats the offending values, so it is safe to
    log and to send back in a rejection ack.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def encode(payload: Payload) -> bytes:
    """The UTF-8 JSON bytes to publish."""
    return payload.model_dump_json().encode("utf-8")


_SHOWN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,39}$")


def describe_validation_error(error: ValidationError) -> str:
    """A ValidationError as 'field: rule' pairs, without the offending values."""
    parts = []
    for item in error.errors(include_url=False, include_input=False, include_context=False):
        # Keys come from the sender too; one that is not a plain identifier is not repeated.
        where = ".".join(
            str(p) if isinstance(p, int) or _SHOWN_KEY.match(p) else "<key>" for p in item["loc"]
        ) or "payload"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def parse_payload(model: type[P], raw: bytes | str) -> P:
    """Parse and validate one payload of contract v1; raise PayloadError saying what is wrong.

    Strict where the contract is: at most ``MAX_PAYLOAD_BYTES``, JSON with no NaN or Infinity,
    no duplicate keys, numbers of sane length, nesting at most ``MAX_JSON_DEPTH`` deep, ``"v": 1``
    as an integer and ``ts`` present. Nothing else than PayloadError ever comes out.
    """
    document = load_json_object(raw)
    version = document.get("v")
    if version is None:
        raise PayloadError("missing contract version 'v'")
    if type(version) is not int or version != CONTRACT_VERSION:
        shown = version if type(version) is int else type(version).__name__
        raise PayloadError(f"unsupported contract version {shown}; this side speaks v1 "
                           "(an integer)")
    if "ts" not in document:
        raise PayloadError("missing timestamp 'ts'")
    try:
        return model.model_validate_json(raw)
    except ValidationError as e:
        raise PayloadError(f"invalid {model.__name__}: {describe_validation_error(e)}") from None


MAX_JSON_DEPTH: Final = 16
_MAX_NUMBER_CHARS = 40  # a double's longest exact form is 24 characters; an int64 needs 20
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(r"[\[\]{}]")


class _Refused(Exception):
    """Raised inside the JSON decoder's hooks; turned into PayloadError by load_json_object."""


def _refuse_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def _bounded_int(text: str) -> int:
    if len(text) > _MAX_NUMBER_CHARS:
        raise _Refused(f"a number of {len(text)} digits")
    return int(text)


def _bounded_float(text: str) -> float:
    if len(text) > _MAX_NUMBER_CHARS:
        raise _Refused(f"a number of {len(text)} characters")
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _Refused("a number out of range")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        # Two parsers may keep different copies of a repeated key: never guess which was meant.
        raise _Refused("a repeated key")
    return document


# Two decoders built once (json.loads builds one, and its C scanner, per call). The number hooks
# cost a Python call per number (a heartbeat has 17) and can only refuse a number of more than 40
# characters or a float that overflows, which no float without an exponent does. So a text where
# no digit comes right before an e or E (no number has an exponent) and no 41 number characters
# come in a row (no number is that long) decodes to the same document without them; any other
# text, even one where that happens inside a string, takes the checking decoder.
_CHECKING_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_int=_bounded_int,
                                     parse_float=_bounded_float, object_pairs_hook=_unique_keys)
_PLAIN_NUMBER_DECODER = json.JSONDecoder(parse_constant=_refuse_constant,
                                         object_pairs_hook=_unique_keys)
# bytes.translate and a substring search are C loops (a regex over a heartbeat costs more than
# the hooks it would spare): digits become "d" and e, E "e" in one map; every character a JSON
# number may hold becomes "n" in the other.
_DIGITS_AND_E = bytes(ord("d") if chr(b).isascii() and chr(b).isdigit() else
                      ord("e") if b in b"eE" else ord(" ") for b in range(256))
_NUMBER_CHARACTERS = bytes(ord("n") if b in b"0123456789+-.eE" else ord(" ") for b in range(256))
_LONG_NUMBER = b"n" * (_MAX_NUMBER_CHARS + 1)


def _decoder_for(utf8: bytes) -> json.JSONDecoder:
    """The decoder for a text whose UTF-8 form is ``utf8`` (a number's characters are ASCII)."""
    if b"de" in utf8.translate(_DIGITS_AND_E) or _LONG_NUMBER in utf8.translate(
            _NUMBER_CHARACTERS):
        return _CHECKING_DECODER
    return _PLAIN_NUMBER_DECODER


def _nesting_too_deep(text: str) -> bool:
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return False  # too few brackets to nest that deep (a heartbeat has 6): no scan needed
    depth = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub('""', text)):
        depth += 1 if bracket in "[{" else -1
        if depth > MAX_JSON_DEPTH:
            return True
    return False


def load_json_object(raw: bytes | str, *, max_bytes: int = MAX_PAYLOAD_BYTES) -> dict[str, Any]:
    """One JSON object from outside, bounded in size, depth and number length; PayloadError
    otherwise. Python's json would raise RecursionError, ValueError (an integer past 4,300
    digits) or take NaN; this never does."""
    if len(raw) > max_bytes:
        raise PayloadError(f"payload larger than {max_bytes} bytes")
    if isinstance(raw, bytes):
        utf8 = raw
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise PayloadError("payload is not UTF-8") from None
    else:
        text = raw
        utf8 = text.encode("utf-8", "surrogatepass")
        if len(utf8) > max_bytes:
            raise PayloadError(f"payload larger than {max_bytes} bytes")
    if _nesting_too_deep(text):
        raise PayloadError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        if text.startswith("\ufeff"):  # as json.loads says it
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        document: Any = _decoder_for(utf8).decode(text)
    except _Refused as e:
        raise PayloadError(f"malformed JSON: {e}") from None
    except json.JSONDecodeError as e:
        raise PayloadError(f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:  # the depth scan above should make this unreachable
        raise PayloadError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    if not isinstance(document, dict):
        raise PayloadError("payload must be a JSON object")
    return document
