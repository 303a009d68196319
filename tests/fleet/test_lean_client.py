"""The monitor's lean PUBLISH reader against paho's own on the same bytes: MQTT 5 with and
without properties, 3.1.1, QoS 0 and 1, the retain flag, a packet longer than one read, bytes
dripping in a few at a time, and a broken packet refused as paho refuses it."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fleet.lean_client import LeanClient

Seen = tuple[bytes, bytes, int, bool, int]


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish(topic: str, payload: bytes, *, qos: int, mid: int = 0, retain: bool = False,
            v5: bool = True, properties: Properties | None = None) -> bytes:
    raw = topic.encode()
    body = struct.pack("!H", len(raw)) + raw + (struct.pack("!H", mid) if qos else b"")
    if v5:
        body += properties.pack() if properties is not None else b"\x00"  # type: ignore[no-untyped-call]
    body += payload
    return bytes([0x30 | (qos << 1) | int(retain)]) + varint(len(body)) + body


def expiry_and_user_property() -> Properties:
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    properties.MessageExpiryInterval = 300
    properties.UserProperty = [("k", "v" * 200)]  # a properties length over one byte
    properties.ContentType = "application/json"
    return properties


def messages(v5: bool, *, large: bool) -> list[tuple[bytes, Seen]]:
    """(packet, what a reader must hand on) pairs."""
    cases = [
        ("kiosk/v1/T-1/heartbeat", b'{"v":1}', 0, 0, False, None),
        ("kiosk/v1/T-1/event", b'{"v":1,"seq":1}', 1, 7, False, None),
        ("kiosk/v1/T-1/status", b'{"online":true}', 1, 65535, True, None),
        ("kiosk/v1/T-3/ack", b"", 1, 9, False, None),
    ]
    if large:
        cases.append(("kiosk/v1/T-2/heartbeat", b"x" * 200_000, 1, 8, False, None))  # 4 reads
    if v5:
        cases.append(("kiosk/v1/T-4/event", b'{"p":1}', 1, 10, False,
                      expiry_and_user_property()))
    return [(publish(topic, payload, qos=qos, mid=mid, retain=retain, v5=v5,
                     properties=properties),
             (topic.encode(), payload, qos, retain, mid))
            for topic, payload, qos, mid, retain, properties in cases]


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    yield ours, theirs
    ours.close()
    theirs.close()


def read_all(client: paho.Client, sock: socket.socket, feed: socket.socket, data: bytes,
             piece: int) -> list[Seen]:
    seen: list[Seen] = []
    if isinstance(client, LeanClient):
        client.on_publish_raw = lambda *m: seen.append(m)
    else:
        client.on_message = lambda _c, _u, m: seen.append(
            (m.topic.encode(), bytes(m.payload), m.qos, bool(m.retain), m.mid))
    client._sock = sock  # the socket paho reads: a socketpair stands in for TCP
    for start in range(0, len(data), piece):
        feed.sendall(data[start:start + piece])
        for _ in range(3):  # a piece completes a packet at most (paho reads one a call)
            assert client.loop_read() == MQTTErrorCode.MQTT_ERR_SUCCESS
    for _ in range(100):  # what the readers still have to take after the whole lot at once
        assert client.loop_read() == MQTTErrorCode.MQTT_ERR_SUCCESS
    return seen


@pytest.mark.parametrize("v5", [True, False], ids=["mqtt5", "mqtt311"])
@pytest.mark.parametrize("piece", [1_000_000, 7], ids=["at-once", "dripping"])
def test_the_lean_reader_hands_on_what_paho_does(v5: bool, piece: int) -> None:
    protocol = MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311
    cases = messages(v5, large=piece > 7)
    data = b"".join(packet for packet, _ in cases)
    expected = [seen for _, seen in cases]
    results = []
    for kind in (paho.Client, LeanClient):
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        theirs.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        try:
            client = kind(callback_api_version=CallbackAPIVersion.VERSION2, client_id="t",
                          protocol=protocol, manual_ack=True)
            results.append(read_all(client, ours, theirs, data, piece))
        finally:
            ours.close()
            theirs.close()
    assert results[0] == expected
    assert results[1] == expected


def test_properties_longer_than_the_packet_are_a_protocol_error(
        pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    raw = b"kiosk/v1/T-1/event"
    body = struct.pack("!H", len(raw)) + raw + struct.pack("!H", 5) + varint(50) + b"{}"
    theirs.sendall(bytes([0x32]) + varint(len(body)) + body)
    client = LeanClient(callback_api_version=CallbackAPIVersion.VERSION2, client_id="t",
                        protocol=MQTTProtocolVersion.MQTTv5, manual_ack=True)
    seen: list[Seen] = []
    client.on_publish_raw = lambda *m: seen.append(m)
    client._sock = ours
    assert client.loop_read() == MQTTErrorCode.MQTT_ERR_PROTOCOL
    assert seen == []
