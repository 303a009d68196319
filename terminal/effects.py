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

from devices.base import CardHolder, DeviceError, DeviceState, Receipt, StaffBadge
from flows.effect_specs import LANES, spec_of
from flows.hub import (
    ApplicationHub,
    CaseProgress,
    CaseSubmission,
    ErrandDocument,
    HubError,
    Report,
    ServiceHub,
)
from flows.hub_queries import (
    AddressQuery,
    AppointmentsQuery,
    BookSlot,
    CancelAppointment,
    CaseQuery,
    CasesQuery,
    HubQuery,
    SlotsQuery,
)
from flows.maintenance_report import MaintenanceTask
from flows.steps import (
    AskHub,
    Captured,
    CapturePage,
    CheckPrinter,
    Effect,
    EffectDone,
    Failed,
    Lodge,
    Lodged,
    Maintain,
    PrintReceipt,
    ReadCard,
    RecordEvent,
    ResolveCode,
    RunErrand,
    SubmitRating,
    Succeeded,
)

log = logging.getLogger(__name__)


class CardReader(Protocol):
    def read_card(self, reader: str) -> CardHolder | StaffBadge: ...


class IdentityResolver(Protocol):
    """The hub's e-ID resolution (flows.hub.IdentityHub)."""

    def resolve_code(self, code: str, terminal_id: str) -> CardHolder: ...


class MaintenanceDesk(Protocol):
    """The staff menu's tasks (terminal.maintenance.MaintenanceDesk)."""

    def perform(self, task: MaintenanceTask) -> object: ...


class Printer(Protocol):
    def status(self) -> DeviceState: ...

    def print_receipt(self, receipt: Receipt) -> None: ...


class RatingQueue(Protocol):
    def submit(self, rating: SubmitRating) -> bool:
        """Queue a rating durably; True once it is safely stored (it is sent later)."""
        ...


class EventSink(Protocol):
    def record(self, event: RecordEvent) -> None: ...


class Submissions(Protocol):
    """The terminal's submission queue (terminal.submissions.SubmissionQueue)."""

    def lodge(self, submission: CaseSubmission) -> Lodged: ...

    def lodge_report(self, report: Report) -> Lodged: ...

    def lookup(self, reference: str) -> CaseProgress | None: ...


class Camera(Protocol):
    """The document camera as an effect needs it: one page, cropped and compressed."""

    def capture_page(self, material_id: str, page: int) -> Captured: ...


class _NoSubmissions:
    """Until a queue is built (or when it cannot be: a key file refused), lodging fails plainly."""

    def lodge(self, submission: CaseSubmission) -> Lodged:
        raise HubError(reason="queue_unavailable")

    def lodge_report(self, report: Report) -> Lodged:
        raise HubError(reason="queue_unavailable")

    def lookup(self, reference: str) -> CaseProgress | None:
        return None


class _NoMaintenance:
    """Until the desk is built (just after the first screen), a task fails plainly."""

    def perform(self, task: MaintenanceTask) -> object:
        raise DeviceError(reason="not_ready")


class _NoCamera:
    def capture_page(self, material_id: str, page: int) -> Captured:
        raise DeviceError(reason="absent")


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
        applications: ApplicationHub | None = None,
        submissions: Submissions | None = None,
        camera: Camera | None = None,
        identities: IdentityResolver | None = None,
        maintenance: MaintenanceDesk | None = None,
    ) -> None:
        self._card = card
        self._printer = printer
        self._hub = hub
        self._ratings = ratings
        self._events = events
        self._terminal_id = terminal_id
        self._deliver = deliver
        self._applications = applications
        self._submissions: Submissions = submissions or _NoSubmissions()
        self._camera: Camera = camera or _NoCamera()
        self._identities = identities
        self.maintenance: MaintenanceDesk = maintenance or _NoMaintenance()
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
                    return Succeeded(self._card.read_card(reader))
                case ResolveCode(code=code):
                    if self._identities is None:
                        return Failed("hub_unavailable")
                    return Succeeded(self._identities.resolve_code(code, self._terminal_id))
                case Maintain(task=task):
                    return Succeeded(self.maintenance.perform(task))
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
                case AskHub(query=query):
                    return Succeeded(self._ask(query))
                case Lodge(item=item):
                    if isinstance(item, CaseSubmission):
                        return Succeeded(self._submissions.lodge(item))
                    return Succeeded(self._submissions.lodge_report(item))
                case CapturePage(material_id=material_id, page=page):
                    return Succeeded(self._camera.capture_page(material_id, page))
                case _:
                    return Failed("unsupported_effect", type(effect).__name__)
        except (DeviceError, HubError) as e:  # ErrandRefused and HubUnavailable are HubErrors
            return Failed(e.reason)

    def _ask(self, query: HubQuery) -> object:
        """One question to the hub; a case of this terminal's queue is answered from the queue
        until the hub has it (a receipt printed while the hub was down)."""
        hub = self._applications
        if isinstance(query, CaseQuery):
            queued = self._submissions.lookup(query.reference)
            # Still waiting here (its number is the reference): ours to tell. Sent meanwhile: the
            # hub knows it by its case number now.
            if queued is not None and (hub is None or queued.case_number == query.reference):
                return queued
            if queued is not None and hub is not None:
                return hub.case_progress(queued.case_number)
        if hub is None:
            raise HubError(reason="hub_unavailable")
        match query:
            case CaseQuery(reference=reference):
                return hub.case_progress(reference)
            case CasesQuery(id_number=id_number):
                return hub.cases_of(id_number)
            case AddressQuery(id_number=id_number):
                return hub.delivery_address(id_number)
            case SlotsQuery(service_id=service, site_id=site, day=day):
                return hub.slots(service, site, day)
            case BookSlot(id_number=id_number, service_id=service, site_id=site, slot_id=slot):
                return hub.book(id_number, service, site, slot)
            case AppointmentsQuery(id_number=id_number):
                return hub.appointments_of(id_number)
            case CancelAppointment(id_number=id_number, appointment_id=appointment_id):
                hub.cancel(id_number, appointment_id)
                return None
