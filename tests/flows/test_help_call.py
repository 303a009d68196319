"""Calls for help (帮办): on every screen, answered by staff, or the hotline when nobody answers."""

from __future__ import annotations

from test_session_engine import Kiosk

from flows.help_call import HELP_CALL, HELP_CANCEL
from flows.steps import HelpAcknowledged, Tone


def _help_events(kiosk: Kiosk, kind: str) -> list[dict[str, object]]:
    return [dict(e.fields) for e in kiosk.events(kind)]


def test_help_from_the_attract_screen_publishes_a_call_and_says_so() -> None:
    kiosk = Kiosk()
    kiosk.tap(HELP_CALL)
    (called,) = _help_events(kiosk, "help_requested")
    assert called["screen"] == "attract"
    assert called["elder_mode"] is False
    assert isinstance(called["help_id"], str) and called["help_id"]
    status = kiosk.out.view.help
    assert status is not None and status.help_id == called["help_id"]
    assert [line.key for line in status.lines] == ["help.called.title", "help.called.body"]
    assert kiosk.screen_id == "attract"  # nobody loses their place for asking


def test_a_call_in_a_session_keeps_the_screen_and_names_it_and_the_mode() -> None:
    kiosk = Kiosk().to_identity()
    kiosk.tap("mode.toggle")
    kiosk.tap(HELP_CALL)
    (called,) = _help_events(kiosk, "help_requested")
    assert called == {"help_id": called["help_id"], "screen": "identify.identity",
                      "elder_mode": True}
    assert kiosk.screen_id == "identify.identity"
    assert kiosk.engine.in_session


def test_tapping_help_twice_calls_staff_once() -> None:
    kiosk = Kiosk()
    kiosk.tap(HELP_CALL)
    kiosk.tap(HELP_CALL)
    assert len(_help_events(kiosk, "help_requested")) == 1


def test_staff_answer_shows_who_is_coming_and_when() -> None:
    kiosk = Kiosk()
    kiosk.tap(HELP_CALL)
    help_id = kiosk.out.view.help.help_id  # type: ignore[union-attr]
    kiosk.send(HelpAcknowledged(help_id, "王工", 5))
    status = kiosk.out.view.help
    assert status is not None and status.tone is Tone.SUCCESS
    assert status.lines[0].key == "help.coming.title"
    assert dict(status.lines[0].params) == {"staff": "王工", "minutes": "5"}


def test_an_answer_to_another_call_changes_nothing() -> None:
    kiosk = Kiosk()
    kiosk.tap(HELP_CALL)
    kiosk.send(HelpAcknowledged("not-this-one", "王工", 5))
    assert kiosk.out.view.help.lines[0].key == "help.called.title"  # type: ignore[union-attr]


def test_no_answer_in_time_gives_the_hotline_and_the_opening_hours() -> None:
    kiosk = Kiosk()
    kiosk.tap(HELP_CALL)
    kiosk.wait(179)
    assert kiosk.out.view.help.lines[0].key == "help.called.title"  # type: ignore[union-attr]
    kiosk.wait(1)
    status = kiosk.out.view.help
    assert status is not None and status.tone is Tone.WARNING and not status.waiting
    assert [line.key for line in status.lines] == [
        "help.hotline.title", "help.hotline.body", "help.hotline.no_hours"]
    assert status.lines[1].params["hotline"] == "12345"
    # Closing the note is not a cancellation: the call was never answered, operations keep it.
    kiosk.tap(HELP_CANCEL)
    assert kiosk.out.view.help is None
    assert _help_events(kiosk, "help_cancelled") == []


def test_a_late_answer_after_the_hotline_still_says_who_is_coming() -> None:
    kiosk = Kiosk()
    kiosk.tap(HELP_CALL)
    help_id = kiosk.out.view.help.help_id  # type: ignore[union-attr]
    kiosk.wait(200)
    kiosk.send(HelpAcknowledged(help_id, "Li", 3))
    assert kiosk.out.view.help.lines[0].key == "help.coming.title"  # type: ignore[union-attr]


def test_cancelling_tells_operations_and_clears_the_strip() -> None:
    kiosk = Kiosk()
    kiosk.tap(HELP_CALL)
    help_id = kiosk.out.view.help.help_id  # type: ignore[union-attr]
    kiosk.tap(HELP_CANCEL)
    assert _help_events(kiosk, "help_cancelled") == [{"help_id": help_id}]
    assert kiosk.out.view.help is None
    kiosk.tap(HELP_CALL)  # a new call gets a new id
    ids = [e["help_id"] for e in _help_events(kiosk, "help_requested")]
    assert len(set(ids)) == 2


def test_nothing_times_out_while_staff_are_called_or_coming() -> None:
    kiosk = Kiosk(idle_timeout_s=60)
    kiosk.to_identity()
    kiosk.tap(HELP_CALL)
    kiosk.wait(170)
    assert kiosk.engine.in_session and kiosk.out.view.countdown_s is None
    help_id = kiosk.out.view.help.help_id  # type: ignore[union-attr]
    kiosk.send(HelpAcknowledged(help_id, "王工", 5))
    kiosk.wait(5 * 60)
    assert kiosk.engine.in_session
    # Once staff should long have arrived, the strip goes and the usual timeout is back.
    kiosk.wait(10 * 60)
    assert kiosk.out.view.help is None
    kiosk.wait(61)
    assert not kiosk.engine.in_session


def test_after_the_hotline_note_the_session_times_out_as_usual() -> None:
    kiosk = Kiosk(idle_timeout_s=60)
    kiosk.to_identity()
    kiosk.tap(HELP_CALL)
    kiosk.wait(180)  # the hotline note: nobody is coming, so waiting is over
    kiosk.wait(60)
    assert not kiosk.engine.in_session


def test_the_help_event_carries_nothing_personal() -> None:
    kiosk = Kiosk().to_identity()
    kiosk.tap(HELP_CALL)
    (called,) = _help_events(kiosk, "help_requested")
    assert set(called) == {"help_id", "screen", "elder_mode"}
