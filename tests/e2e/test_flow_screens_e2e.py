"""Every step of the real errand, drawn by the real terminal at the three screen sizes we ship for,
in both languages: screenshots saved for people to look at, and the UI's own layout check asked to
find clipped text or overlapping targets on each step."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
from e2e_support import (
    ARTIFACTS,
    check_and_shoot,
    start_pass,
    tap_tile,
    turn_page,
    wait_for_mode,
)

from simulator.pcsc import Pcscd
from simulator.rig import RigOptions, SimulatorRig
from simulator.vcard import VirtualCard

pytestmark = [pytest.mark.e2e, pytest.mark.gui]

SIZES = [(1920, 1080), (1080, 1920), (800, 480)]
PASSES = [("zh_CN", False), ("en", False), ("zh_CN", True), ("en", True)]


@pytest.mark.parametrize("size", [
    pytest.param(size, id=f"{size[0]}x{size[1]}",
                 marks=() if size == (800, 480) else pytest.mark.long)
    for size in SIZES])  # the full-HD sizes in `make test-long`: make test stays under 10 min
def test_every_step_fits_the_screen(
    size: tuple[int, int], shared_pcscd: Pcscd, tmp_path: Path
) -> None:
    width, height = size
    out = ARTIFACTS / "screenshots" / "flow" / f"{width}x{height}"
    shutil.rmtree(out, ignore_errors=True)  # a page an earlier run had must not linger as if new
    out.mkdir(parents=True, exist_ok=True)
    rig = SimulatorRig(RigOptions(
        workdir=tmp_path, size=size, printer_port=0, hub_port=0, automation_port=0,
        pcscd=shared_pcscd, force_xvfb=True,
    ))
    rig.start()
    issues: list[str] = []
    try:
        assert rig.card_slot is not None
        for language, elder in PASSES:
            lang = start_pass(rig, language, elder)  # names the screenshots
            issues += check_and_shoot(rig, out, f"01-attract-{lang}")
            rig.card_slot.insert(VirtualCard.ssse(id_number="34052419800101001X",
                                                  name="欧阳娜娜"))
            rig.wait_for_screen("identify.identity")
            if lang.startswith("en") and rig.screen()["language"] != "en":
                rig.tap("lang.toggle")
            issues += check_and_shoot(rig, out, f"02-identity-{lang}")
            rig.tap("continue")
            rig.wait_for_screen("home.menu")
            issues += check_and_shoot(rig, out, f"03-menu-{lang}")
            tap_tile(rig, "errand.resident_pension_enrollment")
            rig.wait_for_screen("guide.guide")
            issues += check_and_shoot(rig, out, f"04-guide-{lang}")
            pages = 1
            while turn_page(rig):  # the UI pages what the screen cannot show at once
                pages += 1
                issues += check_and_shoot(rig, out, f"04-guide-page-{pages:02d}-{lang}")
            rig.tap("back")
            rig.wait_for_screen("home.menu")
            tap_tile(rig, "errand.ssc_enrollment_proof")
            rig.wait_for_screen("proof.confirm")
            issues += check_and_shoot(rig, out, f"05-confirm-{lang}")
            rig.tap("confirm")
            rig.wait_for_screen("proof.done", timeout_s=20)
            issues += check_and_shoot(rig, out, f"06-take-card-{lang}")
            rig.card_slot.remove()
            rating = rig.wait_for_screen("rating.choose")
            issues += check_and_shoot(rig, out, f"07-rating-{lang}")
            # The whole five-level scale at once: a level behind 下一页 is one fewer chosen.
            levels = [t for t in rating["targets"] if t["id"].startswith("rating.")]
            assert len(levels) == 5 and all(t["bounds"] for t in levels), (lang, levels)
            tap_tile(rig, "rating.4")
            rig.wait_for_screen("thanks")
            issues += check_and_shoot(rig, out, f"08-thanks-{lang}")
            rig.tap("continue")
            start_pass(rig, language, elder)
            rig.tap("guides")
            rig.wait_for_screen("guides.browse")
            issues += check_and_shoot(rig, out, f"09-guides-{lang}")
            tap_tile(rig, "departments")
            rig.wait_for_screen("guides.departments")
            issues += check_and_shoot(rig, out, f"10-departments-{lang}")
            tap_tile(rig, "department.civil_affairs")
            rig.wait_for_screen("guides.items")
            issues += check_and_shoot(rig, out, f"11-items-{lang}")
            for _ in range(3):
                rig.tap("back")
            rig.wait_for_screen("attract")
            wait_for_mode(rig, "normal")  # the mode lasted that session only
    finally:
        rig.stop()
    assert not issues, "\n".join(issues)


def test_the_home_language_comes_from_the_config(shared_pcscd: Pcscd, tmp_path: Path) -> None:
    rig = SimulatorRig(RigOptions(
        workdir=tmp_path, size=(800, 480), language="en", printer_port=0, hub_port=0,
        automation_port=0, pcscd=shared_pcscd, force_xvfb=True,
    ))
    rig.start()
    try:
        screen = rig.wait_for_screen("attract")
        assert screen["language"] == "en"
        assert not re.search(r"[\u4e00-\u9fff]", screen["title"]), screen["title"]
        assert [t["label"] for t in screen["targets"] if t["id"] == "lang.toggle"] == ["中文"]
    finally:
        rig.stop()


@pytest.mark.parametrize("size", [
    pytest.param(size, id=f"{size[0]}x{size[1]}",
                 marks=() if size == (800, 480) else pytest.mark.long)
    for size in SIZES])
def test_identity_and_maintenance_screens_fit(
    size: tuple[int, int], shared_pcscd: Pcscd, tmp_path: Path
) -> None:
    """The ID card's and the e-ID code's identity screens, their refusals, and every page of the
    staff badge's maintenance menu, checked and shot like the errand's steps."""
    width, height = size
    out = ARTIFACTS / "screenshots" / "identify" / f"{width}x{height}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    rig = SimulatorRig(RigOptions(
        workdir=tmp_path, size=size, printer_port=0, hub_port=0, automation_port=0,
        camera_port=0, pcscd=shared_pcscd, force_xvfb=True,
    ))
    rig.start()
    issues: list[str] = []
    try:
        assert rig.sam is not None and rig.hub is not None and rig.scanner is not None
        assert rig.card_slot is not None
        for language, elder in PASSES:
            lang = start_pass(rig, language, elder)
            rig.sam.place("34052419800101001X", "欧阳娜娜")
            rig.wait_for_screen("identify.identity", timeout_s=10)
            issues += check_and_shoot(rig, out, f"01-identity-id-card-{lang}")
            rig.sam.remove()
            rig.tap("cancel")
            rig.wait_for_screen("attract")
            time.sleep(0.6)  # the reader sees the card gone before the next one comes
            if language == "en":
                rig.tap("lang.toggle")
            if elder:
                rig.tap("mode.toggle")
            rig.sam.place("34052419800101001X", "欧阳娜娜", valid_until="20200101")
            rig.wait_for_screen("error.id_card_expired", timeout_s=10)
            issues += check_and_shoot(rig, out, f"02-id-card-expired-{lang}")
            rig.sam.remove()
            rig.tap("continue")
            rig.wait_for_screen("attract")
            if language == "en":
                rig.tap("lang.toggle")
            if elder:
                rig.tap("mode.toggle")
            rig.scanner.scan(rig.hub.issue_code("34052419800101001X", "欧阳娜娜"))
            rig.wait_for_screen("identify.identity", timeout_s=10)
            issues += check_and_shoot(rig, out, f"03-identity-e-code-{lang}")
            rig.tap("cancel")
            rig.wait_for_screen("attract")
            if language == "en":
                rig.tap("lang.toggle")
            if elder:
                rig.tap("mode.toggle")
            rig.card_slot.insert(VirtualCard.badge())
            rig.wait_for_screen("maintenance.menu", timeout_s=10)
            rig.card_slot.remove()
            issues += check_and_shoot(rig, out, f"04-maintenance-menu-{lang}")
            for number, page in enumerate(("self_test", "printer", "counters", "about"), 5):
                tap_tile(rig, page)
                rig.wait_for_screen(f"maintenance.{page}", timeout_s=20)
                issues += check_and_shoot(rig, out, f"{number:02d}-maintenance-{page}-{lang}")
                rig.tap("back")
                rig.wait_for_screen("maintenance.menu")
            tap_tile(rig, "restart")
            rig.wait_for_screen("maintenance.confirm_restart")
            issues += check_and_shoot(rig, out, f"09-maintenance-confirm-restart-{lang}")
            rig.tap("back")
            rig.wait_for_screen("maintenance.menu")
            rig.tap("leave")
            rig.wait_for_screen("attract")
            wait_for_mode(rig, "normal")
    finally:
        rig.stop()
    assert not issues, "\n".join(issues)
