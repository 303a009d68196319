"""paho's MQTT client with a leaner way in for PUBLISH packets, for the fleet monitor.

Per message, paho builds an ``MQTTMessage`` and, on MQTT 5, a ``Properties`` object (about 30
attributes set one by one), matches the topic against per-filter callbacks under a lock, and
reads the socket three times (the command byte, the length bytes, the rest). The monitor reads no
publish properties and has one callback: here a PUBLISH of QoS 0 or 1 is decoded straight from
the packet's bytes (the properties skipped by their length) and handed to ``on_publish_raw``,
and the socket is read in chunks of 64 KiB kept in a buffer. That is about half of paho's cost a
message (measured: tests/fleet/test_lean_client.py compares the two on the same bytes).

It overrides two of paho's internal methods (``_handle_publish``, ``_sock_recv``): paho-mqtt 2.x
(pinned below 3 in pyproject.toml). Anything unusual takes paho's own path: QoS 2, a client
without ``on_publish_raw``.
"""

from __future__ import annotations

from collections.abc import Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.exception import MalformedPacket

READ_CHUNK = 65536

# (topic as sent, payload, QoS, retained, packet id)
RawPublish = Callable[[bytes, bytes, int, bool, int], None]


class LeanClient(paho.Client):
    """A paho ``Client`` whose QoS 0 and 1 PUBLISH packets go to ``on_publish_raw``."""

    on_publish_raw: RawPublish | None = None
    _buffer: bytes = b""
    _offset: int = 0

    def buffered(self) -> int:
        """Bytes read off the socket and not yet taken by paho (a ``select`` does not see them)."""
        return len(self._buffer) - self._offset

    def reconnect(self) -> MQTTErrorCode:
        # What was left of the last connection's bytes belongs to it.
        self._buffer, self._offset = b"", 0
        return super().reconnect()

    def _sock_recv(self, bufsize: int) -> bytes:
        buffer, offset = self._buffer, self._offset
        if offset >= len(buffer):
            # paho's own read (its TLS and closed-socket handling); BlockingIOError when empty,
            # b"" at the end of the stream, as paho expects of it.
            buffer = super()._sock_recv(READ_CHUNK)
            if not buffer:
                return buffer
            offset = 0
        end = offset + bufsize
        if end >= len(buffer):
            self._buffer, self._offset = b"", 0
            return buffer[offset:] if offset else buffer
        self._buffer, self._offset = buffer, end
        return buffer[offset:end]

    def _handle_publish(self) -> MQTTErrorCode:
        take = self.on_publish_raw
        header = self._in_packet["command"]
        qos = (header & 0x06) >> 1
        if take is None or qos == 2:
            return super()._handle_publish()
        packet = self._in_packet["packet"]
        try:
            end = 2 + ((packet[0] << 8) | packet[1])
            topic = bytes(packet[2:end])
            mid = 0
            if qos:
                mid = (packet[end] << 8) | packet[end + 1]
                end += 2
            if self._protocol == MQTTProtocolVersion.MQTTv5:
                # The properties: a variable byte integer length, then that many bytes.
                length, shift = 0, 0
                while True:
                    byte = packet[end]
                    end += 1
                    length |= (byte & 0x7F) << shift
                    if not byte & 0x80:
                        break
                    shift += 7
                    if shift > 21:
                        raise MalformedPacket("properties length over 4 bytes")
                end += length
            elif end == 2:
                raise MalformedPacket("topic can't be empty in MQTTv3")
        except IndexError as e:
            raise MalformedPacket("PUBLISH shorter than its headers") from e
        if end > len(packet):
            raise MalformedPacket("PUBLISH properties longer than the packet")
        take(topic, bytes(packet[end:]), qos, bool(header & 0x01), mid)
        return MQTTErrorCode.MQTT_ERR_SUCCESS
