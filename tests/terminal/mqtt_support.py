"""The fleet's side of the wire for terminal tests: a recording paho client, commands, waits."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from contracts.mqtt import (
    AckPayload,
    CommandPayload,
    HeartbeatPayload,
    Payload,
    StatusPayload,
    ack_topic,
    command_topic,
    encode,
    heartbeat_topic,
    parse_payload,
    status_topic,
    utc_now,
)
from terminal.mqtt_link import BrokerSettings

TID = "T-TEST-0001"

P = TypeVar("P", bound=Payload)


# --- the fleet's seat -----------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool


class Recorder:
    """The fleet's seat: a paho client recording everything under ``kiosk/v1/#``.

    With a ``client_id`` it keeps a persistent session, so (with the fixture's persistent broker)
    nothing published while it reconnects after a broker restart is lost to the test.
    """

    def __init__(self, port: int, *, client_id: str | None = None) -> None:
        self.messages: list[Received] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self._client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id or "",
            clean_session=client_id is None,
        )
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(0.1, 0.5)  # type: ignore[arg-type]
        self._client.connect("127.0.0.1", port, keepalive=10)
        self._client.loop_start()
        assert self._subscribed.wait(5), "recorder could not subscribe"

    def _on_connect(self, client: paho.Client, *_: Any) -> None:
        client.subscribe("kiosk/v1/#", qos=1)

    def _on_subscribe(self, *_: Any) -> None:
        self._subscribed.set()

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain)))
            self._cond.notify_all()

    def wait_for(
        self, predicate: Callable[[Received], bool], *, after: int = 0, timeout: float = 5.0
    ) -> tuple[int, Received]:
        """The first message from index ``after`` on that matches, waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i in range(after, len(self.messages)):
                    if predicate(self.messages[i]):
                        return i, self.messages[i]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    topics = [m.topic for m in self.messages[after:]]
                    raise AssertionError(f"no matching message in {timeout} s; saw {topics}")
                self._cond.wait(remaining)

    def all(self, topic: str) -> list[Received]:
        with self._cond:
            return [m for m in self.messages if m.topic == topic]

    def publish(self, topic: str, payload: bytes) -> None:
        self._client.publish(topic, payload, qos=1).wait_for_publish(5)

    def sync(self) -> None:
        """Return once the broker has the acknowledgements of everything received so far.

        Our PUBACKs and this PUBLISH leave on one connection in order, so the broker's PUBACK for
        it comes after it took ours; stopping the broker earlier may have it redeliver (QoS 1).
        """
        self.publish("test/sync", b"")

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def status_is(*, online: bool, bdseq: int | None = None,
              tid: str = TID) -> Callable[[Received], bool]:
    def match(m: Received) -> bool:
        if m.topic != status_topic(tid):
            return False
        status = parse_payload(StatusPayload, m.payload)
        return status.online is online and (bdseq is None or status.bdseq == bdseq)

    return match


def heartbeat_with_seq(seq: int) -> Callable[[Received], bool]:
    def match(m: Received) -> bool:
        return (m.topic == heartbeat_topic(TID)
                and parse_payload(HeartbeatPayload, m.payload).seq == seq)

    return match


def parsed(model: type[P], messages: list[Received]) -> list[P]:
    return [parse_payload(model, m.payload) for m in messages]


def eventually(condition: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.01)


def fast_settings(port: int) -> BrokerSettings:
    return BrokerSettings(host="127.0.0.1", port=port, keepalive_s=5, reconnect_min_s=0.1,
                          reconnect_max_s=0.5, connect_timeout_s=1.0)



def command_payload(name: str = "ping", *, args: dict[str, Any] | None = None,
                    expires_in_s: float = 60.0) -> bytes:
    return encode(CommandPayload(
        name=name, args=args or {}, expires_at=utc_now() + dt.timedelta(seconds=expires_in_s)))


def send_command(rec: Recorder, request_id: str, name: str = "ping", *,
                 args: dict[str, Any] | None = None, expires_in_s: float = 60.0,
                 raw: bytes | None = None, tid: str = TID) -> None:
    payload = raw if raw is not None else command_payload(name, args=args,
                                                          expires_in_s=expires_in_s)
    rec.publish(command_topic(tid, request_id), payload)


def acks_until_final(rec: Recorder, request_id: str, count: int = 1, *,
                     tid: str = TID) -> list[Received]:
    """Every ack for ``request_id`` up to and including its ``count``-th final one."""
    topic = ack_topic(tid, request_id)
    finals = 0
    index = 0
    while finals < count:
        index, _ = rec.wait_for(
            lambda m: m.topic == topic and parse_payload(AckPayload, m.payload).final,
            after=index)
        finals += 1
        index += 1
    return [m for m in rec.messages[:index] if m.topic == topic]


