"""Co-processor protocol, pure: CRC16 framing, messages by dictionary, sequence numbers, handshake.

Frame (framing version 1, fixed whatever the dictionary becomes)::

    0xA5 | length | seq | id | payload ... | crc16 (big-endian)

``length`` counts seq + id + payload (2..242). The CRC is CRC-16/CCITT-FALSE (poly 0x1021, init
0xFFFF, no reflection, no final xor; check value 0x29B1 for "123456789"), taken over length
through payload: a corrupted length is caught too. Requests carry a sequence number 1..255
(wrapping, 0 skipped); the board's answer echoes it; events carry 0. The fields of each message
are laid out by ``contracts.controller`` (see there for the formats). No I/O, no clock here.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from typing import Final

from contracts.controller import (
    DICTIONARY_HASH,
    EVENT_SEQ,
    FRAME_START,
    INT_RANGES,
    MAX_PAYLOAD,
    MAX_STR_BYTES,
    MESSAGES,
    Direction,
    FieldFormat,
    MessageSpec,
)
from devices.base import DeviceError

FieldValue = int | bool | str
Fields = dict[str, FieldValue]

_MIN_LENGTH: Final = 2  # seq + id
_MAX_LENGTH: Final = MAX_PAYLOAD + 2
_STRUCT: Final = {
    FieldFormat.U8: struct.Struct(">B"),
    FieldFormat.U16: struct.Struct(">H"),
    FieldFormat.U32: struct.Struct(">I"),
    FieldFormat.I16: struct.Struct(">h"),
}


class ControllerReason(enum.StrEnum):
    """The reasons a controller's DeviceState carries; stable codes the heartbeat reports as is."""

    ABSENT = "absent"  # the port was never found since the driver started
    OFFLINE = "offline"  # the port was there and went away (cable, USB reset)
    NO_PERMISSION = "no_permission"
    BUSY = "busy"  # another process holds the port
    OPEN_FAILED = "open_failed"
    NO_ANSWER = "no_answer"  # the port is open but the board does not answer (reset, dead)
    DICTIONARY_MISMATCH = "dictionary_mismatch"  # its firmware speaks another dictionary
    RESYNCING = "resyncing"  # degraded: the board restarted, handshaking again
    GARBLED = "garbled"  # degraded: line noise was dropped, until the next good answer


class ProtocolError(DeviceError):
    """A frame or message that does not follow the protocol."""

    reason = "protocol_error"


class DictionaryMismatch(DeviceError):
    """The board's firmware was built from another message dictionary."""

    reason = ControllerReason.DICTIONARY_MISMATCH.value


class BoardRefused(DeviceError):
    """The board answered with ``error``; ``reason`` is its code (bad_value, no_session, ...)."""

    reason = "board_error"


# --- CRC and frames -------------------------------------------------------------------------------


def _table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC_TABLE: Final = _table()


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE of ``data``; ``crc16(b"123456789") == 0x29B1``."""
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[((crc >> 8) ^ byte) & 0xFF]
    return crc


@dataclass(frozen=True)
class Frame:
    seq: int
    msg_id: int
    payload: bytes = b""

    def encode(self) -> bytes:
        if not 0 <= self.seq <= 0xFF or not 0 <= self.msg_id <= 0xFF:
            raise ProtocolError("seq and id must fit a byte")
        if len(self.payload) > MAX_PAYLOAD:
            raise ProtocolError(f"payload of {len(self.payload)} bytes exceeds {MAX_PAYLOAD}")
        body = bytes((len(self.payload) + 2, self.seq, self.msg_id)) + self.payload
        return bytes((FRAME_START,)) + body + crc16(body).to_bytes(2, "big")


class FrameFault(enum.StrEnum):
    BAD_LENGTH = "bad_length"
    BAD_CRC = "bad_crc"
    CUT_OFF = "cut_off"  # a frame's start that never got its end (see Framer.expire)


@dataclass
class Framer:
    """Incremental deframer: feed bytes as they arrive, get whole frames in order.

    Resync: anything before a start byte is dropped; a start byte followed by an impossible length
    or a frame whose CRC fails is taken for noise, and the search goes on from the very next byte
    (not past the bad frame: a real frame may begin inside it). A stray start byte with a
    plausible length would hold back the good frames behind it until enough bytes came to fail
    its CRC; the reader calls ``expire()`` when the line has been quiet with bytes pending (a
    sender writes a frame in one go), which drops that start byte and looks again.
    """

    dropped: int = 0  # bytes dropped since creation
    faults: dict[FrameFault, int] = field(default_factory=lambda: dict.fromkeys(FrameFault, 0))
    _buffer: bytearray = field(default_factory=bytearray)

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buffer)

    def reset(self) -> None:
        self._buffer.clear()

    def feed(self, data: bytes) -> list[Frame]:
        buffer = self._buffer
        buffer.extend(data)
        frames: list[Frame] = []
        while buffer:
            if buffer[0] != FRAME_START:
                start = buffer.find(FRAME_START)
                skip = len(buffer) if start < 0 else start
                self.dropped += skip
                del buffer[:skip]
                continue
            if len(buffer) < 2:
                break
            length = buffer[1]
            if not _MIN_LENGTH <= length <= _MAX_LENGTH:
                self._drop_one(FrameFault.BAD_LENGTH)
                continue
            total = length + 4
            if len(buffer) < total:
                break
            body = bytes(buffer[1 : 2 + length])
            if crc16(body) != int.from_bytes(buffer[2 + length : total], "big"):
                self._drop_one(FrameFault.BAD_CRC)
                continue
            frames.append(Frame(body[1], body[2], body[3:]))
            del buffer[:total]
        return frames

    def expire(self) -> list[Frame]:
        """The line went quiet in the middle of a frame: its start was noise. Returns the
        frames found in what was held back."""
        if not self._buffer:
            return []
        self._drop_one(FrameFault.CUT_OFF)
        return self.feed(b"")

    def _drop_one(self, fault: FrameFault) -> None:
        self.faults[fault] += 1
        self.dropped += 1
        del self._buffer[:1]


# --- messages ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    name: str
    fields: Fields
    direction: Direction


class Dictionary:
    """Message specs by id and name, with the codec. The default is the contract's dictionary."""

    def __init__(self, messages: tuple[MessageSpec, ...] = MESSAGES) -> None:
        self.messages = messages
        self.by_id = {spec.msg_id: spec for spec in messages}
        self.by_name = {spec.name: spec for spec in messages}

    def spec(self, name: str) -> MessageSpec:
        try:
            return self.by_name[name]
        except KeyError:
            raise ProtocolError(f"no message {name!r} in the dictionary") from None

    def encode(self, name: str, fields: Fields) -> tuple[int, bytes]:
        """(id, payload); ProtocolError for a missing, extra or out-of-range field."""
        spec = self.spec(name)
        expected = {item.name for item in spec.fields}
        if set(fields) != expected:
            raise ProtocolError(
                f"{name}: fields {sorted(fields)} given, {sorted(expected)} expected"
            )
        parts: list[bytes] = []
        for item in spec.fields:
            parts.append(_encode_field(name, item.name, item.fmt, fields[item.name]))
        payload = b"".join(parts)
        if len(payload) > MAX_PAYLOAD:
            raise ProtocolError(f"{name}: payload too long")
        return spec.msg_id, payload

    def frame(self, seq: int, name: str, **fields: FieldValue) -> Frame:
        msg_id, payload = self.encode(name, fields)
        return Frame(seq, msg_id, payload)

    def decode(self, frame: Frame) -> Message:
        spec = self.by_id.get(frame.msg_id)
        if spec is None:
            raise ProtocolError(f"unknown message id 0x{frame.msg_id:02X}")
        payload = frame.payload
        values: Fields = {}
        offset = 0
        for item in spec.fields:
            if item.fmt is FieldFormat.BOOL:
                if offset >= len(payload) or payload[offset] > 1:
                    raise ProtocolError(f"{spec.name}.{item.name}: not a bool")
                values[item.name] = payload[offset] == 1
                offset += 1
            elif item.fmt is FieldFormat.STR:
                if offset >= len(payload):
                    raise ProtocolError(f"{spec.name}.{item.name}: missing")
                size = payload[offset]
                raw = payload[offset + 1 : offset + 1 + size]
                if len(raw) != size:
                    raise ProtocolError(f"{spec.name}.{item.name}: string cut short")
                try:
                    values[item.name] = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise ProtocolError(f"{spec.name}.{item.name}: not UTF-8") from None
                offset += 1 + size
            else:
                packer = _STRUCT[item.fmt]
                if offset + packer.size > len(payload):
                    raise ProtocolError(f"{spec.name}.{item.name}: payload cut short")
                values[item.name] = int(packer.unpack_from(payload, offset)[0])
                offset += packer.size
        if offset != len(payload):
            raise ProtocolError(f"{spec.name}: {len(payload) - offset} trailing bytes")
        return Message(spec.name, values, spec.direction)


def _encode_field(message: str, name: str, fmt: FieldFormat, value: FieldValue) -> bytes:
    where = f"{message}.{name}"
    if fmt is FieldFormat.BOOL:
        if not isinstance(value, bool):
            raise ProtocolError(f"{where}: a bool expected")
        return b"\x01" if value else b"\x00"
    if fmt is FieldFormat.STR:
        if not isinstance(value, str):
            raise ProtocolError(f"{where}: a str expected")
        raw = value.encode("utf-8")
        if len(raw) > MAX_STR_BYTES:
            raise ProtocolError(f"{where}: longer than {MAX_STR_BYTES} bytes")
        return bytes((len(raw),)) + raw
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError(f"{where}: an int expected")
    low, high = INT_RANGES[fmt]
    if not low <= value <= high:
        raise ProtocolError(f"{where}: {value} outside {low}..{high}")
    return _STRUCT[fmt].pack(value)


class SequenceCounter:
    """Request sequence numbers 1..255, wrapping; 0 is the events' (EVENT_SEQ)."""

    def __init__(self, start: int = 1) -> None:
        if not 1 <= start <= 0xFF:
            raise ValueError("start must be 1..255")
        self._next = start

    def next(self) -> int:
        seq = self._next
        self._next = 1 if seq == 0xFF else seq + 1
        return seq


def is_event(frame: Frame) -> bool:
    return frame.seq == EVENT_SEQ


# --- handshake -----------------------------------------------------------------------------------


def hello(seq: int, dictionary: Dictionary | None = None) -> Frame:
    """The handshake's request: our dictionary hash. Its layout never changes (bootstrap)."""
    return (dictionary or Dictionary()).frame(seq, "hello", dictionary_hash=DICTIONARY_HASH)


@dataclass(frozen=True)
class Handshake:
    """What the board told us in its hello_answer."""

    dictionary_hash: int
    firmware_version: str


def check_hello_answer(message: Message, expected_hash: int = DICTIONARY_HASH) -> Handshake:
    """The board's identity; DictionaryMismatch when it speaks another dictionary."""
    if message.name != "hello_answer":
        raise ProtocolError(f"hello answered with {message.name}")
    board_hash = int(message.fields["dictionary_hash"])
    version = str(message.fields["firmware_version"])
    if board_hash != expected_hash:
        raise DictionaryMismatch(
            f"co-processor firmware {version} speaks message dictionary 0x{board_hash:08X}, "
            f"this terminal 0x{expected_hash:08X}: flash the firmware of this release"
        )
    return Handshake(board_hash, version)
