"""Card reader figures: insert-to-callback latency and read_holder() time, each against raw pyscard.

Runs its own pcscd with the vpcd reader on free ports and a virtual card; both sides of each figure
are measured in the same run on the same pcscd, interleaved, and reported as medians and a ratio.

    .venv/bin/python -m bench.card_read [--cycles 15] [--reads 200]

Insertion: one card insert is seen at the same time by the driver's watcher and by a bare
SCardGetStatusChange loop (the baseline); both wait for pcscd's own presence poll of vpcd
(every 400 ms), so the figure is mostly where in that poll the card arrived (expect a median near
200 ms, uniform 0-400 ms, on both sides).
Read: ``CardReaderDriver.read_holder()`` against the same 11 APDUs sent with bare pyscard calls on a
context opened once (connect, SELECT, GET RESPONSE, SELECT EF05, 3 records, SELECT EF06,
4 records, disconnect).
"""

from __future__ import annotations

import argparse
import random
import statistics
import threading
import time
from collections.abc import Callable

from smartcard import scard

from devices.card.driver import CardReaderDriver
from simulator.pcsc import Pcscd, wait_card
from simulator.vcard import VirtualCard, VirtualCardSlot

RAW_READ = [
    bytes.fromhex(apdu)
    for apdu in (
        "00A404000F7378312E73682EC9E7BBE1B1A3D5CF",
        "00C0000013",
        "00A4020002EF05",
        "00B2010012",
        "00B2060006",
        "00B207000B",
        "00A4020002EF06",
        "00B2080014",
        "00B2090020",
        "00B20A0003",
        "00B20D0006",
    )
]


def bench_card() -> VirtualCard:
    return VirtualCard.ssse(id_number="11010519491231002X", name="张三")


def raw_read(context: int, reader: str) -> None:
    """The SSSE identity records read with bare pyscard calls: the baseline's read."""
    hresult, card, protocol = scard.SCardConnect(
        context, reader, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
    )
    if hresult != scard.SCARD_S_SUCCESS:
        raise RuntimeError(f"connect failed {hresult:#x}")
    try:
        for apdu in RAW_READ:
            hresult, response = scard.SCardTransmit(card, protocol, list(apdu))
            if hresult != scard.SCARD_S_SUCCESS or response[-2] not in (0x90, 0x61):
                raise RuntimeError("raw read failed")
    finally:
        scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)


class RawWatcher:
    """The baseline watcher: a bare SCardGetStatusChange loop on one reader.

    ``seen`` gets ``clock()`` at each card arrival; bench.identity passes ``time.monotonic`` to
    line the stamps up with the terminal's. ``ready`` is set once it has had its first answer
    from pcscd, so an insertion after that is one it sees arrive.
    """

    def __init__(self, reader: str, clock: Callable[[], float] = time.perf_counter) -> None:
        self.reader = reader
        self.clock = clock
        self.seen: list[float] = []
        self.ready = threading.Event()
        self._arrived = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def wait_seen(self, count: int, timeout_s: float) -> float:
        """The stamp of arrival number ``count`` (1-based), waiting for it up to ``timeout_s``."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.seen) >= count, timeout_s):
                raise RuntimeError("the raw watcher never saw the card")
            return self.seen[count - 1]

    def _run(self) -> None:
        _, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        current = scard.SCARD_STATE_UNAWARE
        while not self._stop.is_set():
            hresult, states = scard.SCardGetStatusChange(context, 100, [(self.reader, current)])
            if hresult != scard.SCARD_S_SUCCESS:
                continue
            was_present = bool(current & scard.SCARD_STATE_PRESENT)
            current = states[0][1] & ~scard.SCARD_STATE_CHANGED
            self.ready.set()
            if current & scard.SCARD_STATE_PRESENT and not was_present:
                with self._arrived:
                    self.seen.append(self.clock())
                    self._arrived.notify_all()
        scard.SCardReleaseContext(context)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def measure_insertion(
    pcscd: Pcscd, slot: VirtualCardSlot, cycles: int
) -> tuple[list[float], list[float]]:
    reader = pcscd.reader_name(0)
    inserted: list[float] = []
    got_card = threading.Event()

    def on_inserted(name: str) -> None:
        if name == reader:
            inserted.append(time.perf_counter())
            got_card.set()

    driver = CardReaderDriver(poll_interval_s=0.2)
    driver.watch(on_inserted, lambda name: None)
    raw = RawWatcher(reader)
    if not raw.ready.wait(3.0):
        raise RuntimeError("the raw watcher got no answer from pcscd")
    time.sleep(0.3)  # the driver's watcher past its first look (it offers no signal for it)
    driver_ms: list[float] = []
    raw_ms: list[float] = []
    # pcscd polls vpcd every 400 ms and the removal below ends in step with that poll; a seeded
    # random pause puts each insertion somewhere else in the poll cycle, as a hand would.
    phase = random.Random(20240521)
    try:
        for _ in range(cycles):
            time.sleep(phase.uniform(0.0, 0.4))
            got_card.clear()
            raw_before = len(raw.seen)
            started = time.perf_counter()
            slot.insert(bench_card())
            if not got_card.wait(3.0):
                raise RuntimeError("the driver never saw the card")
            seen = raw.wait_seen(raw_before + 1, 3.0)
            driver_ms.append((inserted[-1] - started) * 1000)
            raw_ms.append((seen - started) * 1000)
            slot.remove()
            if not wait_card(reader, present=False, timeout=3.0):
                raise RuntimeError("card never left")
    finally:
        raw.stop()
        driver.stop()
    return driver_ms, raw_ms


def measure_reads(
    pcscd: Pcscd, slot: VirtualCardSlot, reads: int
) -> tuple[list[float], list[float]]:
    reader = pcscd.reader_name(0)
    slot.insert(bench_card())
    if not wait_card(reader, present=True, timeout=3.0):
        raise RuntimeError("pcscd never saw the card")
    driver = CardReaderDriver()
    _, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    driver_ms: list[float] = []
    raw_ms: list[float] = []
    try:
        for _ in range(10):  # warm-up: first connections, code paths, caches
            driver.read_holder(reader)
            raw_read(context, reader)
        for _ in range(reads):  # interleaved, so drift hits both sides alike
            started = time.perf_counter()
            driver.read_holder(reader)
            driver_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            raw_read(context, reader)
            raw_ms.append((time.perf_counter() - started) * 1000)
    finally:
        scard.SCardReleaseContext(context)
        slot.remove()
    return driver_ms, raw_ms


def report(label: str, driver_ms: list[float], raw_ms: list[float], baseline: str) -> None:
    driver_median, raw_median = statistics.median(driver_ms), statistics.median(raw_ms)
    print(
        f"{label:<26} driver median {driver_median:8.2f} ms | {baseline} median "
        f"{raw_median:8.2f} ms | ratio {driver_median / raw_median:5.2f} | n={len(driver_ms)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=15, help="insert/remove cycles")
    parser.add_argument("--reads", type=int, default=200, help="reads per side")
    args = parser.parse_args()
    with Pcscd() as pcscd, VirtualCardSlot(pcscd.ports[0]) as slot:
        driver_ms, raw_ms = measure_insertion(pcscd, slot, args.cycles)
        report("card insert -> callback", driver_ms, raw_ms, "raw GetStatusChange")
        driver_ms, raw_ms = measure_reads(pcscd, slot, args.reads)
        report("read_holder()", driver_ms, raw_ms, "raw pyscard")


if __name__ == "__main__":
    main()
