"""The firmware's side of the wire: frames with length and CRC-16/CCITT-FALSE; fields by dictionary.

Frame: 0xA5, length (bytes of seq + id + payload), seq, id, payload, CRC16 big-endian over length
through payload. Written for MicroPython (struct, bytearray; no dataclasses, no typing at run
time); the host's ``devices.controller.protocol`` is the same format, and the tests hold both to
the same golden frames.
"""

import struct

FRAME_START = 0xA5
MAX_PAYLOAD = 240
EVENT_SEQ = 0
_OVERHEAD = 6  # start, length, seq, id, crc (2)


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_TABLE = _crc_table()  # 256 entries: a byte at a time, not a bit, on a 125 MHz M0+


def crc16(data: bytes | bytearray | memoryview, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection; "123456789" gives 0x29B1."""
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _TABLE[((crc >> 8) ^ byte) & 0xFF]
    return crc


def frame(seq: int, msg_id: int, payload: bytes) -> bytes:
    body = bytes((len(payload) + 2, seq, msg_id)) + payload
    return bytes((FRAME_START,)) + body + struct.pack(">H", crc16(body))


class Framer:
    """Incremental: feed bytes as they come, get whole frames; garbage is skipped and counted."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.dropped = 0  # bytes thrown away as not part of any good frame

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def expire(self) -> list[tuple[int, int, bytes]]:
        """The line went quiet mid-frame: that start byte was noise; look again behind it."""
        if not self._buffer:
            return []
        self.dropped += 1
        self._buffer = self._buffer[1:]
        return self.feed(b"")

    def feed(self, data: bytes) -> list[tuple[int, int, bytes]]:
        """Append bytes; returns the complete good frames as (seq, id, payload)."""
        self._buffer.extend(data)
        frames = []
        buffer = self._buffer
        while buffer:
            if buffer[0] != FRAME_START:
                # bytes, not bytearray: MicroPython's bytearray has no find().
                start = bytes(buffer).find(bytes((FRAME_START,)))
                skip = len(buffer) if start < 0 else start
                self.dropped += skip
                buffer = buffer[skip:]
                continue
            if len(buffer) < 2:
                break
            length = buffer[1]
            if length < 2 or length > MAX_PAYLOAD + 2:
                # Not a length we send: this 0xA5 was noise. Resync from the next byte.
                self.dropped += 1
                buffer = buffer[1:]
                continue
            total = length + 4
            if len(buffer) < total:
                break
            body = bytes(buffer[1 : 2 + length])
            received = (buffer[2 + length] << 8) | buffer[3 + length]
            if crc16(body) != received:
                self.dropped += 1
                buffer = buffer[1:]
                continue
            frames.append((body[1], body[2], body[3:]))
            buffer = buffer[total:]
        self._buffer = buffer
        return frames


_FORMATS = {"u8": ">B", "u16": ">H", "u32": ">I", "i16": ">h"}
_RANGES = {"u8": (0, 0xFF), "u16": (0, 0xFFFF), "u32": (0, 0xFFFFFFFF), "i16": (-0x8000, 0x7FFF)}


class CodecError(Exception):
    pass


class Codec:
    """Encodes and decodes messages by the dictionary's table (see ``dictionary.py``)."""

    def __init__(self, messages: tuple[tuple[int, str, str, tuple[tuple[str, str], ...]], ...]):
        self.by_id: dict[int, tuple[str, str, tuple[tuple[str, str], ...]]] = {}
        self.by_name: dict[str, tuple[int, str, tuple[tuple[str, str], ...]]] = {}
        for msg_id, name, direction, fields in messages:
            self.by_id[msg_id] = (name, direction, fields)
            self.by_name[name] = (msg_id, direction, fields)

    def encode(self, name: str, values: dict[str, int | bool | str]) -> tuple[int, bytes]:
        msg_id, _direction, fields = self.by_name[name]
        parts = []
        for field, fmt in fields:
            value = values[field]
            if fmt == "bool":
                parts.append(b"\x01" if value else b"\x00")
            elif fmt == "str":
                raw = str(value).encode("utf-8")
                if len(raw) > 255:
                    raise CodecError("string too long")
                parts.append(bytes((len(raw),)) + raw)
            else:
                low, high = _RANGES[fmt]
                number = int(value)
                if not low <= number <= high:
                    raise CodecError("out of range")
                parts.append(struct.pack(_FORMATS[fmt], number))
        payload = b"".join(parts)
        if len(payload) > MAX_PAYLOAD:
            raise CodecError("payload too long")
        return msg_id, payload

    def decode(self, msg_id: int, payload: bytes) -> tuple[str, str, dict[str, int | bool | str]]:
        """(name, direction, fields); CodecError: an unknown id, or a payload that does not fit."""
        entry = self.by_id.get(msg_id)
        if entry is None:
            raise CodecError("unknown message")
        name, direction, fields = entry
        values: dict[str, int | bool | str] = {}
        offset = 0
        try:
            for field, fmt in fields:
                if fmt == "bool":
                    flag = payload[offset]
                    if flag > 1:
                        raise CodecError("bad bool")
                    values[field] = flag == 1
                    offset += 1
                elif fmt == "str":
                    size = payload[offset]
                    raw = payload[offset + 1 : offset + 1 + size]
                    if len(raw) != size:
                        raise CodecError("short string")
                    values[field] = raw.decode("utf-8")
                    offset += 1 + size
                else:
                    size = struct.calcsize(_FORMATS[fmt])
                    if offset + size > len(payload):
                        raise CodecError("short payload")
                    values[field] = struct.unpack(_FORMATS[fmt], payload[offset : offset + size])[0]
                    offset += size
        except (IndexError, UnicodeError) as exc:
            raise CodecError("bad payload") from exc
        if offset != len(payload):
            raise CodecError("trailing bytes")
        return name, direction, values
