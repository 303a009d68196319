"""Parts of the terminal built off the path to the first screen: on first use, or warmed up early
on a background thread, and at most once either way."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from devices.base import CardHolder, DeviceState, Receipt
from flows.hub import (
    Appointment,
    CaseAccepted,
    CaseProgress,
    CaseSubmission,
    ErrandDocument,
    Hub,
    PostalAddress,
    RatingSubmission,
    Report,
    ReportFiled,
    Slot,
)
from terminal.effects import Printer
from terminal.speech import Speech

log = logging.getLogger(__name__)

T = TypeVar("T")


class Deferred(Generic[T]):
    """``get()`` builds the part the first time (blocking until it is built) and returns it."""

    def __init__(self, build: Callable[[], T], name: str) -> None:
        self._build = build
        self._name = name
        self._lock = threading.Lock()
        self._part: T | None = None

    @property
    def built(self) -> T | None:
        return self._part

    def get(self) -> T:
        with self._lock:
            if self._part is None:
                self._part = self._build()
            return self._part

    def warm(self) -> None:
        """Build it now on a background thread, so the first resident does not wait for it."""

        def build() -> None:
            try:
                self.get()
            except Exception:  # the first real use will raise it again, where it is handled
                log.exception("building %s failed", self._name)

        threading.Thread(target=build, name=f"warm-{self._name}", daemon=True).start()


class DeferredPrinter:
    """A printer reached through ``get`` (a Deferred's): the effect runner's and the monitor's."""

    def __init__(self, get: Callable[[], Printer]) -> None:
        self._get = get

    def status(self) -> DeviceState:
        return self._get().status()

    def print_receipt(self, receipt: Receipt) -> None:
        self._get().print_receipt(receipt)


class DeferredHub:
    """A hub adapter reached through ``get``; implements flows.hub.Hub."""

    def __init__(self, get: Callable[[], Hub]) -> None:
        self._get = get

    def run_errand(self, errand_id: str, id_number: str, terminal_id: str) -> ErrandDocument:
        return self._get().run_errand(errand_id, id_number, terminal_id)

    def submit_rating(self, rating: RatingSubmission) -> None:
        self._get().submit_rating(rating)

    # --- ApplicationHub: applications, progress, appointments, reports ---------------------------

    def _applications(self) -> Hub:
        return self._get()

    def delivery_address(self, id_number: str) -> PostalAddress | None:
        return self._applications().delivery_address(id_number)

    def submit_case(self, submission: CaseSubmission) -> CaseAccepted:
        return self._applications().submit_case(submission)

    def case_progress(self, reference: str) -> CaseProgress:
        return self._applications().case_progress(reference)

    def cases_of(self, id_number: str) -> tuple[CaseProgress, ...]:
        return self._applications().cases_of(id_number)

    def slots(self, service_id: str, site_id: str, day: dt.date) -> tuple[Slot, ...]:
        return self._applications().slots(service_id, site_id, day)

    def book(self, id_number: str, service_id: str, site_id: str, slot_id: str) -> Appointment:
        return self._applications().book(id_number, service_id, site_id, slot_id)

    def appointments_of(self, id_number: str) -> tuple[Appointment, ...]:
        return self._applications().appointments_of(id_number)

    def cancel(self, id_number: str, appointment_id: str) -> None:
        self._applications().cancel(id_number, appointment_id)

    def file_report(self, report: Report) -> ReportFiled:
        return self._applications().file_report(report)

    # --- IdentityHub: e-ID codes ----------------------------------------------------------------

    def resolve_code(self, code: str, terminal_id: str) -> CardHolder:
        return self._get().resolve_code(code, terminal_id)


class DeferredSpeech:
    """A speech port reached through a Deferred; implements terminal.speech.Speech. Stopping or
    asking what was said never builds it: there is nothing to stop before anything was said."""

    def __init__(self, part: Deferred[Speech]) -> None:
        self._part = part

    def say(self, text: str, lang: str, *, slow: bool = False, alert: bool = False) -> None:
        self._part.get().say(text, lang, slow=slow, alert=alert)

    def stop(self) -> None:
        if (built := self._part.built) is not None:
            built.stop()

    def state(self) -> DeviceState:
        return self._part.get().state()

    def close(self) -> None:
        if (built := self._part.built) is not None:
            built.close()

    @property
    def last_spoken(self) -> str | None:
        built = self._part.built
        return built.last_spoken if built is not None else None
