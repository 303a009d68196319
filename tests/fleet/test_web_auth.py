"""Who may use the dashboard: logging in and out, a wrong password, the viewer and operator
roles, the CSRF token on every form, the session cookie's flags, API tokens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from test_web_support import PASSWORD, accounts, bearer, client, csrf_of, fill, login

from fleet.accounts import hash_password, token_digest, verify_password
from fleet.cli import main
from fleet.store import AlertState, FleetStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FleetStore]:
    store = FleetStore(tmp_path / "fleet.db")
    fill(store)
    yield store
    store.close()


@pytest.fixture
def tokens(store: FleetStore) -> dict[str, str]:
    return accounts(store)


@pytest.fixture
def web(store: FleetStore, tokens: dict[str, str]) -> Iterator[TestClient]:
    with client(store) as web:
        yield web


def test_passwords_are_salted_scrypt_and_checked(tmp_path: Path) -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first != second and first.startswith("scrypt$") and PASSWORD not in first
    assert verify_password(PASSWORD, first) and not verify_password("wrong password", first)
    assert not verify_password(PASSWORD, None)  # no such account: False, after as long


def test_a_page_asks_to_log_in_and_comes_back_after(web: TestClient) -> None:
    answer = web.get("/alerts", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/alerts"
    token = csrf_of(web.get(answer.headers["location"]).text)
    after = web.post("/login", data={"username": "op", "password": PASSWORD, "csrf": token,
                                     "next": "/alerts"}, follow_redirects=False)
    assert after.status_code == 303 and after.headers["location"] == "/alerts"
    cookie = after.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert web.get("/alerts").status_code == 200


def test_a_wrong_password_or_name_does_not_log_in(web: TestClient) -> None:
    for name, password in (("op", "not the password"), ("nobody", PASSWORD)):
        token = csrf_of(web.get("/login").text)
        answer = web.post("/login", data={"username": name, "password": password,
                                          "csrf": token})
        assert answer.status_code == 401
        assert "Wrong name or password." in answer.text
    assert web.get("/", follow_redirects=False).status_code == 303


def test_repeated_failures_are_throttled(web: TestClient) -> None:
    token = csrf_of(web.get("/login").text)
    codes = [web.post("/login", data={"username": "op", "password": "guess", "csrf": token})
             .status_code for _ in range(6)]
    assert codes == [401] * 5 + [429]
    right = web.post("/login", data={"username": "op", "password": PASSWORD, "csrf": token})
    assert right.status_code == 429  # even the right password waits out the window


def test_logout_ends_the_session_on_the_server(web: TestClient) -> None:
    token = login(web, "op")
    stolen = dict(web.cookies)
    answer = web.post("/logout", data={"csrf": token})
    assert answer.url.path == "/login" and "You are logged out." in answer.text
    assert web.get("/", follow_redirects=False).status_code == 303
    web.cookies.clear()
    web.cookies.update(stolen)  # the old cookie, replayed: the server forgot its session
    assert web.get("/", follow_redirects=False).status_code == 303


def test_login_and_every_form_need_the_csrf_token(web: TestClient, store: FleetStore) -> None:
    web.get("/login")
    assert web.post("/login", data={"username": "op", "password": PASSWORD}).status_code == 403
    token = login(web, "op")
    [alert, *_] = store.alerts(AlertState.OPEN)
    assert web.post(f"/alerts/{alert.id}/ack", data={}).status_code == 403
    assert web.post(f"/alerts/{alert.id}/ack", data={"csrf": token + "x"}).status_code == 403
    assert web.post("/commands", data={"tid": "kiosk-0001", "name": "ping"}).status_code == 403
    assert store.alerts(AlertState.ACKNOWLEDGED) == []
    assert web.post(f"/alerts/{alert.id}/ack", data={"csrf": token}).status_code == 200
    assert [a.id for a in store.alerts(AlertState.ACKNOWLEDGED)] == [alert.id]


def test_a_viewer_sees_everything_and_changes_nothing(web: TestClient,
                                                      store: FleetStore) -> None:
    token = login(web, "watcher")
    for path in ("/", "/terminals", "/terminals/kiosk-0001", "/alerts", "/help", "/commands"):
        assert web.get(path).status_code == 200, path
    alerts = web.get("/alerts").text
    assert "Acknowledge" not in alerts and "Your account is a viewer" in web.get(
        "/commands").text
    [alert, *_] = store.alerts(AlertState.OPEN)
    refused = web.post(f"/alerts/{alert.id}/ack", data={"csrf": token})
    assert refused.status_code == 403 and "viewer" in refused.text
    assert web.post("/help/kiosk-0001/help-1/ack", data={
        "csrf": token, "staff": "Li", "minutes": "5"}).status_code == 403
    assert store.alerts(AlertState.ACKNOWLEDGED) == []


def test_the_api_wants_a_token_and_a_viewer_token_only_reads(
        web: TestClient, store: FleetStore, tokens: dict[str, str]) -> None:
    missing = web.get("/api/terminals")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert "error" in missing.json()
    assert web.get("/api/terminals", headers=bearer("kft_made-up")).status_code == 401
    assert web.get("/api/terminals", headers={"Authorization": "Basic b3A6b3A="}
                   ).status_code == 401
    login(web, "op")  # a page session is no API credential
    assert web.get("/api/alerts").status_code == 401
    assert web.get("/api/terminals", headers=bearer(tokens["viewer"])).status_code == 200
    [alert, *_] = store.alerts(AlertState.OPEN)
    for path, body in ((f"/api/alerts/{alert.id}/ack", None),
                       ("/api/terminals/kiosk-0001/commands", {"name": "ping"}),
                       ("/api/help/help-1/ack", {"staff": "Li", "minutes": 5})):
        refused = web.post(path, json=body, headers=bearer(tokens["viewer"]))
        assert refused.status_code == 403, path
        assert refused.json()["error"]
    assert store.alerts(AlertState.ACKNOWLEDGED) == []


def test_the_cli_adds_users_and_tokens_keeping_no_secret(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "cli.db"
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n", encoding="utf-8")
    assert main(["user", "add", "li.wei", "--role", "operator", "--password-file", str(secret),
                 "--db", str(db)]) == 0
    assert main(["user", "add", "li.wei", "--role", "viewer", "--password-file", str(secret),
                 "--db", str(db)]) == 2  # taken
    secret.write_text("short\n", encoding="utf-8")
    assert main(["user", "add", "zhang", "--role", "viewer", "--password-file", str(secret),
                 "--db", str(db)]) == 2
    capsys.readouterr()
    assert main(["token", "add", "nightly", "--role", "viewer", "--db", str(db)]) == 0
    token = capsys.readouterr().out.strip()
    store = FleetStore(db)
    try:
        user = store.user("li.wei")
        assert user is not None and verify_password(PASSWORD, user.password_hash)
        assert store.user("zhang") is None
        found = store.token(token_digest(token))
        assert found is not None and (found.name, str(found.role)) == ("nightly", "viewer")
    finally:
        store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("cli.db*"))
    assert PASSWORD.encode() not in raw and token.encode() not in raw
