"""ID card reader driver against the virtual SAM module on a pty: presentations, faults, replug.

Every wait is bounded: callbacks are taken from a queue with a timeout and states are polled to a
deadline. Timeouts are short (tens of ms) so the fault cases stay fast; nothing here sleeps for a
real module's timing.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devices.base import (
    CardHolder,
    DeviceError,
    DeviceState,
    DeviceTimeout,
    DeviceUnavailable,
    Health,
    IdentityDocument,
    Sex,
    UnsupportedCard,
)
from devices.idcard.driver import IdCardReaderDriver
from devices.idcard.protocol import (
    CardReadFailed,
    Command,
    FrameError,
    OtherDocument,
    Request,
    SamFault,
)
from simulator.vsam import VirtualSam

WAIT_S = 3.0
TIMINGS: dict[str, float] = {
    "poll_s": 0.02,
    "answer_timeout_s": 0.15,
    "reopen_s": 0.05,
    "read_timeout_s": 0.3,
}
ID_NUMBER = "11010519491231002X"
NAME = "欧阳娜娜"
REMOVED = "removed"

Event = CardHolder | DeviceError | str


class Events:
    """What the driver hands to on_presented and on_removed, from its reader thread."""

    def __init__(self) -> None:
        self.queue: queue.Queue[Event] = queue.Queue()
        self.threads: set[str] = set()

    def presented(self, result: CardHolder | DeviceError) -> None:
        self.threads.add(threading.current_thread().name)
        self.queue.put(result)

    def removed(self) -> None:
        self.threads.add(threading.current_thread().name)
        self.queue.put(REMOVED)

    def next(self) -> Event:
        return self.queue.get(timeout=WAIT_S)

    def holder(self) -> CardHolder:
        event = self.next()
        assert isinstance(event, CardHolder), event
        return event

    def error(self) -> DeviceError:
        event = self.next()
        assert isinstance(event, DeviceError), event
        return event

    def none_within(self, seconds: float) -> bool:
        try:
            event = self.queue.get(timeout=seconds)
        except queue.Empty:
            return True
        raise AssertionError(f"unexpected event {event!r}")


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def wait_state(driver: IdCardReaderDriver, state: DeviceState) -> None:
    wait_for(lambda: driver.state() == state, f"{state} (is {driver.state()})")


@pytest.fixture
def vsam(tmp_path: Path) -> Iterator[VirtualSam]:
    with VirtualSam(directory=tmp_path, name="usb-SAM_0001-if00") as virtual:
        yield virtual


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def make_driver(events: Events) -> Iterator[Callable[..., IdCardReaderDriver]]:
    made: list[IdCardReaderDriver] = []

    def make(path: str, *, start: bool = True, **settings: float) -> IdCardReaderDriver:
        timings = {**TIMINGS, **settings}
        driver = IdCardReaderDriver(
            path,
            poll_s=timings["poll_s"],
            answer_timeout_s=timings["answer_timeout_s"],
            reopen_s=timings["reopen_s"],
            read_timeout_s=timings["read_timeout_s"],
        )
        made.append(driver)
        if start:
            driver.start(events.presented, events.removed)
        return driver

    yield make
    for driver in made:
        driver.stop()


def test_a_presentation_is_reported_once_then_its_removal_then_the_next(
    vsam: VirtualSam, events: Events, make_driver: Callable[..., IdCardReaderDriver]
) -> None:
    driver = make_driver(vsam.path)
    wait_state(driver, DeviceState.ok())
    assert vsam.received()[0] is Command.SAM_STATUS  # the SAM is asked first, at open
    vsam.place(ID_NUMBER, NAME, sex="2")
    holder = events.holder()
    assert holder.id_number == ID_NUMBER
    assert holder.name == NAME
    assert holder.sex is Sex.FEMALE
    assert holder.region_code == "110105"
    assert holder.document is IdentityDocument.RESIDENT_ID_CARD
    assert holder.expires is not None
    # The card stays in the field (the simulator keeps answering 0x9F): no second report.
    assert events.none_within(0.3)
    vsam.remove()
    assert events.next() == REMOVED
    vsam.place(ID_NUMBER, NAME, valid_until="长期")
    assert events.holder().expires is None
    assert events.threads == {"idcard-reader"}
    assert driver.state() == DeviceState.ok()


def test_start_opens_at_once_and_the_state_follows_the_sam(
    vsam: VirtualSam, make_driver: Callable[..., IdCardReaderDriver]
) -> None:
    driver = make_driver(vsam.path, start=False)
    assert driver.state() == DeviceState.fault("offline")  # nothing known before start()
    driver.start(lambda _result: None, lambda: None)
    assert driver.state() in (DeviceState.degraded("checking"), DeviceState.ok())
    wait_state(driver, DeviceState.ok())
    driver.stop()
    assert driver.state() == DeviceState.fault("offline")


@pytest.mark.parametrize(
    ("card_type", "reason"),
    [
        ("residence_permit", "residence_permit"),
        ("foreign_permanent_resident", "foreign_permanent_resident"),
        ("foreign_permanent_resident_2023", "foreign_permanent_resident"),
        ("unknown", "unknown_card_type"),
    ],
)
def test_other_documents_are_declined(
    vsam: VirtualSam,
    events: Events,
    make_driver: Callable[..., IdCardReaderDriver],
    card_type: str,
    reason: str,
) -> None:
    make_driver(vsam.path)
    vsam.place(ID_NUMBER, NAME, card_type=card_type)  # type: ignore[arg-type]
    error = events.error()
    assert isinstance(error, OtherDocument)
    assert error.reason == reason


def test_unknown_card_type_status(
    vsam: VirtualSam, events: Events, make_driver: Callable[..., IdCardReaderDriver]
) -> None:
    driver = make_driver(vsam.path)
    vsam.fault("unknown_card_type")
    vsam.place(ID_NUMBER, NAME)
    error = events.error()
    assert isinstance(error, UnsupportedCard)
    assert error.reason == "unknown_card_type"
    assert driver.state() == DeviceState.ok()  # the card's fault, not the reader's


def test_no_card_found_means_no_report(
    vsam: VirtualSam, events: Events, make_driver: Callable[..., IdCardReaderDriver]
) -> None:
    driver = make_driver(vsam.path)
    vsam.fault("no_card")
    vsam.place(ID_NUMBER, NAME)
    assert events.none_within(0.2)
    assert driver.state() == DeviceState.ok()
    vsam.fault("ok")
    events.holder()


def test_sam_self_test_failure_is_a_fault_until_it_passes(
    vsam: VirtualSam, events: Events, make_driver: Callable[..., IdCardReaderDriver]
) -> None:
    vsam.fault("sam_self_test")
    driver = make_driver(vsam.path)
    wait_state(driver, DeviceState.fault("sam_self_test"))
    vsam.place(ID_NUMBER, NAME)
    assert events.none_within(0.1)  # no find while the SAM is broken
    assert Command.FIND not in vsam.received()
    vsam.fault("ok")
    wait_state(driver, DeviceState.ok())
    events.holder()


def test_a_damaged_answer_is_resent_once_then_reported(
    vsam: VirtualSam, events: Events, make_driver: Callable[..., IdCardReaderDriver]
) -> None:
    vsam.fault("checksum")
    driver = make_driver(vsam.path)
    wait_state(driver, DeviceState.fault("bad_checksum"))
    # One resend: the SAM status was asked twice in a row, then not again until the next poll.
    assert vsam.received()[:2] == [Command.SAM_STATUS, Command.SAM_STATUS]
    vsam.fault("ok")
    wait_state(driver, DeviceState.ok())
    vsam.place(ID_NUMBER, NAME)
    events.holder()


class DamagedReads(VirtualSam):
    """A module whose read answers (only those) arrive with a wrong XOR."""

    def _answer_request(self, request: Request, mode: str) -> bytes:
        answer = super()._answer_request(request, mode)
        if request.command is Command.READ_TEXT_PHOTO:
            return answer[:-1] + bytes((answer[-1] ^ 0xFF,))
        return answer


def test_a_damaged_read_answer_is_resent_once_then_reported(
    tmp_path: Path, events: Events, make_driver: Callable[..., IdCardReaderDriver]
) -> None:
    with DamagedReads(directory=tmp_path) as damaged:
        driver = make_driver(damaged.path)
        wait_state(driver, DeviceState.ok())
        damaged.place(ID_NUMBER, NAME)
        error = events.error()
        assert isinstance(error, FrameError)
        assert error.reason == "bad_checksum"
        assert damaged.received()[-2:] == [Command.READ_TEXT_PHOTO, Command.READ_TEXT_PHOTO]
        assert driver.state() == DeviceState.degraded("read_error")
        assert events.none_within(0.1)  # reported once, as any presentation


def test_an_answer_cut_off_mid_frame_is_a_failed_read_and_the_reader_degraded(
    vsam: VirtualSam, events: Events, make_driver: Callable[..., IdCardReaderDriver]
) -> None:
    driver = make_driver(vsam.path)
    wait_state(driver, DeviceState.ok())
    vsam.fault("mid_frame")
    vsam.place(ID_NUMBER, NAME)
    error = events.error()
    assert isinstance(error, CardReadFailed)
    assert error.reason == "answer_cut_off"
    assert driver.state() == DeviceState.degraded("read_error")
    # Present it again, the module fixed: read, and the reader is ok again.
    vsam.fault("ok")
    vsam.remove()
    assert events.next() == REMOVED
    vsam.place(ID_NUMBER, NAME)
    events.holder()
    assert driver.state() == DeviceState.ok()


def test_a_silent_module_is_a_fault_and_never_a_hang(
    vsam: VirtualSam, events: Events, make_driver: Callable[..., IdCardReaderDriver]
) -> None:
    driver = make_driver(vsam.path)
    wait_state(driver, DeviceState.ok())
    vsam.fault("silent")
    wait_state(driver, DeviceState.fault("no_answer"))
    vsam.place(ID_NUMBER, NAME)
    assert events.none_within(0.1)
    vsam.fault("ok")
    wait_state(driver, DeviceState.ok())
    events.holder()
    vsam.fault("silent")
    started = time.monotonic()
    driver.stop()  # in the middle of waiting for an answer
    assert time.monotonic() - started < 1.0


def test_noise_before_every_answer_is_skipped(
    vsam: VirtualSam, events: Events, make_driver: Callable[..., IdCardReaderDriver]
) -> None:
    vsam.fault("garbage")
    driver = make_driver(vsam.path)
    wait_state(driver, DeviceState.ok())
    vsam.place(ID_NUMBER, NAME)
    assert events.holder().name == NAME
    assert driver.state() == DeviceState.ok()


def test_unplug_and_replug(
    vsam: VirtualSam, events: Events, make_driver: Callable[..., IdCardReaderDriver]
) -> None:
    driver = make_driver(vsam.path)
    vsam.place(ID_NUMBER, NAME)
    events.holder()
    vsam.unplug()
    wait_state(driver, DeviceState.fault("offline"))
    assert events.next() == REMOVED  # a reported card is gone with the reader
    vsam.replug()
    wait_state(driver, DeviceState.ok())
    events.holder()  # the card still lies there: the replugged module sees it afresh
    vsam.remove()
    assert events.next() == REMOVED


def test_unplugged_mid_read_reports_the_presentation_then_the_removal(
    tmp_path: Path, events: Events, make_driver: Callable[..., IdCardReaderDriver]
) -> None:
    with VirtualSam(directory=tmp_path, slow_s=0.1) as slow:
        driver = make_driver(slow.path, answer_timeout_s=0.5, read_timeout_s=1.0)
        wait_state(driver, DeviceState.ok())
        slow.place(ID_NUMBER, NAME)
        wait_for(lambda: Command.READ_TEXT_PHOTO in slow.received(), "the read command")
        slow.unplug()  # before its answer (0.1 s late) is written
        error = events.error()
        assert isinstance(error, DeviceUnavailable)
        assert error.reason == "offline"
        assert events.next() == REMOVED
        assert driver.state() == DeviceState.fault("offline")


def test_a_reader_that_was_never_there_is_absent_until_it_appears(
    tmp_path: Path, events: Events, make_driver: Callable[..., IdCardReaderDriver]
) -> None:
    driver = make_driver(str(tmp_path / "later"))
    assert driver.state() == DeviceState.fault("absent")
    with VirtualSam(directory=tmp_path, name="later") as virtual:
        wait_state(driver, DeviceState.ok())
        virtual.place(ID_NUMBER, NAME)
        events.holder()


def test_a_port_held_by_another_process_is_busy(
    vsam: VirtualSam, make_driver: Callable[..., IdCardReaderDriver]
) -> None:
    first = make_driver(vsam.path)
    wait_state(first, DeviceState.ok())
    second = make_driver(vsam.path)
    assert second.state() == DeviceState.fault("busy")


def test_a_listener_that_raises_does_not_stop_the_reader(
    vsam: VirtualSam, events: Events, make_driver: Callable[..., IdCardReaderDriver]
) -> None:
    def explode(_result: CardHolder | DeviceError) -> None:
        events.presented(_result)
        raise RuntimeError(NAME)

    driver = IdCardReaderDriver(vsam.path, poll_s=0.02, answer_timeout_s=0.15, reopen_s=0.05)
    driver.start(explode, events.removed)
    try:
        vsam.place(ID_NUMBER, NAME)
        events.holder()
        vsam.remove()
        assert events.next() == REMOVED
        vsam.place(ID_NUMBER, NAME)
        events.holder()
    finally:
        driver.stop()


# --- read_once ------------------------------------------------------------------------------------


def test_read_once_without_the_thread(
    vsam: VirtualSam, make_driver: Callable[..., IdCardReaderDriver]
) -> None:
    driver = make_driver(vsam.path, start=False)
    with pytest.raises(DeviceTimeout) as raised:
        driver.read_once(0.1)
    assert raised.value.reason == "no_card"
    vsam.place(ID_NUMBER, NAME)
    assert driver.read_once(1.0).id_number == ID_NUMBER
    vsam.fault("sam_self_test")
    with pytest.raises(SamFault):
        driver.read_once(1.0)
    vsam.unplug()
    with pytest.raises(DeviceUnavailable) as unavailable:
        driver.read_once(0.2)
    assert unavailable.value.reason == "offline"


def test_read_once_beside_the_thread_takes_the_same_lock_and_no_double_report(
    vsam: VirtualSam, events: Events, make_driver: Callable[..., IdCardReaderDriver]
) -> None:
    driver = make_driver(vsam.path)
    vsam.place(ID_NUMBER, NAME)
    events.holder()
    for _ in range(5):
        assert driver.read_once(1.0).name == NAME
    assert events.none_within(0.2)
    vsam.remove()
    assert events.next() == REMOVED


def test_read_once_in_a_silent_module_times_out(
    vsam: VirtualSam, make_driver: Callable[..., IdCardReaderDriver]
) -> None:
    driver = make_driver(vsam.path, start=False)
    vsam.fault("silent")
    started = time.monotonic()
    with pytest.raises(DeviceTimeout) as raised:
        driver.read_once(1.0)
    assert raised.value.reason == "no_answer"
    assert time.monotonic() - started < 1.0


# --- privacy ------------------------------------------------------------------------------------


def test_nothing_personal_reaches_the_log(
    vsam: VirtualSam,
    events: Events,
    make_driver: Callable[..., IdCardReaderDriver],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    driver = make_driver(vsam.path)
    vsam.place(ID_NUMBER, NAME)
    holder = events.holder()
    vsam.remove()
    assert events.next() == REMOVED
    for mode in ("mid_frame", "checksum", "garbage", "unknown_card_type"):
        vsam.fault(mode)
        vsam.place(ID_NUMBER, NAME)
        wait_for(lambda: not events.queue.empty() or driver.state().health is Health.FAULT, mode)
        vsam.remove()
        vsam.fault("ok")
        wait_for(lambda: driver.state().health is not Health.FAULT, "recovery")
    vsam.place(ID_NUMBER, NAME, card_type="residence_permit")
    assert isinstance(events.next(), CardHolder | DeviceError)
    vsam.place(ID_NUMBER, NAME)
    assert driver.read_once(1.0).name == NAME
    vsam.unplug()
    wait_state(driver, DeviceState.fault("offline"))
    text = caplog.text + repr(holder) + repr(driver.state())
    assert "idcard" in caplog.text
    for personal in (ID_NUMBER, ID_NUMBER[:6] + ID_NUMBER[6:14], NAME, "欧阳", "19491231"):
        assert personal not in text
