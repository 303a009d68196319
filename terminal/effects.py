"""Performs the effects a flow asks for, off the main thread, and reports each outcome back.

The flow never does I/O; this runner does it for it. Each device gets its own single worker so
two jobs never interleave on one wire (a card read and a status poll, two print jobs), while a slow
hub call does not hold up the card reader. Outcomes go to ``deliver``, which the composition root
points at Kivy's Clock so they reach the engine on the main thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from devices.base import CardHolder, DeviceError, DeviceState, Receipt
from flows.effect_specs import LANES, spec_of
from flows.hub import ErrandDocument, HubError, ServiceHub
from flows.steps import (
    CheckPrinter,
    Effect,
    EffectDone,
    Failed,
    PrintReceipt,
    ReadCard,
    RecordEvent,
    RunErrand,
    SubmitRating,
    Succeeded,
)

log = logging.getLogger(__name__)


class CardReader(Protocol):
    def read_holder(self, reader: str) -> CardHolder: ...


class Printer(Protocol):
    def status(self) -> DeviceState: ...

    def print_receipt(self, receipt: Receipt) -> None: ...


class RatingQueue(Protocol):
    def submit(self, rating: SubmitRating) -> bool:
        """Queue a rating durably; True once it is safely stored (it is sent later)."""
        ...


class EventSink(Protocol):
    def record(self, event: RecordEvent) -> None: ...


class EffectRunner:
    """Runs effects on per-device workers and delivers an EffectDone for each (but RecordEvent)."""

    def __init__(
        self,
        *,
        card: CardReader,
        printer: Printer,
        hub: ServiceHub,
        ratings: RatingQueue,
        events: EventSink,
        terminal_id: str,
        deliver: Callable[[EffectDone], None],
    ) -> None:
        self._card = card
        self._printer = printer
        self._hub = hub
        self._ratings = ratings
        self._events = events
        self._terminal_id = terminal_id
        self._deliver = deliver
        self._workers = {
            lane: ThreadPoolExecutor(1, thread_name_prefix=f"effect-{lane}")
            for lane in LANES  # which worker runs which effect: flows.effect_specs
        }

    def run(self, effect: Effect) -> None:
        """Start ``effect``; returns at once."""
        worker = self._workers[spec_of(effect).lane]
        if isinstance(effect, RecordEvent):
            worker.submit(self._guarded_record, effect)
            return
        worker.submit(self._perform_and_deliver, effect)

    def shutdown(self, drain_s: float = 3.0) -> None:
        """Stop taking work. Device and hub jobs still queued are dropped (their session is over
        with the process), but the store lane is drained for up to ``drain_s``: a rating queued
        there was promised to a resident who has already been thanked."""
        for name, worker in self._workers.items():
            if name != "store":
                worker.shutdown(wait=False, cancel_futures=True)
        store = self._workers["store"]
        try:
            store.submit(lambda: None).result(timeout=drain_s)
        except Exception:  # timed out or already shut down: what is left is logged, not waited for
            log.warning("store lane not drained within %.0f s", drain_s)
        store.shutdown(wait=False)

    def _guarded_record(self, event: RecordEvent) -> None:
        try:
            self._events.record(event)
        except Exception:  # an event sink must never take the terminal down
            log.exception("recording event %s failed", event.type)

    def _perform_and_deliver(self, effect: Effect) -> None:
        try:
            outcome = self.perform(effect)
        except Exception as e:  # a bug in a driver becomes a failed step, not a dead worker
            log.exception("effect %s failed unexpectedly", type(effect).__name__)
            outcome = Failed("internal_error", type(e).__name__)
        self._deliver(EffectDone(effect, outcome))

    def perform(self, effect: Effect) -> Succeeded | Failed:
        """Do one effect synchronously; device and hub errors become ``Failed(reason)``."""
        try:
            match effect:
                case ReadCard(reader=reader):
                    holder = self._card.read_holder(reader)
                    return Succeeded(holder)
                case CheckPrinter():
                    state = self._printer.status()
                    return Succeeded(state) if state.usable else Failed(state.reason or "fault")
                case PrintReceipt(receipt=receipt):
                    self._printer.print_receipt(receipt)
                    return Succeeded(None)
                case RunErrand(errand_id=errand_id, holder=holder):
                    document: ErrandDocument = self._hub.run_errand(
                        errand_id, holder.id_number, self._terminal_id
                    )
                    return Succeeded(document)
                case SubmitRating():
                    return Succeeded(self._ratings.submit(effect))
                case _:
                    return Failed("unsupported_effect", type(effect).__name__)
        except (DeviceError, HubError) as e:  # ErrandRefused and HubUnavailable are HubErrors
            return Failed(e.reason)
