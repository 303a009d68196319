"""The co-processor's message dictionary: each message's id, name, direction, fields; its hash.

The wire protocol is data, as in Klipper: this table is the one source of truth. The host's codec
(``devices.controller.protocol``) reads it directly; the firmware cannot import ``contracts`` on
the board, so ``python -m contracts.controller --firmware PATH`` writes the same table as a plain
MicroPython module (``devices/controller/firmware/dictionary.py``, checked current by a test).
Both sides declare the dictionary's hash; the handshake compares them, and a host refuses a board
whose hash differs (fault ``dictionary_mismatch``) instead of misreading its fields.

Field formats (all big-endian): ``u8``, ``u16``, ``u32``, ``i16``, ``bool`` (one byte, 0 or 1,
anything else is an error) and ``str`` (a u8 length then that many UTF-8 bytes). Temperatures
travel as ``i16`` centi-degrees Celsius (``*_cc``): -327.68 to 327.67 °C, no floats on the wire.

The frame (framing version 1) and the bootstrap messages (``hello``, ``hello_answer``, ``error``)
never change, whatever else the dictionary becomes: they are how two dictionaries find out that
they differ.
"""

from __future__ import annotations

import argparse
import enum
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

FRAMING_VERSION: Final = 1
FRAME_START: Final = 0xA5  # first byte of every frame; the framer resyncs on it after garbage
MAX_PAYLOAD: Final = 240  # bytes of fields in one frame; the length byte covers seq + id + this
EVENT_SEQ: Final = 0  # sequence number of a board's unsolicited events; requests use 1..255
HASH_BYTES: Final = 4  # the dictionary hash is the first 4 bytes of a SHA-256, as a u32


class Direction(enum.StrEnum):
    COMMAND = "command"  # host -> board; always answered, with the command's sequence number
    ANSWER = "answer"  # board -> host, echoing the command's sequence number
    EVENT = "event"  # board -> host, unsolicited, sequence number EVENT_SEQ


class FieldFormat(enum.StrEnum):
    U8 = "u8"
    U16 = "u16"
    U32 = "u32"
    I16 = "i16"
    BOOL = "bool"
    STR = "str"


# Inclusive ranges of the integer formats, checked where a value is encoded.
INT_RANGES: Final = {
    FieldFormat.U8: (0, 0xFF),
    FieldFormat.U16: (0, 0xFFFF),
    FieldFormat.U32: (0, 0xFFFF_FFFF),
    FieldFormat.I16: (-0x8000, 0x7FFF),
}
MAX_STR_BYTES: Final = 0xFF


@dataclass(frozen=True)
class FieldSpec:
    name: str
    fmt: FieldFormat


@dataclass(frozen=True)
class MessageSpec:
    """One message; a command also names its usual answer (any command may get ``error``)."""

    msg_id: int
    name: str
    direction: Direction
    fields: tuple[FieldSpec, ...]
    answer: str = ""


def _message(
    msg_id: int, name: str, direction: Direction, fields: str = "", answer: str = ""
) -> MessageSpec:
    # Klipper-like declaration: "door_open=bool tamper=bool".
    specs = tuple(
        FieldSpec(key, FieldFormat(fmt))
        for key, fmt in (item.split("=") for item in fields.split())
    )
    return MessageSpec(msg_id, name, direction, specs, answer)


C, A, E = Direction.COMMAND, Direction.ANSWER, Direction.EVENT

# Light patterns the firmware knows (set_light's ``pattern``); anything else is refused.
LIGHT_PATTERNS: Final = ("off", "ok", "attention", "fault", "maintenance")

# Why the board itself last started (``reset_cause``) and why it last cut the host's power.
RESET_CAUSES: Final = ("power_on", "firmware_watchdog", "soft", "other")
POWER_CYCLE_CAUSES: Final = ("", "kick_timeout")

# Codes of the ``error`` answer.
ERROR_CODES: Final = (
    "no_session",  # no matching hello since the board started: handshake first
    "unknown_message",  # an id this firmware does not know, or not a command
    "bad_payload",  # fields that do not decode by the dictionary
    "bad_value",  # fields that decode but are out of range (a pattern, thresholds, timeouts)
)

BOOTSTRAP: Final = (
    _message(0x01, "hello", C, "dictionary_hash=u32", answer="hello_answer"),
    _message(0x02, "hello_answer", A, "dictionary_hash=u32 firmware_version=str"),
    _message(0x03, "error", A, "code=str"),
)

MESSAGES: Final[tuple[MessageSpec, ...]] = (
    *BOOTSTRAP,
    _message(0x10, "ping", C, "token=u32", answer="pong"),
    _message(0x11, "pong", A, "token=u32"),
    _message(0x12, "get_status", C, answer="status"),
    _message(
        0x13,
        "status",
        A,
        "boot_id=u16 reset_cause=str uptime_s=u32 door_open=bool tamper=bool temperature_cc=i16"
        " fan_on=bool temperature_high=bool light=str power_cycles=u16 last_cause=str"
        " watchdog_timeout_s=u16 grace_s=u16 grace_left_s=u16 fan_on_cc=i16 fan_off_cc=i16"
        " alarm_cc=i16",
    ),
    _message(0x14, "kick", C, answer="ack"),
    _message(0x15, "ack", A),
    _message(0x16, "set_light", C, "pattern=str", answer="ack"),
    _message(0x17, "set_watchdog", C, "timeout_s=u16 grace_s=u16 power_off_s=u8", answer="ack"),
    _message(0x18, "set_thermal", C, "fan_on_cc=i16 fan_off_cc=i16 alarm_cc=i16", answer="ack"),
    _message(0x20, "boot", E, "boot_id=u16 reset_cause=str power_cycles=u16"),
    _message(0x21, "door", E, "open=bool"),
    _message(0x22, "tamper", E, "triggered=bool"),
    _message(0x23, "temperature", E, "temperature_cc=i16 fan_on=bool high=bool"),
    _message(0x24, "fan", E, "on=bool"),
    _message(0x25, "power_cycle", E, "power_cycles=u16 cause=str"),
)


def check_dictionary(messages: tuple[MessageSpec, ...]) -> None:
    """Raise ValueError unless ids and names are unique, ids fit a byte and answers exist."""
    ids = [spec.msg_id for spec in messages]
    names = [spec.name for spec in messages]
    if len(set(ids)) != len(ids) or len(set(names)) != len(names):
        raise ValueError("message ids and names must be unique")
    by_name = {spec.name: spec for spec in messages}
    for spec in messages:
        if not 0 < spec.msg_id <= 0xFF:
            raise ValueError(f"{spec.name}: id must be 1..255")
        if len({field.name for field in spec.fields}) != len(spec.fields):
            raise ValueError(f"{spec.name}: field names must be unique")
        if spec.direction is Direction.COMMAND:
            answer = by_name.get(spec.answer)
            if answer is None or answer.direction is not Direction.ANSWER:
                raise ValueError(f"{spec.name}: its answer must be an answer message")
        elif spec.answer:
            raise ValueError(f"{spec.name}: only commands name an answer")
    if messages[: len(BOOTSTRAP)] != BOOTSTRAP:
        raise ValueError("the bootstrap messages must come first, unchanged")


def canonical_json(messages: tuple[MessageSpec, ...] = MESSAGES) -> str:
    """The dictionary as canonical JSON (sorted keys, no spaces): what the hash is taken of."""
    document = {
        "framing": FRAMING_VERSION,
        "messages": [
            {
                "id": spec.msg_id,
                "name": spec.name,
                "direction": spec.direction.value,
                "fields": [[field.name, field.fmt.value] for field in spec.fields],
                "answer": spec.answer,
            }
            for spec in sorted(messages, key=lambda spec: spec.msg_id)
        ],
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def dictionary_hash(messages: tuple[MessageSpec, ...] = MESSAGES) -> int:
    """First HASH_BYTES of SHA-256 over the canonical JSON, big-endian, as an unsigned int."""
    digest = hashlib.sha256(canonical_json(messages).encode("ascii")).digest()
    return int.from_bytes(digest[:HASH_BYTES], "big")


DICTIONARY_HASH: Final = dictionary_hash()


def render_firmware_dictionary(messages: tuple[MessageSpec, ...] = MESSAGES) -> str:
    """The firmware's ``dictionary.py``: the same table as plain tuples, and its hash."""
    check_dictionary(messages)
    lines = [
        '"""The message dictionary the firmware speaks.',
        "",
        "Generated by `python -m contracts.controller --firmware PATH`: do not edit.",
        '"""',
        "",
        f"DICTIONARY_HASH = 0x{dictionary_hash(messages):08X}",
        f"FRAMING_VERSION = {FRAMING_VERSION}",
        "",
        "# (id, name, direction, ((field, format), ...))",
        "MESSAGES: tuple[tuple[int, str, str, tuple[tuple[str, str], ...]], ...] = (",
    ]
    for spec in sorted(messages, key=lambda spec: spec.msg_id):
        head = f"    (0x{spec.msg_id:02X}, {spec.name!r}, {spec.direction.value!r}, "
        fields = [f"({field.name!r}, {field.fmt.value!r})," for field in spec.fields]
        one_line = f"{head}({' '.join(fields)})),"
        if len(one_line) <= 100:
            lines.append(one_line)
        else:
            lines.append(f"{head}(")
            lines.extend(f"        {field}" for field in fields)
            lines.append("    )),")
    lines.append(")")
    return "\n".join(lines).replace("'", '"') + "\n"


check_dictionary(MESSAGES)


def main(argv: list[str] | None = None) -> int:
    """Print the hash, or write the firmware's dictionary module."""
    parser = argparse.ArgumentParser(prog="python -m contracts.controller", description=__doc__)
    parser.add_argument("--firmware", metavar="PATH", help="write the firmware's dictionary.py")
    args = parser.parse_args(argv)
    if args.firmware:
        Path(args.firmware).write_text(render_firmware_dictionary(), encoding="utf-8")
    print(f"dictionary hash 0x{DICTIONARY_HASH:08X}, {len(MESSAGES)} messages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
