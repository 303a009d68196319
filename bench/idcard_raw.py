"""Baseline for the ID card reader figures: find + select + read over bare pyserial, no driver.

``raw_read_ms(path, rounds)`` times the three exchanges a read needs with nothing but pyserial
calls on a port opened once: write the fixed command frames from reference/devices.md 2.2, read
each answer's header and then exactly the length it announces. No framer, no resync, no resend,
no state: the least a read can cost on this link, for the driver's read to be compared with.

    .venv/bin/python -m bench.idcard_raw [--rounds 200]

starts a virtual SAM module, places a card and prints the median.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import serial

from simulator.vsam import VirtualSam

FIND = bytes.fromhex("AA AA AA 96 69 00 03 20 01 22")
SELECT = bytes.fromhex("AA AA AA 96 69 00 03 20 02 21")
READ = bytes.fromhex("AA AA AA 96 69 00 03 30 01 32")
HEADER = 7  # preamble (5) and length (2)
STATUS_AT = HEADER + 2  # SW3 after SW1 SW2


def _exchange(link: serial.Serial, command: bytes, expect_status: int) -> bytes:
    link.write(command)
    header = link.read(HEADER)
    if len(header) != HEADER:
        raise TimeoutError("no answer from the module")
    rest = link.read(int.from_bytes(header[5:7], "big"))
    answer = header + rest
    if len(answer) < STATUS_AT + 2 or answer[STATUS_AT] != expect_status:
        raise RuntimeError(f"unexpected answer to {command[7:9].hex()}")
    return answer


def raw_read_ms(path: str, rounds: int) -> list[float]:
    """Milliseconds for each of ``rounds`` find + select + read sequences on ``path``."""
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    timings: list[float] = []
    with serial.Serial(path, 115200, timeout=2.0, write_timeout=2.0) as link:
        link.reset_input_buffer()
        for _ in range(rounds):
            started = time.perf_counter()
            _exchange(link, FIND, 0x9F)
            _exchange(link, SELECT, 0x90)
            answer = _exchange(link, READ, 0x90)
            timings.append((time.perf_counter() - started) * 1000.0)
            if len(answer) != 1295:
                raise RuntimeError(f"read answer of {len(answer)} bytes, not 1295")
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.idcard_raw", description=__doc__)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args(argv)
    with VirtualSam() as sam:
        sam.place("11010519491231002X", "张三")
        timings = raw_read_ms(sam.path, args.rounds)
    print(
        f"raw find+select+read over pyserial: median {statistics.median(timings):.3f} ms "
        f"(min {min(timings):.3f}, max {max(timings):.3f}, {len(timings)} rounds)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
