"""Fixtures for device tests: our own pcscd with the vpcd reader, and two virtual card slots."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from simulator.pcsc import Pcscd, wait_card
from simulator.vcard import VirtualCardSlot


@pytest.fixture(scope="module")
def pcscd_module() -> Iterator[Pcscd]:
    # One pcscd per machine (fixed socket path): one per test module, stopped when the module is
    # done so tests elsewhere (the simulator's, end to end) can start theirs. It refuses to start
    # when a foreign pcscd runs, and picks vpcd ports away from the simulator's 35963.
    daemon = Pcscd()
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.close()


@pytest.fixture
def pcscd(pcscd_module: Pcscd) -> Pcscd:
    """The module's pcscd, running with its reader (a test before may have stopped it)."""
    if not pcscd_module.running or not pcscd_module.with_reader:
        pcscd_module.restart()
    return pcscd_module


@pytest.fixture
def card_slots(pcscd: Pcscd) -> Iterator[tuple[VirtualCardSlot, VirtualCardSlot]]:
    """Both vpcd slots, empty; afterwards cards are taken out and pcscd has seen the readers empty,
    so no card of one test shows up in the next."""
    slots = (VirtualCardSlot(pcscd.ports[0]), VirtualCardSlot(pcscd.ports[1]))
    yield slots
    for slot in slots:
        slot.close()
    if pcscd.running and pcscd.with_reader:
        for index in range(len(slots)):
            assert wait_card(pcscd.reader_name(index), present=False, timeout=3.0)
