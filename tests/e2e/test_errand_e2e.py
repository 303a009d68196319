"""End to end through the simulator: real pcscd + vpcd, virtual printer on TCP, the simulated hub,
a real mosquitto, and the real terminal process under Xvfb, driven only through its automation API
and the virtual devices, as a resident and an operator would see it."""

from __future__ import annotations

import json
import re
import sqlite3
import time
import urllib.request
from typing import Any

import pytest
from e2e_support import ARTIFACTS, MqttTap, settle_to_attract

from simulator.rig import SimulatorRig
from simulator.vcard import VirtualCard
from simulator.vprinter import PrinterStatus

pytestmark = pytest.mark.e2e

PERSON_ID = "11010519491231002X"
PERSON_NAME = "张三"
OTHER_ID = "34052419800101001X"
OTHER_NAME = "欧阳娜娜"
SHOTS = ARTIFACTS / "screenshots" / "e2e"


def shoot(rig: SimulatorRig, name: str) -> None:
    status, png = rig.api("GET", "/screenshot")
    assert status == 200 and png.startswith(b"\x89PNG")
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / f"{name}.png").write_bytes(png)


def touch(rig: SimulatorRig, target: str) -> dict[str, Any]:
    """A real touch at the centre of the target's button, not an API shortcut."""
    screen = rig.screen()
    [found] = [t for t in screen["targets"] if t["id"] == target]
    x, y, w, h = found["bounds"]
    status, body = rig.api("POST", "/touch", {"x": x + w / 2, "y": y + h / 2})
    assert status == 200, body
    return screen


def insert(rig: SimulatorRig, card: VirtualCard) -> None:
    assert rig.card_slot is not None
    rig.card_slot.insert(card)


def remove(rig: SimulatorRig) -> None:
    assert rig.card_slot is not None
    rig.card_slot.remove()


def visible(rig: SimulatorRig) -> str:
    screen = rig.screen()
    return "\n".join([screen["title"], *screen["texts"]])


def test_a_resident_prints_an_enrollment_proof_and_rates_it(
    at_attract: SimulatorRig, mqtt_tap: MqttTap
) -> None:
    rig = at_attract
    assert rig.printer is not None and rig.hub is not None
    printed_before = len(rig.printer.receipts())
    shoot(rig, "01-attract")

    insert(rig, VirtualCard.ssse(id_number=PERSON_ID, name=PERSON_NAME))
    identity = rig.wait_for_screen("identify.identity")
    text = "\n".join(identity["texts"])
    assert "张*" in text and "1101**********002X" in text
    assert PERSON_NAME not in text and PERSON_ID not in text
    shoot(rig, "02-identity")

    touch(rig, "continue")
    menu = rig.wait_for_screen("home.menu")
    assert "errand.ssc_enrollment_proof" in {t["id"] for t in menu["targets"]}
    shoot(rig, "03-menu")
    touch(rig, "errand.ssc_enrollment_proof")
    rig.wait_for_screen("proof.confirm")
    shoot(rig, "04-confirm")
    touch(rig, "confirm")
    rig.wait_for_screen("proof.done", timeout_s=20)
    shoot(rig, "05-take-card-and-receipt")

    [receipt] = rig.printer.wait_for_receipts(printed_before + 1, timeout_s=10)[printed_before:]
    assert receipt.complete
    assert "社会保险参保证明" in receipt.text
    assert "张*" in receipt.text and "1101**********002X" in receipt.text
    assert "T-SIM-0001" in receipt.text
    code = re.search(r"验证码\s+([0-9A-Z-]{19})", receipt.text)
    assert code, receipt.text
    with urllib.request.urlopen(f"{rig.hub_url}/v1/documents/{code.group(1)}", timeout=5) as r:
        verified = json.load(r)
    assert verified["valid"] is True and verified["errand_id"] == "ssc_enrollment_proof"
    case_number = re.search(r"办件编号\s+(\S+)", receipt.text)
    assert case_number

    remove(rig)
    rating = rig.wait_for_screen("rating.choose")
    assert [t["id"] for t in rating["targets"]][:5] == [f"rating.{n}" for n in (5, 4, 3, 2, 1)]
    shoot(rig, "06-rating")
    touch(rig, "rating.5")
    rig.wait_for_screen("thanks")
    shoot(rig, "07-thanks")
    deadline = time.monotonic() + 10
    while not [r for r in rig.hub.ratings() if r.case_number == case_number.group(1)]:
        assert time.monotonic() < deadline, "the rating never reached the hub"
        time.sleep(0.1)
    [stored] = [r for r in rig.hub.ratings() if r.case_number == case_number.group(1)]
    assert stored.level == 5
    rig.wait_for_screen("attract", timeout_s=15)

    mqtt_tap.wait_for("/event", lambda p: p["type"] == "errand_completed")
    mqtt_tap.wait_for("/event", lambda p: p["type"] == "rating_submitted")
    heartbeat = mqtt_tap.wait_for("/heartbeat", lambda p: p["counters"]["receipts"] >= 1)
    assert heartbeat["devices"]["printer"]["state"] == "ok"


def test_the_english_switch_works_mid_errand(at_attract: SimulatorRig) -> None:
    rig = at_attract
    insert(rig, VirtualCard.ssse(id_number=OTHER_ID, name=OTHER_NAME))
    rig.wait_for_screen("identify.identity")
    touch(rig, "lang.toggle")
    screen = rig.screen()
    assert screen["language"] == "en"
    assert not re.search(r"[\u4e00-\u9fff]", screen["title"]), screen["title"]
    shoot(rig, "08-identity-en")
    remove(rig)


def test_a_card_that_is_not_a_social_security_card(at_attract: SimulatorRig) -> None:
    rig = at_attract
    insert(rig, VirtualCard.other())
    rig.wait_for_screen("error.unsupported_card")
    assert "社会保障卡" in visible(rig)
    shoot(rig, "09-unsupported-card")
    remove(rig)
    rig.wait_for_screen("attract", timeout_s=15)


def test_a_wrong_check_digit_is_refused_with_its_own_message(at_attract: SimulatorRig) -> None:
    rig = at_attract
    insert(rig, VirtualCard.ssse(id_number="110105194912310021", name=PERSON_NAME))
    rig.wait_for_screen("error.invalid_id")
    shoot(rig, "10-invalid-id")
    assert "110105194912310021" not in visible(rig)
    remove(rig)


def test_a_card_pulled_during_the_read(at_attract: SimulatorRig) -> None:
    rig = at_attract
    assert rig.card_slot is not None
    insert(rig, VirtualCard.ssse(id_number=PERSON_ID, name=PERSON_NAME))
    rig.card_slot.pull_after(3)  # pcscd sees the card ~0.3 s later; the read starts after that
    rig.wait_for_screen("notice.card_removed")
    shoot(rig, "11-card-pulled")
    assert "张*" not in visible(rig)


def _to_confirm(rig: SimulatorRig) -> None:
    insert(rig, VirtualCard.ssse(id_number=PERSON_ID, name=PERSON_NAME))
    rig.wait_for_screen("identify.identity")
    rig.tap("continue")
    rig.wait_for_screen("home.menu")
    rig.tap("errand.ssc_enrollment_proof")
    rig.wait_for_screen("proof.confirm")


def test_paper_out_blocks_the_job_and_shows_in_the_next_heartbeat(
    at_attract: SimulatorRig, mqtt_tap: MqttTap
) -> None:
    rig = at_attract
    assert rig.printer is not None
    printed_before = len(rig.printer.receipts())
    _to_confirm(rig)
    # The paper runs out after the menu offered printing: the check before the job catches it.
    rig.printer.status = PrinterStatus.PAPER_OUT
    rig.tap("confirm")
    rig.wait_for_screen("proof.printer_unavailable")
    shoot(rig, "12-paper-out")
    assert "打印纸已用完" in visible(rig)
    heartbeat = mqtt_tap.wait_for(
        "/heartbeat", lambda p: p["devices"].get("printer", {}).get("reason") == "paper_out")
    assert heartbeat["devices"]["printer"]["state"] == "fault"
    mqtt_tap.wait_for("/event", lambda p: p["type"] == "device_fault"
                      and p.get("reason") == "paper_out")
    assert len(rig.printer.receipts()) == printed_before, "nothing may print without paper"
    remove(rig)


def test_a_silent_printer_is_a_fault_not_a_hang(at_attract: SimulatorRig) -> None:
    rig = at_attract
    assert rig.printer is not None
    _to_confirm(rig)
    rig.printer.status = PrinterStatus.SILENT
    started = time.monotonic()
    rig.tap("confirm")
    rig.wait_for_screen("proof.printer_unavailable", timeout_s=10)
    assert time.monotonic() - started < 5
    shoot(rig, "13-printer-silent")
    remove(rig)


def test_a_printer_known_to_be_down_is_said_on_attract_and_in_the_menu(
    at_attract: SimulatorRig,
) -> None:
    """The screens tell the truth: no printing is promised while the paper is out, and the
    errand that prints is shown unavailable, with the reason in words, before anyone taps it."""
    rig = at_attract
    assert rig.printer is not None
    rig.printer.status = PrinterStatus.PAPER_OUT
    deadline = time.monotonic() + 20  # the device monitor polls every 10 s
    while "打印纸已用完" not in visible(rig) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "打印暂不可用" in visible(rig) and "打印纸已用完" in visible(rig)
    assert rig.screen()["targets"][0]["id"] == "guides"  # guides still work
    shoot(rig, "12a-attract-paper-out")
    insert(rig, VirtualCard.ssse(id_number=PERSON_ID, name=PERSON_NAME))
    rig.wait_for_screen("identify.identity")
    rig.tap("continue")
    menu = rig.wait_for_screen("home.menu")
    [proof] = [t for t in menu["targets"] if t["id"] == "errand.ssc_enrollment_proof"]
    assert not proof["enabled"]
    assert "暂不可用" in proof["label"] and "打印纸已用完" in proof["label"]
    guide = [t for t in menu["targets"] if t["id"].startswith("errand.") and t["enabled"]]
    assert guide, "the guides need no printer"
    shoot(rig, "12b-menu-paper-out")
    rig.printer.status = PrinterStatus.OK
    remove(rig)


def test_hub_down_then_retry_prints(at_attract: SimulatorRig) -> None:
    rig = at_attract
    assert rig.hub is not None and rig.printer is not None
    printed_before = len(rig.printer.receipts())
    rig.hub.set_fault("down")
    _to_confirm(rig)
    rig.tap("confirm")
    rig.wait_for_screen("proof.hub_unavailable", timeout_s=15)
    shoot(rig, "14-hub-down")
    rig.hub.set_fault("ok")
    rig.tap("retry")
    rig.wait_for_screen("proof.done", timeout_s=20)
    assert len(rig.printer.wait_for_receipts(printed_before + 1, timeout_s=10)) == (
        printed_before + 1)
    remove(rig)


def test_broker_down_loses_nothing(at_attract: SimulatorRig, mqtt_tap: MqttTap) -> None:
    rig = at_attract
    assert rig.broker is not None
    rig.broker.stop()
    _to_confirm(rig)
    rig.tap("confirm")
    rig.wait_for_screen("proof.done", timeout_s=20)  # serving while the broker is down
    remove(rig)
    rig.wait_for_screen("rating.choose")
    rig.tap("rating.1")
    rig.wait_for_screen("thanks")
    completed_before = len([p for p in mqtt_tap.payloads("/event")
                            if p["type"] == "rating_submitted" and p.get("level") == 1])
    rig.broker.start()
    mqtt_tap.wait_for("/event", lambda p: p["type"] == "rating_submitted" and p.get("level") == 1,
                      timeout_s=30)
    assert completed_before == 0
    outbox = rig.workdir / "terminal-state" / "outbox.sqlite"
    deadline = time.monotonic() + 15
    while True:
        with sqlite3.connect(f"file:{outbox}?mode=ro", uri=True) as db:
            pending = db.execute("SELECT count(*) FROM outbox WHERE kind = 'event'").fetchone()[0]
        if pending == 0:
            break
        assert time.monotonic() < deadline, f"{pending} events still queued"
        time.sleep(0.2)


def test_an_idle_resident_sees_a_countdown_then_the_session_ends(
    at_attract: SimulatorRig,
) -> None:
    rig = at_attract
    insert(rig, VirtualCard.ssse(id_number=PERSON_ID, name=PERSON_NAME))
    rig.wait_for_screen("identify.identity")
    deadline = time.monotonic() + 15
    while (screen := rig.screen())["countdown_s"] is None:
        assert time.monotonic() < deadline, "no countdown appeared"
        time.sleep(0.2)
    assert any("秒" in t for t in screen["texts"]), screen["texts"]
    shoot(rig, "15-countdown")
    # The session ends; the card is still in, so the resident is asked to take it.
    rig.wait_for_screen("take_card", timeout_s=15)
    assert "张*" not in visible(rig)
    remove(rig)
    rig.wait_for_screen("attract", timeout_s=15)


def test_nothing_personal_in_logs_mqtt_receipts_or_hub_database(
    at_attract: SimulatorRig, mqtt_tap: MqttTap
) -> None:
    # Runs last in this module, after every scenario above; it also puts both people through
    # the terminal itself so it searches real traffic when run on its own.
    rig = at_attract
    for person_id, name in ((PERSON_ID, PERSON_NAME), (OTHER_ID, OTHER_NAME)):
        insert(rig, VirtualCard.ssse(id_number=person_id, name=name))
        rig.wait_for_screen("identify.identity")
        remove(rig)
        settle_to_attract(rig)
    mqtt_tap.wait_for("/event", lambda p: p["type"] == "session_ended")
    secrets = [PERSON_ID, PERSON_NAME, OTHER_ID, OTHER_NAME, "110105194912310021"]
    places: dict[str, bytes] = {
        "terminal.log": (rig.workdir / "terminal.log").read_bytes(),
        "mqtt": b"\n".join(topic.encode() + b" " + payload for topic, payload in mqtt_tap.messages),
    }
    assert rig.printer is not None
    for receipt in rig.printer.receipts():
        places[f"receipt {receipt.index} text"] = receipt.text.encode()
        places[f"receipt {receipt.index} bytes"] = receipt.raw
    for path in rig.workdir.rglob("*"):
        if path.is_file() and path.suffix in {".sqlite", ".sqlite3", ".json", ".log", ".txt"}:
            places[str(path.relative_to(rig.workdir))] = path.read_bytes()
    assert mqtt_tap.messages and places["terminal.log"], "the search must have something to search"
    assert "hub.sqlite" in places and "terminal-state/outbox.sqlite" in places, sorted(places)
    for secret in secrets:
        for encoded in {secret.encode(), secret.encode("gb18030")}:
            leaks = [where for where, data in places.items() if encoded in data]
            assert not leaks, f"{secret[:1]}… found in {leaks}"


def test_a_help_call_reaches_operations_and_their_answer_reaches_the_screen(
    at_attract: SimulatorRig, mqtt_tap: MqttTap
) -> None:
    from fleet.commands import CommandSender, build_commands  # noqa: PLC0415

    rig = at_attract
    touch(rig, "help.call")
    called = mqtt_tap.wait_for("/event", lambda p: p.get("type") == "help_requested")
    assert called["screen"] == "attract" and called["elder_mode"] is False
    assert "已呼叫工作人员，请在此稍候" in visible(rig)
    host, port = rig.broker_address
    with CommandSender(host, port) as sender:
        (command,) = build_commands([rig.options.terminal_id], "help_ack",
                                    {"help_id": called["help_id"], "staff": "王工", "minutes": 5})
        sender.send([command])
        assert sender.log.wait_final([command.request_id], 15)
        (final,) = [a for a in sender.log.acks[command.request_id] if a.final]
        assert final.status == "succeeded", final
        # An answer to a call that is not open here fails, and says why.
        (stale,) = build_commands([rig.options.terminal_id], "help_ack",
                                  {"help_id": "gone-1", "staff": "王工", "minutes": 5})
        sender.send([stale])
        assert sender.log.wait_final([stale.request_id], 15)
        (refused,) = [a for a in sender.log.acks[stale.request_id] if a.final]
        assert refused.status == "failed" and "no help call" in (refused.error or "")
    assert "工作人员王工约5分钟后到达" in visible(rig)
    shoot(rig, "help-coming")
    touch(rig, "help.cancel")
    cancelled = mqtt_tap.wait_for("/event", lambda p: p.get("type") == "help_cancelled")
    assert cancelled["help_id"] == called["help_id"]
    assert "王工" not in visible(rig)
