"""End to end: browsing the guides without a card, printing a checklist, and the elder mode with
voice guidance, through the real terminal, the virtual printer and espeak-ng writing WAV files."""

from __future__ import annotations

import array
import json
import time
import wave
from pathlib import Path

import pytest
from e2e_support import ARTIFACTS

from simulator.rig import SimulatorRig
from simulator.vcard import VirtualCard

pytestmark = pytest.mark.e2e

SHOTS = ARTIFACTS / "screenshots" / "e2e"
PERSON_ID = "11010519491231002X"
PERSON_NAME = "张三"


def shoot(rig: SimulatorRig, name: str) -> None:
    status, png = rig.api("GET", "/screenshot")
    assert status == 200 and png.startswith(b"\x89PNG")
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / f"{name}.png").write_bytes(png)


def tap(rig: SimulatorRig, target: str) -> None:
    """A real touch at the centre of the target, as a finger would."""
    [found] = [t for t in rig.screen()["targets"] if t["id"] == target]
    assert found["enabled"] and found["bounds"] is not None, found
    x, y, w, h = found["bounds"]
    status, body = rig.api("POST", "/touch", {"x": x + w / 2, "y": y + h / 2})
    assert status == 200, body


def rms(path: Path) -> float:
    with wave.open(str(path)) as wav:
        assert wav.getsampwidth() == 2
        samples = array.array("h", wav.readframes(wav.getnframes()))
    return (sum(s * s for s in samples) / max(1, len(samples))) ** 0.5


def test_anyone_browses_a_guide_without_a_card_and_takes_the_checklist(
    at_attract: SimulatorRig,
) -> None:
    rig = at_attract
    assert rig.printer is not None
    printed_before = len(rig.printer.receipts())
    tap(rig, "guides")
    browse = rig.wait_for_screen("guides.browse")
    assert browse["title"] == "办事指南"
    shoot(rig, "20-guides-browse")
    tap(rig, "theme.social_assistance")
    items = rig.wait_for_screen("guides.items")
    assert any(t["id"] == "item.minimum_subsistence" for t in items["targets"])
    tap(rig, "item.minimum_subsistence")
    guide = rig.wait_for_screen("guide.guide")
    text = "\n".join(guide["texts"])
    # Everything visible and said: the total number of materials; the UI pages what the screen
    # cannot show at once with plain buttons, and every page lays out whole (nothing below a
    # fold: /debug/layout counts a scroll view with hidden content as an issue).
    assert "申请材料（共7项）" in text
    assert "受理条件" in text and "办结时限" in text  # every section is on the guide's screen
    shoot(rig, "21-guide-page-1")
    pages = 1
    while True:
        status, body = rig.api("GET", "/debug/layout")
        assert status == 200 and json.loads(body)["issues"] == [], body
        targets = {t["id"]: t for t in rig.screen()["targets"]}
        following = targets.get("page.next")
        if following is None or not following["enabled"]:
            break
        assert following["label"] == "下一页" and following["bounds"] is not None
        _, before = rig.api("GET", "/screenshot")
        tap(rig, "page.next")
        deadline = time.monotonic() + 10
        while rig.api("GET", "/screenshot")[1] == before and time.monotonic() < deadline:
            time.sleep(0.1)
        pages += 1
        shoot(rig, f"22-guide-page-{pages}")
    tap(rig, "print_guide")
    receipts = rig.printer.wait_for_receipts(printed_before + 1, timeout_s=20)
    checklist = receipts[-1].text
    assert "最低生活保障" in checklist and "□" in checklist
    rig.wait_for_screen("guide.guide", timeout_s=20)
    tap(rig, "back")
    rig.wait_for_screen("guides.items")
    tap(rig, "back")
    rig.wait_for_screen("guides.browse")
    tap(rig, "back")
    rig.wait_for_screen("attract")


def test_elder_mode_speaks_each_screen_but_never_the_resident(at_attract: SimulatorRig) -> None:
    rig = at_attract
    assert rig.card_slot is not None
    speech_dir = rig.workdir / "speech"
    before = set(speech_dir.glob("*.wav")) if speech_dir.exists() else set()
    attract = rig.screen()
    assert attract["mode"] == "normal" and attract["spoken"] is None
    tap(rig, "mode.toggle")
    deadline = time.monotonic() + 10
    while rig.screen()["mode"] != "elder" and time.monotonic() < deadline:
        time.sleep(0.1)
    elder = rig.screen()
    assert elder["mode"] == "elder" and elder["spoken"] and "欢迎" in elder["spoken"]
    shoot(rig, "23-attract-elder")
    rig.card_slot.insert(VirtualCard.ssse(id_number=PERSON_ID, name=PERSON_NAME))
    identity = rig.wait_for_screen("identify.identity")
    assert identity["mode"] == "elder"
    spoken = identity["spoken"] or ""
    assert spoken.startswith("请核对您的身份信息")
    # The masked name and number are on the glass but never said aloud in a public place.
    assert "张" not in spoken and "*" not in spoken and "1101" not in spoken
    shoot(rig, "24-identity-elder")
    deadline = time.monotonic() + 10
    while len(set(speech_dir.glob("*.wav")) - before) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    made = sorted(set(speech_dir.glob("*.wav")) - before)
    assert len(made) >= 2, made
    time.sleep(1.0)  # the last utterance is still being written
    assert all(rms(path) > 100 for path in made[:2]), [rms(p) for p in made]
    tap(rig, "cancel")
    rig.wait_for_screen("take_card")
    rig.card_slot.remove()
    back = rig.wait_for_screen("attract")
    assert back["mode"] == "normal"  # the mode lasts one session
