"""Co-processor round trip: command to answer through the production driver, against a raw echo.

    .venv/bin/python -m bench.controller [--rounds 500]

Figures, median and 99th percentile in ms:

- driver: ``ControllerDriver.request("ping", token=i)`` from the caller's thread, through the
  driver thread, the pty, the real firmware in its virtual board process (CPython with the
  simulator's ``machine``), and back to the caller;
- baseline: the same virtual controller in echo mode (the board process only sends back what
  it reads): a ping-sized frame written to the same kind of pty with pyserial and read back.
  Same processes, same pty, no protocol, no firmware, no driver thread.

The ratio says what the protocol, firmware loop and driver thread add to the bare link. On a
real Pico the UART itself adds ~0.9 ms per 10-byte frame each way at 115200 baud.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import serial

from devices.base import Health
from devices.controller.driver import ControllerDriver
from devices.controller.protocol import Dictionary
from simulator.vcontroller import VirtualController

WARMUP = 20


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def measure_driver(rounds: int) -> list[float]:
    with VirtualController() as board:
        driver = ControllerDriver(board.path, status_every_s=60.0)
        driver.start(lambda event: None)
        try:
            deadline = time.monotonic() + 10
            while driver.state().health is not Health.OK:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"controller not ready: {driver.state()}")
                time.sleep(0.02)
            samples = []
            for token in range(WARMUP + rounds):
                started = time.perf_counter()
                answer = driver.request("ping", token=token)
                elapsed = time.perf_counter() - started
                if answer != {"token": token}:
                    raise RuntimeError(f"wrong answer {answer}")
                if token >= WARMUP:
                    samples.append(elapsed * 1000)
            return samples
        finally:
            driver.stop()


def measure_echo(rounds: int) -> list[float]:
    frame = Dictionary().frame(1, "ping", token=0).encode()
    with VirtualController(echo=True) as board:
        time.sleep(0.3)  # the echo process starting
        with serial.Serial(board.path, 115200, timeout=1.0) as link:
            samples = []
            for index in range(WARMUP + rounds):
                started = time.perf_counter()
                link.write(frame)
                echoed = link.read(len(frame))
                elapsed = time.perf_counter() - started
                if echoed != frame:
                    raise RuntimeError("echo lost bytes")
                if index >= WARMUP:
                    samples.append(elapsed * 1000)
            return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.controller", description=__doc__)
    parser.add_argument("--rounds", type=int, default=500)
    args = parser.parse_args(argv)
    echo = measure_echo(args.rounds)
    driver = measure_driver(args.rounds)
    rows = [("raw echo (baseline)", echo), ("driver ping -> pong", driver)]
    print(f"co-processor round trip, {args.rounds} rounds each")
    print(f"{'':24}{'median ms':>12}{'p99 ms':>10}")
    for label, samples in rows:
        print(f"{label:24}{statistics.median(samples):12.3f}{percentile(samples, 0.99):10.3f}")
    ratio_median = statistics.median(driver) / statistics.median(echo)
    ratio_p99 = percentile(driver, 0.99) / percentile(echo, 0.99)
    print(f"{'ratio driver / echo':24}{ratio_median:11.1f}x{ratio_p99:9.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
