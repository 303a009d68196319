"""The errand flow driven through the real SessionEngine, step by step, with a fake clock."""

from __future__ import annotations

import dataclasses
import datetime as dt
import string
import tomllib
from collections.abc import Iterator
from pathlib import Path

import flows_support
import pytest
from flows_support import DOCUMENT, receipt_strings

from contracts.rating import RATING_LEVELS
from devices.base import DeviceState, IdentityDocument, StaffBadge
from flows.catalogue import Catalogue, ItemKind, parse_catalogue
from flows.home import SERVICE_FLOWS, menu_items
from flows.hub import (
    Appointment,
    CaseAccepted,
    CaseProgress,
    CaseStatus,
    ErrandDocument,
    PostalAddress,
    Report,
    ReportFiled,
    ScannedPage,
    Slot,
)
from flows.hub_queries import (
    AddressQuery,
    AppointmentsQuery,
    BookSlot,
    CancelAppointment,
    CaseQuery,
    CasesQuery,
    SlotsQuery,
)
from flows.maintenance_report import (
    SELF_TEST_DEVICES,
    CheckResult,
    DeviceCheck,
    MaintenanceTask,
    PrinterDetail,
    SelfTestReport,
    TerminalStatus,
)
from flows.platform import EndReason, EndSession, Flow, FlowError, step
from flows.registry import FLOWS
from flows.steps import (
    Action,
    AskHub,
    Captured,
    CapturePage,
    CardInserted,
    CardPulled,
    CheckPrinter,
    CodeScanned,
    Confirm,
    Effect,
    EffectDone,
    Failed,
    Form,
    Guide,
    IdCardPresented,
    Lodge,
    Lodged,
    Maintain,
    Menu,
    Message,
    PrintReceipt,
    Progress,
    ReadCard,
    RecordEvent,
    ResolveCode,
    RunErrand,
    Screen,
    ShowQr,
    SubmitRating,
    Succeeded,
    Tap,
    Text,
    TextEntered,
    Transition,
    screen_actions,
)

ROOT = Path(__file__).resolve().parents[2]
READER = "Virtual PCD 00 00"
PROOF = "ssc_enrollment_proof"
PENSION = "resident_pension_enrollment"

# A lower-case check character, as some cards store it.
HOLDER = dataclasses.replace(flows_support.HOLDER, id_number="11010519491231002x")
BAD_CHECK_DIGIT = dataclasses.replace(HOLDER, id_number="110105194912310021")
PERSONAL = ("11010519491231002X", "11010519491231002x", "欧阳娜娜", "A12345678")


def document(errand_id: str = PROOF) -> ErrandDocument:
    return dataclasses.replace(DOCUMENT, errand_id=errand_id)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    with (ROOT / "terminal/content/catalogue.toml").open("rb") as f:
        return parse_catalogue(tomllib.load(f))


class Kiosk(flows_support.Kiosk):
    """The shared driver, with shortcuts to the steps most tests start from."""

    def at_menu(self) -> Kiosk:
        self.send(CardInserted(READER))
        self.succeed(ReadCard, HOLDER)
        self.tap("continue")
        assert self.screen.screen == "home.menu"
        return self

    def at_fetching(self) -> Kiosk:
        self.at_menu().tap(f"errand.{PROOF}")
        self.tap("confirm")
        self.succeed(CheckPrinter, DeviceState.ok())
        assert self.screen.screen == "proof.fetching"
        return self


def ids(actions: tuple[Action, ...]) -> list[str]:
    return [a.id for a in actions]


def texts(screen: Screen) -> Iterator[Text]:
    """Every Text on a screen, nested parameters included."""
    top: list[Text] = [screen.title, *screen.lines, *(a.label for a in screen_actions(screen))]
    if isinstance(screen, Guide):
        for section in screen.sections:
            top += [section.heading, *section.items]
        if screen.qr_caption is not None:
            top.append(screen.qr_caption)
    if isinstance(screen, Confirm):
        for row in screen.rows:
            top += [row.label, *([row.value] if isinstance(row.value, Text) else [])]
    if isinstance(screen, ShowQr):
        top.append(screen.qr_caption)
    stack = top
    while stack:
        text = stack.pop()
        yield text
        stack += [v for v in text.params.values() if isinstance(v, Text)]


# --- the happy paths -------------------------------------------------------------------------


def test_proof_errand_end_to_end(catalogue: Catalogue) -> None:
    k = Kiosk(catalogue)
    start = k.outputs[0]
    assert start.view.screen.screen == "attract" and start.effects == ()

    k.send(CardInserted(READER))
    assert isinstance(k.screen, Progress) and k.screen.screen == "identify.reading_card"
    kinds: list[type] = [type(effect) for effect in k.effects]
    assert kinds == [RecordEvent, ReadCard]
    assert k.events("session_started") and k.awaited(ReadCard) == ReadCard(READER)

    k.succeed(ReadCard, HOLDER)
    assert isinstance(k.screen, Message) and k.screen.screen == "identify.identity"
    shown = [str(v) for text in texts(k.screen) for v in text.params.values()]
    assert "欧***" in shown and "1101**********002X" in shown
    assert ids(k.screen.actions) == ["continue", "cancel"]

    k.tap("continue")
    assert isinstance(k.screen, Menu) and k.screen.screen == "home.menu"
    # Errands done here with the card first, then the guides asked for most; every other guide
    # is behind "browse all guides".
    assert ids(k.screen.options) == [
        *(f"errand.{item.id}" for item in menu_items(catalogue)),
        *(f"service.{name}" for name in SERVICE_FLOWS),
    ]
    assert ids(k.screen.options)[0] == f"errand.{PROOF}"
    assert ids(k.screen.actions) == ["guides", "finish"]

    k.tap(f"errand.{PROOF}")
    assert k.screen.screen == "proof.confirm" and ids(k.screen.actions) == ["confirm", "back"]

    k.tap("confirm")
    assert k.screen.screen == "proof.checking_printer" and k.awaited(CheckPrinter) == CheckPrinter()

    k.succeed(CheckPrinter, DeviceState.ok())
    assert k.screen.screen == "proof.fetching"
    run = k.awaited(RunErrand)
    assert isinstance(run, RunErrand) and run.errand_id == PROOF
    assert run.holder.id_number == "11010519491231002X"  # normalised before it reaches the hub

    k.succeed(RunErrand, document())
    assert k.screen.screen == "proof.printing"
    job = k.awaited(PrintReceipt)
    assert isinstance(job, PrintReceipt)
    printed = receipt_strings(job.receipt)
    assert "欧***" in printed and "1101**********002X" in printed
    assert "CASE-2025-000123" in printed and "T-0001" in printed

    k.succeed(PrintReceipt)
    assert k.screen.screen == "proof.done"
    reported: list[str] = [e.type for e in k.effects if isinstance(e, RecordEvent)]
    assert reported == ["errand_completed", "receipt_printed"]
    assert k.events("errand_completed")[0].fields == {"errand_id": PROOF}
    assert k.engine.in_session

    k.send(CardPulled(READER))
    assert isinstance(k.screen, Menu) and k.screen.screen == "rating.choose"
    assert ids(k.screen.options) == ["rating.5", "rating.4", "rating.3", "rating.2", "rating.1"]
    assert ids(k.screen.actions) == ["skip"]
    assert any(text.params.get("case_number") == "CASE-2025-000123" for text in texts(k.screen))

    k.tap("rating.4")
    assert k.screen.screen == "thanks" and not k.engine.in_session
    assert SubmitRating(PROOF, "CASE-2025-000123", 4) in k.effects
    assert k.events("rating_submitted")[0].fields == {"errand_id": PROOF, "level": 4}
    assert k.events("session_ended")[-1].fields == {"reason": "done"}
    assert k.effects[-1] == k.events("session_ended")[-1]  # the goodbye is reported last

    k.wait(7)
    assert k.screen.screen == "thanks" and k.outputs[-1].view.countdown_s == 1
    k.wait(1)
    assert k.screen.screen == "attract" and k.engine.idle


def test_a_degraded_printer_still_prints(catalogue: Catalogue) -> None:
    k = Kiosk(catalogue).at_menu()
    k.tap(f"errand.{PROOF}")
    k.tap("confirm")
    k.succeed(CheckPrinter, DeviceState.degraded("paper_near_end"))
    assert k.screen.screen == "proof.fetching"


def test_rating_can_be_skipped(catalogue: Catalogue) -> None:
    k = Kiosk(catalogue).at_fetching()
    k.succeed(RunErrand, document())
    k.succeed(PrintReceipt)
    k.send(CardPulled(READER))
    k.tap("skip")
    assert k.screen.screen == "thanks"
    assert not any(isinstance(e, SubmitRating) for e in k.effects)
    assert k.events("rating_skipped")[0].fields == {"errand_id": PROOF}
    assert k.events("session_ended")[-1].fields == {"reason": "done"}


def test_guide_lists_every_material_and_prints_the_list(catalogue: Catalogue) -> None:
    item = catalogue.item(PENSION)
    assert item is not None and item.guide is not None
    k = Kiosk(catalogue).at_menu()
    k.tap(f"errand.{PENSION}")
    screen = k.screen
    assert isinstance(screen, Guide) and screen.screen == "guide.guide"
    assert screen.title.key == f"catalogue.{PENSION}.title"
    # Everything at once: the heading says how many materials there are in all, and every one
    # is on the screen model, materials first (the UI pages what a screen cannot show at once:
    # tests/terminal/test_gui.py).
    total = len(item.guide.materials)
    assert screen.sections[0].heading.key == "guide.guide.materials"
    assert screen.sections[0].heading.params == {"count": str(total)}
    assert len(screen.sections[0].items) == total
    assert ids(screen.actions) == ["print_guide", "back"]
    keys = {text.key for text in texts(screen)}
    for material in item.guide.materials:
        assert f"catalogue.{PENSION}.materials.{material.id}.name" in keys
    assert {f"catalogue.{PENSION}.fees", item.department.name_key, item.department.where_key,
            f"catalogue.{PENSION}.conditions.1"} <= keys
    assert f"catalogue.{PENSION}.legal_basis.2" in keys
    limit = next(text for text in texts(k.screen) if text.key == "guide.guide.time_limit_value")
    assert limit.params == {"days": "5"}
    assert k.screen.qr_data == item.guide.guide_url and k.screen.qr_caption is not None
    assert k.events("guide_viewed")[0].fields == {"item_id": PENSION}

    k.tap("print_guide")
    assert k.screen.screen == "guide.printing"
    job = k.awaited(PrintReceipt)
    assert isinstance(job, PrintReceipt)
    printed = "\n".join(receipt_strings(job.receipt))
    for material in item.guide.materials:
        assert material.name.zh in printed
    for personal in (*PERSONAL, "欧***", "1101**********002X"):
        assert personal not in printed  # the material list is for anyone: no personal data

    k.succeed(PrintReceipt)
    assert k.screen.screen == "guide.guide"
    assert k.screen.lines[0].key == "guide.guide.printed"
    assert k.events("receipt_printed")[-1].fields == {"kind": "guide", "errand_id": PENSION}

    k.tap("back")
    assert k.screen.screen == "home.menu"


def test_guide_print_failure_offers_retry_and_back(catalogue: Catalogue) -> None:
    k = Kiosk(catalogue).at_menu()
    k.tap(f"errand.{PENSION}")
    k.tap("print_guide")
    k.fail(PrintReceipt, "paper_out")
    assert k.screen.screen == "guide.print_failed"
    assert ids(k.screen.actions) == ["retry", "back"]
    assert k.screen.lines[0].key == "error.printer.paper_out"
    k.tap("retry")
    assert k.screen.screen == "guide.printing" and k.awaited(PrintReceipt)
    k.fail(PrintReceipt, "cover_open")
    k.tap("back")
    assert k.screen.screen == "guide.guide"


# --- card problems ---------------------------------------------------------------------------


def test_unsupported_card_asks_for_the_social_security_card(catalogue: Catalogue) -> None:
    k = Kiosk(catalogue)
    k.send(CardInserted(READER))
    k.fail(ReadCard, "unsupported_card")
    assert isinstance(k.screen, Message) and k.screen.screen == "error.unsupported_card"
    assert [line.key for line in k.screen.lines] == [
        "error.unsupported_card.body",
        "take_card.prompt",
    ]
    assert k.screen.actions == ()  # nothing to press: the card has to come out
    assert k.events("session_ended")[-1].fields == {"reason": "error", "detail": "unsupported_card"}
    k.send(CardPulled(READER))
    assert k.screen.screen == "attract"


def test_wrong_check_digit_has_its_own_screen(catalogue: Catalogue) -> None:
    k = Kiosk(catalogue)
    k.send(CardInserted(READER))
    k.succeed(ReadCard, BAD_CHECK_DIGIT)
    assert k.screen.screen == "error.invalid_id"
    assert k.screen.lines[-1].key == "take_card.prompt"
    assert k.events("session_ended")[-1].fields == {"reason": "error", "detail": "invalid_id"}
    k.send(CardPulled(READER))
    assert k.screen.screen == "attract"


@pytest.mark.parametrize(
    ("outcome", "detail"),
    [
        (Failed("card_data_invalid"), "card_data_invalid"),
        (Failed("timeout"), "timeout"),
        (Failed("offline"), "offline"),
        (Succeeded(dataclasses.replace(HOLDER, id_number="1101051949")), "card_data_invalid"),
        (Succeeded("not a card holder"), "card_data_invalid"),
    ],
)
def test_unreadable_card(catalogue: Catalogue, outcome: Succeeded | Failed, detail: str) -> None:
    k = Kiosk(catalogue)
    k.send(CardInserted(READER))
    k.send(EffectDone(k.awaited(ReadCard), outcome))
    assert k.screen.screen == "error.card_read"
    assert k.events("session_ended")[-1].fields == {"reason": "error", "detail": detail}


def test_card_removed_during_the_read_says_so_then_attract(catalogue: Catalogue) -> None:
    k = Kiosk(catalogue)
    k.send(CardInserted(READER))
    k.fail(ReadCard, "card_removed")  # the reader noticed before pcscd told the engine
    assert k.screen.screen == "notice.card_removed"
    assert ids(k.screen.actions) == ["continue"]
    assert k.events("session_ended")[-1].fields == {"reason": "card_pulled"}
    k.send(CardPulled(READER))
    assert k.screen.screen == "notice.card_removed"  # the notice stays up to be read
    k.tap("continue")
    assert k.screen.screen == "attract"


def test_card_pulled_during_the_read_ignores_the_late_read_result(catalogue: Catalogue) -> None:
    k = Kiosk(catalogue)
    k.send(CardInserted(READER))
    read = k.awaited(ReadCard)
    k.send(CardPulled(READER))
    assert k.screen.screen == "notice.card_removed"
    late = k.send(EffectDone(read, Failed("card_removed")))
    assert late.effects == () and k.screen.screen == "notice.card_removed"
    k.wait(10)
    assert k.screen.screen == "attract"


def test_cancel_at_identity_ends_the_session(catalogue: Catalogue) -> None:
    k = Kiosk(catalogue)
    k.send(CardInserted(READER))
    k.succeed(ReadCard, HOLDER)
    k.tap("cancel")
    assert k.screen.screen == "take_card"
    assert k.events("session_ended")[-1].fields == {"reason": "cancel"}


# --- printer and hub problems ----------------------------------------------------------------


@pytest.mark.parametrize(
    "outcome",
    [Failed("paper_out"), Succeeded(DeviceState.fault("paper_out"))],
    ids=["failed", "fault-state"],
)
def test_paper_out_is_found_before_the_hub_is_asked(
    catalogue: Catalogue, outcome: Succeeded | Failed
) -> None:
    k = Kiosk(catalogue).at_menu()
    k.tap(f"errand.{PROOF}")
    k.tap("confirm")
    k.send(EffectDone(k.awaited(CheckPrinter), outcome))
    assert k.screen.screen == "proof.printer_unavailable"
    assert k.screen.lines[0].key == "error.printer.paper_out"
    assert ids(k.screen.actions) == ["back", "report", "finish"]
    assert not any(isinstance(e, RunErrand) for out in k.outputs for e in out.effects)
    assert k.events("errand_failed")[0].fields == {
        "errand_id": PROOF,
        "stage": "printer",
        "reason": "paper_out",
    }
    assert k.engine.in_session  # the session goes on: other errands, or finish
    k.tap("back")
    assert k.screen.screen == "home.menu"
    k.tap("finish")
    assert k.screen.screen == "take_card"
    assert k.events("session_ended")[-1].fields == {"reason": "done"}


def test_hub_down_offers_try_again_which_checks_the_printer_again(catalogue: Catalogue) -> None:
    k = Kiosk(catalogue).at_fetching()
    k.fail(RunErrand, "hub_unavailable")
    assert k.screen.screen == "proof.hub_unavailable"
    assert k.screen.lines[0].key == "proof.hub_unavailable.body"
    assert ids(k.screen.actions) == ["retry", "report", "back"]
    k.tap("retry")
    assert k.screen.screen == "proof.checking_printer"
    k.succeed(CheckPrinter, DeviceState.ok())
    k.succeed(RunErrand, document())
    assert k.screen.screen == "proof.printing"


def test_hub_error_uses_the_same_screen_with_its_own_message(catalogue: Catalogue) -> None:
    k = Kiosk(catalogue).at_fetching()
    k.fail(RunErrand, "hub_error")
    assert k.screen.screen == "proof.hub_unavailable"
    assert k.screen.lines[0].key == "proof.hub_unavailable.hub_error"
    k.tap("back")
    assert k.screen.screen == "home.menu"


def test_a_document_for_another_errand_is_not_printed(catalogue: Catalogue) -> None:
    k = Kiosk(catalogue).at_fetching()
    k.succeed(RunErrand, document(errand_id="something_else"))
    assert k.screen.screen == "proof.hub_unavailable"
    assert not any(isinstance(e, PrintReceipt) for e in k.effects)


@pytest.mark.parametrize(
    "reason", ["not_enrolled", "suspended", "deceased", "invalid_id", "unknown_errand"]
)
def test_each_hub_refusal_has_its_own_message(catalogue: Catalogue, reason: str) -> None:
    k = Kiosk(catalogue).at_fetching()
    k.fail(RunErrand, reason)
    assert k.screen.screen == "proof.refused"
    assert k.screen.lines[0].key == f"proof.refused.{reason}"
    assert ids(k.screen.actions) == ["back", "report", "finish"]
    assert k.events("errand_failed")[0].fields["reason"] == reason


def test_print_failure_mid_job_reprints_the_same_document(catalogue: Catalogue) -> None:
    k = Kiosk(catalogue).at_fetching()
    k.succeed(RunErrand, document())
    first = k.awaited(PrintReceipt)
    assert isinstance(first, PrintReceipt)
    k.fail(PrintReceipt, "paper_out")
    assert k.screen.screen == "proof.print_failed"
    assert [line.key for line in k.screen.lines] == [
        "error.printer.paper_out",
        "proof.print_failed.body",
    ]
    assert ids(k.screen.actions) == ["retry", "finish"]
    k.tap("retry")
    again = k.awaited(PrintReceipt)
    assert isinstance(again, PrintReceipt) and again.receipt == first.receipt
    assert sum(isinstance(e, RunErrand) for out in k.outputs for e in out.effects) == 1
    k.succeed(PrintReceipt)
    assert k.screen.screen == "proof.done"


# --- privacy ----------------------------------------------------------------------------------


def test_no_personal_data_in_events_or_reprs(catalogue: Catalogue) -> None:
    k = Kiosk(catalogue).at_fetching()
    k.fail(RunErrand, "hub_unavailable")
    k.tap("retry")
    k.succeed(CheckPrinter, DeviceState.ok())
    k.succeed(RunErrand, document())
    k.fail(PrintReceipt, "paper_out")
    k.tap("retry")
    k.succeed(PrintReceipt)
    k.send(CardPulled(READER))
    k.tap("rating.1")
    effects = [e for out in k.outputs for e in out.effects]
    events = [e for e in effects if isinstance(e, RecordEvent)]
    assert len(events) == 7
    for event in events:
        for value in event.fields.values():
            for personal in (*PERSONAL, "欧***", "1101**********002X"):
                assert personal not in str(value)
    for effect in effects:
        for personal in PERSONAL:
            assert personal not in repr(effect)


# --- the declared graph -----------------------------------------------------------------------


def test_every_registered_flow_declares_a_valid_graph() -> None:
    assert set(FLOWS) == {"identify", "home", "proof", "guide", "guides", "rating", "slip",
                          "progress", "report", "appointment",
                          "intake", "maintenance"}
    for flow in FLOWS.values():
        assert flow.INITIAL in flow.SPEC
        assert all(spec.to <= set(flow.SPEC) for spec in flow.SPEC.values())


def _declare(steps: tuple[object, ...], **handlers: object) -> type[Flow]:
    namespace: dict[str, object] = {"NAME": "broken", "INITIAL": "a", "STEPS": steps}
    namespace.update({f"step_{name}": handler for name, handler in handlers.items()})
    return type("Broken", (Flow,), namespace)


def _never(self: Flow, event: object) -> None:
    return None


def test_a_broken_declaration_is_refused_at_import() -> None:
    with pytest.raises(FlowError, match="never end"):
        _declare((step("a", Message, to=("b",)), step("b", Message, to=("a",))), a=_never, b=_never)
    with pytest.raises(FlowError, match="nothing leads to"):
        _declare((step("a", Message, ends=True), step("b", Message, ends=True)), a=_never, b=_never)
    with pytest.raises(FlowError, match="without a handler"):
        _declare((step("a", Message, ends=True),))
    with pytest.raises(FlowError, match="awaits no effect"):
        _declare((step("a", Progress, ends=True),), a=_never)
    with pytest.raises(FlowError, match="not an awaited effect"):
        _declare((step("a", Progress, awaits=RecordEvent, ends=True),), a=_never)


def test_a_missing_await_fails_at_run_time(catalogue: Catalogue) -> None:
    """A step that shows a progress screen without asking for its effect would hang a resident:
    the platform refuses it on the transition, and the engine ends the session cleanly."""
    from flows.platform import FlowContext  # noqa: PLC0415

    def jump(self: Flow, event: object) -> object:
        return Transition(Progress("broken.b", Text("x")))

    broken = _declare(
        (step("a", Message, to=("b",), ends=True), step("b", Progress, awaits=ReadCard, ends=True)),
        a=jump,
        b=_never,
    )
    clock = flows_support.FakeClock()
    flow = broken(FlowContext(catalogue, clock, "T-0001", dt.UTC, 60))
    with pytest.raises(FlowError, match="awaits ReadCard"):
        flow.handle(Tap("anything"))
    assert EndSession(EndReason.DONE).reason is EndReason.DONE


# --- every reachable screen, and its texts in both languages ----------------------------------

OUTCOMES: dict[type, list[Succeeded | Failed]] = {
    ReadCard: [
        Succeeded(HOLDER),
        Succeeded(BAD_CHECK_DIGIT),
        Succeeded("junk"),
        Succeeded(StaffBadge(flows_support.STAFF_UID)),
        Succeeded(StaffBadge("04FFFFFFFFFFFF")),  # a badge nobody listed
        *(Failed(r) for r in ("card_removed", "unsupported_card", "card_data_invalid", "timeout")),
    ],
    ResolveCode: [
        Succeeded(dataclasses.replace(HOLDER, document=IdentityDocument.E_CODE)),
        Succeeded(dataclasses.replace(HOLDER, id_number="110105194912310021")),  # bad check digit
        Succeeded("junk"),
        *(Failed(r) for r in ("code_expired", "code_used", "code_unknown", "hub_unavailable",
                              "hub_error")),
    ],
    CheckPrinter: [
        Succeeded(DeviceState.ok()),
        Succeeded(DeviceState.fault("cover_open")),
        Succeeded(None),
        *(Failed(r) for r in ("paper_out", "cover_open", "offline", "no_response", "cutter")),
        Failed("Free text, not a code!"),
    ],
    RunErrand: [
        Succeeded(document()),
        *(
            Failed(r)
            for r in (
                "hub_unavailable",
                "not_enrolled",
                "suspended",
                "deceased",
                "invalid_id",
                "unknown_errand",
                "hub_error",
            )
        ),
    ],
    PrintReceipt: [Succeeded(None), Failed("paper_out"), Failed("offline")],
}

CASE = CaseProgress("SB20250314000001", "resident_pension_enrollment", CaseStatus.ACCEPTED,
                    dt.date(2025, 3, 14), dt.datetime(2025, 3, 14, 2, 0, tzinfo=dt.UTC),
                    dt.date(2025, 4, 1))
LODGED_REPORT = Lodged("L-T-0001-20250314-0001",
                       ReportFiled("L-T-0001-20250314-0001", "BBCS20250314001",
                                   dt.datetime(2025, 3, 15, 1, 0, tzinfo=dt.UTC)))
HUB_FAILURES = [Failed("hub_unavailable"), Failed("case_unknown"), Failed("hub_error")]
HUB_OUTCOMES: dict[type, list[Succeeded | Failed]] = {
    CaseQuery: [Succeeded(CASE),
                Succeeded(dataclasses.replace(CASE, case_number="L-T-0001-20250314-0009",
                                              status=CaseStatus.NOT_SUBMITTED)),
                *HUB_FAILURES],
    CasesQuery: [
        Succeeded(()),
        Succeeded((CASE,)),
        Succeeded((CASE, dataclasses.replace(CASE, case_number="SB20250301000009",
                                             status=CaseStatus.AWAITING_MATERIALS))),
        Succeeded("junk"),
        *HUB_FAILURES,
    ],
}
SLOTS = (Slot("s1", dt.date(2025, 3, 17), dt.time(9), dt.time(9, 30), 2),
         Slot("s2", dt.date(2025, 3, 17), dt.time(9, 30), dt.time(10), 0))
BOOKED = Appointment("a1", "ABCD-EFGH", "resident_pension_enrollment", "simulator",
                     dt.date(2025, 3, 17), dt.time(9), dt.time(9, 30))
HUB_OUTCOMES.update({
    SlotsQuery: [Succeeded(SLOTS), Succeeded(()), Succeeded("junk"), *HUB_FAILURES],
    BookSlot: [Succeeded(BOOKED), Failed("slot_taken"), Failed("already_booked"),
               Succeeded("junk"), *HUB_FAILURES],
    AppointmentsQuery: [Succeeded((BOOKED,)), Succeeded(()), *HUB_FAILURES],
    CancelAppointment: [Succeeded(None), *HUB_FAILURES],
})
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64 + b"\xff\xd9"
LODGED_CASE = Lodged("L-T-0001-20250314-0003",
                     CaseAccepted("L-T-0001-20250314-0003", "SB20250314000002",
                                  "示范县社会保险事业管理中心",
                                  dt.datetime(2025, 3, 14, 1, 31, tzinfo=dt.UTC), True))
HUB_OUTCOMES[AddressQuery] = [Succeeded(PostalAddress("浙江省温州市瑞安市塘下镇鲍田村12号")),
                              Succeeded(None), *HUB_FAILURES]
TYPED = {"phone": "13812345678"}
SCANS = (CodeScanned("receipt", "SB20250314000001"), CodeScanned("appointment", "A1B2C3"),
         CodeScanned("unknown"), CodeScanned("e_id", "EID1:" + "k" * 30))
ID_CARD = dataclasses.replace(HOLDER, document=IdentityDocument.RESIDENT_ID_CARD, card_number="",
                              expires=dt.date(2035, 1, 1))
PRESENTED = (
    IdCardPresented(ID_CARD),
    IdCardPresented(dataclasses.replace(ID_CARD, expires=dt.date(2020, 1, 1))),  # expired
    *(IdCardPresented(None, r) for r in ("residence_permit", "foreign_permanent_resident",
                                         "unknown_card_type", "card_removed", "read_failed")),
)
SELF_TEST = SelfTestReport(tuple(DeviceCheck(d, CheckResult.PASSED, detail="3 ms")
                                 for d in SELF_TEST_DEVICES))
STATUS = TerminalStatus(
    "T-0001", "示范镇便民服务中心", "1.4.0", "2026.12.01", ("eth0 192.168.1.20",),
    PrinterDetail(DeviceState.degraded("paper_near_end"), True, False, False, 361, 400),
    {"sessions": 12, "completed_errands": 9, "receipts": 10,
     "ratings": {"1": 0, "2": 0, "3": 1, "4": 2, "5": 6}},
)
MAINTAIN_OUTCOMES: dict[MaintenanceTask, list[Succeeded | Failed]] = {
    MaintenanceTask.SELF_TEST: [
        Succeeded(SELF_TEST),
        Succeeded(SelfTestReport((DeviceCheck("printer", CheckResult.FAILED, "paper_out"),
                                  DeviceCheck("camera", CheckResult.NOT_FITTED)))),
        Succeeded("junk"), Failed("internal_error"),
    ],
    MaintenanceTask.STATUS: [
        Succeeded(STATUS),
        Succeeded(dataclasses.replace(STATUS, printer=dataclasses.replace(
            STATUS.printer, paper_near_end=None, paper_out=None, cover_open=None,
            roll_capacity=0))),
        Failed("internal_error"),
    ],
    MaintenanceTask.PAPER_REFILLED: [Succeeded(None), Failed("disk_full")],
    MaintenanceTask.RESTART: [Succeeded(None), Failed("internal_error")],
}


def outcomes_for(effect: Effect) -> list[Succeeded | Failed]:
    if isinstance(effect, Lodge) and isinstance(effect.item, Report):
        return [Succeeded(LODGED_REPORT), Succeeded(Lodged(LODGED_REPORT.reference, None)),
                Failed("disk_full"), Failed("internal_error")]
    if isinstance(effect, Lodge):
        return [Succeeded(LODGED_CASE), Succeeded(Lodged(LODGED_CASE.reference, None)),
                Failed("disk_full"), Failed("not_eligible"), Failed("hub_error")]
    if isinstance(effect, CapturePage):
        page = ScannedPage(effect.material_id, effect.page, JPEG)
        return [Succeeded(Captured(page, JPEG)), Failed("blank_page"), Failed("absent"),
                Failed("too_large")]
    if isinstance(effect, AskHub):
        return HUB_OUTCOMES[type(effect.query)]
    if isinstance(effect, Maintain):
        return MAINTAIN_OUTCOMES[effect.task]
    return OUTCOMES[type(effect)]


Move = tuple[str, object]


def replay(catalogue: Catalogue, path: tuple[Move, ...]) -> tuple[Kiosk, bool]:
    """Play ``path`` on a fresh kiosk; returns it and whether the card is in the reader."""
    k = Kiosk(catalogue)
    card_in = False
    for kind, arg in path:
        if kind == "insert":
            card_in = True
            k.send(CardInserted(READER))
        elif kind == "pull":
            card_in = False
            k.send(CardPulled(READER))
        elif kind == "tap":
            assert isinstance(arg, str)
            k.tap(arg)
        elif kind == "wait":
            assert isinstance(arg, float)
            k.wait(arg)
        elif kind == "text":
            assert isinstance(arg, tuple)
            k.send(TextEntered(*arg))
        elif kind == "scan":
            assert isinstance(arg, CodeScanned)
            k.send(arg)
        elif kind == "present":
            assert isinstance(arg, IdCardPresented)
            k.send(arg)
        else:
            assert isinstance(arg, Succeeded | Failed)
            waiting = k.engine.awaiting
            assert waiting is not None
            k.send(EffectDone(waiting, arg))
    return k, card_in


def explore(catalogue: Catalogue) -> list[Kiosk]:
    """Every distinct state reachable by taps, card moves, timeouts and effect outcomes."""
    seen: set[tuple[object, ...]] = set()
    reached: list[Kiosk] = []
    queue: list[tuple[Move, ...]] = [()]
    while queue:
        path = queue.pop(0)
        k, card_in = replay(catalogue, path)
        screen = k.screen
        waiting = [] if k.engine.awaiting is None else [k.engine.awaiting]
        signature = (
            screen.screen,
            repr(screen.title),  # with its parameters: material 2 of 5 is not material 1
            repr(getattr(screen, "material", None)),  # a scan screen's material
            # a form's fields: empty, filled, wrong (not the values: typing explores the keypad)
            repr(tuple((f.id, len(f.shown), f.error) for f in getattr(screen, "fields", ()))),
            tuple(line.key for line in screen.lines),
            type(waiting[0]) if waiting else None,
            card_in,
        )
        if signature in seen:
            continue
        seen.add(signature)
        reached.append(k)
        moves: list[Move] = [("tap", a.id) for a in screen_actions(screen) if a.enabled]
        moves.append(("pull", None) if card_in else ("insert", None))
        if screen.idle_timeout_s is not None:
            moves.append(("wait", float(screen.idle_timeout_s)))
        if screen.screen == "attract":
            moves += [("scan", scan) for scan in SCANS]
            moves += [("present", presented) for presented in PRESENTED]
        if isinstance(screen, Form):
            # A resident types a good value at once (the keypad's own taps are explored too).
            moves += [("text", (f"field.{f.id}", TYPED[f.id])) for f in screen.fields
                      if f.id in TYPED and not f.shown]
        if waiting:
            moves += [("outcome", outcome) for outcome in outcomes_for(waiting[0])]
            moves.append(("wait", 120.0))  # the effect never answers
        queue += [(*path, move) for move in moves]
    return reached


@pytest.fixture(scope="module")
def reached(catalogue: Catalogue) -> list[Kiosk]:
    return explore(catalogue)


def load_locale(lang: str, files: tuple[str, ...] = ("flows.toml",)) -> dict[str, str]:
    def flatten(table: dict[str, object], prefix: str) -> Iterator[tuple[str, str]]:
        for name, value in table.items():
            if isinstance(value, dict):
                yield from flatten(value, f"{prefix}{name}.")
            else:
                assert isinstance(value, str)
                yield f"{prefix}{name}", value

    table: dict[str, str] = {}
    for name in files:
        with (ROOT / "terminal/locales" / lang / name).open("rb") as f:
            table.update(flatten(tomllib.load(f), ""))
    return table


def fields_of(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_exploration_reaches_every_step_and_screen(reached: list[Kiosk]) -> None:
    screens = {k.screen.screen for k in reached}
    assert {f"{flow.NAME}.{spec}" for flow in FLOWS.values() for spec in flow.SPEC} <= screens
    assert {
        "attract",
        "take_card",
        "thanks",
        "notice.card_removed",
        "notice.session_error",
        "error.unsupported_card",
        "error.invalid_id",
        "error.card_read",
        "error.id_card_expired",
        "error.residence_permit",
        "error.foreign_permanent_resident",
        "error.id_card_unknown_type",
        "error.id_card_moved",
        "error.id_card_read",
        "error.code_expired",
        "error.code_used",
        "error.code_foreign",
        "error.code_not_checked",
    } <= screens


def test_no_reachable_screen_is_a_dead_end(reached: list[Kiosk]) -> None:
    for k in reached:
        screen = k.screen
        waiting = k.engine.awaiting is not None
        touchable = any(a.enabled for a in screen_actions(screen))
        timed = screen.idle_timeout_s is not None
        # A forgotten card's screen waits for the card to be taken, and says so.
        waits_for_card = screen.screen == "card_left"
        assert touchable or waiting or timed or waits_for_card or screen.screen == "attract", (
            screen.screen
        )


def test_every_emitted_key_is_translated_with_matching_placeholders(
    reached: list[Kiosk], catalogue: Catalogue
) -> None:
    extra = catalogue.translations()
    emitted = {
        text.key: text for k in reached for out in k.outputs for text in texts(out.view.screen)
    }
    assert len(emitted) > 60
    for lang in ("zh_CN", "en"):
        # Forms show the keypad's keys (ui.key.*), from the UI's own file.
        table = {**load_locale(lang, ("flows.toml", "ui.toml")), **extra[lang]}
        missing = sorted(key for key in emitted if key not in table)
        assert not missing, f"{lang} lacks {missing}"
        for key, text in emitted.items():
            assert fields_of(table[key]) == set(text.params), f"{lang}: {key}"


def test_locale_files_agree_with_each_other() -> None:
    zh, en = load_locale("zh_CN"), load_locale("en")
    assert zh.keys() == en.keys()
    for key in zh:
        assert fields_of(zh[key]) == fields_of(en[key]), key
        assert zh[key].strip() and en[key].strip(), key
    assert not any(key.startswith(("catalogue.", "ui.")) for key in zh)  # owned elsewhere


def test_rating_labels_are_the_national_wording() -> None:
    assert [level.value for level in RATING_LEVELS] == [5, 4, 3, 2, 1]
    zh = load_locale("zh_CN")
    for level in RATING_LEVELS:
        assert zh[level.key] == level.official_name
    assert [level.poor for level in RATING_LEVELS] == [False, False, False, True, True]


def test_no_personal_data_in_any_event_anywhere(reached: list[Kiosk]) -> None:
    for k in reached:
        for out in k.outputs:
            for effect in out.effects:
                if isinstance(effect, RecordEvent):
                    flat = repr(dict(effect.fields))
                    for personal in (*PERSONAL, "欧***", "1101**********002X"):
                        assert personal not in flat


def test_each_menu_item_runs_the_flow_the_catalogue_names(catalogue: Catalogue) -> None:
    for item in menu_items(catalogue):
        k = Kiosk(catalogue).at_menu()
        k.tap(f"errand.{item.id}")
        expected = {"proof": "proof.confirm", "guide": "guide.guide",
                    "intake": "intake.intro"}[item.flow]
        assert k.screen.screen == expected
        assert (item.flow == "proof") == (item.kind is ItemKind.INSTANT)


def test_every_guide_is_reachable_without_a_card_by_theme_and_by_department(
    catalogue: Catalogue,
) -> None:
    by_theme: set[str] = set()
    by_department: set[str] = set()
    k = Kiosk(catalogue)
    k.tap("guides")
    assert k.screen.screen == "guides.browse" and k.engine.flow_stack == ("guides",)
    assert k.events("session_started") and k.engine.in_session
    themes = [a.id for a in k.screen.options if a.id.startswith("theme.")]
    assert len(themes) >= 7 and ids(k.screen.options)[0] == "most_used"
    for theme in themes:
        k.tap(theme)
        assert k.screen.screen == "guides.items"
        by_theme |= {a.id for a in k.screen.options}
        k.tap("back")
    k.tap("departments")
    departments = [a.id for a in k.screen.options]
    assert len(departments) >= 5
    for department in departments:
        k.tap(department)
        by_department |= {a.id for a in k.screen.options}
        k.tap("back")
        assert k.screen.screen == "guides.departments"
    every = {f"item.{item.id}" for item in catalogue.items}
    assert by_theme == every and by_department == every
    k.tap("back")
    k.tap("most_used")
    assert ids(k.screen.options) == [f"item.{i.id}" for i in catalogue.most_used(8)]
    k.tap(f"item.{PENSION}")
    assert k.screen.screen == "guide.guide" and k.engine.flow_stack == ("guides", "guide")
    assert k.events("guide_viewed")[-1].fields == {"item_id": PENSION}
    k.tap("back")
    assert k.screen.screen == "guides.items"
    k.tap("back")
    k.tap("back")  # off the index: the session ends, nothing personal was ever in it
    assert k.screen.screen == "attract" and k.engine.idle
    assert k.events("session_ended")[-1].fields == {"reason": "done"}


def test_a_card_inserted_while_browsing_guides_starts_a_card_session(catalogue: Catalogue) -> None:
    k = Kiosk(catalogue)
    k.tap("guides")
    k.tap("most_used")
    k.send(CardInserted(READER))
    assert k.screen.screen == "identify.reading_card"
    assert k.engine.flow_stack == ("identify",)
    assert [e.fields for e in k.events("session_ended")] == [
        {"reason": "done", "detail": "card_inserted"}
    ]
