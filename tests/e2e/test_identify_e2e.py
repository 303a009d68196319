"""End to end: every way of identifying into the proof errand, the staff badge's maintenance menu,
and the co-processor (door, heat, the watchdog power-cycling a frozen terminal), through the real
terminal process, the virtual SAM module and co-processor on ptys, pcscd and the simulated hub."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest
from e2e_support import ARTIFACTS, MqttTap, settle_devices, settle_to_attract

from simulator.pcsc import Pcscd
from simulator.rig import RigOptions, SimulatorRig
from simulator.vcard import VirtualCard
from simulator.vprinter import PrinterStatus

pytestmark = pytest.mark.e2e

PERSON_ID = "11010519491231002X"
PERSON_NAME = "欧阳娜娜"
SHOTS = ARTIFACTS / "screenshots" / "e2e"
WATCHDOG_S = 6  # the co-processor's watchdog, short for the test (60 s in production)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorRig]:
    workdir = tmp_path_factory.mktemp("sim-identify")
    pcscd = Pcscd()
    pcscd.start()
    rig = SimulatorRig(RigOptions(
        workdir=workdir, size=(1280, 800), printer_port=0, hub_port=0, automation_port=0,
        camera_port=0, pcscd=pcscd, heartbeat_interval_s=2, idle_timeout_s=20,
        force_xvfb=True, watchdog_timeout_s=WATCHDOG_S, watchdog_grace_s=3,
    ))
    try:
        rig.start()
        yield rig
    finally:
        rig.stop()
        pcscd.close()


@pytest.fixture
def at_attract(rig: SimulatorRig) -> SimulatorRig:
    assert rig.card_slot is not None and rig.printer is not None and rig.sam is not None
    if rig.card_slot.card is not None:
        rig.card_slot.remove()
    rig.sam.remove()
    rig.sam.fault("ok")
    rig.printer.status = PrinterStatus.OK
    settle_to_attract(rig)
    settle_devices(rig)
    return rig


def shoot(rig: SimulatorRig, name: str) -> None:
    status, png = rig.api("GET", "/screenshot")
    assert status == 200 and png.startswith(b"\x89PNG")
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / f"{name}.png").write_bytes(png)


def text_of(screen: dict[str, Any]) -> str:
    return "\n".join([screen["title"], *screen["texts"]])


def taken_away(rig: SimulatorRig) -> None:
    """The card leaves the reader's field; the module's next polls (every 0.25 s) see it gone."""
    assert rig.sam is not None
    rig.sam.remove()
    time.sleep(0.6)


def proof_errand_to_the_rating(rig: SimulatorRig, shot: str) -> None:
    """From the identity screen: the proof printed, then the rating by a tap (no card held)."""
    assert rig.printer is not None
    before = len(rig.printer.receipts())
    rig.tap("continue")
    rig.wait_for_screen("home.menu")
    rig.tap("errand.ssc_enrollment_proof")
    rig.wait_for_screen("proof.confirm")
    rig.tap("confirm")
    done = rig.wait_for_screen("proof.done", timeout_s=20)
    assert "rate" in {t["id"] for t in done["targets"]}
    shoot(rig, shot)
    [receipt] = rig.printer.wait_for_receipts(before + 1, timeout_s=10)[before:]
    assert "社会保险参保证明" in receipt.text and "1101**********002X" in receipt.text
    assert PERSON_ID not in receipt.text and PERSON_NAME not in receipt.text
    rig.tap("rate")
    rig.wait_for_screen("rating.choose")
    rig.tap("rating.5")
    rig.wait_for_screen("thanks")


def test_an_id_card_presented_once_identifies_for_the_proof_errand(
    at_attract: SimulatorRig, mqtt_tap: MqttTap
) -> None:
    rig = at_attract
    assert rig.sam is not None
    deadline = time.monotonic() + 15
    while "或将居民身份证放在感应区" not in text_of(rig.screen()):  # once the reader has answered
        assert time.monotonic() < deadline, rig.screen()
        time.sleep(0.2)
    shoot(rig, "60-attract-three-ways")
    started = time.monotonic()
    rig.sam.place(PERSON_ID, PERSON_NAME, valid_until=dt.date(2036, 5, 1))
    identity = rig.wait_for_screen("identify.identity", timeout_s=10)
    print(f"ID card placed -> identity on screen: {1000 * (time.monotonic() - started):.0f} ms")
    text = text_of(identity)
    assert "欧***" in text and "1101**********002X" in text and "居民身份证" in text
    assert PERSON_NAME not in text and PERSON_ID not in text
    shoot(rig, "61-identity-id-card")
    rig.sam.remove()  # taken away again, as it should be: the session goes on
    time.sleep(0.6)
    assert rig.screen()["screen"] == "identify.identity"
    proof_errand_to_the_rating(rig, "62-proof-done-id-card")
    mqtt_tap.wait_for("/event", lambda p: p["type"] == "errand_completed")


def test_an_expired_id_card_and_other_documents_are_declined(at_attract: SimulatorRig) -> None:
    rig = at_attract
    assert rig.sam is not None
    rig.sam.place(PERSON_ID, PERSON_NAME, valid_until=dt.date(2020, 1, 1))
    rig.wait_for_screen("error.id_card_expired", timeout_s=10)
    shoot(rig, "63-id-card-expired")
    taken_away(rig)
    rig.tap("continue")
    rig.wait_for_screen("attract")
    rig.sam.place(PERSON_ID, PERSON_NAME, card_type="residence_permit")
    rig.wait_for_screen("error.residence_permit", timeout_s=10)
    taken_away(rig)
    rig.tap("continue")
    rig.wait_for_screen("attract")
    rig.sam.fault("mid_frame")
    rig.sam.place(PERSON_ID, PERSON_NAME)
    screen = rig.wait_for_screen("error.id_card_moved", timeout_s=10)
    assert PERSON_NAME not in text_of(screen)
    rig.sam.remove()
    rig.sam.fault("ok")


def test_an_e_id_code_identifies_once_and_a_reused_one_is_refused(
    at_attract: SimulatorRig,
) -> None:
    rig = at_attract
    assert rig.hub is not None and rig.scanner is not None
    code = rig.hub.issue_code(PERSON_ID, PERSON_NAME)
    rig.scanner.scan(code)
    identity = rig.wait_for_screen("identify.identity", timeout_s=10)
    assert "电子社保卡" in text_of(identity) and "欧***" in text_of(identity)
    shoot(rig, "64-identity-e-code")
    proof_errand_to_the_rating(rig, "65-proof-done-e-code")
    settle_to_attract(rig)
    rig.scanner.scan(code)  # the same code again: each works once
    rig.wait_for_screen("error.code_used", timeout_s=10)
    shoot(rig, "66-e-code-used")
    rig.tap("continue")
    rig.scanner.scan("EID1:" + "A" * 40)  # never issued by this hub
    rig.wait_for_screen("error.code_foreign", timeout_s=10)
    log = (rig.workdir / "terminal.log").read_text(encoding="utf-8", errors="replace")
    assert code not in log and PERSON_ID not in log and PERSON_NAME not in log


def test_a_listed_badge_opens_maintenance_and_nothing_personal_is_in_it(
    at_attract: SimulatorRig, mqtt_tap: MqttTap
) -> None:
    rig = at_attract
    assert rig.card_slot is not None and rig.printer is not None
    rig.card_slot.insert(VirtualCard.badge("04FFFFFFFFFFFF"))  # nobody listed this one
    rig.wait_for_screen("error.unsupported_card", timeout_s=10)
    rig.card_slot.remove()
    rig.wait_for_screen("attract")
    mqtt_tap.wait_for("/event", lambda p: p["type"] == "badge_refused")

    rig.card_slot.insert(VirtualCard.badge())
    rig.wait_for_screen("maintenance.menu", timeout_s=10)
    rig.card_slot.remove()  # a badge is tapped and taken away; the menu stays
    shoot(rig, "70-maintenance-menu")
    mqtt_tap.wait_for("/event", lambda p: p["type"] == "maintenance_entered")
    mqtt_tap.wait_for("/heartbeat", lambda p: p["state"] == "maintenance")

    rig.tap("self_test")
    result = rig.wait_for_screen("maintenance.self_test", timeout_s=20)
    text = text_of(result)
    for device in ("社保卡读卡器", "身份证阅读器", "扫码器", "高拍仪", "打印机", "机柜控制板",
                   "网络", "政务服务平台", "运维消息服务"):
        assert device in text
    # Every device of the simulator answers (the ID reader may still warn of an earlier test's
    # broken read: it says so until its next good read).
    assert "有设备未通过" not in text and "未通过（" not in text, text
    shoot(rig, "71-maintenance-self-test")
    rig.tap("back")
    rig.wait_for_screen("maintenance.menu")

    before = len(rig.printer.receipts())
    rig.tap("test_print")
    rig.wait_for_screen("maintenance.printed", timeout_s=15)
    [page] = rig.printer.wait_for_receipts(before + 1, timeout_s=10)[before:]
    assert "打印测试页" in page.text and "T-SIM-0001" in page.text
    rig.tap("back")
    for page_id, expected in (("printer", "本卷已打印"), ("counters", "服务人次"),
                              ("about", "软件版本")):
        rig.wait_for_screen("maintenance.menu")
        rig.tap(page_id)
        shown = rig.wait_for_screen(f"maintenance.{page_id}", timeout_s=15)
        assert expected in text_of(shown)
        shoot(rig, f"72-maintenance-{page_id}")
        rig.tap("back")
    rig.wait_for_screen("maintenance.menu")
    rig.tap("paper_refilled")
    rig.wait_for_screen("maintenance.refilled", timeout_s=10)
    mqtt_tap.wait_for("/event", lambda p: p["type"] == "paper_refilled")
    rig.tap("back")
    rig.wait_for_screen("maintenance.menu")
    rig.tap("leave")
    rig.wait_for_screen("attract")
    mqtt_tap.wait_for("/event", lambda p: p["type"] == "maintenance_left")


def test_the_door_and_the_heat_reach_operations(
    at_attract: SimulatorRig, mqtt_tap: MqttTap
) -> None:
    rig = at_attract
    assert rig.controller is not None
    rig.controller.door(True)
    opened = mqtt_tap.wait_for("/event", lambda p: p["type"] == "door_opened")
    assert opened["severity"] == "critical"
    heartbeat = mqtt_tap.wait_for(
        "/heartbeat", lambda p: p["devices"].get("cabinet", {}).get("reason") == "door_open",
        timeout_s=25)
    assert heartbeat["devices"]["controller"]["state"] == "ok"
    rig.controller.door(False)
    mqtt_tap.wait_for("/event", lambda p: p["type"] == "door_closed")
    rig.controller.temperature(70.0)
    hot = mqtt_tap.wait_for("/event", lambda p: p["type"] == "temperature_high")
    assert hot["fan_on"] is True
    rig.controller.temperature(30.0)


def test_a_frozen_terminal_is_power_cycled_by_the_watchdog(
    at_attract: SimulatorRig, mqtt_tap: MqttTap
) -> None:
    rig = at_attract
    assert rig.controller is not None
    cycles = rig.controller.power_cycles
    time.sleep(WATCHDOG_S + 1)  # kicked all along: nothing happens
    assert rig.controller.power_cycles == cycles
    rig.freeze_terminal(True)
    deadline = time.monotonic() + WATCHDOG_S + 10
    while rig.controller.power_cycles == cycles:
        assert time.monotonic() < deadline, "the watchdog never fired"
        time.sleep(0.2)
    # The power comes back (after the relay's off time), the terminal boots again, says why.
    deadline = time.monotonic() + 30
    while rig.terminal_restarts == 0:
        assert time.monotonic() < deadline, "the terminal never booted again"
        time.sleep(0.2)
    rig.wait_for_screen("attract", timeout_s=60)
    reset = mqtt_tap.wait_for("/event", lambda p: p["type"] == "controller_reset"
                              and p["cause"] == "kick_timeout", timeout_s=30)
    assert reset["power_cycles"] >= 1


def test_nothing_personal_left_the_terminal_whichever_way(
    rig: SimulatorRig, mqtt_tap: MqttTap
) -> None:
    """Every MQTT message of this module's sessions (ID card, e-ID code, badge, cabinet) and the
    terminal's log, searched for the residents' data and the staff badge's UID."""
    with mqtt_tap.lock:
        payloads = [payload.decode("utf-8", "replace") for _topic, payload in mqtt_tap.messages]
    assert payloads, "the tap heard nothing"
    log = (rig.workdir / "terminal.log").read_text(encoding="utf-8", errors="replace")
    for text in (*payloads, log):
        for secret in (PERSON_ID, PERSON_NAME, "1101**********002X", "欧***",
                       VirtualCard.badge().uid, "04FFFFFFFFFFFF", "EID1:"):
            assert secret not in text, secret
