"""SessionEngine: idle countdown, card presence, the one way a session ends, stale outcomes."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator

import flows_support
import pytest

from devices.base import CardHolder, DeviceState
from flows.catalogue import (
    Catalogue,
    CatalogueItem,
    Department,
    ItemKind,
    Localised,
    Material,
    ServiceGuide,
    Theme,
)
from flows.engine import Output, SessionEngine
from flows.hub import ErrandDocument
from flows.identify import IdentifyFlow
from flows.notices import Notices, parse_notices
from flows.steps import (
    Action,
    Attract,
    CardInserted,
    CardPulled,
    CheckPrinter,
    Effect,
    EffectDone,
    Event,
    Failed,
    Message,
    PrintReceipt,
    ReadCard,
    RecordEvent,
    RunErrand,
    Succeeded,
    Tap,
    Tick,
    Transition,
    t,
)

READER = "Virtual PCD 00 00"
OTHER_READER = "Virtual PCD 00 01"
ID_NUMBER = "34052419800101001X"
NAME = "张三丰"
# Another resident than the shared one; only the name and number matter to the scans below.
HOLDER = dataclasses.replace(flows_support.HOLDER, id_number=ID_NUMBER, name=NAME)
DOCUMENT = dataclasses.replace(flows_support.DOCUMENT, errand_id="proof")
# A one-item catalogue: the engine does not care what the errands are.
_THEME = Theme("social_security", Localised("社会保障", "Social security"))
_DEPARTMENT = Department("hrss", Localised("人社所", "HR office"), Localised("1号窗口", "Window 1"))
_GUIDE = ServiceGuide(
    materials=(Material("card", Localised("社会保障卡", "Social security card")),),
    conditions=(Localised("已参保人员", "Anyone insured"),),
    time_limit_working_days=0,
    fees=Localised("不收费", "Free"),
    legal_basis=(Localised("《社会保险法》", "Social Insurance Law"),),
    guide_url="https://zwfw.example.com/guide/proof",
)
CATALOGUE = Catalogue(
    items=(
        CatalogueItem("proof", ItemKind.INSTANT, Localised("参保证明", "Insurance proof"),
                      flow="proof", theme=_THEME, department=_DEPARTMENT, guide=_GUIDE),
    ),
    themes=(_THEME,),
    departments=(_DEPARTMENT,),
)


class Kiosk(flows_support.Kiosk):
    """The shared driver on the one-item catalogue, with a record of sessions ended."""

    def __init__(self, **settings: int) -> None:
        super().__init__(CATALOGUE, **settings)

    def answer(self, kind: type, outcome: Succeeded | Failed) -> Output:
        effect = next(e for e in self.out.effects if isinstance(e, kind))
        return self.send(EffectDone(effect, outcome))

    def ended(self) -> list[dict[str, object]]:
        return [dict(e.fields) for e in self.events("session_ended")]

    def to_identity(self) -> Kiosk:
        self.send(CardInserted(READER))
        self.answer(ReadCard, Succeeded(HOLDER))
        assert self.screen_id == "identify.identity"
        return self

    def to_fetching(self) -> Kiosk:
        self.to_identity().send(Tap("continue"))
        return self.to_fetching_from_menu()

    def to_fetching_from_menu(self) -> Kiosk:
        self.send(Tap("errand.proof"))
        self.send(Tap("confirm"))
        self.answer(CheckPrinter, Succeeded(DeviceState.ok()))
        assert self.screen_id == "proof.fetching"
        return self


def reachable(root: object) -> Iterator[object]:
    """Everything reachable from ``root`` through attributes, slots, dataclasses and containers."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type):
            continue
        seen.add(id(obj))
        yield obj
        if isinstance(obj, str | bytes | int | float | bool | None):
            continue
        if isinstance(obj, dict):
            stack += [*obj.keys(), *obj.values()]
        elif isinstance(obj, list | tuple | set | frozenset):
            stack += list(obj)
        elif hasattr(obj, "items") and callable(obj.items):  # mappingproxy and friends
            stack += [v for pair in obj.items() for v in pair]
        if dataclasses.is_dataclass(obj):
            stack += [getattr(obj, f.name) for f in dataclasses.fields(obj)]
        stack += list(getattr(obj, "__dict__", {}).values())
        for slot in getattr(type(obj), "__slots__", ()):
            if hasattr(obj, slot):
                stack.append(getattr(obj, slot))


def holds_personal_data(engine: SessionEngine) -> bool:
    for obj in reachable(engine):
        if isinstance(obj, CardHolder | ErrandDocument):
            return True
        if isinstance(obj, str) and (ID_NUMBER in obj or NAME in obj or "张**" in obj):
            return True
    return False


# --- start and the idle timer -----------------------------------------------------------------


def test_start_shows_attract_and_nothing_runs() -> None:
    k = Kiosk()
    assert isinstance(k.out.view.screen, Attract) and k.screen_id == "attract"
    assert k.out.effects == () and k.out.view.countdown_s is None
    assert k.engine.idle and not k.engine.in_session
    k.wait(3600)
    assert k.screen_id == "attract" and k.out.view.countdown_s is None


def test_the_scan_itself_sees_a_card_holder_while_in_session() -> None:
    # Guards the privacy checks below: the scan must find the holder when it is there.
    k = Kiosk().to_identity()
    assert holds_personal_data(k.engine)


def test_countdown_appears_at_the_right_time_and_the_session_ends_at_zero() -> None:
    k = Kiosk(idle_timeout_s=60, countdown_visible_s=20).to_identity()
    assert k.wait(39).view.countdown_s is None
    assert k.wait(0.5).view.countdown_s is None
    assert k.wait(0.5).view.countdown_s == 20
    assert k.wait(10).view.countdown_s == 10
    assert k.wait(9).view.countdown_s == 1
    assert k.screen_id == "identify.identity" and k.engine.in_session
    out = k.wait(1)
    assert k.screen_id == "take_card"  # the card is still in the reader
    assert k.ended() == [{"reason": "timeout"}]
    assert out.effects[-1].type == "session_ended"  # type: ignore[union-attr]
    assert not k.engine.in_session
    assert not holds_personal_data(k.engine)


def test_any_tap_resets_the_countdown() -> None:
    k = Kiosk(idle_timeout_s=60, countdown_visible_s=20).to_identity()
    assert k.wait(50).view.countdown_s == 10
    out = k.send(Tap("somewhere.not.a.target"))
    assert out.view.countdown_s is None and out.effects == () and k.screen_id == "identify.identity"
    assert k.wait(50).view.countdown_s == 10
    k.send(Tap("lang.toggle"))  # a UI-only target the engine does not know still counts
    assert k.wait(59).view.countdown_s == 1 and k.screen_id == "identify.identity"


def test_a_new_screen_restarts_the_timer() -> None:
    k = Kiosk(idle_timeout_s=60).to_identity()
    k.wait(55)
    k.send(Tap("continue"))
    assert k.screen_id == "home.menu" and k.out.view.countdown_s is None
    assert k.wait(40).view.countdown_s == 20


def test_progress_screens_have_no_countdown_but_a_stuck_effect_ends_the_session() -> None:
    k = Kiosk(effect_timeout_s=90)
    k.send(CardInserted(READER))
    assert k.wait(89).view.countdown_s is None and k.screen_id == "identify.reading_card"
    k.wait(1)
    assert k.screen_id == "notice.session_error"
    assert k.ended() == [{"reason": "error", "detail": "effect_timeout"}]
    stuck = [e for e in k.out.effects if isinstance(e, RecordEvent) and e.type == "effect_timeout"]
    assert stuck and stuck[0].fields == {"effect": "ReadCard"}


# --- card presence ------------------------------------------------------------------------------


def test_card_pulled_mid_session_ends_it_and_wipes_the_data() -> None:
    k = Kiosk().to_identity()
    k.send(Tap("continue"))
    k.send(CardPulled(READER))
    assert k.screen_id == "notice.card_removed"
    assert [a.id for a in k.out.view.screen.actions] == ["continue"]
    assert k.ended() == [{"reason": "card_pulled"}]
    assert not k.engine.in_session and not holds_personal_data(k.engine)
    k.wait(10)
    assert k.screen_id == "attract"


def test_take_card_screen_waits_for_the_card_then_attract() -> None:
    k = Kiosk().to_identity()
    k.send(Tap("continue"))
    k.send(Tap("finish"))
    screen = k.out.view.screen
    assert isinstance(screen, Message) and screen.screen == "take_card" and screen.actions == ()
    assert k.ended() == [{"reason": "done"}]
    k.send(CardPulled(READER))
    assert k.screen_id == "attract" and k.engine.idle


def test_a_forgotten_card_is_shown_and_reported_once_until_it_is_taken() -> None:
    k = Kiosk(idle_timeout_s=60).to_identity()
    k.send(Tap("cancel"))
    assert k.screen_id == "take_card"
    k.wait(59)
    assert k.screen_id == "take_card"
    out = k.wait(1)
    # Not "insert your card" with a card still in: the screen says a card was left behind.
    assert k.screen_id == "card_left" and k.engine.idle is False
    assert [e.type for e in out.effects if isinstance(e, RecordEvent)] == ["card_left_in_reader"]
    assert k.wait(3600).effects == () and k.screen_id == "card_left"  # reported once
    # The forgotten card is taken later and a new one goes in: a fresh session.
    k.send(CardPulled(READER))
    assert k.screen_id == "attract"
    k.send(CardInserted(READER))
    assert k.screen_id == "identify.reading_card"


def test_pulling_the_card_at_the_take_card_step_goes_on_to_the_rating() -> None:
    k = Kiosk().to_fetching()
    k.answer(RunErrand, Succeeded(DOCUMENT))
    k.answer(PrintReceipt, Succeeded(None))
    assert k.screen_id == "proof.done"
    k.send(CardPulled(READER))
    assert k.screen_id == "rating.choose" and k.engine.in_session and k.ended() == []


def test_other_readers_do_not_disturb_a_session() -> None:
    k = Kiosk().to_identity()
    assert k.send(CardInserted(OTHER_READER)).effects == ()
    assert k.send(CardPulled(OTHER_READER)).effects == ()
    assert k.screen_id == "identify.identity" and k.engine.in_session


def test_a_card_inserted_on_the_thanks_screen_starts_the_next_session() -> None:
    k = Kiosk().to_fetching()
    k.answer(RunErrand, Succeeded(DOCUMENT))
    k.answer(PrintReceipt, Succeeded(None))
    k.send(CardPulled(READER))
    k.send(Tap("rating.5"))
    assert k.screen_id == "thanks"
    k.send(CardInserted(READER))
    assert k.screen_id == "identify.reading_card" and k.engine.in_session


# --- one way to end ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moves", "reason"),
    [
        ([Tap("cancel")], "cancel"),
        ([Tap("continue"), Tap("finish")], "done"),
        ([Tap("continue"), CardPulled(READER)], "card_pulled"),
        ([Tick()], "timeout"),
    ],
)
def test_every_ending_wipes_and_reports_once(moves: list[Event], reason: str) -> None:
    k = Kiosk().to_identity()
    for move in moves:
        if isinstance(move, Tick):
            k.clock.advance(60)
        k.send(move)
    assert k.ended() == [{"reason": reason}]
    assert not k.engine.in_session and not holds_personal_data(k.engine)


def test_an_errand_request_does_not_keep_the_holder_alive_after_the_end() -> None:
    k = Kiosk().to_fetching()  # the engine is waiting on a RunErrand that carries the holder
    k.send(CardPulled(READER))
    assert not holds_personal_data(k.engine)


# --- stale outcomes and unknown taps -------------------------------------------------------------


def test_an_outcome_for_another_step_is_ignored() -> None:
    k = Kiosk()
    k.send(CardInserted(READER))
    read = next(e for e in k.out.effects if isinstance(e, ReadCard))
    k.send(EffectDone(read, Succeeded(HOLDER)))
    k.send(Tap("continue"))
    again = k.send(EffectDone(read, Succeeded(HOLDER)))  # a duplicate of a finished step
    assert again.effects == () and k.screen_id == "home.menu"
    k.send(Tap("errand.proof"))
    k.send(Tap("confirm"))
    stray = k.send(EffectDone(PrintReceipt(receipt=None), Succeeded(None)))  # type: ignore[arg-type]
    assert stray.effects == () and k.screen_id == "proof.checking_printer"


def test_an_equal_outcome_from_an_ended_session_is_ignored() -> None:
    k = Kiosk().to_identity()
    k.send(Tap("continue"))
    k.send(Tap("errand.proof"))
    k.send(Tap("confirm"))
    old_check = next(e for e in k.out.effects if isinstance(e, CheckPrinter))
    k.send(CardPulled(READER))
    k.send(Tap("continue"))
    k.to_identity().send(Tap("continue"))
    k.send(Tap("errand.proof"))
    k.send(Tap("confirm"))
    assert k.screen_id == "proof.checking_printer"
    new_check = next(e for e in k.out.effects if isinstance(e, CheckPrinter))
    assert new_check == old_check and new_check is not old_check
    # Equal but not the same: only identity tells the old answer from the one awaited now.
    k.send(EffectDone(old_check, Failed("paper_out")))
    assert k.screen_id == "proof.checking_printer"
    k.send(EffectDone(new_check, Succeeded(DeviceState.ok())))
    assert k.screen_id == "proof.fetching"


def test_late_outcome_after_the_session_ended_is_ignored() -> None:
    k = Kiosk().to_fetching()
    run = next(e for e in k.out.effects if isinstance(e, RunErrand))
    k.send(CardPulled(READER))
    out = k.send(EffectDone(run, Succeeded(DOCUMENT)))
    assert out.effects == () and k.screen_id == "notice.card_removed"
    assert not holds_personal_data(k.engine)


def test_taps_on_targets_not_on_the_screen_are_ignored() -> None:
    k = Kiosk()
    assert k.send(Tap("continue")).effects == () and k.screen_id == "attract"
    k.to_identity()
    for target in ("errand.proof", "rating.5", "retry", "", "errand.", "errand.nope"):
        out = k.send(Tap(target))
        assert out.effects == () and k.screen_id == "identify.identity", target


def test_taps_on_disabled_targets_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    def identity_with_disabled_continue(self: IdentifyFlow) -> Transition:
        screen = Message(
            "identify.identity",
            t("identity.title"),
            actions=(Action("continue", t("action.continue"), enabled=False),),
        )
        return Transition(screen)

    monkeypatch.setattr(IdentifyFlow, "_show_identity", identity_with_disabled_continue)
    k = Kiosk().to_identity()
    assert k.send(Tap("continue")).effects == () and k.screen_id == "identify.identity"


def test_a_crashing_step_ends_the_session_without_leaking(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(self: IdentifyFlow, event: Event) -> None:
        raise ValueError(f"cannot handle {NAME} {ID_NUMBER}")

    monkeypatch.setattr(IdentifyFlow, "step_identity", crash)
    k = Kiosk().to_identity()
    out = k.send(Tap("continue"))
    assert k.screen_id == "notice.session_error"
    assert k.out.view.screen.lines[-1].key == "take_card.prompt"  # the card is still in
    events = [e for e in out.effects if isinstance(e, RecordEvent)]
    assert [e.type for e in events] == ["flow_error", "session_ended"]
    assert events[0].severity == "critical"
    assert events[0].fields == {"step": "identify.identity", "error": "ValueError"}
    assert k.ended() == [{"reason": "error", "detail": "flow_error"}]
    assert not holds_personal_data(k.engine)


def test_effects_come_out_only_as_asked() -> None:
    k = Kiosk()
    out = k.send(CardInserted(READER))
    kinds: list[type[Effect]] = [type(e) for e in out.effects]
    assert kinds == [RecordEvent, ReadCard]
    assert isinstance(out.effects[0], RecordEvent) and out.effects[0].type == "session_started"


# --- the flow stack, elder mode, sessions without a card ----------------------------------------


def test_a_card_session_runs_identify_home_errand_rating_as_a_stack() -> None:
    k = Kiosk().to_identity()
    assert k.engine.flow_stack == ("identify",)
    k.send(Tap("continue"))
    assert k.engine.flow_stack == ("identify", "home")
    k.send(Tap("errand.proof"))
    assert k.engine.flow_stack == ("identify", "home", "proof")
    k.send(Tap("back"))  # the errand finishes and its caller, the menu, takes over again
    assert k.engine.flow_stack == ("identify", "home") and k.screen_id == "home.menu"
    k.to_fetching_from_menu()
    k.answer(RunErrand, Succeeded(DOCUMENT))
    k.answer(PrintReceipt, Succeeded(None))
    k.send(CardPulled(READER))
    assert k.engine.flow_stack == ("identify", "home", "proof", "rating")


def test_elder_mode_doubles_every_timeout_and_ends_with_the_session() -> None:
    k = Kiosk(idle_timeout_s=60, countdown_visible_s=20).to_identity()
    k.send(Tap("mode.toggle"))
    assert k.out.view.elder and k.screen_id == "identify.identity"
    k.wait(100)
    assert k.engine.in_session and k.out.view.countdown_s == 20
    k.wait(20)
    assert k.ended() == [{"reason": "timeout"}] and k.screen_id == "take_card"
    k.send(CardPulled(READER))
    assert k.screen_id == "attract" and not k.out.view.elder


def test_elder_mode_chosen_on_the_attract_screen_carries_into_the_session_or_times_out() -> None:
    k = Kiosk(idle_timeout_s=60)
    k.send(Tap("mode.toggle"))
    assert k.out.view.elder
    k.to_identity()
    assert k.out.view.elder
    walked_away = Kiosk(idle_timeout_s=60)
    walked_away.send(Tap("mode.toggle"))
    walked_away.wait(120)
    assert not walked_away.out.view.elder and walked_away.screen_id == "attract"


def test_a_tap_on_nothing_restarts_the_countdown_so_more_time_is_one_touch() -> None:
    k = Kiosk(idle_timeout_s=60, countdown_visible_s=20).to_identity()
    k.wait(50)
    assert k.out.view.countdown_s == 10
    k.send(Tap("more_time"))
    assert k.out.view.countdown_s is None and k.engine.in_session


# --- public notices on the attract screen -------------------------------------------------------


def _notices() -> Notices:
    def notice(nid: str, start: str, end: str, *, urgent: bool = False) -> dict[str, object]:
        return {
            "id": nid,
            "title": {"zh_CN": f"{nid}标题", "en": f"{nid} title"},
            "body": {"zh_CN": f"{nid}正文", "en": f"{nid} body"},
            "valid_from": dt.datetime.fromisoformat(start),
            "valid_until": dt.datetime.fromisoformat(end),
            "urgent": urgent,
        }

    return parse_notices({"notices": [
        notice("fees", "2025-01-01T00:00:00+08:00", "2025-01-01T08:00:00+08:00"),
        notice("upkeep", "2025-01-01T02:00:00+08:00", "2025-01-01T03:00:00+08:00", urgent=True),
    ]})


def test_the_attract_screen_shows_the_notice_in_force_and_drops_it_when_it_expires() -> None:
    k = Kiosk()
    k.engine = SessionEngine(catalogue=CATALOGUE, clock=k.clock, terminal_id="T-0001",
                             notices=_notices())
    k.clock.set(dt.datetime(2025, 1, 1, 0, 30, tzinfo=dt.UTC) - dt.timedelta(hours=8))
    screen = k.engine.view.screen
    assert isinstance(screen, Attract) and screen.notice is not None
    assert screen.notice.title.key == "notices.fees.title" and not screen.notice.urgent
    assert [a.id for a in screen.actions] == ["guides"]  # the call to action stays put
    k.clock.set(dt.datetime(2025, 1, 1, 2, 30, tzinfo=dt.UTC) - dt.timedelta(hours=8))
    urgent = k.engine.view.screen
    assert isinstance(urgent, Attract) and urgent.notice is not None and urgent.notice.urgent
    k.clock.set(dt.datetime(2025, 1, 1, 8, 0, tzinfo=dt.UTC) - dt.timedelta(hours=8))
    gone = k.engine.view.screen
    assert isinstance(gone, Attract) and gone.notice is None  # expired on the dot
