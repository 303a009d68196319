"""Shared set-up of the dashboard tests (no tests here): a store filled through FleetStore.apply
as the monitor would, accounts of both roles, and a logged-in TestClient."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from fleet_support import at, event, heartbeat, status
from starlette.testclient import TestClient

from fleet.accounts import Role, hash_password, new_token, token_digest
from fleet.ingest import Event, Heartbeat, Status
from fleet.store import FleetStore
from fleet.sweeper import sweep
from fleet.web.app import WebSettings, create_app

PASSWORD = "correct horse battery"
NOW = at(600)
CHINESE_SITE = "城关镇便民服务中心"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def fill(store: FleetStore) -> None:
    """Four terminals at two sites: 0001 online with paper near its end and a help call, 0002
    online and well, 0003 offline, 0004 stale; the alert rules swept at NOW."""
    store.apply([
        Status("kiosk-0001", status(True, 1, site=CHINESE_SITE), at(0)),
        Status("kiosk-0002", status(True, 1, site=CHINESE_SITE), at(0)),
        Status("kiosk-0003", status(True, 1, site="town-b"), at(0)),
        Status("kiosk-0004", status(True, 1, site="town-b"), at(0)),
        Heartbeat("kiosk-0001", heartbeat(1, sessions=3, printer="degraded",
                                          reason="paper_near_end"), at(590)),
        Heartbeat("kiosk-0002", heartbeat(1), at(595)),
        Heartbeat("kiosk-0004", heartbeat(1), at(1)),
        Status("kiosk-0003", status(False, 1, site="town-b"), at(10)),
        Event("kiosk-0001", event(1, "help_requested", "critical", help_id="help-1",
                                  screen="menu", elder_mode=True), at(500)),
        Event("kiosk-0001", event(2, "paper_low", "warning"), at(550)),
    ])
    sweep(store, NOW)


def accounts(store: FleetStore) -> dict[str, str]:
    """Users op (operator) and watcher (viewer) with PASSWORD; API tokens by role."""
    store.add_user("op", Role.OPERATOR, hash_password(PASSWORD), NOW)
    store.add_user("watcher", Role.VIEWER, hash_password(PASSWORD), NOW)
    tokens = {}
    for role in Role:
        tokens[str(role)] = new_token()
        store.add_token(f"script-{role}", role, token_digest(tokens[str(role)]), NOW)
    return tokens


def client(store: FleetStore, settings: WebSettings | None = None) -> TestClient:
    return TestClient(create_app(store, settings or WebSettings(clock=lambda: NOW)),
                      raise_server_exceptions=False)


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


def login(web: TestClient, name: str, password: str = PASSWORD) -> str:
    """Log in through the form; the CSRF token of the page logged in to."""
    token = csrf_of(web.get("/login").text)
    answer = web.post("/login", data={"username": name, "password": password, "csrf": token,
                                      "next": "/"})
    assert answer.status_code == 200 and answer.url.path == "/", answer.text
    return csrf_of(answer.text)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


StoreAt = Callable[[Path], FleetStore]
