"""Appointment (预约): a service, a centre, a day among the next working days, a period with free
places from the hub; confirm, a slip with the appointment's QR, and the rating. The resident's
appointments to come can be cancelled here too.

Places are the hub's: the flow shows what it said and books through it. A period that fills up
between choosing and confirming (``slot_taken``) brings the day's periods back, freshly asked,
with the reason on top.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from flows.catalogue import CatalogueItem, Centre, ItemKind
from flows.event_names import EventType
from flows.hub import FINAL_REFUSALS, Appointment, Slot
from flows.hub_queries import AppointmentsQuery, BookSlot, CancelAppointment, SlotsQuery
from flows.operations_events import code, event
from flows.platform import Call, Finish, Flow, FlowContext, FlowResult, common_action, step, tapped
from flows.rating import RatingRequest
from flows.report import offering_report, report_call
from flows.slip import SlipRequest, slip_lines_and_actions
from flows.slips import appointment_slip, local_date
from flows.steps import (
    Action,
    AskHub,
    Confirm,
    Done,
    EffectDone,
    Event,
    Failed,
    Menu,
    Message,
    Progress,
    Returned,
    SummaryRow,
    Tap,
    Text,
    Tone,
    Transition,
    t,
)

BOOKABLE_DAYS = 7  # working days ahead, from tomorrow


class AppointmentFlow(Flow):
    """Books or cancels an appointment for the identified resident."""

    NAME = "appointment"
    INITIAL = "service"
    STEPS = (
        step("service", Menu, to=("centre", "mine_loading"), ends=True),
        step("centre", Menu, to=("service", "day")),
        step("day", Menu, to=("centre", "slots_loading")),
        step("slots_loading", Progress, awaits=AskHub,
             to=("slot", "no_slots", "hub_unavailable")),
        step("slot", Menu, to=("day", "confirm")),
        step("no_slots", Message, to=("day",)),
        step("confirm", Confirm, to=("slot", "booking")),
        step("booking", Progress, awaits=AskHub,
             to=("booked", "slots_loading", "hub_unavailable", "refused")),
        step("refused", Message, calls=("report",), ends=True),
        step("booked", Done, calls=("slip", "rating"), ends=True),
        step("mine_loading", Progress, awaits=AskHub,
             to=("mine", "hub_unavailable")),
        step("mine", Menu, to=("service", "cancel_confirm")),
        step("cancel_confirm", Confirm, to=("mine", "cancelling")),
        step("cancelling", Progress, awaits=AskHub, to=("cancelled", "hub_unavailable")),
        step("cancelled", Done, ends=True),
        step("hub_unavailable", Message,
             to=("slots_loading", "booking", "mine_loading", "cancelling"), calls=("report",),
             ends=True),
    )

    def __init__(self, ctx: FlowContext, arg: object = None) -> None:
        super().__init__(ctx, arg)
        self._service: CatalogueItem | None = None
        self._centre: Centre | None = None
        self._day: dt.date | None = None
        self._slots: tuple[Slot, ...] = ()
        self._slot: Slot | None = None
        self._taken = False  # the chosen period filled up meanwhile: say so over the periods
        self._booked: Appointment | None = None
        self._mine: tuple[Appointment, ...] = ()
        self._cancelling: Appointment | None = None
        self._printed: bool | None = None
        self._retry: Callable[[], Transition] = self._load_slots
        self._failure: Message | None = None  # the failure screen a report comes back to

    def wipe(self) -> None:
        self._booked = None
        self._mine = ()
        self._cancelling = None

    def start(self) -> Transition:
        return self._services()

    # --- steps -----------------------------------------------------------------------------------

    def step_service(self, ev: Event) -> FlowResult | None:
        if isinstance(ev, Tap) and ev.target.startswith("service."):
            item = self.ctx.catalogue.item(ev.target.removeprefix("service."))
            if item is None or item not in self._bookable():
                return None
            self._service = item
            return self._centres()
        return tapped(ev, {"mine": self._load_mine, "back": Finish})

    def step_centre(self, ev: Event) -> FlowResult | None:
        if isinstance(ev, Tap) and ev.target.startswith("centre."):
            centre = self.ctx.catalogue.centre(ev.target.removeprefix("centre."))
            if centre is None:
                return None
            self._centre = centre
            return self._days()
        return tapped(ev, {"back": self._services})

    def step_day(self, ev: Event) -> FlowResult | None:
        if isinstance(ev, Tap) and ev.target.startswith("day."):
            try:
                day = dt.date.fromisoformat(ev.target.removeprefix("day."))
            except ValueError:
                return None
            if day not in self._bookable_days():
                return None
            self._day = day
            self._taken = False
            return self._load_slots()
        return tapped(ev, {"back": self._centres})

    def step_slots_loading(self, ev: Event) -> FlowResult | None:
        assert isinstance(ev, EffectDone)
        outcome = ev.outcome
        if isinstance(outcome, Failed):
            return self._unavailable(outcome.reason, self._load_slots)
        slots = outcome.value
        if not isinstance(slots, tuple) or not all(isinstance(s, Slot) for s in slots):
            return self._unavailable("bad_answer", self._load_slots)
        self._slots = tuple(s for s in slots if s.day == self._day)
        if not any(s.free > 0 for s in self._slots):
            return Transition(self._message("no_slots", Tone.INFO, ("back",)))
        return self._slot_menu()

    def step_slot(self, ev: Event) -> FlowResult | None:
        if isinstance(ev, Tap) and ev.target.startswith("slot."):
            slot = next((s for s in self._slots
                         if f"slot.{s.slot_id}" == ev.target and s.free > 0), None)
            if slot is None:
                return None
            self._slot = slot
            return self._confirm()
        return tapped(ev, {"back": self._days})

    def step_no_slots(self, ev: Event) -> FlowResult | None:
        return tapped(ev, {"back": self._days})

    def step_confirm(self, ev: Event) -> FlowResult | None:
        return tapped(ev, {"book": self._book, "back": self._slot_menu})

    def step_booking(self, ev: Event) -> FlowResult | None:
        assert isinstance(ev, EffectDone)
        outcome = ev.outcome
        if isinstance(outcome, Failed):
            reason = code(outcome.reason)
            if reason == "slot_taken":
                self._taken = True
                return self._load_slots()
            if reason in FINAL_REFUSALS:
                return self._refused(reason)
            return self._unavailable(reason, self._book)
        booked = outcome.value
        if not isinstance(booked, Appointment):
            return self._unavailable("bad_answer", self._book)
        self._booked = booked
        service = self._service.id if self._service is not None else ""
        return Transition(self._booked_screen(),
                          (event(EventType.APPOINTMENT_BOOKED, service_id=service,
                                 site_id=booked.site_id),))

    def step_refused(self, ev: Event) -> FlowResult | None:
        if isinstance(ev, Returned):
            return self._failure_again()
        return tapped(ev, {"back": Finish, "report": self._report})

    def step_booked(self, ev: Event) -> FlowResult | None:
        booked = self._booked
        if booked is None:
            return None
        if isinstance(ev, Returned):
            if ev.flow == "slip":
                self._printed = bool(ev.value)
                return Transition(self._booked_screen())
            return Finish()
        return tapped(ev, {
            "print": lambda: Call("slip", self._slip(booked)),
            "finish": lambda: Call("rating", RatingRequest("appointment", booked.code)),
        })

    def step_mine_loading(self, ev: Event) -> FlowResult | None:
        assert isinstance(ev, EffectDone)
        outcome = ev.outcome
        if isinstance(outcome, Failed):
            return self._unavailable(outcome.reason, self._load_mine)
        mine = outcome.value
        if not isinstance(mine, tuple) or not all(isinstance(a, Appointment) for a in mine):
            return self._unavailable("bad_answer", self._load_mine)
        self._mine = mine
        return self._mine_menu()

    def step_mine(self, ev: Event) -> FlowResult | None:
        if isinstance(ev, Tap) and ev.target.startswith("appointment."):
            chosen = next((a for a in self._mine
                           if f"appointment.{a.appointment_id}" == ev.target), None)
            if chosen is None:
                return None
            self._cancelling = chosen
            rows = self._rows_of(chosen)
            screen = Confirm(self.screen_id("cancel_confirm"),
                             self.text("cancel_confirm", "title"), rows,
                             (self.text("cancel_confirm", "body"),),
                             (self.action("cancel_confirm", "cancel_it", primary=True),
                              common_action("back")), self.ctx.idle_timeout_s)
            return Transition(screen)
        return tapped(ev, {"back": self._services})

    def step_cancel_confirm(self, ev: Event) -> FlowResult | None:
        return tapped(ev, {"cancel_it": self._cancel, "back": self._mine_menu})

    def step_cancelling(self, ev: Event) -> FlowResult | None:
        assert isinstance(ev, EffectDone)
        if isinstance(ev.outcome, Failed):
            return self._unavailable(ev.outcome.reason, self._cancel)
        cancelled = self._cancelling
        service = cancelled.service_id if cancelled is not None else ""
        screen = Done(self.screen_id("cancelled"), self.text("cancelled", "title"),
                      (self.text("cancelled", "body"),), (common_action("finish", primary=True),),
                      self.ctx.idle_timeout_s)
        return Transition(screen, (event(EventType.APPOINTMENT_CANCELLED, service_id=service),))

    def step_cancelled(self, ev: Event) -> FlowResult | None:
        return tapped(ev, {"finish": Finish})

    def step_hub_unavailable(self, ev: Event) -> FlowResult | None:
        if isinstance(ev, Returned):
            return self._failure_again()
        return tapped(ev, {"retry": self._retry, "back": Finish, "report": self._report})

    def _report(self) -> FlowResult:
        return report_call(self, self._service.id if self._service is not None else "")

    def _failure_again(self) -> Transition:
        assert self._failure is not None
        return Transition(self._failure)

    # --- screens ---------------------------------------------------------------------------------

    def _bookable(self) -> tuple[CatalogueItem, ...]:
        # Applications are what people come to a window for; instant errands are done here.
        return tuple(i for i in self.ctx.catalogue.items if i.kind is ItemKind.APPLICATION)

    def _bookable_days(self) -> tuple[dt.date, ...]:
        today = self.ctx.clock.now().astimezone(self.ctx.zone).date()
        return self.ctx.calendar.appointment_days(today, BOOKABLE_DAYS).dates

    def _services(self) -> Transition:
        options = tuple(Action(f"service.{i.id}", t(i.title_key)) for i in self._bookable())
        screen = Menu(self.screen_id("service"), self.text("service", "title"), options,
                      (self.text("service", "body"),),
                      (self.action("service", "mine"), common_action("back")),
                      self.ctx.idle_timeout_s)
        return Transition(screen)

    def _centres(self) -> Transition:
        options = tuple(Action(f"centre.{c.id}", c_title(c)) for c in self.ctx.catalogue.centres)
        screen = Menu(self.screen_id("centre"), self.text("centre", "title"), options, (),
                      (common_action("back"),), self.ctx.idle_timeout_s)
        return Transition(screen)

    def _days(self) -> Transition:
        options = tuple(
            Action(f"day.{day.isoformat()}",
                   self.text("day", "day", date=local_date(day),
                             weekday=t(f"weekday.{day.isoweekday()}")))
            for day in self._bookable_days()
        )
        screen = Menu(self.screen_id("day"), self.text("day", "title"), options,
                      (self.text("day", "body"),), (common_action("back"),),
                      self.ctx.idle_timeout_s)
        return Transition(screen)

    def _load_slots(self) -> Transition:
        assert self._service is not None and self._centre is not None and self._day is not None
        query = SlotsQuery(self._service.id, self._centre.id, self._day)
        screen = Progress(self.screen_id("slots_loading"), self.text("slots_loading", "title"))
        return Transition(screen, (AskHub(query),))

    def _slot_menu(self) -> Transition:
        options = tuple(
            Action(f"slot.{s.slot_id}",
                   self.text("slot", "slot", start=f"{s.start:%H:%M}", end=f"{s.end:%H:%M}",
                             free=str(s.free)) if s.free > 0
                   else self.text("slot", "full", start=f"{s.start:%H:%M}",
                                  end=f"{s.end:%H:%M}"),
                   enabled=s.free > 0)
            for s in self._slots
        )
        lines: tuple[Text, ...] = (self.text("slot", "body"),)
        if self._taken:
            lines = (self.text("slot", "taken"), *lines)
        screen = Menu(self.screen_id("slot"), self.text("slot", "title"), options, lines,
                      (common_action("back"),), self.ctx.idle_timeout_s)
        return Transition(screen)

    def _confirm(self) -> Transition:
        assert self._service is not None and self._centre is not None and self._slot is not None
        slot = self._slot
        rows = (
            SummaryRow(self.text("confirm", "service"), t(self._service.title_key)),
            SummaryRow(self.text("confirm", "centre"), c_title(self._centre)),
            SummaryRow(self.text("confirm", "when"),
                       f"{local_date(slot.day)} {slot.start:%H:%M}-{slot.end:%H:%M}"),
        )
        screen = Confirm(self.screen_id("confirm"), self.text("confirm", "title"), rows,
                         (self.text("confirm", "body"),),
                         (self.action("confirm", "book", primary=True), common_action("back")),
                         self.ctx.idle_timeout_s)
        return Transition(screen)

    def _book(self) -> Transition:
        holder = self.ctx.session.holder
        assert holder is not None and self._service is not None and self._centre is not None
        assert self._slot is not None
        query = BookSlot(holder.id_number, self._service.id, self._centre.id, self._slot.slot_id)
        screen = Progress(self.screen_id("booking"), self.text("booking", "title"))
        return Transition(screen, (AskHub(query),))

    def _booked_screen(self) -> Done:
        booked = self._booked
        assert booked is not None
        lines: list[Text] = [
            self.text("booked", "when", when=f"{local_date(booked.day)} "
                                             f"{booked.start:%H:%M}-{booked.end:%H:%M}"),
            self.text("booked", "code", code=booked.code),
            self.text("booked", "bring"),
        ]
        slip_line, actions = slip_lines_and_actions(self, "booked", self._printed)
        lines += slip_line
        return Done(self.screen_id("booked"), self.text("booked", "title"), tuple(lines),
                    actions, self.ctx.idle_timeout_s)

    def _load_mine(self) -> Transition:
        holder = self.ctx.session.holder
        assert holder is not None
        screen = Progress(self.screen_id("mine_loading"), self.text("mine_loading", "title"))
        return Transition(screen, (AskHub(AppointmentsQuery(holder.id_number)),))

    def _mine_menu(self) -> Transition:
        options = tuple(
            Action(f"appointment.{a.appointment_id}",
                   self.text("mine", "appointment", service=self._title_of(a.service_id),
                             when=f"{local_date(a.day)} {a.start:%H:%M}"))
            for a in self._mine
        )
        body = "body" if self._mine else "none"
        screen = Menu(self.screen_id("mine"), self.text("mine", "title"), options,
                      (self.text("mine", body),), (common_action("back"),),
                      self.ctx.idle_timeout_s)
        return Transition(screen)

    def _cancel(self) -> Transition:
        holder = self.ctx.session.holder
        assert holder is not None and self._cancelling is not None
        query = CancelAppointment(holder.id_number, self._cancelling.appointment_id)
        screen = Progress(self.screen_id("cancelling"), self.text("cancelling", "title"))
        return Transition(screen, (AskHub(query),))

    def _unavailable(self, reason: str, retry: Callable[[], Transition]) -> Transition:
        self._retry = retry
        failed = event(EventType.ERRAND_FAILED, "warning", errand_id="appointment", stage="hub",
                       reason=code(reason))
        self._failure = offering_report(
            self._message("hub_unavailable", Tone.ERROR, ("retry", "back")))
        return Transition(self._failure, (failed,))

    def _refused(self, reason: str) -> Transition:
        screen = Message(self.screen_id("refused"), self.text("refused", "title"),
                         (self.text("refused", reason if reason in _REFUSALS else "body"),),
                         (common_action("back", primary=True),), Tone.ERROR,
                         self.ctx.idle_timeout_s)
        self._failure = offering_report(screen)
        failed = event(EventType.ERRAND_FAILED, "warning", errand_id="appointment", stage="hub",
                       reason=reason)
        return Transition(self._failure, (failed,))

    def _message(self, step_id: str, tone: Tone, actions: tuple[str, ...]) -> Message:
        buttons = tuple(common_action(a, primary=n == 0) for n, a in enumerate(actions))
        return Message(self.screen_id(step_id), self.text(step_id, "title"),
                       (self.text(step_id, "body"),), buttons, tone, self.ctx.idle_timeout_s)

    def _rows_of(self, appointment: Appointment) -> tuple[SummaryRow, ...]:
        centre = self.ctx.catalogue.centre(appointment.site_id)
        return (
            SummaryRow(self.text("confirm", "service"), self._title_of(appointment.service_id)),
            SummaryRow(self.text("confirm", "centre"),
                       c_title(centre) if centre is not None else appointment.site_id),
            SummaryRow(self.text("confirm", "when"),
                       f"{local_date(appointment.day)} "
                       f"{appointment.start:%H:%M}-{appointment.end:%H:%M}"),
        )

    def _title_of(self, item_id: str) -> Text | str:
        item = self.ctx.catalogue.item(item_id)
        return t(item.title_key) if item is not None else item_id

    def _slip(self, booked: Appointment) -> SlipRequest:
        item = self.ctx.catalogue.item(booked.service_id)
        centre = self.ctx.catalogue.centre(booked.site_id)
        receipt = appointment_slip(
            booked,
            service=item.title.zh if item is not None else booked.service_id,
            site=(f"{centre.name.zh}（{centre.address.zh}）" if centre is not None
                  else booked.site_id),
            links_base=self.ctx.links_base, terminal_id=self.ctx.terminal_id,
            printed_at=self.ctx.clock.now(), zone=self.ctx.zone,
        )
        return SlipRequest(receipt, "appointment", "appointment")


_REFUSALS = frozenset({"already_booked", "not_eligible"})


def c_title(centre: Centre) -> Text:
    return t(centre.name_key)
