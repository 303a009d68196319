"""Co-processor protocol: CRC, golden frames, every message both ways, resync, handshake."""

from __future__ import annotations

import binascii
import dataclasses
from pathlib import Path

import pytest

from contracts.controller import (
    BOOTSTRAP,
    DICTIONARY_HASH,
    FRAME_START,
    MAX_PAYLOAD,
    MESSAGES,
    Direction,
    FieldFormat,
    MessageSpec,
    canonical_json,
    dictionary_hash,
    render_firmware_dictionary,
)
from devices.base import DeviceError
from devices.controller import protocol
from devices.controller.firmware import dictionary as firmware_dictionary
from devices.controller.firmware import wire
from devices.controller.protocol import (
    Dictionary,
    DictionaryMismatch,
    FieldValue,
    Frame,
    FrameFault,
    Framer,
    Message,
    ProtocolError,
    SequenceCounter,
    check_hello_answer,
    crc16,
)

FIRMWARE_DIR = Path(__file__).resolve().parents[2] / "devices" / "controller" / "firmware"

# (seq, message, fields, the exact bytes on the wire). Written down once from the spec's layout
# and never regenerated: a change here is a change of the wire format.
GOLDEN = [
    (1, "hello", {"dictionary_hash": 0x12EA3252}, "a5 06 01 01 12 ea 32 52 37 65"),
    (
        1,
        "hello_answer",
        {"dictionary_hash": 0x12EA3252, "firmware_version": "1.0.0"},
        "a5 0c 01 02 12 ea 32 52 05 31 2e 30 2e 30 82 95",
    ),
    (2, "kick", {}, "a5 02 02 14 96 2b"),
    (2, "ack", {}, "a5 02 02 15 86 0a"),
    (0, "door", {"open": True}, "a5 03 00 21 01 3a ea"),
    (
        3,
        "set_thermal",
        {"fan_on_cc": 4500, "fan_off_cc": 4000, "alarm_cc": -1},
        "a5 08 03 18 11 94 0f a0 ff ff d9 fb",
    ),
    (
        0,
        "temperature",
        {"temperature_cc": 4512, "fan_on": True, "high": False},
        "a5 06 00 23 11 a0 01 00 55 33",
    ),
    (9, "error", {"code": "no_session"}, "a5 0d 09 03 0a 6e 6f 5f 73 65 73 73 69 6f 6e 74 eb"),
]

SAMPLES: dict[FieldFormat, tuple[FieldValue, FieldValue]] = {
    FieldFormat.U8: (0, 0xFF),
    FieldFormat.U16: (0, 0xFFFF),
    FieldFormat.U32: (0, 0xFFFF_FFFF),
    FieldFormat.I16: (-0x8000, 0x7FFF),
    FieldFormat.BOOL: (False, True),
    FieldFormat.STR: ("", "门已打开 ok"),
}


def test_crc16_is_ccitt_false_with_its_check_value() -> None:
    assert crc16(b"123456789") == 0x29B1
    assert wire.crc16(b"123456789") == 0x29B1
    # Python's own CRC-CCITT (XMODEM polynomial) started at 0xFFFF is the same algorithm.
    for data in (b"", b"\x00", b"\xa5\x06\x01\x01", bytes(range(256))):
        assert crc16(data) == binascii.crc_hqx(data, 0xFFFF) == wire.crc16(data)


@pytest.mark.parametrize(("seq", "name", "fields", "wire_hex"), GOLDEN)
def test_golden_frames_host_and_firmware(
    seq: int, name: str, fields: dict[str, int | bool | str], wire_hex: str
) -> None:
    # Host encoder, firmware encoder and both decoders agree with the bytes written down.
    expected = bytes.fromhex(wire_hex)
    assert Dictionary().frame(seq, name, **fields).encode() == expected
    codec = wire.Codec(firmware_dictionary.MESSAGES)
    msg_id, payload = codec.encode(name, fields)
    assert wire.frame(seq, msg_id, payload) == expected
    (frame,) = Framer().feed(expected)
    assert frame.seq == seq
    assert Dictionary().decode(frame).fields == fields
    ((fw_seq, fw_id, fw_payload),) = wire.Framer().feed(expected)
    assert (fw_seq, codec.decode(fw_id, fw_payload)[0]) == (seq, name)
    assert codec.decode(fw_id, fw_payload)[2] == fields


@pytest.mark.parametrize("spec", MESSAGES, ids=lambda spec: spec.name)
@pytest.mark.parametrize("extreme", [0, 1])
def test_every_message_round_trips_between_host_and_firmware(
    spec: MessageSpec, extreme: int
) -> None:
    fields = {item.name: SAMPLES[item.fmt][extreme] for item in spec.fields}
    host = Dictionary()
    frame = host.frame(200, spec.name, **fields)
    data = frame.encode()
    assert host.decode(Framer().feed(data)[0]) == Message(spec.name, fields, spec.direction)
    codec = wire.Codec(firmware_dictionary.MESSAGES)
    ((seq, msg_id, payload),) = wire.Framer().feed(data)
    assert codec.decode(msg_id, payload) == (spec.name, spec.direction.value, fields)
    assert wire.frame(seq, *codec.encode(spec.name, fields)) == data


def test_framer_resyncs_after_garbage_fed_byte_by_byte() -> None:
    # Noise (with a stray start byte and a plausible length) around two frames, one byte a feed.
    kick = Dictionary().frame(5, "kick").encode()
    door = Dictionary().frame(0, "door", open=False).encode()
    stream = b"\x00\xff\xa5\x07\x99garbage" + kick + b"\xa5\xa5\x01" + door + b"\xa5"
    framer = Framer()
    frames: list[Frame] = []
    for byte in stream:
        frames += framer.feed(bytes((byte,)))
    # "a5 a5" reads as a start and a length of 165: the door frame waits behind it until the
    # line goes quiet and the reader expires the stray start.
    assert [(f.seq, f.msg_id) for f in frames] == [(5, 0x14)]
    frames += framer.expire()
    assert [(f.seq, f.msg_id) for f in frames] == [(5, 0x14), (0, 0x21)]
    assert framer.pending == 1  # the trailing start byte waits for a length
    assert framer.dropped == len(stream) - len(kick) - len(door) - 1
    assert framer.faults[FrameFault.CUT_OFF] == 1
    fw = wire.Framer()
    fw_frames = [item for byte in stream for item in fw.feed(bytes((byte,)))] + fw.expire()
    assert [(seq, msg_id) for seq, msg_id, _ in fw_frames] == [(5, 0x14), (0, 0x21)]


def test_framer_counts_bad_length_and_bad_crc_and_finds_the_next_frame() -> None:
    good = Dictionary().frame(7, "ping", token=1).encode()
    corrupt = bytearray(good)
    corrupt[5] ^= 0x40  # a bit flipped in the payload
    too_long = b"\xa5\xf3" + bytes(10)  # 0xF3 > 242: no frame is that long
    framer = Framer()
    frames = framer.feed(bytes(corrupt) + too_long + good)
    assert frames == [Frame(7, 0x10, b"\x00\x00\x00\x01")]
    assert framer.faults[FrameFault.BAD_CRC] == 1
    assert framer.faults[FrameFault.BAD_LENGTH] == 1
    assert framer.dropped == len(corrupt) + len(too_long)


def test_a_frame_split_anywhere_is_reassembled() -> None:
    data = Dictionary().frame(3, "set_light", pattern="maintenance").encode()
    for cut in range(1, len(data)):
        framer = Framer()
        assert framer.feed(data[:cut]) == []
        assert len(framer.feed(data[cut:])) == 1


@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("ping", {"token": -1}),
        ("ping", {"token": 1 << 32}),
        ("ping", {"token": True}),
        ("ping", {}),
        ("ping", {"token": 1, "extra": 2}),
        ("set_light", {"pattern": 3}),
        ("set_light", {"pattern": "x" * 256}),
        ("door", {"open": 1}),
        ("no_such_message", {}),
    ],
)
def test_bad_fields_are_refused_before_the_wire(
    name: str, fields: dict[str, int | bool | str]
) -> None:
    with pytest.raises(ProtocolError):
        Dictionary().frame(1, name, **fields)


@pytest.mark.parametrize(
    ("msg_id", "payload"),
    [
        (0x10, b"\x00\x00\x01"),  # ping cut short
        (0x10, b"\x00\x00\x00\x01\x00"),  # a trailing byte
        (0x21, b"\x02"),  # a bool that is neither 0 nor 1
        (0x16, b"\x05ok"),  # a string shorter than its length
        (0x16, b"\x02\xff\xfe"),  # not UTF-8
        (0x7F, b""),  # an id nobody knows
    ],
)
def test_undecodable_payloads_raise_protocol_error(msg_id: int, payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        Dictionary().decode(Frame(1, msg_id, payload))
    with pytest.raises(wire.CodecError):
        wire.Codec(firmware_dictionary.MESSAGES).decode(msg_id, payload)


def test_frame_limits() -> None:
    with pytest.raises(ProtocolError):
        Frame(1, 1, bytes(241)).encode()
    with pytest.raises(ProtocolError):
        Frame(256, 1).encode()
    assert len(Frame(1, 1, bytes(240)).encode()) == 246


def test_sequence_numbers_wrap_past_255_to_1_never_0() -> None:
    counter = SequenceCounter(254)
    assert [counter.next() for _ in range(4)] == [254, 255, 1, 2]


def test_handshake_accepts_our_hash_and_refuses_another() -> None:
    ours = Message(
        "hello_answer",
        {"dictionary_hash": DICTIONARY_HASH, "firmware_version": "1.0.0"},
        Direction.ANSWER,
    )
    assert check_hello_answer(ours).firmware_version == "1.0.0"
    theirs = dataclasses.replace(
        ours, fields={"dictionary_hash": 0xDEADBEEF, "firmware_version": "0.9.0"}
    )
    with pytest.raises(DictionaryMismatch) as caught:
        check_hello_answer(theirs)
    assert caught.value.reason == "dictionary_mismatch"
    assert isinstance(caught.value, DeviceError)
    assert "0xDEADBEEF" in str(caught.value) and "0.9.0" in str(caught.value)
    assert protocol.hello(1).encode()[4:8] == DICTIONARY_HASH.to_bytes(4, "big")


def test_dictionary_hash_is_pinned() -> None:
    # Changing the dictionary changes this hash, and every board in the field then refuses (or is
    # refused by) the new terminal until reflashed: update it deliberately, with the firmware.
    assert DICTIONARY_HASH == 0x12EA3252 == dictionary_hash()
    assert firmware_dictionary.DICTIONARY_HASH == DICTIONARY_HASH
    assert canonical_json().startswith('{"framing":1,"messages":[{"answer":"hello_answer"')


def test_any_change_to_the_dictionary_changes_the_hash() -> None:
    door = next(spec for spec in MESSAGES if spec.name == "door")
    renamed = dataclasses.replace(door, fields=(dataclasses.replace(door.fields[0], name="ajar"),))
    changed = tuple(renamed if spec is door else spec for spec in MESSAGES)
    assert dictionary_hash(changed) != DICTIONARY_HASH


def test_bootstrap_messages_never_change() -> None:
    # How two dictionaries find out they differ: fixed in every dictionary there will ever be.
    layout = [(s.msg_id, s.name, [(f.name, f.fmt.value) for f in s.fields]) for s in BOOTSTRAP]
    assert layout == [
        (1, "hello", [("dictionary_hash", "u32")]),
        (2, "hello_answer", [("dictionary_hash", "u32"), ("firmware_version", "str")]),
        (3, "error", [("code", "str")]),
    ]


def test_firmware_dictionary_module_is_current() -> None:
    # Regenerate with:
    #   python -m contracts.controller --firmware devices/controller/firmware/dictionary.py
    current = (FIRMWARE_DIR / "dictionary.py").read_text(encoding="utf-8")
    assert current == render_firmware_dictionary()
    assert wire.FRAME_START == FRAME_START
    assert wire.MAX_PAYLOAD == MAX_PAYLOAD
