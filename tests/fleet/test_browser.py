"""The dashboard in a real browser (Playwright driving Debian's chromium, headless), over a live
chain: a virtual fleet on mosquitto, the monitor storing it, `kiosk-fleet serve` as operations run
it. An operator logs in, filters the terminal list, acknowledges an alert and pings a terminal,
which answers; each page is saved as a screenshot under artifacts/screenshots/fleet/."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts.mqtt import utc_now
from fleet.accounts import Role, hash_password
from fleet.monitor import Monitor, MonitorSettings
from fleet.store import AlertState, FleetStore
from simulator.broker import Mosquitto, free_port
from simulator.fleet_load import FleetLoad, LoadOptions

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "artifacts" / "screenshots" / "fleet"
CHROMIUM = shutil.which("chromium")
PASSWORD = "night shift 03:00"
WAIT_S = 20.0

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="chromium is not installed (run scripts/setup.sh)")


def until(condition: object, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[str, FleetLoad, FleetStore]]:
    """A broker, a virtual fleet of 8 (paper running out often), the monitor, the dashboard."""
    db = tmp_path / "fleet.db"
    with Mosquitto() as broker:
        monitor = Monitor(MonitorSettings(host=broker.host, port=broker.port, batch_wait_s=0.05,
                                          sweep_every_s=0.5), FleetStore(db))
        monitor.start()
        assert monitor.wait_connected(WAIT_S)
        store = FleetStore(db)
        store.add_user("li.wei", Role.OPERATOR, hash_password(PASSWORD), utc_now())
        load = FleetLoad(LoadOptions(terminals=8, port=broker.port, interval_s=1.0, sites=3,
                                     seed=5, faults={"paper_out": 1200.0},
                                     paper_back_s=(600.0, 900.0)))
        loop = asyncio.new_event_loop()
        fleet = threading.Thread(target=loop.run_until_complete, args=(load.run(),), daemon=True)
        fleet.start()
        port = free_port()
        log = (tmp_path / "serve.log").open("wb")
        serve = subprocess.Popen(
            [sys.executable, "-m", "fleet", "serve", "--db", str(db), "--broker",
             f"127.0.0.1:{broker.port}", "--port", str(port), "--tz", "Asia/Shanghai"],
            stdout=log, stderr=log, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
        base = f"http://127.0.0.1:{port}"

        def answering() -> bool:
            try:
                with urllib.request.urlopen(f"{base}/login", timeout=2) as answer:
                    return bool(answer.status == 200)
            except OSError:
                return False

        try:
            until(answering, "the dashboard to answer")
            until(lambda: len(store.terminals(utc_now())) == 8, "the fleet in the store")
            until(lambda: store.alerts(AlertState.OPEN), "an alert to acknowledge")
            yield base, load, store
        finally:
            serve.terminate()
            serve.wait(10)
            loop.call_soon_threadsafe(load.stop)
            fleet.join(WAIT_S)
            monitor.stop()


def test_an_operator_logs_in_filters_acknowledges_and_pings(
        live: tuple[str, FleetLoad, FleetStore]) -> None:
    base, load, store = live
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{base}/")
        assert "/login" in page.url  # nothing shown before logging in
        page.fill("input[name=username]", "li.wei")
        page.fill("input[name=password]", "wrong")
        page.locator("form:has(input[name=password]) button[type=submit]").click()
        assert "Wrong name or password" in page.content()
        page.fill("input[name=username]", "li.wei")
        page.fill("input[name=password]", PASSWORD)
        page.locator("form:has(input[name=password]) button[type=submit]").click()
        page.wait_for_url(f"{base}/")
        page.screenshot(path=str(SHOTS / "01-overview.png"), full_page=True)
        assert "8" in page.inner_text("main")

        page.goto(f"{base}/terminals")
        page.select_option("select[name=site]", "site-001")
        page.click("form.filters button[type=submit]")
        rows = page.locator("table.grid tbody tr")
        wanted = sorted(t.tid for t in load.terminals if t.site == "site-001")
        until(lambda: rows.count() == len(wanted), "the filtered list")
        assert sorted(rows.locator("th[scope=row]").all_inner_texts()) == wanted
        page.screenshot(path=str(SHOTS / "02-terminals-site-001.png"), full_page=True)

        page.goto(f"{base}/terminals/{load.terminals[0].tid}")
        page.screenshot(path=str(SHOTS / "03-terminal.png"), full_page=True)
        assert page.locator("svg").count() >= 1  # the day's chart

        page.goto(f"{base}/alerts")
        first = store.alerts(AlertState.OPEN)[-1]
        page.locator(f"form[action='/alerts/{first.id}/ack'] button").click()
        until(lambda: any(a.id == first.id and a.state is AlertState.ACKNOWLEDGED
                          for a in store.alerts()), "the acknowledgement in the store")
        page.screenshot(path=str(SHOTS / "04-alerts.png"), full_page=True)

        page.goto(f"{base}/commands")
        target = load.terminals[1].tid
        page.fill("input[name=tid]", target)
        page.select_option("select[name=name]", "ping")
        page.locator("form:has(select[name=name]) button[type=submit]").click()
        page.wait_for_load_state()

        def answered() -> bool:
            page.reload()
            return "succeeded" in page.inner_text("main")

        try:
            until(answered, "the terminal's final ack on the command's page")
        finally:
            page.screenshot(path=str(SHOTS / "05-command.png"), full_page=True)
        assert target in page.content()
        page.screenshot(path=str(SHOTS / "05-command.png"), full_page=True)
        browser.close()
