"""The virtual co-processor: real firmware in its own process behind a pty, byte by byte."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator

import pytest
import serial

from contracts.controller import DICTIONARY_HASH, LIGHT_PATTERNS, Direction
from devices.controller.firmware.light import PATTERNS
from devices.controller.protocol import Dictionary, Frame, Framer, Message
from simulator.vcontroller import VirtualController

CODEC = Dictionary()


@pytest.fixture
def board() -> Iterator[VirtualController]:
    with VirtualController() as controller:
        yield controller


@pytest.fixture
def port(board: VirtualController) -> Iterator[serial.Serial]:
    link = serial.Serial(board.path, 115200, timeout=0.05)
    yield link
    link.close()


def receive(link: serial.Serial, count: int = 1, timeout: float = 2.0) -> list[Frame]:
    framer, frames = Framer(), list[Frame]()
    deadline = time.monotonic() + timeout
    while len(frames) < count and time.monotonic() < deadline:
        frames += framer.feed(link.read(256))
    return frames


def answers(link: serial.Serial, count: int = 1) -> list[tuple[int, Message]]:
    return [
        (frame.seq, CODEC.decode(frame))
        for frame in receive(link, count + 5, timeout=0.6)
        if frame.seq != 0  # events (the boot event) are not answers
    ][:count]


def test_path_is_a_pty_and_the_board_boots(board: VirtualController) -> None:
    assert os.path.islink(board.path)
    assert os.readlink(board.path).startswith("/dev/pts/")
    assert board.boots == 1
    assert board.host_powered and board.power_cycles == 0


def test_hello_then_a_retransmitted_request_gets_the_same_answer(
    port: serial.Serial,
) -> None:
    # -> get_status before hello: error no_session. -> hello(our hash): hello_answer.
    # -> ping seq 5 twice (its answer "lost"): the same pong twice, served from the cache.
    time.sleep(0.4)  # the board process starting
    port.reset_input_buffer()
    port.write(CODEC.frame(1, "get_status").encode())
    error = Message("error", {"code": "no_session"}, Direction.ANSWER)
    assert answers(port) == [(1, error)]
    port.write(CODEC.frame(2, "hello", dictionary_hash=DICTIONARY_HASH).encode())
    ((seq, hello),) = answers(port)
    assert (seq, hello.fields["dictionary_hash"]) == (2, DICTIONARY_HASH)
    ping = CODEC.frame(5, "ping", token=42).encode()
    port.write(ping)
    port.write(ping)
    assert [(seq, m.fields) for seq, m in answers(port, 2)] == [(5, {"token": 42})] * 2


def test_reset_keeps_the_port_unplug_removes_it(board: VirtualController) -> None:
    device = os.readlink(board.path)
    board.reset()
    time.sleep(0.1)
    assert os.readlink(board.path) == device and board.boots == 2 and board.running
    board.unplug()
    assert not os.path.lexists(board.path) and not board.running
    board.replug()
    assert os.path.islink(board.path) and board.boots == 3


def test_a_hung_firmware_is_reset_by_its_own_watchdog(
    board: VirtualController, port: serial.Serial
) -> None:
    time.sleep(0.4)
    port.reset_input_buffer()
    board.hang()
    # machine.WDT (5 s) resets the board; it boots again and says so with a boot event.
    frames = receive(port, 1, timeout=8.0)
    assert board.watchdog_resets == 1 and board.boots == 2
    boot = CODEC.decode(frames[0])
    assert boot.name == "boot" and boot.fields["reset_cause"] == "firmware_watchdog"


def test_the_micropython_stand_ins_stay_in_the_board_process(board: VirtualController) -> None:
    assert board.running
    assert "machine" not in sys.modules
    assert not hasattr(time, "ticks_ms")


def test_light_patterns_agree_with_the_contract() -> None:
    assert set(LIGHT_PATTERNS) == set(PATTERNS)
