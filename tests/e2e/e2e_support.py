"""Shared pieces of the end-to-end tests: where artifacts go, a tap on all MQTT traffic, the way
back to the attract screen, and the screen tests' turning of pages and checking of layouts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.rig import SimulatorRig

ARTIFACTS = Path(__file__).parents[2] / "artifacts"


@dataclass
class MqttTap:
    """A subscriber on kiosk/v1/# that keeps every message, for contract and privacy checks."""

    messages: list[tuple[str, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)

    def add(self, topic: str, payload: bytes) -> None:
        with self.arrived:
            self.messages.append((topic, payload))
            self.arrived.notify_all()

    def payloads(self, suffix: str) -> list[dict[str, Any]]:
        with self.lock:
            return self._decoded(suffix)

    def wait_for(
        self, suffix: str, predicate: Callable[[dict[str, Any]], bool], timeout_s: float = 15.0
    ) -> dict[str, Any]:
        """The first payload on a topic ending in ``suffix`` for which ``predicate`` holds."""
        with self.arrived:
            ok = self.arrived.wait_for(
                lambda: any(predicate(p) for p in self._decoded(suffix)), timeout_s
            )
            assert ok, f"no {suffix} message matched within {timeout_s} s"
            return next(p for p in self._decoded(suffix) if predicate(p))

    def _decoded(self, suffix: str) -> list[dict[str, Any]]:
        return [json.loads(p) for t, p in self.messages if t.endswith(suffix) and p]


def settle_to_attract(rig: SimulatorRig, timeout_s: float = 20.0) -> None:
    """Leave whatever a previous test left on screen the way a resident would: tap on."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        screen = rig.screen()
        if screen["screen"] == "attract":
            return
        targets = {t["id"] for t in screen["targets"] if t["enabled"]}
        for way_out in ("continue", "finish", "skip", "cancel", "back", "leave"):
            if way_out in targets:
                rig.api("POST", "/tap", {"target": way_out})
                break
        time.sleep(0.2)
    raise AssertionError(f"terminal did not return to attract: {rig.screen()}")


def settle_devices(rig: SimulatorRig, timeout_s: float = 25.0) -> None:
    """Wait until the attract screen promises everything again: a fault a previous test set and
    cleared is seen as cleared only at the device monitor's next poll (every 10 s)."""
    # Each way of identifying is promised once its device has answered the monitor's first poll:
    # until then the attract screen is laid out again (and a touch read off it may miss).
    promised = [line for device, line in ((rig.sam, "或将居民身份证放在感应区"),
                                          (rig.scanner, "也可在扫码口出示电子社保卡二维码"))
                if device is not None]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        screen = rig.screen()
        texts = screen["texts"]
        if (screen["screen"] == "attract" and not any("暂不可用" in t for t in texts)
                and (screen["language"] != "zh_CN" or all(line in texts for line in promised))):
            return
        time.sleep(0.2)
    raise AssertionError(f"devices did not come back: {rig.screen()}")


def start_pass(rig: SimulatorRig, language: str, elder: bool) -> str:
    """At attract, switch to ``language`` (from the home zh_CN) and to elder mode if asked, as
    a resident does; the pass's name for screenshots (``en-elder``)."""
    rig.wait_for_screen("attract")
    if language == "en":
        rig.tap("lang.toggle")
    if elder:
        rig.tap("mode.toggle")
        wait_for_mode(rig, "elder")
    return f"{language}-elder" if elder else language


def turn_page(rig: SimulatorRig) -> bool:
    """Tap 下一页 if the screen has an enabled one, and wait for the page to change."""
    shown = rig.screen()
    following = next((t for t in shown["targets"] if t["id"] == "page.next"), None)
    if following is None or not following["enabled"]:
        return False
    assert following["bounds"] is not None, "a page button must be on the screen"
    def picture() -> bytes:
        status, png = rig.api("GET", "/screenshot")
        assert status == 200
        return png

    before = picture()
    rig.tap("page.next")
    deadline = time.monotonic() + 5
    while picture() == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert picture() != before, "下一页 changed nothing on the screen"
    return True


def tap_tile(rig: SimulatorRig, target: str) -> None:
    """Tap a menu tile, turning a paged menu's pages first if it is on a later one."""
    for _ in range(20):
        targets = {t["id"]: t for t in rig.screen()["targets"]}
        if targets[target]["bounds"] is not None:
            rig.tap(target)
            return
        shown = rig.screen()["targets"]
        rig.tap("page.next")
        deadline = time.monotonic() + 5
        while rig.screen()["targets"] == shown and time.monotonic() < deadline:
            time.sleep(0.05)
    raise AssertionError(f"{target} never came on a page")


def wait_for_mode(rig: SimulatorRig, mode: str) -> None:
    deadline = time.monotonic() + 5
    while rig.screen()["mode"] != mode:
        assert time.monotonic() < deadline, f"mode stayed {rig.screen()['mode']}"
        time.sleep(0.05)


def check_and_shoot(rig: SimulatorRig, out: Path, step: str) -> list[str]:
    status, body = rig.api("GET", "/debug/layout")
    assert status == 200, body
    issues: list[str] = json.loads(body)["issues"]
    status, png = rig.api("GET", "/screenshot")
    assert status == 200
    (out / f"{step}.png").write_bytes(png)
    return [f"{step}: {issue}" for issue in issues]
