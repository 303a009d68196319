"""The real KioskUi under Xvfb sounds the alert tone on the engine's forgotten-card screen, says
it again a few times while the screen stays, and falls silent at a new screen."""

from __future__ import annotations

import itertools
import shutil
import textwrap
from typing import Any

import pytest
from ui_child import run_ui_child

pytestmark = [
    pytest.mark.gui,
    pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed"),
]

REPEAT_S = 0.3  # the child's ALERT_REPEAT_S: the real 30 s, scaled down

# In a child process: Kivy's window cannot be made twice in one process. The speech port is a
# recorder; the views are the real SessionEngine's, fed a card it cannot read and left alone.
CHILD = textwrap.dedent("""
    import json, sys, time
    from dataclasses import replace
    from pathlib import Path

    from terminal.ui.boot import KivySettings, configure_kivy

    configure_kivy(KivySettings(home=Path(sys.argv[1]), size=(800, 480)))

    from kivy.clock import Clock

    from flows.catalogue import Catalogue
    from flows.clock import FakeClock
    from flows.engine import SessionEngine
    from flows.steps import CardInserted, CardPulled, EffectDone, Failed, ReadCard, Tick
    from terminal.app import LOCALES_DIR
    from terminal.i18n import Translator
    from terminal.ui import app as ui_app
    from terminal.ui.app import KioskUi

    ui_app.ALERT_REPEAT_S = float(sys.argv[2])
    started = time.monotonic()
    calls = []

    class RecordingSpeech:
        last_spoken = None

        def say(self, text, lang, *, slow=False, alert=False):
            calls.append({"t": time.monotonic() - started, "call": "say", "text": text,
                          "alert": alert})

        def stop(self):
            calls.append({"t": time.monotonic() - started, "call": "stop"})

        def state(self):
            raise AssertionError("not asked by the UI")

        def close(self):
            pass

    clock = FakeClock()
    engine = SessionEngine(catalogue=Catalogue(items=(), themes=(), departments=()),
                           clock=clock, terminal_id="T-0001", idle_timeout_s=60,
                           countdown_visible_s=20, effect_timeout_s=120)
    attract = engine.start().view
    out = engine.handle(CardInserted("R"))
    read = next(e for e in out.effects if isinstance(e, ReadCard))
    unreadable = engine.handle(EffectDone(read, Failed("card_unreadable"))).view
    clock.advance(60)
    card_left = engine.handle(Tick()).view
    back = engine.handle(CardPulled("R")).view
    assert card_left.screen.screen == "card_left" and back == attract

    ui = KioskUi(Translator.load(LOCALES_DIR), speech=RecordingSpeech())
    marks = {}

    def at(seconds, name, action):
        def run(_dt):
            marks[name] = time.monotonic() - started
            action()
        Clock.schedule_once(run, seconds)

    repeat = ui_app.ALERT_REPEAT_S
    ui.show(replace(unreadable, elder=True))  # an ordinary screen, said in elder mode
    at(0.5, "card_left", lambda: ui.show(card_left))
    at(0.5 + 10 * repeat, "attract", lambda: ui.show(attract))
    at(0.8 + 10 * repeat, "card_left_again", lambda: ui.show(card_left))
    at(0.8 + 11.5 * repeat, "attract_again", lambda: ui.show(attract))
    at(0.8 + 20 * repeat, "end", ui.stop)
    ui.run()
    print(json.dumps({"calls": calls, "marks": marks}))
""")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workdir = tmp_path_factory.mktemp("alert-ui")
    result: dict[str, Any] = run_ui_child(CHILD, (800, 480), str(workdir / "kivy"), str(REPEAT_S))
    return result


def between(recorded: dict[str, Any], start: str, end: str | None) -> list[dict[str, Any]]:
    marks = recorded["marks"]
    return [c for c in recorded["calls"]
            if marks[start] <= c["t"] and (end is None or c["t"] < marks[end])]


def test_an_ordinary_screen_is_said_without_the_tone(recorded: dict[str, Any]) -> None:
    first = recorded["calls"][0]
    assert first["call"] == "say" and first["alert"] is False
    assert first["t"] < recorded["marks"]["card_left"]


def test_the_forgotten_card_is_said_after_the_tone_then_three_more_times_then_silence(
    recorded: dict[str, Any],
) -> None:
    calls = between(recorded, "card_left", "attract")
    assert [c["call"] for c in calls] == ["say"] * 4, calls
    assert all(c["alert"] for c in calls)
    assert len({c["text"] for c in calls}) == 1 and calls[0]["text"]
    gaps = [b["t"] - a["t"] for a, b in itertools.pairwise(calls)]
    assert all(REPEAT_S * 0.8 < gap < REPEAT_S * 3 for gap in gaps), gaps


def test_a_new_screen_ends_the_repetitions(recorded: dict[str, Any]) -> None:
    # Shown again, then left after one repetition and a half: attract (normal mode, silent)
    # stops the speech, and nothing is said after it, though three repetitions were left.
    calls = between(recorded, "card_left_again", "attract_again")
    assert calls and all(c["call"] == "say" and c["alert"] for c in calls)
    assert len(calls) < 4
    after = between(recorded, "attract_again", None)
    assert [c["call"] for c in after] == ["stop"], after
