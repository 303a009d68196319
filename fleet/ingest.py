"""What one MQTT message on the contract's topics tells the fleet side, or why it is refused; pure.

The monitor receives whatever reaches ``kiosk/v1/#``: terminals' births and Wills, heartbeats,
events, acks and OTA states, but also its own commands (``cmd/{id}``), and anything a broken or
hostile client publishes there. Each message becomes one typed record, or a ``Refusal`` with a
reason code (counted as ``kiosk_messages_rejected_total{reason}``) and a message that names the
topic's kind and the rule, never the payload's values: nothing a terminal sends is logged as is.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from contracts.identifiers import TopicError
from contracts.mqtt import (
    AckPayload,
    EventPayload,
    HeartbeatPayload,
    OtaPayload,
    PayloadError,
    StatusPayload,
    Topic,
    parse_payload,
    parse_topic,
)


class RefusalReason(enum.StrEnum):
    """Why a message was not taken (the ``reason`` label of the rejection counter)."""

    BAD_TOPIC = "bad_topic"  # not a contract topic, or an id that breaks the rules
    CONTRACT = "contract"  # not valid contract v1 for its topic
    RETAINED = "retained"  # a retained heartbeat, event or ack: never retained by the contract
    OWN_COMMAND = "own_command"  # a command: the fleet side's own, not a terminal's word


@dataclass(frozen=True)
class Status:
    tid: str
    payload: StatusPayload
    received: dt.datetime


@dataclass(frozen=True)
class Heartbeat:
    tid: str
    payload: HeartbeatPayload
    received: dt.datetime


@dataclass(frozen=True)
class Event:
    tid: str
    payload: EventPayload
    received: dt.datetime


@dataclass(frozen=True)
class Ack:
    tid: str
    request_id: str
    payload: AckPayload
    received: dt.datetime


@dataclass(frozen=True)
class Ota:
    tid: str
    payload: OtaPayload
    received: dt.datetime


Seen = Status | Heartbeat | Event | Ack | Ota


@dataclass(frozen=True)
class Refusal:
    """A message not taken: ``tid`` where the topic named a valid one (for per-terminal counts)."""

    reason: RefusalReason
    message: str
    tid: str | None = None


def read_message(topic: str, payload: bytes, received: dt.datetime, *,
                 retained: bool = False) -> Seen | Refusal:
    """The record ``payload`` on ``topic`` makes, received at ``received`` (the monitor's clock).

    ``retained``: whether the broker delivered it from its retained store.
    """
    try:
        parsed = parse_topic(topic)
    except TopicError as e:
        return Refusal(RefusalReason.BAD_TOPIC, f"refused a message: {e}")
    tid = parsed.terminal_id
    if parsed.kind == "cmd":
        return Refusal(RefusalReason.OWN_COMMAND, "a command, not a terminal's message", tid)
    if retained and parsed.kind not in ("status", "ota"):
        # Delivered from the broker's retained store, it would come again at every subscribe
        # and be counted again: only status and ota are retained (a live status arrives with
        # the flag clear, so its absence says nothing).
        return Refusal(RefusalReason.RETAINED,
                       f"a retained {parsed.kind} message: only status and ota are retained", tid)
    try:
        return _record(parsed, payload, received)
    except PayloadError as e:
        return Refusal(RefusalReason.CONTRACT, f"{parsed.kind} refused: {e.message}", tid)


def _record(topic: Topic, payload: bytes, received: dt.datetime) -> Seen:
    tid = topic.terminal_id
    match topic.kind:
        case "status":
            return Status(tid, parse_payload(StatusPayload, payload), received)
        case "heartbeat":
            return Heartbeat(tid, parse_payload(HeartbeatPayload, payload), received)
        case "event":
            return Event(tid, parse_payload(EventPayload, payload), received)
        case "ota":
            return Ota(tid, parse_payload(OtaPayload, payload), received)
        case "ack":
            assert topic.request_id is not None  # parse_topic sets it for acks
            return Ack(tid, topic.request_id, parse_payload(AckPayload, payload), received)
    raise AssertionError(f"unhandled topic kind {topic.kind}")  # pragma: no cover
