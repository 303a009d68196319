"""The card reader driver through a real pcscd with the vpcd driver and virtual cards on its slots.

Set KIOSK_RECORD_TRACES=1 to rewrite tests/fixtures/card/ssse_read.trace from a live read.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import queue
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devices.base import (
    CardRemoved,
    DeviceState,
    DeviceTimeout,
    DeviceUnavailable,
    Sex,
    UnsupportedCard,
)
from devices.card.driver import CardReaderDriver
from simulator.pcsc import Pcscd, PcscdAlreadyRunningError, pcscd_answering, wait_card
from simulator.vcard import VirtualCard, VirtualCardSlot

pytestmark = pytest.mark.pcscd

TRACE = Path(__file__).parent.parent / "fixtures" / "card" / "ssse_read.trace"
EVENT_TIMEOUT_S = 3.0  # pcscd polls vpcd every 400 ms; a restart takes well under a second

Slots = tuple[VirtualCardSlot, VirtualCardSlot]


def trace_card() -> VirtualCard:
    # The golden trace's card: stores the name in 20 bytes instead of the table's 30, so the
    # driver's READ RECORD 09 with Le 20 meets 6C16 and must resend.
    return VirtualCard.ssse(id_number="11010519491231002X", name="张三", record_lengths={0x09: 20})


class CardEvents:
    """Records watcher callbacks in order, from the watcher thread."""

    def __init__(self) -> None:
        self._events: queue.Queue[tuple[str, str]] = queue.Queue()

    def inserted(self, reader: str) -> None:
        self._events.put(("inserted", reader))

    def removed(self, reader: str) -> None:
        self._events.put(("removed", reader))

    def expect(self, kind: str, reader: str, timeout: float = EVENT_TIMEOUT_S) -> None:
        try:
            got = self._events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no {kind} event for {reader} within {timeout} s") from None
        assert got == (kind, reader)

    def assert_quiet(self) -> None:
        assert self._events.empty(), f"unexpected events: {list(self._events.queue)}"


@pytest.fixture
def driver() -> Iterator[CardReaderDriver]:
    reader = CardReaderDriver(reader_filter="Virtual PCD", read_timeout_s=3.0, poll_interval_s=0.05)
    yield reader
    reader.stop()


@pytest.fixture
def events(driver: CardReaderDriver) -> CardEvents:
    recorder = CardEvents()
    driver.watch(recorder.inserted, recorder.removed)
    return recorder


def insert_and_wait(slot: VirtualCardSlot, card: VirtualCard, reader: str) -> None:
    slot.insert(card)
    assert wait_card(reader, present=True, timeout=EVENT_TIMEOUT_S), "pcscd never saw the card"


def test_reads_the_holder_of_a_social_security_card(
    pcscd: Pcscd, card_slots: Slots, driver: CardReaderDriver, events: CardEvents
) -> None:
    reader = pcscd.reader_name(0)
    card_slots[0].insert(
        VirtualCard.ssse(
            id_number="440524188001010014",
            name="欧阳娜娜",
            card_number="C12345678",
            region_code="440500",
            expires=dt.date(2031, 6, 30),
        )
    )
    events.expect("inserted", reader)
    holder = driver.read_holder(reader)
    assert holder.id_number == "440524188001010014"
    assert holder.name == "欧阳娜娜"
    assert holder.sex is Sex.MALE
    assert holder.birth_date == dt.date(1880, 1, 1)
    assert holder.card_number == "C12345678"
    assert holder.region_code == "440500"
    assert holder.expires == dt.date(2031, 6, 30)
    sent = [command for command, _ in card_slots[0].exchanges]
    assert sent[0].hex().upper() == "00A404000F7378312E73682EC9E7BBE1B1A3D5CF"
    assert sent[1].hex().upper() == "00C0000013", "the 6113 after SELECT needs GET RESPONSE"
    assert not [c for c in sent if c[1] in (0x20, 0x24, 0x2C)], "a PIN command reached the card"


def test_live_read_still_produces_the_golden_trace(
    pcscd: Pcscd, card_slots: Slots, driver: CardReaderDriver
) -> None:
    reader = pcscd.reader_name(0)
    insert_and_wait(card_slots[0], trace_card(), reader)
    driver.read_holder(reader)
    live = "".join(
        f"> {command.hex().upper()}\n< {response.hex().upper()}\n"
        for command, response in card_slots[0].exchanges
    )
    if os.environ.get("KIOSK_RECORD_TRACES") == "1":
        TRACE.write_text(
            "# SSSE read recorded through pcscd + vpcd from simulator/vcard.py:\n"
            '# VirtualCard.ssse(id_number="11010519491231002X", name="张三",'
            " record_lengths={0x09: 20})\n"
            "# Synthetic person. '>' command APDU, '<' response APDU (data + SW1 SW2).\n" + live,
            encoding="utf-8",
        )
    recorded = "".join(
        line + "\n"
        for line in TRACE.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )
    assert live == recorded
    assert "6C16" in live and "6113" in live


def test_a_card_without_the_ssse_application_is_unsupported(
    pcscd: Pcscd, card_slots: Slots, driver: CardReaderDriver
) -> None:
    reader = pcscd.reader_name(0)
    insert_and_wait(card_slots[0], VirtualCard.other(), reader)
    with pytest.raises(UnsupportedCard) as error:
        driver.read_holder(reader)
    assert error.value.reason == "unsupported_card"


def test_a_card_pulled_mid_read_raises_card_removed(
    pcscd: Pcscd, card_slots: Slots, driver: CardReaderDriver, events: CardEvents
) -> None:
    reader = pcscd.reader_name(0)
    card_slots[0].insert(trace_card())
    events.expect("inserted", reader)
    card_slots[0].pull_after(4)  # gone after SELECT, GET RESPONSE, SELECT EF05, one record
    with pytest.raises(CardRemoved):
        driver.read_holder(reader)
    assert len(card_slots[0].exchanges) == 4
    assert card_slots[0].card is None
    events.expect("removed", reader)


def test_insert_and_remove_fire_callbacks_once_each(
    pcscd: Pcscd, card_slots: Slots, events: CardEvents
) -> None:
    reader = pcscd.reader_name(0)
    card_slots[0].insert(trace_card())
    events.expect("inserted", reader)
    card_slots[0].remove()
    events.expect("removed", reader)
    time.sleep(0.5)  # longer than pcscd's 400 ms poll: no late duplicates
    events.assert_quiet()


def test_a_card_in_the_second_reader_is_found_and_read(
    pcscd: Pcscd, card_slots: Slots, driver: CardReaderDriver, events: CardEvents
) -> None:
    reader = pcscd.reader_name(1)
    card_slots[1].insert(trace_card())
    events.expect("inserted", reader)
    assert driver.read_holder(reader).region_code == "110105"


def test_reader_filter_ignores_other_readers(pcscd: Pcscd, card_slots: Slots) -> None:
    first, second = pcscd.reader_name(0), pcscd.reader_name(1)
    # A card already in the first reader when watching starts would be reported at once.
    insert_and_wait(card_slots[0], trace_card(), first)
    filtered = CardReaderDriver(reader_filter=" 00 01", poll_interval_s=0.05)
    recorder = CardEvents()
    filtered.watch(recorder.inserted, recorder.removed)
    try:
        card_slots[1].insert(VirtualCard.other())
        recorder.expect("inserted", second)
        recorder.assert_quiet()
    finally:
        filtered.stop()


def test_a_card_present_before_watching_is_reported(
    pcscd: Pcscd, card_slots: Slots, driver: CardReaderDriver
) -> None:
    reader = pcscd.reader_name(0)
    insert_and_wait(card_slots[0], trace_card(), reader)
    recorder = CardEvents()
    driver.watch(recorder.inserted, recorder.removed)
    recorder.expect("inserted", reader, timeout=1.0)


def test_after_a_pcscd_restart_the_watcher_picks_the_card_up_again(
    pcscd: Pcscd, card_slots: Slots, driver: CardReaderDriver, events: CardEvents
) -> None:
    reader = pcscd.reader_name(0)
    card_slots[0].insert(trace_card())
    events.expect("inserted", reader)
    assert driver.read_holder(reader).name == "张三"  # leaves an idle context of the old pcscd
    pcscd.restart()
    # The card never left the slot; it reconnects to the new pcscd's vpcd like a card that stays
    # in its reader. For the terminal the old card handle is gone, so: removed, then inserted.
    events.expect("removed", reader)
    events.expect("inserted", reader)
    assert driver.read_holder(reader).name == "张三"
    assert driver.state() == DeviceState.ok()


def test_state_reports_pcscd_down_while_it_is_stopped(
    pcscd: Pcscd, card_slots: Slots, driver: CardReaderDriver, events: CardEvents
) -> None:
    unwatched = CardReaderDriver()
    assert driver.state() == DeviceState.ok()
    assert unwatched.state() == DeviceState.ok()
    pcscd.stop()
    try:
        deadline = time.monotonic() + EVENT_TIMEOUT_S
        while driver.state() != DeviceState.fault("pcscd_down") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert driver.state() == DeviceState.fault("pcscd_down")
        assert unwatched.state() == DeviceState.fault("pcscd_down")  # the probe, no watcher
        with pytest.raises(DeviceUnavailable) as error:
            driver.read_holder(pcscd.reader_name(0))
        assert error.value.reason == "pcscd_down"
    finally:
        pcscd.start()
    deadline = time.monotonic() + EVENT_TIMEOUT_S
    while driver.state() != DeviceState.ok() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert driver.state() == DeviceState.ok()
    events.assert_quiet()


def test_state_reports_no_reader_when_pcscd_has_none(
    pcscd: Pcscd, driver: CardReaderDriver, events: CardEvents
) -> None:
    pcscd.restart(with_reader=False)
    deadline = time.monotonic() + EVENT_TIMEOUT_S
    while driver.state() != DeviceState.fault("no_reader") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert driver.state() == DeviceState.fault("no_reader")
    with pytest.raises(DeviceUnavailable) as error:
        driver.read_holder(pcscd.reader_name(0))
    assert error.value.reason == "no_reader"
    pcscd.restart()
    deadline = time.monotonic() + EVENT_TIMEOUT_S
    while driver.state() != DeviceState.ok() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert driver.state() == DeviceState.ok()


def test_reading_an_empty_reader_raises_card_removed(
    pcscd: Pcscd, card_slots: Slots, driver: CardReaderDriver
) -> None:
    with pytest.raises(CardRemoved):
        driver.read_holder(pcscd.reader_name(1))


def test_a_mute_card_cannot_hold_the_read_past_its_timeout(pcscd: Pcscd, card_slots: Slots) -> None:
    reader = pcscd.reader_name(0)
    insert_and_wait(card_slots[0], trace_card(), reader)
    card_slots[0].stall_after(3)  # answers SELECT, GET RESPONSE, SELECT EF05, then nothing
    impatient = CardReaderDriver(read_timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(DeviceTimeout):
        impatient.read_holder(reader)
    assert time.monotonic() - started < 0.8
    # Taking the card out ends vpcd's wait, so pcscd and the abandoned worker come free again.


def test_no_personal_data_in_logs_or_errors(
    pcscd: Pcscd,
    card_slots: Slots,
    driver: CardReaderDriver,
    events: CardEvents,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    reader = pcscd.reader_name(0)
    card_slots[0].insert(trace_card())
    events.expect("inserted", reader)
    holder = driver.read_holder(reader)
    card_slots[0].remove()
    events.expect("removed", reader)
    card_slots[0].insert(trace_card())
    events.expect("inserted", reader)
    card_slots[0].pull_after(8)
    with pytest.raises(CardRemoved) as error:
        driver.read_holder(reader)
    shown = caplog.text + str(error.value) + repr(error.value) + repr(holder)
    for personal in (holder.id_number, holder.name, holder.card_number, "19491231", "1949-12-31"):
        assert personal not in shown


# --- the test rig itself ----------------------------------------------------------------------


def test_our_pcscd_refuses_to_start_beside_a_foreign_one_and_leaves_it_alone(
    pcscd: Pcscd,
) -> None:
    pcscd.stop()
    other = Pcscd()  # stands for a system pcscd: started outside the object under test
    foreign = subprocess.Popen(
        ["pcscd", "--foreground", "--config", str(other.log_path.parent)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + EVENT_TIMEOUT_S
        while not pcscd_answering() and time.monotonic() < deadline:
            time.sleep(0.02)
        with pytest.raises(PcscdAlreadyRunningError, match=f"pid {foreign.pid}"):
            pcscd.start()
        assert foreign.poll() is None, "the foreign pcscd was stopped"
    finally:
        foreign.terminate()
        foreign.wait(timeout=5)
        other.close()
    pcscd.start()
