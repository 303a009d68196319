"""End to end: an application lodged with its materials scanned on the virtual document camera,
a 容缺 material, pick-up, the hub down at submit (queued, the receipt honest, sent when the hub
is back, nothing lost), and its progress looked up by scanning the receipt's QR with the virtual
scanner, all through the real terminal, its drivers and the automation API."""

from __future__ import annotations

import time
from typing import Any

import pytest
from e2e_support import ARTIFACTS, settle_to_attract

from simulator.cli import receipt_qr_codes
from simulator.rig import SimulatorRig
from simulator.vcard import VirtualCard

pytestmark = pytest.mark.e2e

SHOTS = ARTIFACTS / "screenshots" / "e2e"
PERSON_ID = "11010519491231002X"
PERSON_NAME = "张三"
PHONE = "13812345678"
ITEM = "temporary_assistance"


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


def wait_for(rig: SimulatorRig, screen_id: str, timeout_s: float = 20.0) -> dict[str, Any]:
    return rig.wait_for_screen(screen_id, timeout_s)


def scan_material(rig: SimulatorRig, document: str, pages: int = 1) -> None:
    assert rig.camera is not None
    rig.camera.set_document(document)
    tap(rig, "scan")
    wait_for(rig, "intake.scan")
    for page in range(pages):
        tap(rig, "capture")
        screen = wait_for_scan_pages(rig, page + 1)
        assert screen["scan"] == {"pages": page + 1, "thumbnail": True, "preview": True}
    tap(rig, "done")


def wait_for_scan_pages(rig: SimulatorRig, pages: int, timeout_s: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        screen = rig.screen()
        if screen["screen"] == "intake.scan" and screen.get("scan", {}).get("pages") == pages:
            return screen
        time.sleep(0.1)
    raise AssertionError(f"no scan screen with {pages} page(s): {rig.screen()['screen']}")


def visible(rig: SimulatorRig) -> str:
    screen = rig.screen()
    return "\n".join([screen["title"], *screen["texts"]])


def test_an_application_queued_while_the_hub_is_down_is_sent_and_its_receipt_scans(
    at_attract: SimulatorRig,
) -> None:
    rig = at_attract
    assert rig.card_slot is not None and rig.printer is not None and rig.hub is not None
    assert rig.camera is not None and rig.scanner is not None
    printed_before = len(rig.printer.receipts())
    cases_before = len(rig.hub.cases())
    rig.card_slot.insert(VirtualCard(kind="ssse", id_number=PERSON_ID, name=PERSON_NAME))
    wait_for(rig, "identify.identity")
    tap(rig, "continue")
    wait_for(rig, "home.menu")
    tap(rig, f"errand.{ITEM}")
    wait_for(rig, "intake.intro")
    tap(rig, "start")
    wait_for(rig, "intake.material")

    # 1 居民身份证: both sides; the blank platen first, which is said and not taken.
    rig.camera.set_document("empty")
    tap(rig, "scan")
    wait_for(rig, "intake.scan")
    time.sleep(1.0)  # let the live picture arrive before the screenshot
    shoot(rig, "40-scan-empty-platen-preview")
    tap(rig, "capture")
    deadline = time.monotonic() + 20
    while "没有拍到材料" not in visible(rig) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "没有拍到材料" in visible(rig)
    rig.camera.set_document("household_register")
    tap(rig, "capture")
    wait_for_scan_pages(rig, 1)
    time.sleep(1.0)
    shoot(rig, "41-scan-one-page-taken")
    tap(rig, "capture")
    wait_for_scan_pages(rig, 2)
    tap(rig, "done")
    # 2 户口簿: 容缺, committed to bring later.
    wait_for(rig, "intake.material")
    tap(rig, "defer")
    wait_for(rig, "intake.defer")
    shoot(rig, "42-defer-commitment")
    tap(rig, "agree")
    # 3 申请书, 4 困难情况证明 (two pages), 5 授权书 deferred, 6 账户.
    wait_for(rig, "intake.material")
    scan_material(rig, "application_form")
    wait_for(rig, "intake.material")
    scan_material(rig, "certificate", pages=2)
    wait_for(rig, "intake.material")
    tap(rig, "defer")
    tap(rig, "agree")
    wait_for(rig, "intake.material")
    scan_material(rig, "certificate")
    wait_for(rig, "intake.delivery")
    tap(rig, "pickup")
    wait_for(rig, "intake.pickup")
    tap(rig, "centre.county")
    wait_for(rig, "intake.phone")
    status, body = rig.api("POST", "/text", {"target": "field.phone", "text": PHONE})
    assert status == 200, body
    assert "138****5678" in visible(rig) and PHONE not in visible(rig)
    tap(rig, "next")
    wait_for(rig, "intake.review")
    shoot(rig, "43-application-review")

    # The hub goes down as the resident submits: stored on the terminal, and said so.
    rig.hub.set_fault("down")
    tap(rig, "submit")
    lodged = wait_for(rig, "intake.lodged", timeout_s=30)
    text = visible(rig)
    assert "网络暂时中断" in text and "登记编号" in text
    shoot(rig, "44-application-queued")
    tap(rig, "print")
    wait_for(rig, "intake.lodged", timeout_s=30)
    deadline = time.monotonic() + 20
    while len(rig.printer.receipts()) == printed_before and time.monotonic() < deadline:
        time.sleep(0.2)
    receipt = rig.printer.receipts()[-1]
    assert "申请受理回执" in receipt.text and "网络暂时中断" in receipt.text
    assert "138****5678" in receipt.text and PHONE not in receipt.text
    assert PERSON_ID not in receipt.text and PERSON_NAME not in receipt.text
    assert "容缺后补材料" in receipt.text
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "46-application-receipt.png").write_bytes(receipt.png_path.read_bytes())
    (qr,) = [code for code in receipt_qr_codes(receipt) if "/v1/progress/" in code]
    assert "/v1/progress/L-" in qr
    assert lodged["screen"] == "intake.lodged"
    tap(rig, "finish")
    wait_for(rig, "rating.choose")
    tap(rig, "rating.5")
    rig.card_slot.remove()
    settle_to_attract(rig)

    # The hub comes back: the queue sends it, once.
    rig.hub.set_fault("ok")
    deadline = time.monotonic() + 60
    while len(rig.hub.cases()) == cases_before and time.monotonic() < deadline:
        time.sleep(0.5)
    new_cases = rig.hub.cases()[cases_before:]
    assert len(new_cases) == 1, "the queued application did not reach the hub exactly once"

    # Nothing personal in the clear on the terminal: no page unsealed anywhere in its state, the
    # sent application gone from its queue, and no phone number or ID number in its log.
    state = rig.workdir / "terminal-state"
    deadline = time.monotonic() + 10
    while list((state / "submissions").rglob("*.sealed")) and time.monotonic() < deadline:
        time.sleep(0.2)
    for path in state.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"\xff\xd8\xff" not in data, f"an unsealed JPEG in {path}"
            assert PHONE.encode() not in data and PERSON_ID.encode() not in data, path
    log = (rig.workdir / "terminal.log").read_text(encoding="utf-8", errors="replace")
    assert PHONE not in log and PERSON_ID not in log and PERSON_NAME not in log

    # Progress by scanning the receipt's QR at the attract screen, without a card.
    rig.scanner.scan(qr)
    status_screen = wait_for(rig, "progress.status", timeout_s=20)
    text = "\n".join([status_screen["title"], *status_screen["texts"]])
    assert "办件进度" in text and PERSON_NAME not in text
    shoot(rig, "45-progress-by-receipt-qr")
    tap(rig, "finish")
    settle_to_attract(rig)


def test_a_card_pulled_mid_scan_leaves_no_page_anywhere(at_attract: SimulatorRig) -> None:
    rig = at_attract
    assert rig.card_slot is not None and rig.camera is not None
    rig.camera.set_document("household_register")
    rig.card_slot.insert(VirtualCard(kind="ssse", id_number=PERSON_ID, name=PERSON_NAME))
    wait_for(rig, "identify.identity")
    tap(rig, "continue")
    wait_for(rig, "home.menu")
    tap(rig, f"errand.{ITEM}")
    wait_for(rig, "intake.intro")
    tap(rig, "start")
    wait_for(rig, "intake.material")
    tap(rig, "scan")
    wait_for(rig, "intake.scan")
    tap(rig, "capture")
    wait_for_scan_pages(rig, 1)
    rig.card_slot.remove()
    wait_for(rig, "notice.card_removed")
    settle_to_attract(rig)
    for path in (rig.workdir / "terminal-state").rglob("*"):
        if path.is_file():
            assert b"\xff\xd8\xff" not in path.read_bytes(), f"a page left in {path}"
