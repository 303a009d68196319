"""What `make sim` adds for operations: the monitor, the dashboard on its port, a development
operator whose token is written under the workdir, and virtual terminals filling the dashboard."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

from simulator.broker import Mosquitto, free_port
from simulator.fleet_side import FleetSide

WAIT_S = 20.0


def api(url: str, token: str) -> object:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.loads(answer.read())


def test_the_dashboard_fills_with_the_virtual_terminals_and_the_token_works(
        tmp_path: Path) -> None:
    with Mosquitto() as broker:
        side = FleetSide(tmp_path, (broker.host, broker.port), port=free_port(),
                         virtual_terminals=3)
        try:
            side.start()
            token = side.token
            assert side.token_path.stat().st_mode & 0o077 == 0, "the token is the owner's alone"
            deadline = time.monotonic() + WAIT_S
            while len(terminals := api(f"{side.url}/api/terminals", token)) < 3:  # type: ignore[arg-type]
                assert time.monotonic() < deadline, terminals
                time.sleep(0.2)
            assert {t["state"] for t in terminals} == {"online"}  # type: ignore[index]
        finally:
            side.stop()
        again = FleetSide(tmp_path, (broker.host, broker.port), port=free_port(),
                          virtual_terminals=0)
        try:
            again.start()
            assert again.token == token, "the development token is kept across runs"
            assert len(api(f"{again.url}/api/terminals", token)) == 3  # type: ignore[arg-type]
        finally:
            again.stop()
