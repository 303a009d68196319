"""The effect runner turns device and hub errors into Failed(reason) and delivers every outcome."""

import datetime as dt
import queue
import time

from devices.base import CardHolder, CardRemoved, DeviceState, PaperOut, Receipt, Sex
from flows.hub import ErrandDocument, ErrandRefused, HubUnavailable, RatingSubmission
from flows.steps import (
    CheckPrinter,
    EffectDone,
    Failed,
    PrintReceipt,
    ReadCard,
    RecordEvent,
    RunErrand,
    SubmitRating,
    Succeeded,
)
from terminal.effects import EffectRunner

HOLDER = CardHolder("11010519491231002X", "张三", Sex.MALE, None, "A0000001", "110100", None)


class Card:
    def __init__(self) -> None:
        self.error: Exception | None = None

    def read_card(self, reader: str) -> CardHolder:
        if self.error:
            raise self.error
        return HOLDER


class Printer:
    def __init__(self) -> None:
        self.state = DeviceState.ok()
        self.error: Exception | None = None
        self.printed: list[Receipt] = []

    def status(self) -> DeviceState:
        return self.state

    def print_receipt(self, receipt: Receipt) -> None:
        if self.error:
            raise self.error
        self.printed.append(receipt)


class Hub:
    def __init__(self) -> None:
        self.error: Exception | None = None

    def run_errand(self, errand_id: str, id_number: str, terminal_id: str) -> ErrandDocument:
        if self.error:
            raise self.error
        return ErrandDocument(errand_id, "社会保险参保证明", "SB1", "ABCD", "http://hub/v1/d/ABCD",
                              dt.datetime(2026, 11, 21, tzinfo=dt.UTC), ())

    def submit_rating(self, rating: RatingSubmission) -> None:
        raise AssertionError("ratings go through the queue, not straight to the hub")


class Ratings:
    def __init__(self) -> None:
        self.queued: list[SubmitRating] = []

    def submit(self, rating: SubmitRating) -> bool:
        self.queued.append(rating)
        return True


class Events:
    def __init__(self) -> None:
        self.recorded: queue.Queue[RecordEvent] = queue.Queue()

    def record(self, event: RecordEvent) -> None:
        self.recorded.put(event)


def make() -> tuple[EffectRunner, Card, Printer, Hub, Ratings, Events, "queue.Queue[EffectDone]"]:
    card, printer, hub, ratings, events = Card(), Printer(), Hub(), Ratings(), Events()
    done: queue.Queue[EffectDone] = queue.Queue()
    runner = EffectRunner(card=card, printer=printer, hub=hub, ratings=ratings, events=events,
                          terminal_id="T-1", deliver=done.put)
    return runner, card, printer, hub, ratings, events, done


def test_successful_effects_deliver_their_values() -> None:
    runner, _card, printer, _hub, ratings, _events, done = make()
    runner.run(ReadCard("Virtual PCD 00 00"))
    assert done.get(timeout=5).outcome == Succeeded(HOLDER)
    runner.run(RunErrand("ssc_enrollment_proof", HOLDER))
    outcome = done.get(timeout=5).outcome
    assert isinstance(outcome, Succeeded) and isinstance(outcome.value, ErrandDocument)
    runner.run(PrintReceipt(Receipt()))
    assert done.get(timeout=5).outcome == Succeeded(None)
    assert len(printer.printed) == 1
    runner.run(SubmitRating("ssc_enrollment_proof", "SB1", 5))
    assert done.get(timeout=5).outcome == Succeeded(True)
    assert ratings.queued[0].level == 5
    runner.shutdown()


def test_errors_become_failed_reasons() -> None:
    runner, card, printer, hub, _ratings, _events, done = make()
    card.error = CardRemoved()
    runner.run(ReadCard("r"))
    assert done.get(timeout=5).outcome == Failed("card_removed")
    printer.state = DeviceState.fault("paper_out")
    runner.run(CheckPrinter())
    assert done.get(timeout=5).outcome == Failed("paper_out")
    printer.error = PaperOut()
    runner.run(PrintReceipt(Receipt()))
    assert done.get(timeout=5).outcome == Failed("paper_out")
    hub.error = HubUnavailable()
    runner.run(RunErrand("x", HOLDER))
    assert done.get(timeout=5).outcome == Failed("hub_unavailable")
    hub.error = ErrandRefused(reason="not_enrolled")
    runner.run(RunErrand("x", HOLDER))
    assert done.get(timeout=5).outcome == Failed("not_enrolled")
    hub.error = ZeroDivisionError()
    runner.run(RunErrand("x", HOLDER))
    assert done.get(timeout=5).outcome == Failed("internal_error", "ZeroDivisionError")
    runner.shutdown()


def test_record_event_goes_to_the_sink_and_delivers_nothing() -> None:
    runner, _card, _printer, _hub, _ratings, events, done = make()
    runner.run(RecordEvent("session_started"))
    assert events.recorded.get(timeout=5).type == "session_started"
    assert done.empty()
    runner.shutdown()


def test_shutdown_drains_the_queued_ratings() -> None:
    runner, _card, _printer, _hub, ratings, _events, _done = make()
    slow_submit = ratings.submit

    def submit(rating: SubmitRating) -> bool:
        time.sleep(0.2)  # the store is busy when the terminal is told to stop
        return slow_submit(rating)

    ratings.submit = submit  # type: ignore[method-assign]
    runner.run(SubmitRating("ssc_enrollment_proof", "SB1", 4))
    runner.run(SubmitRating("ssc_enrollment_proof", "SB2", 5))
    runner.shutdown(drain_s=3)
    assert [r.case_number for r in ratings.queued] == ["SB1", "SB2"]
