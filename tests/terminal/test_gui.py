"""The real Kivy UI under Xvfb at three screen sizes: every screen kind in Chinese and English,
in normal and in elder mode (长辈模式), real touches at the centre of each target, screenshots,
and no clipped, overlapping or off-screen element.

Each size runs the harness (``gui_harness.py``) in its own process on its own Xvfb: Kivy's
window cannot be recreated in one process. The three start together to share the start-up cost.
The harness shows a scripted, synthetic scenario (demo texts, a "call for help" footer button, a
"staff have been told" line: screens the running terminal never shows), so its screenshots are a
layout gallery and are filed as one:
artifacts/screenshots/synthetic-layout/<size>/<screen>-<lang>[-elder].png. The
terminal's real screens are in artifacts/screenshots/flow/ and e2e/ (tests/e2e).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from gui_harness import DEMO_TEXTS, SCENARIO
from PIL import Image
from ui_support import SIZES, size_params

from simulator.display import VirtualDisplay
from simulator.processes import stop_process
from terminal.ui.theme import ACCENT, MIN_TOUCH_PX

pytestmark = [
    pytest.mark.gui,
    pytest.mark.timeout(300),
    pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed"),
]

REPO = Path(__file__).resolve().parents[2]
HARNESS = Path(__file__).with_name("gui_harness.py")
GALLERY = REPO / "artifacts" / "screenshots" / "synthetic-layout"
GALLERY_NOTE = """Synthetic layout gallery, written by tests/terminal/test_gui.py.

These screens are scripted in tests/terminal/gui_harness.py (SCENARIO, DEMO_TEXTS) to stress the
layout at each screen size: they are NOT screens the running terminal shows (its help button is
a switch on every screen, not a footer button, and it has no "staff have been told" message).
The terminal's real screens, from real flows, are in ../flow/<size>/ and ../e2e/ (tests/e2e).
"""
LANGUAGES = ("zh_CN", "en")
# the top bar's (or the side rail's and the footer's), on every screen
SWITCHES = ("help.call", "speech.repeat", "mode.toggle", "lang.toggle")
# Targets the UI acts on itself: the switches above and the page buttons of a long menu.
UI_OWN = frozenset({*SWITCHES, "page.previous", "page.next"})

START_TIMEOUT_S = 30.0
TAP_TIMEOUT_S = 5.0


class KioskProcess:
    """One harness process on its own virtual display, driven through the automation API."""

    def __init__(self, size: tuple[int, int], workdir: Path) -> None:
        self.size = size
        self.workdir = workdir
        self.display = VirtualDisplay(*size)
        self.port_file = workdir / "port"
        self.taps_file = workdir / "taps"
        self.log_file = workdir / "harness.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> None:
        env = dict(os.environ, DISPLAY=self.display.start())
        with self.log_file.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    str(HARNESS),
                    "--size", f"{self.size[0]}x{self.size[1]}",
                    "--port-file", str(self.port_file),
                    "--taps-file", str(self.taps_file),
                    "--home", str(self.workdir / "kivy"),
                ],
                env=env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.port_file.exists():
            assert self.process is not None
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"harness did not start:\n{self.log_tail()}")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port_file.read_text()}"

    def stop(self) -> None:
        stop_process(self.process)
        self.display.stop()

    def log_tail(self) -> str:
        return self.log_file.read_text(errors="replace")[-3000:] if self.log_file.exists() else ""

    # --- the automation API ---

    def api(self, method: str, path: str, body: Any = None) -> bytes:
        data = json.dumps(body).encode() if body is not None else None
        # The automation API takes a POST only when it says JSON (a web page's form cannot).
        headers = {"Content-Type": "application/json"} if method == "POST" else {}
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return bytes(response.read())
        except (urllib.error.URLError, TimeoutError) as error:
            pytest.fail(f"{method} {path} failed: {error}\n{self.log_tail()}")

    def screen(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.api("GET", "/screen"))
        return result

    def touch_centre(self, target: dict[str, Any]) -> None:
        x, y, w, h = target["bounds"]
        self.api("POST", "/touch", {"x": x + w / 2, "y": y + h / 2})

    def taps(self) -> list[str]:
        if not self.taps_file.exists():
            return []
        return self.taps_file.read_text(encoding="utf-8").splitlines()

    def taps_on(self, screen_id: str) -> int:
        """How many taps reached on_tap while ``screen_id`` was shown."""
        return sum(1 for line in self.taps() if line.startswith(f"{screen_id} "))

    def wait_for_tap(self, line: str, count_before: int) -> None:
        deadline = time.monotonic() + TAP_TIMEOUT_S
        while line not in self.taps()[count_before:]:
            if time.monotonic() > deadline:
                pytest.fail(f"tap {line!r} never reached on_tap; taps: {self.taps()}")
            time.sleep(0.02)


Size = tuple[int, int]


@pytest.fixture(scope="module")
def gallery() -> Path:
    """The gallery, emptied of an earlier run's pictures, with the note saying what it is."""
    for size in SIZES:
        shutil.rmtree(GALLERY / f"{size[0]}x{size[1]}", ignore_errors=True)
    GALLERY.mkdir(parents=True, exist_ok=True)
    (GALLERY / "README.txt").write_text(GALLERY_NOTE, encoding="utf-8")
    return GALLERY


@pytest.fixture(scope="module")
def kiosks(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[Size, KioskProcess]]:
    # Only the sizes this run selected (`make test` leaves the full-HD ones to test-long), all
    # started at once so their start-ups overlap.
    selected = {item.callspec.params["size"] for item in request.session.items
                if item.module is request.module and hasattr(item, "callspec")
                and "size" in item.callspec.params}
    started = {
        size: KioskProcess(size, tmp_path_factory.mktemp(f"gui{size[0]}x{size[1]}"))
        for size in SIZES if size in selected
    }
    try:
        for kiosk in started.values():
            kiosk.start()
        for kiosk in started.values():
            kiosk.wait_ready()
        yield started
    finally:
        for kiosk in started.values():
            kiosk.stop()


def overlap(a: list[int], b: list[int]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def check_geometry(description: dict[str, Any], size: tuple[int, int]) -> None:
    """From the description alone: what shows of each target is inside the window and overlaps
    no other target; buttons outside scroll views are whole and finger-sized: at least 10 mm
    on the glass, 15 mm in elder mode, measured from the bounds and the panel's pixel pitch.
    (Tiles scrolled partly out of view are checked whole by /debug/layout.)"""
    width, height = size
    boxes = {t["id"]: t["bounds"] for t in description["targets"] if t["bounds"] is not None}
    least_mm = 15.0 if description["mode"] == "elder" else 10.0
    pitch = description["mm_per_px"]
    for target_id in (*SWITCHES, *ACTION_IDS.get(description["screen"], ())):
        assert target_id in boxes, f"{target_id} is not visible on {description['screen']}"
        assert min(boxes[target_id][2:]) >= MIN_TOUCH_PX - 1, (target_id, boxes[target_id])
    fixed = {*SWITCHES, *ACTION_IDS.get(description["screen"], ()), "more_time"}
    for target in description["targets"]:
        box = target["bounds"]
        if box is None or (target["id"] not in fixed and min(box[2:]) < MIN_TOUCH_PX):
            continue  # a tile scrolled partly out of sight: /debug/layout checks it whole
        assert min(box[2:]) * pitch >= least_mm - 0.2, (
            f"{target['id']} is {min(box[2:]) * pitch:.1f} mm, under {least_mm} mm")
    for target_id, box in boxes.items():
        x, y, w, h = box
        assert x >= 0 and y >= 0 and x + w <= width and y + h <= height, (target_id, box)
    ids = list(boxes)
    for i, a in enumerate(ids):
        for b in ids[i + 1 :]:
            assert not overlap(boxes[a], boxes[b]), f"{a} overlaps {b}: {boxes[a]} {boxes[b]}"


# Footer actions per screen: never inside a scroll view, so always whole and visible.
ACTION_IDS: dict[str, tuple[str, ...]] = {
    step.view.screen.screen: tuple(a.id for a in step.view.screen.actions) for step in SCENARIO
}


def check_screenshot(png: bytes, size: tuple[int, int], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size == size
    # The deep-blue top bar (or side rail) is at the top right: the picture is the right way up
    # and really drawn.
    accent = tuple(round(c * 255) for c in ACCENT[:3])
    corner = image.getpixel((size[0] - 3, 2))
    assert isinstance(corner, tuple)
    assert all(abs(a - b) <= 3 for a, b in zip(corner, accent, strict=True)), corner
    assert len(image.getcolors(maxcolors=1 << 20) or ()) > 50  # text was rendered, not a blank


def expected_text(lang: str, key: str) -> str:
    return DEMO_TEXTS[lang][key]


def countdown_text(lang: str, seconds: int) -> str:
    return f"{seconds} 秒后自动退出" if lang == "zh_CN" else f"Ending in {seconds} s"


@dataclass
class Visit:
    kiosk: KioskProcess
    size: tuple[int, int]
    lang: str
    gallery: Path
    elder: bool = False
    taps_before_step: int = 0

    def shows_step(self, index: int) -> dict[str, Any]:
        step = SCENARIO[index]
        screen = step.view.screen
        description = self.kiosk.screen()
        assert description["screen"] == screen.screen
        assert description["language"] == self.lang
        assert description["mode"] == ("elder" if self.elder else "normal")
        assert description["title"] == expected_text(self.lang, screen.title.key)
        assert description["title"] in description["texts"]
        if step.view.countdown_s is not None:
            assert countdown_text(self.lang, step.view.countdown_s) in description["texts"]
        self.taps_before_step = self.kiosk.taps_on(screen.screen)
        toggle = [t for t in description["targets"] if t["id"] == "lang.toggle"]
        assert toggle and toggle[0]["label"] == ("English" if self.lang == "zh_CN" else "中文")
        return description

    def record(self, description: dict[str, Any]) -> None:
        mode = "-elder" if self.elder else ""
        name = f"{self.size[0]}x{self.size[1]}/{description['screen']}-{self.lang}{mode}.png"
        check_screenshot(self.kiosk.api("GET", "/screenshot"), self.size, self.gallery / name)
        issues = json.loads(self.kiosk.api("GET", "/debug/layout"))["issues"]
        assert issues == [], f"{name}: {issues}"
        check_geometry(description, self.size)

    def turn_to(self, target_id: str) -> dict[str, Any]:
        """The target, after turning a paged menu's pages (by touch) until it is on the glass."""
        for _ in range(20):
            targets = {t["id"]: t for t in self.kiosk.screen()["targets"]}
            if targets[target_id]["bounds"] is not None:
                return targets[target_id]
            following = targets.get("page.next")
            if following is None and "more_time" in targets:
                # Beside a side rail the countdown stands where the page buttons are: "more
                # time" stops it and brings them back.
                following = targets["more_time"]
            assert following is not None and following["enabled"], f"{target_id} is not shown"
            shown = self.kiosk.screen()
            self.kiosk.touch_centre(following)
            deadline = time.monotonic() + TAP_TIMEOUT_S
            while self.kiosk.screen()["targets"] == shown["targets"]:
                assert time.monotonic() < deadline, "the page did not turn"
                time.sleep(0.05)
        raise AssertionError(f"{target_id} never came on a page")

    def touch_every_target(self, index: int, description: dict[str, Any]) -> None:
        """Disabled targets ignore the finger; every enabled one reaches on_tap; the step's
        advance target goes last and moves the script on."""
        step = SCENARIO[index]
        screen_id = description["screen"]
        kiosk = self.kiosk
        for target in description["targets"]:
            if target["id"] in {*UI_OWN, *step.advance, "more_time"}:
                continue
            box = target["bounds"]
            if box is None or box[3] < MIN_TOUCH_PX:
                continue  # scrolled (mostly) out of sight: a resident would scroll first
            before = len(kiosk.taps())
            kiosk.touch_centre(target)
            if target["enabled"]:
                kiosk.wait_for_tap(f"{screen_id} {target['id']}", before)
            else:
                time.sleep(0.3)
                assert kiosk.taps()[before:] == [], f"disabled {target['id']} was activated"
                assert kiosk.screen()["screen"] == screen_id
        countdown = step.view.countdown_s
        if countdown is not None:
            # Each accepted tap above lowered the countdown by a second without a new screen.
            left = countdown - (kiosk.taps_on(screen_id) - self.taps_before_step)
            shown = kiosk.screen()
            assert shown["screen"] == screen_id and shown["countdown_s"] == left
            # Last, "more time": the timer starts again and the countdown goes.
            [more] = [t for t in shown["targets"] if t["id"] == "more_time"]
            before = len(kiosk.taps())
            kiosk.touch_centre(more)
            kiosk.wait_for_tap(f"{screen_id} more_time", before)
            deadline = time.monotonic() + TAP_TIMEOUT_S
            while kiosk.screen()["countdown_s"] is not None:
                assert time.monotonic() < deadline, "more time left the countdown running"
                time.sleep(0.05)
            assert countdown_text(self.lang, left) in shown["texts"]
        advance = self.turn_to(next(iter(step.advance)))
        before = len(kiosk.taps())
        kiosk.touch_centre(advance)
        kiosk.wait_for_tap(f"{screen_id} {advance['id']}", before)


@pytest.mark.parametrize("size", size_params())
def test_every_screen_kind_in_both_languages_takes_real_touches(
    kiosks: dict[Size, KioskProcess], gallery: Path, size: Size
) -> None:
    kiosk = kiosks[size]
    for lang in LANGUAGES:
        for elder in (False, True):
            attract = kiosk.screen()
            assert attract["screen"] == "attract"
            # A new resident always starts in Chinese, whatever the last one chose.
            assert attract["language"] == "zh_CN"
            if lang == "en":
                [toggle] = [t for t in attract["targets"] if t["id"] == "lang.toggle"]
                before = len(kiosk.taps())
                kiosk.touch_centre(toggle)
                assert kiosk.screen()["language"] == "en"
                assert kiosk.taps()[before:] == []  # the UI handles the switch itself
            if elder:
                switch_mode(kiosk, "elder")
            visit = Visit(kiosk, size, lang, gallery, elder)
            for index in range(len(SCENARIO)):
                description = visit.shows_step(index)
                visit.record(description)
                visit.touch_every_target(index, description)
            if elder:
                switch_mode(kiosk, "normal")


def switch_mode(kiosk: KioskProcess, mode: str) -> None:
    """Touch the large-text switch (the engine's to handle, here the harness's) until ``mode``."""
    [switch] = [t for t in kiosk.screen()["targets"] if t["id"] == "mode.toggle"]
    before = len(kiosk.taps())
    kiosk.touch_centre(switch)
    kiosk.wait_for_tap("attract mode.toggle", before)
    deadline = time.monotonic() + TAP_TIMEOUT_S
    while kiosk.screen()["mode"] != mode and time.monotonic() < deadline:
        time.sleep(0.05)
    assert kiosk.screen()["mode"] == mode
