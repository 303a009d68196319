"""The virtual SAM module on its pty, driven with bare pyserial: golden answers and every fault.

Each test writes command frames from the reference table and compares the answer bytes; reads
are bounded by the port's timeout.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from devices.idcard import protocol
from devices.idcard.protocol import Command, Status
from simulator.vsam import NOISE, VirtualSam, compose_text_block

ID_NUMBER = "11010519491231002X"
NAME = "张三"
FIND = bytes.fromhex("AA AA AA 96 69 00 03 20 01 22")
SELECT = bytes.fromhex("AA AA AA 96 69 00 03 20 02 21")
READ = bytes.fromhex("AA AA AA 96 69 00 03 30 01 32")
SAM_STATUS = bytes.fromhex("AA AA AA 96 69 00 03 11 FF ED")
SAM_ID = bytes.fromhex("AA AA AA 96 69 00 03 12 FF EE")
FIND_OK = bytes.fromhex("AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 97")
NO_CARD = bytes.fromhex("AA AA AA 96 69 00 04 00 00 80 84")
OK = bytes.fromhex("AA AA AA 96 69 00 04 00 00 90 94")


@pytest.fixture
def vsam(tmp_path: Path) -> Iterator[VirtualSam]:
    with VirtualSam(directory=tmp_path) as virtual:
        yield virtual


@pytest.fixture
def port(vsam: VirtualSam) -> Iterator[serial.Serial]:
    with serial.Serial(vsam.path, 115200, timeout=1.0) as link:
        yield link


def ask(port: serial.Serial, frame: bytes, size: int) -> bytes:
    port.write(frame)
    return bytes(port.read(size))


def silence(port: serial.Serial, seconds: float = 0.1) -> bytes:
    port.timeout = seconds
    return bytes(port.read(4096))


def test_golden_answers_for_a_whole_read(vsam: VirtualSam, port: serial.Serial) -> None:
    assert ask(port, SAM_STATUS, len(OK)) == OK
    assert ask(port, FIND, len(NO_CARD)) == NO_CARD
    vsam.place(ID_NUMBER, NAME, valid_until=dt.date(2036, 5, 1))
    assert ask(port, FIND, len(FIND_OK)) == FIND_OK
    selected = ask(port, SELECT, 19)
    assert selected == protocol.answer_frame(Status.OK, bytes(8))
    answer = ask(port, READ, protocol.READ_ANSWER_SIZE)
    assert len(answer) == 1295
    assert answer[5:14] == bytes.fromhex("0508 000090 0100 0400")
    (parsed,) = protocol.AnswerFramer().feed(answer)
    assert isinstance(parsed, protocol.Answer)
    holder = protocol.holder_from_read_answer(parsed)
    assert (holder.id_number, holder.name, holder.birth_date, holder.expires) == (
        ID_NUMBER,
        NAME,
        dt.date(1949, 12, 31),
        dt.date(2036, 5, 1),
    )
    assert silence(port) == b""  # one answer per command, nothing more
    assert vsam.received() == [
        Command.SAM_STATUS,
        Command.FIND,
        Command.FIND,
        Command.SELECT,
        Command.READ_TEXT_PHOTO,
    ]


def test_sam_number_and_module_errors(vsam: VirtualSam, port: serial.Serial) -> None:
    answer = ask(port, SAM_ID, 5 + 2 + 3 + 16 + 1)
    assert answer[7:10] == b"\x00\x00\x90"
    # A read before select, a damaged frame, an unknown command.
    vsam.place(ID_NUMBER, NAME)
    assert ask(port, READ, 11) == protocol.answer_frame(Status.READ_FAILED)
    assert ask(port, FIND[:-1] + b"\x00", 11) == protocol.answer_frame(Status.CHECKSUM_ERROR)
    assert ask(port, protocol.frame(b"\x99\x01"), 11) == protocol.answer_frame(Status.COMMAND_ERROR)
    vsam.remove()
    assert ask(port, SELECT, 11) == protocol.answer_frame(Status.SELECT_FAILED)


def test_commands_split_across_writes_and_glued_together(
    vsam: VirtualSam, port: serial.Serial
) -> None:
    for byte in SAM_STATUS:
        port.write(bytes((byte,)))
        port.flush()
    assert port.read(len(OK)) == OK
    port.write(SAM_STATUS + FIND)
    assert port.read(len(OK) + len(NO_CARD)) == OK + NO_CARD


@pytest.mark.parametrize(
    ("mode", "command", "expected"),
    [
        ("no_card", FIND, NO_CARD),
        ("sam_self_test", SAM_STATUS, protocol.answer_frame(Status.SAM_SELF_TEST_FAILED)),
        ("garbage", FIND, NOISE + FIND_OK),
        ("checksum", FIND, FIND_OK[:-1] + bytes((FIND_OK[-1] ^ 0x5A,))),
    ],
)
def test_fault_modes_change_the_answer(
    vsam: VirtualSam, port: serial.Serial, mode: str, command: bytes, expected: bytes
) -> None:
    vsam.place(ID_NUMBER, NAME)
    vsam.fault(mode)
    assert ask(port, command, len(expected)) == expected


def test_read_faults(vsam: VirtualSam, port: serial.Serial) -> None:
    vsam.place(ID_NUMBER, NAME)
    vsam.fault("sam_self_test")
    assert ask(port, READ, 11) == protocol.answer_frame(Status.SAM_SELF_TEST_FAILED)
    vsam.fault("unknown_card_type")
    assert ask(port, READ, 11) == protocol.answer_frame(Status.UNKNOWN_CARD_TYPE)
    vsam.fault("mid_frame")
    assert ask(port, FIND, len(FIND_OK)) == FIND_OK
    assert ask(port, SELECT, 19)[9] == 0x90
    port.write(READ)
    partial = silence(port, 0.3)
    assert 0 < len(partial) < protocol.READ_ANSWER_SIZE
    assert partial.startswith(protocol.PREAMBLE + b"\x05\x08")
    vsam.fault("silent")
    port.write(SAM_STATUS)
    assert silence(port) == b""
    assert vsam.received()[-1] is Command.SAM_STATUS  # heard, not answered
    vsam.fault("ok")
    assert ask(port, SAM_STATUS, len(OK)) == OK


def test_slow_answers(tmp_path: Path) -> None:
    with (
        VirtualSam(directory=tmp_path, slow_s=0.2) as slow,
        serial.Serial(slow.path, timeout=1.0) as link,
    ):
        started = time.monotonic()
        assert ask(link, SAM_STATUS, len(OK)) == OK
        assert time.monotonic() - started >= 0.2


def test_unplug_and_replug(vsam: VirtualSam, port: serial.Serial) -> None:
    first = vsam.device
    vsam.unplug()
    assert not vsam.plugged
    assert not os.path.exists(vsam.path)
    with pytest.raises(serial.SerialException):
        port.write(SAM_STATUS)
        port.read(1)
    vsam.replug()
    assert vsam.plugged
    assert os.path.realpath(vsam.path) == vsam.device != ""
    with serial.Serial(vsam.path, timeout=1.0) as again:
        assert ask(again, SAM_STATUS, len(OK)) == OK
    assert first  # a pty name; the new one may reuse it


def test_place_validates_what_no_card_holds(vsam: VirtualSam) -> None:
    for bad in ("1101051949123100", "11010519491231002Y", ""):
        with pytest.raises(ValueError):
            vsam.place(bad, NAME)
    with pytest.raises(ValueError):
        vsam.place(ID_NUMBER, "")
    with pytest.raises(ValueError):
        vsam.place(ID_NUMBER, "名" * 16)
    with pytest.raises(ValueError):
        vsam.place("11010519491331002X", NAME)  # month 13, and no birth given
    vsam.place("11010519491331002X", NAME, birth=dt.date(1949, 12, 31))
    with pytest.raises(ValueError):
        vsam.place(ID_NUMBER, NAME, valid_until="someday")
    with pytest.raises(ValueError):
        vsam.fault("melted")
    with pytest.raises(ValueError):
        vsam.place_text_block(bytes(10))


@pytest.mark.parametrize(
    ("valid_until", "expires"),
    [
        ("长期", None),
        ("2030-06-01", dt.date(2030, 6, 1)),
        ("20300601", dt.date(2030, 6, 1)),
        (dt.date(2031, 1, 2), dt.date(2031, 1, 2)),
    ],
)
def test_placed_card_parses_back(
    vsam: VirtualSam, port: serial.Serial, valid_until: str | dt.date, expires: dt.date | None
) -> None:
    vsam.place(ID_NUMBER, NAME, sex="2", valid_until=valid_until)
    ask(port, FIND, len(FIND_OK))
    ask(port, SELECT, 19)
    (answer,) = protocol.AnswerFramer().feed(ask(port, READ, protocol.READ_ANSWER_SIZE))
    assert isinstance(answer, protocol.Answer)
    holder = protocol.holder_from_read_answer(answer)
    assert holder.expires == expires
    assert holder.name == NAME
    assert holder.sex.value == "female"


def test_composed_block_with_every_field() -> None:
    block = compose_text_block(
        id_number=ID_NUMBER,
        name="名" * 15,
        sex="1",
        birth=dt.date(1949, 12, 31),
        valid_until=None,
    )
    assert len(block) == 256
    assert block[248:250] == b" \x00"  # the citizen card's type flag
    assert protocol.holder_from_text_block(block).name == "名" * 15


def test_main_prints_the_path_and_takes_commands(tmp_path: Path) -> None:
    process = subprocess.run(
        [sys.executable, "-m", "simulator.vsam", "--dir", str(tmp_path)],
        input=f"place {ID_NUMBER} {NAME} 长期\nfault silent\nnonsense\nremove\n",
        capture_output=True,
        text=True,
        timeout=20,
        cwd=Path(__file__).resolve().parents[2],
        check=True,
    )
    assert process.stdout.splitlines()[0] == f"ID card reader: {tmp_path / 'idcard'}"
    assert "commands:" in process.stderr
