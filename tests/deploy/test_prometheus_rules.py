"""The Prometheus alert rules in deploy/prometheus: valid, their own unit tests pass under
promtool, and every kiosk_* metric they use is one the dashboard's /metrics exports."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fleet.liveness import Liveness
from fleet.store import AlertState, AlertView, TerminalView
from fleet.web.metrics import FleetFigures, exposition, fleet_registry

RULES_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = RULES_DIR / "kiosk-alerts.yml"

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None,
                                reason="promtool is not installed (run scripts/setup.sh)")


def promtool(*args: str) -> str:
    done = subprocess.run(["promtool", *args], cwd=RULES_DIR, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_rules_are_valid() -> None:
    assert "SUCCESS" in promtool("check", "rules", RULES.name)


def test_the_rules_pass_their_unit_tests() -> None:
    assert "SUCCESS" in promtool("test", "rules", "kiosk-alerts.test.yml")


def exported_names() -> set[str]:
    now = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)
    terminal = TerminalView(
        tid="T-1", site="town-a", version="1.0.0", liveness=Liveness.ONLINE, last_seen=now,
        state="idle", devices={"printer": {"state": "ok", "reason": ""}}, system={},
        outbox=0, counters={}, heartbeats=1, events=0)
    alert = AlertView(1, "T-1", "town-a", "help_requested", "critical", "h1", AlertState.OPEN,
                      now, None, None, None)
    figures = FleetFigures([terminal], [alert], {"heartbeat": 1}, {"duplicate": 0})
    text = exposition(fleet_registry(lambda: figures)).decode()
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines()
            if line and not line.startswith("#")}


def test_every_metric_the_rules_use_is_exported() -> None:
    used = set(re.findall(r"\bkiosk_[a-z_]+", RULES.read_text(encoding="utf-8")))
    assert used, "the rules use no kiosk metric"
    assert used <= exported_names(), f"not exported: {sorted(used - exported_names())}"
