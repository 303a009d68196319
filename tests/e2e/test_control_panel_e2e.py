"""The control panel drives the real rig: cards, printer states and receipts over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from simulator.cli import RigBackend
from simulator.panel import ControlPanel
from simulator.rig import SimulatorRig

pytestmark = pytest.mark.e2e


@pytest.fixture
def panel(at_attract: SimulatorRig) -> Iterator[ControlPanel]:
    panel = ControlPanel(RigBackend(at_attract), port=0)
    panel.start()
    try:
        yield panel
    finally:
        panel.stop()


def call(panel: ControlPanel, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        panel.url.rstrip("/") + path,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        data = response.read()
        if response.headers.get_content_type() == "application/json":
            return json.loads(data)
        return data


def test_the_panel_inserts_a_card_shows_the_screen_and_sets_the_printer(
    panel: ControlPanel, at_attract: SimulatorRig
) -> None:
    rig = at_attract
    call(panel, "/api/card/insert", {"kind": "ssse", "id_number": "34052419800101001X",
                                     "name": "欧阳娜娜"})
    rig.wait_for_screen("identify.identity")
    state = call(panel, "/api/state")
    assert state["devices"]["card_present"] is True
    assert state["screen"]["screen"] == "identify.identity"
    assert call(panel, "/api/screen.png").startswith(b"\x89PNG")
    call(panel, "/api/printer/status", {"status": "near_end"})
    assert call(panel, "/api/state")["devices"]["printer_status"] == "near_end"
    call(panel, "/api/printer/status", {"status": "ok"})
    for target in ("continue", "errand.ssc_enrollment_proof", "confirm"):
        call(panel, "/api/tap", {"target": target})
    rig.wait_for_screen("proof.done", timeout_s=20)
    receipts = call(panel, "/api/receipts")["receipts"]
    assert receipts and "社会保险参保证明" in receipts[-1]["text"]
    # The list gives the time the receipt prints, in the terminal's zone (Asia/Shanghai).
    printed_local = receipts[-1]["printed_at_local"]
    assert printed_local.endswith(" CST") and receipts[-1]["printed_at"].endswith("+08:00")
    assert call(panel, f"/api/receipts/{receipts[-1]['index']}.png").startswith(b"\x89PNG")
    call(panel, "/api/card/remove", {})
    rig.wait_for_screen("rating.choose", timeout_s=15)


def test_the_pull_fault_armed_with_no_card_pulls_the_next_card_mid_read(
    panel: ControlPanel, at_attract: SimulatorRig
) -> None:
    rig = at_attract
    # With no card in, this used to fail with "RuntimeError: no card to pull".
    assert call(panel, "/api/card/pull-mid-read", {}) == {"ok": True, "armed": True}
    assert call(panel, "/api/state")["devices"]["card_pull_armed"] is True
    call(panel, "/api/card/insert", {"kind": "ssse"})
    rig.wait_for_screen("notice.card_removed")
    devices = call(panel, "/api/state")["devices"]
    assert devices["card_present"] is False
    assert devices["card_pull_armed"] is False
    assert devices["card_pulled_at_local"].endswith(" CST")
    # Fired once: the next card is read whole.
    rig.wait_for_screen("attract", timeout_s=20)
    call(panel, "/api/card/insert", {"kind": "ssse"})
    rig.wait_for_screen("identify.identity")
    call(panel, "/api/card/remove", {})


def test_kiosk_sim_explains_its_options() -> None:
    result = subprocess.run([sys.executable, "-m", "simulator.cli", "--help"],
                            capture_output=True, text=True, timeout=30, check=True)
    for option in ("--printer", "--broker", "--hub", "--real-reader", "--size"):
        assert option in result.stdout
