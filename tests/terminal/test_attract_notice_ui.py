"""The real KioskUi under Xvfb rotates the attract screen's public notice in place: the same
frame with new words, laid out afresh; a notice that comes, goes or turns urgent builds the
screen anew. A finger resting on a button while the notice rotates still taps it; a finger that
came down on another screen taps nothing on the attract screen that replaced it."""

from __future__ import annotations

import shutil
import textwrap
from typing import Any

import pytest
from ui_child import run_ui_child

pytestmark = [
    pytest.mark.gui,
    pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed"),
]

SIZE = (1280, 800)  # room for the notice under the call to action

# In a child process: Kivy's window cannot be made twice in one process.
CHILD = textwrap.dedent("""
    import json, sys
    from pathlib import Path

    from terminal.ui.boot import KivySettings, configure_kivy

    configure_kivy(KivySettings(home=Path(sys.argv[1]), size=(int(sys.argv[2]), int(sys.argv[3]))))

    from kivy.clock import Clock
    from kivy.core.window import Window

    from flows.steps import Action, Attract, Message, PublicNotice, View, t
    from terminal.app import LOCALES_DIR
    from terminal.i18n import Translator
    from terminal.ui import geometry, touch
    from terminal.ui.app import KioskUi

    GUIDES = Action("guides", t("attract.guides"))

    def attract(notice):
        return View(Attract("attract", t("attract.title"), lines=(t("attract.insert"),),
                            actions=(GUIDES,), notice=notice))

    WATER = PublicNotice(t("停水通知"), t("12月8日9:00至12:00，大厅饮水机停用。"))
    HOURS = PublicNotice(t("窗口时间调整"), t("元旦假期窗口暂停服务，自助区照常开放，"
                                             "如需人工办理请于1月4日后前来。" * 3))
    URGENT = PublicNotice(t("系统维护"), t("今晚22:00至23:00暂停打印。"), urgent=True)
    ui = KioskUi(Translator.load(LOCALES_DIR))
    seen = []
    taps = []
    ui.on_tap = taps.append
    finger = []

    def press(name):
        x, y, w, h = geometry.target_bounds(ui._root, Window.height)[name]
        finger.append(touch.press(x + w / 2, y + h / 2))

    def lift():
        touch.release(finger.pop())

    def look(name):
        frame = ui._frame
        notice = getattr(frame.body, "_notice", None)
        seen.append({"name": name, "frame": id(frame),
                     "notice": [label.source_text for label in notice] if notice else None,
                     "issues": ui.layout_issues()})

    steps = [("water", WATER), ("hours", HOURS), ("water_again", WATER), ("urgent", URGENT),
             ("none", None), ("water_last", WATER)]

    AWAY = View(Message("farewell", t("attract.title"), actions=(GUIDES,)))
    # (what to do, seconds until the next): a finger down on the attract screen, the notice
    # rotates under it, the finger lifts; then down on another screen that attract replaces.
    touches = [(lambda: press("guides"), 0.2), (lambda: ui.show(attract(HOURS)), 0.2),
               (lift, 0.3), (lambda: taps.append("-- rotated --"), 0.1),
               (lambda: ui.show(AWAY), 0.6), (lambda: press("guides"), 0.2),
               (lambda: ui.show(attract(WATER)), 0.2), (lift, 0.3)]

    def step(index):
        def run(_dt):
            if index:
                look(steps[index - 1][0])
            if index == len(steps):
                Clock.schedule_once(finger_step(0), 0.1)
                return
            ui.show(attract(steps[index][1]))
            Clock.schedule_once(step(index + 1), 0.6)
        return run

    def finger_step(index):
        def run(_dt):
            if index == len(touches):
                seen.append({"name": "taps", "taps": taps})
                ui.stop()
                return
            do, wait = touches[index]
            do()
            Clock.schedule_once(finger_step(index + 1), wait)
        return run

    Clock.schedule_once(step(0), 0.5)
    ui.run()
    print(json.dumps(seen))
""")


@pytest.fixture(scope="module")
def seen(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("attract-notice")
    steps = run_ui_child(CHILD, SIZE, str(workdir / "kivy"), *map(str, SIZE))
    return {s["name"]: s for s in steps}


def test_a_rotating_notice_gets_new_words_in_the_same_frame(
    seen: dict[str, dict[str, Any]],
) -> None:
    assert seen["hours"]["frame"] == seen["water"]["frame"]
    assert seen["water_again"]["frame"] == seen["water"]["frame"]
    assert seen["water"]["notice"] == ["停水通知", "12月8日9:00至12:00，大厅饮水机停用。"]
    assert seen["hours"]["notice"][0] == "窗口时间调整"
    assert seen["water_again"]["notice"] == seen["water"]["notice"]


def test_a_longer_notice_in_place_is_laid_out_without_clipping(
    seen: dict[str, dict[str, Any]],
) -> None:
    for name in ("water", "hours", "water_again"):
        assert seen[name]["issues"] == [], (name, seen[name]["issues"])


def test_a_notice_turning_urgent_coming_or_going_builds_the_screen_anew(
    seen: dict[str, dict[str, Any]],
) -> None:
    frames = [seen[name]["frame"] for name in ("water_again", "urgent", "none", "water_last")]
    assert len(set(frames)) == len(frames)
    assert seen["urgent"]["notice"][0].startswith("【")  # marked in words, not colour alone
    assert seen["none"]["notice"] is None


def test_a_finger_on_a_button_as_the_notice_rotates_still_taps_it(
    seen: dict[str, dict[str, Any]],
) -> None:
    # The second finger came down on the farewell screen: the attract screen that replaced it
    # must not take it (the touch guard), so only the first tap arrives.
    assert seen["taps"]["taps"] == ["guides", "-- rotated --"]
