"""Commands to terminals: one request id per terminal, an expiry the broker enforces, the acks.

DESIGN 6: a command is published (QoS 1, never retained) on ``kiosk/v1/{tid}/cmd/{request_id}``
with ``expires_at`` and an MQTT 5 message expiry interval of the time left until then, so the
broker drops it when it expires even if the terminal's clock is wrong; a terminal answers on
``.../ack`` (accepted, in_progress, then succeeded, failed or rejected). A command to a site or to
the whole fleet fans out into one command per terminal, each with its own request id, so each
terminal's acks stay its own.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from contracts.mqtt import (
    COMMAND_LIFETIME_MAX,
    AckPayload,
    CommandPayload,
    PayloadError,
    ack_topic,
    command_topic,
    encode,
    parse_payload,
    utc_now,
)

# The names terminals know (DESIGN 6); a terminal rejects any other, so the fleet side says so
# before sending. Later issues add content_update and the ota_* commands.
KNOWN_COMMANDS = frozenset({
    "ping", "set_heartbeat_interval", "help_ack", "restart_app", "test_print", "set_staff_badges",
})
DEFAULT_TTL_S = 300.0
CONNECT_TIMEOUT_S = 10.0


class CommandError(ValueError):
    """A command that cannot be sent as asked (unknown name, bad ttl, no broker)."""


@dataclass(frozen=True)
class Command:
    """One command to one terminal, as sent."""

    request_id: str
    tid: str
    payload: CommandPayload

    @property
    def topic(self) -> str:
        return command_topic(self.tid, self.request_id)


def new_request_id() -> str:
    """A request id no other command shares: the time it was made and 64 random bits."""
    return f"fleet-{utc_now():%Y%m%dT%H%M%S}-{secrets.token_hex(8)}"


def build_commands(tids: Iterable[str], name: str, args: dict[str, Any] | None = None, *,
                   ttl_s: float = DEFAULT_TTL_S, now: dt.datetime | None = None) -> list[Command]:
    """One command per terminal; CommandError for a name no terminal knows or a ttl out of
    bounds (more than 0, at most the contract's 7 days)."""
    if name not in KNOWN_COMMANDS:
        raise CommandError(f"unknown command {name!r}; terminals know "
                           f"{', '.join(sorted(KNOWN_COMMANDS))}")
    if not 0 < ttl_s <= COMMAND_LIFETIME_MAX.total_seconds():
        raise CommandError("ttl must be more than 0 s and at most 7 days")
    expires_at = (now or utc_now()) + dt.timedelta(seconds=ttl_s)
    try:
        payload = CommandPayload(name=name, args=args or {}, expires_at=expires_at)
    except ValueError as e:
        raise CommandError(f"bad command: {e}") from None
    return [Command(new_request_id(), tid, payload) for tid in tids]


def expiry_properties(command: Command, now: dt.datetime | None = None) -> Properties:
    """PUBLISH properties with the time left until ``expires_at`` (whole seconds, at least 1)."""
    left = (command.payload.expires_at - (now or utc_now())).total_seconds()
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    properties.MessageExpiryInterval = max(1, int(left))
    return properties


@dataclass
class AckLog:
    """Acks as they arrive, per request id (thread-safe)."""

    acks: dict[str, list[AckPayload]] = field(default_factory=dict)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def add(self, request_id: str, ack: AckPayload) -> None:
        with self._changed:
            self.acks.setdefault(request_id, []).append(ack)
            self._changed.notify_all()

    def wait_final(self, request_ids: Iterable[str], timeout_s: float) -> bool:
        """Whether every one of ``request_ids`` had a final ack within ``timeout_s``."""
        wanted = set(request_ids)
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not all(any(a.final for a in self.acks.get(r, ())) for r in wanted):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True


class CommandSender:
    """A short-lived MQTT 5 client that sends commands and hears their acks."""

    def __init__(self, host: str, port: int, *, client_id: str = "",
                 on_ack: Callable[[str, str, AckPayload], None] | None = None) -> None:
        self.log = AckLog()
        self._on_ack = on_ack
        self._connected = threading.Event()
        self._refused: str | None = None
        self._client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                                   client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5)
        self._client.on_connect = self._connected_now
        self._client.on_message = self._message
        self._host, self._port = host, port

    def __enter__(self) -> CommandSender:
        try:
            self._client.connect(self._host, self._port, keepalive=30)
        except OSError as e:
            raise CommandError(f"cannot reach the broker {self._host}:{self._port}: "
                               f"{e.strerror or e}") from None
        self._client.loop_start()
        if not self._connected.wait(CONNECT_TIMEOUT_S) or self._refused is not None:
            self._client.loop_stop()
            raise CommandError(f"the broker did not take the connection: "
                               f"{self._refused or 'no answer'}")
        return self

    def __exit__(self, *_: object) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def send(self, commands: Iterable[Command], timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        """Subscribe to each command's acks, then publish it (QoS 1, with its expiry)."""
        for command in commands:
            self._client.subscribe(ack_topic(command.tid, command.request_id), qos=1)
            info = self._client.publish(command.topic, encode(command.payload), qos=1,
                                        properties=expiry_properties(command))
            info.wait_for_publish(timeout_s)
            if not info.is_published():
                raise CommandError(f"the broker did not acknowledge command {command.request_id}")

    def _connected_now(self, _client: paho.Client, _userdata: object, _flags: object,
                       reason: ReasonCode, _properties: object) -> None:
        if reason.is_failure:
            self._refused = reason.getName()
        self._connected.set()

    def _message(self, _client: paho.Client, _userdata: object,
                 message: paho.MQTTMessage) -> None:
        parts = message.topic.split("/")
        if len(parts) != 6 or parts[3] != "cmd" or parts[5] != "ack":
            return
        try:
            ack = parse_payload(AckPayload, bytes(message.payload))
        except PayloadError:
            return  # the monitor counts refusals; this client only follows its own commands
        self.log.add(parts[4], ack)
        if self._on_ack is not None:
            self._on_ack(parts[2], parts[4], ack)
