"""Intake (承诺件, 收受分离): lodge an application, its materials scanned on the document camera.

For each material of the item's guide, in order: scan it (capture, retake, add a page), or commit
to bring a deferrable one later (容缺承诺: the commitment, the deadline in working days, confirmed),
or mark an optional one as not applicable. Then delivery (free mail to the address the hub has on
record, shown masked, or pick-up at a named centre), a contact phone on the keypad, a review, and
the submission through the terminal's queue: sent now if the hub answers, else stored encrypted
and sent automatically, and the receipt says which. The receipt carries the case number (or the
local reference), the receiving place and the processing authority (异地通办 when they differ),
the promised date in working days on the holiday calendar, each deferred material's deadline, the
delivery and a progress QR. Then the rating.

Scanned pages are the resident's data: they live in this flow only, and ``wipe`` drops them with
the session; once lodged they are the queue's (sealed), not the flow's.
"""

from __future__ import annotations

import datetime as dt

from flows.catalogue import CatalogueItem, Centre, Material
from flows.event_names import EventType
from flows.forms import FormEntry
from flows.hub import (
    FINAL_REFUSALS,
    CaseAccepted,
    CaseSubmission,
    Delivery,
    MaterialEntry,
    MaterialOutcome,
    PostalAddress,
    ScannedPage,
)
from flows.hub_queries import AddressQuery
from flows.identity import mask_address
from flows.operations_events import code, errand_failed, event
from flows.phone import mask_phone, phone_rule
from flows.platform import (
    Call,
    Finish,
    Flow,
    FlowContext,
    FlowError,
    FlowResult,
    common_action,
    step,
    tapped,
)
from flows.rating import RatingRequest
from flows.report import offering_report, report_call
from flows.slip import SlipRequest, slip_lines_and_actions
from flows.slips import application_receipt, local_date
from flows.steps import (
    Action,
    AskHub,
    Captured,
    CapturePage,
    Confirm,
    Done,
    EffectDone,
    Event,
    Failed,
    Form,
    Lodge,
    Lodged,
    Menu,
    Message,
    Progress,
    Returned,
    Scan,
    SummaryRow,
    Tap,
    Text,
    TextEntered,
    Tone,
    Transition,
    t,
)

DEFER_WORKING_DAYS = 5  # 容缺: the material follows within this many working days
MAX_PAGES_PER_MATERIAL = 10
MAX_PAGES = 30  # an application's pages in all (the scan store's bound too)
CAMERA_FAULTS = frozenset({"absent", "offline", "stalled", "black_frame", "timeout"})


class IntakeFlow(Flow):
    """Lodges an application for ``arg`` (a CatalogueItem of kind application)."""

    NAME = "intake"
    NEEDS = frozenset({"camera"})
    INITIAL = "intro"
    STEPS = (
        step("intro", Confirm, to=("material",), calls=("guide",), ends=True),
        step("material", Menu, to=("intro", "material", "scan", "defer", "delivery")),
        step("scan", Scan, to=("capturing", "material", "delivery", "scan")),
        step("capturing", Progress, awaits=CapturePage, to=("scan",)),
        step("defer", Confirm, to=("material", "delivery")),
        step("delivery", Menu, to=("material", "address_loading", "pickup")),
        step("address_loading", Progress, awaits=AskHub, to=("address", "no_address")),
        step("address", Confirm, to=("delivery", "pickup", "phone")),
        step("no_address", Message, to=("pickup", "delivery")),
        step("pickup", Menu, to=("delivery", "phone")),
        step("phone", Form, accepts=(Tap, TextEntered), to=("phone", "delivery", "review")),
        step("review", Confirm, to=("phone", "lodging")),
        step("lodging", Progress, awaits=Lodge, to=("lodged", "failed", "refused")),
        step("failed", Message, to=("lodging", "review"), calls=("report",), ends=True),
        step("refused", Message, calls=("report",), ends=True),
        step("lodged", Done, calls=("slip", "rating"), ends=True),
    )

    def __init__(self, ctx: FlowContext, arg: object = None) -> None:
        super().__init__(ctx, arg)
        self._index = 0  # the material on screen
        self._outcomes: dict[str, MaterialOutcome] = {}
        self._pages: dict[str, list[ScannedPage]] = {}
        self._thumbnail: bytes | None = None
        self._scan_note: str | None = None  # blank_page, camera fault, page limit
        self._deferred: dict[str, dt.date] = {}
        self._delivery: Delivery | None = None
        self._address: PostalAddress | None = None
        self._pickup: Centre | None = None
        self._form = FormEntry((phone_rule(),))
        self._phone_masked = ""
        self._lodged: Lodged | None = None
        self._pages_summary: tuple[tuple[str, int], ...] = ()  # (material, pages) once lodged
        self._received_on: dt.date | None = None
        self._printed: bool | None = None
        self._failure: Message | None = None  # the failure screen a report comes back to

    def wipe(self) -> None:
        self._pages.clear()
        self._thumbnail = None
        self._address = None
        self._form.wipe()
        self._phone_masked = ""
        self._lodged = None

    def start(self) -> Transition:
        return self._intro()

    # --- steps -----------------------------------------------------------------------------------

    def step_intro(self, ev: Event) -> FlowResult | None:
        if isinstance(ev, Returned):
            return self._intro()
        return tapped(ev, {
            "start": lambda: self._material(0),
            "guide": lambda: Call("guide", self._item()),
            "back": Finish,
        })

    def step_material(self, ev: Event) -> FlowResult | None:
        material = self._current()
        choices = {
            "scan": lambda: self._scan_screen(fresh=True),
            "back": self._previous,
        }
        if material.deferrable:
            choices["defer"] = self._defer_screen
        if material.optional:
            choices["not_applicable"] = lambda: self._decided(MaterialOutcome.NOT_APPLICABLE)
        return tapped(ev, choices)

    def step_scan(self, ev: Event) -> FlowResult | None:
        pages = self._pages.get(self._current().id, [])
        choices = {"back": lambda: self._material(self._index)}
        if len(pages) < MAX_PAGES_PER_MATERIAL and self._total_pages() < MAX_PAGES:
            choices["capture"] = self._capture
        if pages:
            choices["retake"] = self._retake
            choices["done"] = lambda: self._decided(MaterialOutcome.SCANNED)
        return tapped(ev, choices)

    def step_capturing(self, ev: Event) -> FlowResult | None:
        assert isinstance(ev, EffectDone)
        outcome = ev.outcome
        if isinstance(outcome, Failed):
            self._scan_note = code(outcome.reason)
            if self._scan_note in CAMERA_FAULTS:
                return Transition(self._scan(), (errand_failed(self._item(), "camera",
                                                               self._scan_note),))
            return Transition(self._scan())
        captured = outcome.value
        if not isinstance(captured, Captured):
            self._scan_note = "internal_error"
            return Transition(self._scan())
        material = self._current()
        pages = self._pages.setdefault(material.id, [])
        pages.append(ScannedPage(material.id, len(pages) + 1, captured.page.jpeg))
        self._thumbnail = captured.thumbnail
        self._scan_note = None
        return Transition(self._scan())

    def step_defer(self, ev: Event) -> FlowResult | None:
        return tapped(ev, {
            "agree": lambda: self._decided(MaterialOutcome.DEFERRED),
            "back": lambda: self._material(self._index),
        })

    def step_delivery(self, ev: Event) -> FlowResult | None:
        return tapped(ev, {
            "mail": self._look_up_address,
            "pickup": self._pickup_menu,
            "back": lambda: self._material(len(self._materials()) - 1),
        })

    def step_address_loading(self, ev: Event) -> FlowResult | None:
        assert isinstance(ev, EffectDone)
        outcome = ev.outcome
        address = None if isinstance(outcome, Failed) else outcome.value
        if not isinstance(address, PostalAddress) or not address.text.strip():
            reason = outcome.reason if isinstance(outcome, Failed) else "none"
            lines = (self.text("no_address", "unreachable" if reason == "hub_unavailable"
                               else "body"),)
            screen = Message(self.screen_id("no_address"), self.text("no_address", "title"),
                             lines, (self.action("no_address", "pickup", primary=True),
                                     common_action("back")), Tone.INFO, self.ctx.idle_timeout_s)
            return Transition(screen)
        self._address = address
        confirm = Confirm(
            self.screen_id("address"), self.text("address", "title"),
            (SummaryRow(self.text("address", "address"), mask_address(address.text)),),
            (self.text("address", "body"),),
            (self.action("address", "use", primary=True), self.action("address", "pickup"),
             common_action("back")),
            self.ctx.idle_timeout_s,
        )
        return Transition(confirm)

    def step_address(self, ev: Event) -> FlowResult | None:
        def use() -> Transition:
            self._delivery = Delivery.MAIL
            self._pickup = None
            return self._phone()

        return tapped(ev, {"use": use, "pickup": self._pickup_menu, "back": self._delivery_menu})

    def step_no_address(self, ev: Event) -> FlowResult | None:
        return tapped(ev, {"pickup": self._pickup_menu, "back": self._delivery_menu})

    def step_pickup(self, ev: Event) -> FlowResult | None:
        if isinstance(ev, Tap) and ev.target.startswith("centre."):
            centre = self.ctx.catalogue.centre(ev.target.removeprefix("centre."))
            if centre is None:
                return None
            self._delivery, self._pickup, self._address = Delivery.PICKUP, centre, None
            return self._phone()
        return tapped(ev, {"back": self._delivery_menu})

    def step_phone(self, ev: Event) -> FlowResult | None:
        if self._form.apply(ev):
            return self._phone()
        if isinstance(ev, Tap) and ev.target == "next":
            return self._review() if self._form.check() else self._phone()
        return tapped(ev, {"back": self._delivery_menu})

    def step_review(self, ev: Event) -> FlowResult | None:
        return tapped(ev, {"submit": self._lodge, "back": self._phone})

    def step_lodging(self, ev: Event) -> FlowResult | None:
        assert isinstance(ev, EffectDone)
        outcome = ev.outcome
        item = self._item()
        if isinstance(outcome, Failed):
            reason = code(outcome.reason)
            failed = errand_failed(item, "submit", reason)
            if reason in FINAL_REFUSALS:
                self._failure = offering_report(Message(
                    self.screen_id("refused"), self.text("refused", "title"),
                    (self.text("refused", "body"),), (common_action("finish", primary=True),),
                    Tone.ERROR, self.ctx.idle_timeout_s))
                return Transition(self._failure, (failed,))
            body = "disk_full" if reason == "disk_full" else "body"
            self._failure = offering_report(Message(
                self.screen_id("failed"), self.text("failed", "title"),
                (self.text("failed", body),),
                (common_action("retry", primary=True), common_action("back")),
                Tone.ERROR, self.ctx.idle_timeout_s))
            return Transition(self._failure, (failed,))
        lodged = outcome.value
        if not isinstance(lodged, Lodged):
            raise FlowError("Lodge answered without a Lodged")
        self._lodged = lodged
        # From here the pages are the queue's (sealed on disk or at the hub), not the screen's.
        self._pages_summary = self._scanned_summary()
        self._pages.clear()
        self._thumbnail = None
        self._phone_masked = mask_phone(self._form.values.get("phone", ""))
        self._form.wipe()
        lodged_event = event(EventType.APPLICATION_LODGED, errand_id=item.id,
                             queued=lodged.answer is None, deferred=len(self._deferred),
                             delivery=str(self._delivery))
        return Transition(self._lodged_screen(), (lodged_event,))

    def step_failed(self, ev: Event) -> FlowResult | None:
        if isinstance(ev, Returned):
            return self._failure_again()
        return tapped(ev, {"retry": self._lodge, "back": self._review,
                           "report": lambda: report_call(self, self._item().id)})

    def step_refused(self, ev: Event) -> FlowResult | None:
        if isinstance(ev, Returned):
            return self._failure_again()
        return tapped(ev, {"finish": Finish,
                           "report": lambda: report_call(self, self._item().id)})

    def _failure_again(self) -> Transition:
        assert self._failure is not None
        return Transition(self._failure)

    def step_lodged(self, ev: Event) -> FlowResult | None:
        lodged = self._lodged
        if lodged is None:
            return None
        if isinstance(ev, Returned):
            if ev.flow == "slip":
                self._printed = bool(ev.value)
                return Transition(self._lodged_screen())
            return Finish()
        answer = lodged.answer
        case = answer.case_number if isinstance(answer, CaseAccepted) else lodged.reference
        return tapped(ev, {
            "print": lambda: Call("slip", self._receipt()),
            "finish": lambda: Call("rating", RatingRequest(self._item().id, case)),
        })

    # --- the materials ---------------------------------------------------------------------------

    def _item(self) -> CatalogueItem:
        if not isinstance(self.arg, CatalogueItem):
            raise TypeError("the intake flow needs a catalogue item")
        return self.arg

    def _materials(self) -> tuple[Material, ...]:
        return self._item().guide.materials

    def _current(self) -> Material:
        return self._materials()[self._index]

    def _material_name(self, material: Material) -> Text:
        return t(self._item().key("materials", material.id, "name"))

    def _total_pages(self) -> int:
        return sum(len(pages) for pages in self._pages.values())

    def _decided(self, outcome: MaterialOutcome) -> Transition:
        material = self._current()
        self._outcomes[material.id] = outcome
        if outcome is MaterialOutcome.DEFERRED:
            self._deferred[material.id] = self._defer_until()
        else:
            self._deferred.pop(material.id, None)
        if outcome is not MaterialOutcome.SCANNED:
            self._pages.pop(material.id, None)
        if self._index + 1 < len(self._materials()):
            return self._material(self._index + 1)
        return self._delivery_menu()

    def _previous(self) -> Transition:
        return self._intro() if self._index == 0 else self._material(self._index - 1)

    def _defer_until(self) -> dt.date:
        today = self.ctx.clock.now().astimezone(self.ctx.zone).date()
        return self.ctx.calendar.promised_date(today, DEFER_WORKING_DAYS).last

    def _retake(self) -> Transition:
        pages = self._pages.get(self._current().id, [])
        if pages:
            pages.pop()
        self._thumbnail = None
        return self._capture()

    # --- screens ---------------------------------------------------------------------------------

    def _intro(self) -> Transition:
        item = self._item()
        materials = self._materials()
        rows = (
            SummaryRow(self.text("intro", "item"), t(item.title_key)),
            SummaryRow(self.text("intro", "materials"), str(len(materials))),
            SummaryRow(self.text("intro", "time_limit"),
                       self.text("intro", "working_days",
                                 days=str(item.guide.time_limit_working_days))),
        )
        screen = Confirm(self.screen_id("intro"), self.text("intro", "title"), rows,
                         (self.text("intro", "body"), self.text("intro", "privacy")),
                         (self.action("intro", "start", primary=True),
                          self.action("intro", "guide"), common_action("back")),
                         self.ctx.idle_timeout_s)
        return Transition(screen)

    def _material(self, index: int) -> Transition:
        self._index = index
        material = self._current()
        total = len(self._materials())
        options = [Action("scan", self.text("material", "scan"))]
        if material.deferrable:
            options.append(Action("defer", self.text("material", "defer")))
        if material.optional:
            options.append(Action("not_applicable", self.text("material", "not_applicable")))
        lines: list[Text] = [self.text("material", "counts", originals=str(material.originals),
                                       copies=str(material.copies))]
        if material.notes is not None:
            lines.append(t(self._item().key("materials", material.id, "notes")))
        done = self._outcomes.get(material.id)
        if done is not None:
            lines.append(self.text("material", f"was_{done}"))
        screen = Menu(self.screen_id("material"),
                      self.text("material", "title", n=str(index + 1), total=str(total),
                                name=self._material_name(material)),
                      tuple(options), tuple(lines), (common_action("back"),),
                      self.ctx.idle_timeout_s)
        return Transition(screen)

    def _scan_screen(self, *, fresh: bool) -> Transition:
        if fresh:
            self._thumbnail = None
            self._scan_note = None
        return Transition(self._scan())

    def _scan(self) -> Scan:
        material = self._current()
        pages = self._pages.get(material.id, [])
        lines: list[Text] = []
        tone = Tone.INFO
        note = self._scan_note
        if note == "blank_page":
            lines.append(self.text("scan", "blank_page"))
            tone = Tone.WARNING
        elif note in CAMERA_FAULTS:
            lines.append(self.text("scan", "camera_fault"))
            tone = Tone.ERROR
        elif note is not None:
            lines.append(self.text("scan", "failed"))
            tone = Tone.ERROR
        full = len(pages) >= MAX_PAGES_PER_MATERIAL or self._total_pages() >= MAX_PAGES
        if full:
            lines.append(self.text("scan", "full"))
        lines.append(self.text("scan", "pages", pages=str(len(pages))) if pages
                     else self.text("scan", "hint"))
        actions: list[Action] = []
        if not full:
            label = "capture" if not pages else "add_page"
            actions.append(self.action("scan", label, primary=not pages))
            actions[-1] = Action("capture", actions[-1].label, style=actions[-1].style)
        if pages:
            actions += [self.action("scan", "retake"), self.action("scan", "done", primary=True)]
        actions.append(common_action("back"))
        return Scan(self.screen_id("scan"), self.text("scan", "title"),
                    self._material_name(material), len(pages), tuple(lines), tuple(actions),
                    self._thumbnail, preview=note not in CAMERA_FAULTS, tone=tone,
                    idle_timeout_s=self.ctx.idle_timeout_s * 2)

    def _capture(self) -> Transition:
        material = self._current()
        page = len(self._pages.get(material.id, [])) + 1
        screen = Progress(self.screen_id("capturing"),
                          self.text("capturing", "title", name=self._material_name(material)),
                          (self.text("capturing", "body"),))
        return Transition(screen, (CapturePage(material.id, page),))

    def _defer_screen(self) -> Transition:
        material = self._current()
        until = self._defer_until()
        screen = Confirm(
            self.screen_id("defer"), self.text("defer", "title"),
            (SummaryRow(self.text("defer", "material"), self._material_name(material)),
             SummaryRow(self.text("defer", "deadline"),
                        self.text("defer", "by", date=local_date(until),
                                  days=str(DEFER_WORKING_DAYS)))),
            (self.text("defer", "commitment", date=local_date(until)),),
            (self.action("defer", "agree", primary=True), common_action("back")),
            self.ctx.idle_timeout_s,
        )
        return Transition(screen)

    def _delivery_menu(self) -> Transition:
        options = (Action("mail", self.text("delivery", "mail")),
                   Action("pickup", self.text("delivery", "pickup")))
        screen = Menu(self.screen_id("delivery"), self.text("delivery", "title"), options,
                      (self.text("delivery", "body"),), (common_action("back"),),
                      self.ctx.idle_timeout_s)
        return Transition(screen)

    def _look_up_address(self) -> Transition:
        holder = self.ctx.session.holder
        if holder is None:
            raise FlowError("an application needs an identified resident")
        screen = Progress(self.screen_id("address_loading"),
                          self.text("address_loading", "title"))
        return Transition(screen, (AskHub(AddressQuery(holder.id_number)),))

    def _pickup_menu(self) -> Transition:
        options = tuple(Action(f"centre.{c.id}", t(c.name_key))
                        for c in self.ctx.catalogue.centres)
        screen = Menu(self.screen_id("pickup"), self.text("pickup", "title"), options,
                      (self.text("pickup", "body"),), (common_action("back"),),
                      self.ctx.idle_timeout_s)
        return Transition(screen)

    def _phone(self) -> Transition:
        screen = Form(self.screen_id("phone"), self.text("phone", "title"),
                      self._form.fields(self.screen_id("phone")), self._form.focus,
                      (self.text("phone", "body"),),
                      (self.action("phone", "next", primary=True), common_action("back")),
                      self.ctx.idle_timeout_s)
        return Transition(screen)

    def _review(self) -> Transition:
        rows: list[SummaryRow] = [SummaryRow(self.text("review", "item"),
                                             t(self._item().title_key))]
        for material in self._materials():
            rows.append(SummaryRow(self._material_name(material), self._outcome_text(material)))
        rows.append(SummaryRow(self.text("review", "delivery"), self._delivery_text()))
        rows.append(SummaryRow(self.text("review", "phone"),
                               mask_phone(self._form.values.get("phone", ""))))
        screen = Confirm(self.screen_id("review"), self.text("review", "title"), tuple(rows),
                         (self.text("review", "body"),),
                         (self.action("review", "submit", primary=True), common_action("back")),
                         self.ctx.idle_timeout_s)
        return Transition(screen)

    def _outcome_text(self, material: Material) -> Text:
        outcome = self._outcomes.get(material.id)
        if outcome is MaterialOutcome.SCANNED:
            return self.text("review", "scanned", pages=str(len(self._pages.get(material.id, []))))
        if outcome is MaterialOutcome.DEFERRED:
            return self.text("review", "deferred", date=local_date(self._deferred[material.id]))
        return self.text("review", "not_applicable")

    def _delivery_text(self) -> Text:
        if self._delivery is Delivery.MAIL and self._address is not None:
            return self.text("review", "mail", address=mask_address(self._address.text))
        centre = self._pickup
        return self.text("review", "pickup", centre=t(centre.name_key) if centre else "")

    def _lodge(self) -> Transition:
        holder = self.ctx.session.holder
        if holder is None or self._delivery is None:
            raise FlowError("an application needs a resident and a delivery")
        now = self.ctx.clock.now()
        self._received_on = now.astimezone(self.ctx.zone).date()
        materials = tuple(
            MaterialEntry(m.id, self._outcomes[m.id], len(self._pages.get(m.id, [])),
                          self._deferred.get(m.id))
            for m in self._materials()
        )
        submission = CaseSubmission(
            reference="",  # the queue gives it the terminal's next local reference
            item_id=self._item().id,
            id_number=holder.id_number,
            phone=self._form.values.get("phone", ""),
            delivery=self._delivery,
            pickup_site=self._pickup.id if self._pickup is not None else "",
            materials=materials,
            pages=tuple(p for m in self._materials() for p in self._pages.get(m.id, [])),
            terminal_id=self.ctx.terminal_id,
            submitted_at=now,
        )
        screen = Progress(self.screen_id("lodging"), self.text("lodging", "title"),
                          (self.text("lodging", "body"),))
        return Transition(screen, (Lodge(submission),))

    def _scanned_summary(self) -> tuple[tuple[str, int], ...]:
        return tuple((m.name.zh, len(self._pages.get(m.id, []))) for m in self._materials()
                     if self._outcomes.get(m.id) is MaterialOutcome.SCANNED)

    def _promised(self) -> tuple[dt.date, bool]:
        received = self._received_on or self.ctx.clock.now().astimezone(self.ctx.zone).date()
        reckoning = self.ctx.calendar.promised_date(
            received, self._item().guide.time_limit_working_days)
        return reckoning.last, reckoning.estimated

    def _lodged_screen(self) -> Done:
        lodged = self._lodged
        assert lodged is not None
        answer = lodged.answer
        promised, estimated = self._promised()
        lines: list[Text] = []
        if isinstance(answer, CaseAccepted):
            lines.append(self.text("lodged", "case_number", case_number=answer.case_number))
        else:
            lines += [self.text("lodged", "reference", reference=lodged.reference),
                      self.text("lodged", "queued")]
        lines.append(self.text("lodged", "estimated" if estimated else "promised",
                               date=local_date(promised)))
        for material_id, until in self._deferred.items():
            material = next(m for m in self._materials() if m.id == material_id)
            lines.append(self.text("lodged", "deferred", material=self._material_name(material),
                                   date=local_date(until)))
        slip_line, actions = slip_lines_and_actions(self, "lodged", self._printed)
        lines += slip_line
        return Done(self.screen_id("lodged"), self.text("lodged", "title"), tuple(lines),
                    actions, self.ctx.idle_timeout_s)

    def _receipt(self) -> SlipRequest:
        lodged = self._lodged
        assert lodged is not None
        item = self._item()
        answer = lodged.answer
        accepted = answer if isinstance(answer, CaseAccepted) else None
        home = self.ctx.catalogue.centre(self.ctx.site) or (
            self.ctx.catalogue.centres[0] if self.ctx.catalogue.centres else None)
        receiving = home.name.zh if home is not None else self.ctx.site
        promised, _ = self._promised()
        if self._delivery is Delivery.MAIL and self._address is not None:
            delivery_text = f"邮寄至：{mask_address(self._address.text)}"
        elif self._pickup is not None:
            delivery_text = f"领取地点：{self._pickup.name.zh}（{self._pickup.address.zh}）"
        else:
            delivery_text = ""
        receipt = application_receipt(
            item=item,
            reference=lodged.reference,
            case_number=accepted.case_number if accepted is not None else None,
            receiving_place=receiving,
            authority=accepted.authority if accepted is not None else item.department.name.zh,
            cross_region=accepted.cross_region if accepted is not None else False,
            received_on=self._received_on or promised,
            promised_by=promised,
            deferred=tuple((next(m.name.zh for m in self._materials() if m.id == mid), until)
                           for mid, until in self._deferred.items()),
            scanned=self._pages_summary,
            delivery=self._delivery or Delivery.PICKUP,
            delivery_text=delivery_text,
            phone_masked=self._phone_masked,
            links_base=self.ctx.links_base,
            terminal_id=self.ctx.terminal_id,
            printed_at=self.ctx.clock.now(),
            zone=self.ctx.zone,
        )
        return SlipRequest(receipt, "application", item.id)
