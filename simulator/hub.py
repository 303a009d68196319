"""The simulated government service hub: the hub API of docs/hub-api.yaml served from SQLite.

It stands at the far end of the terminal's real HTTP adapter, so the adapter runs unchanged. It
answers for any valid ID number with synthetic records (see ``hub_records``) and keeps only what a
real platform must keep to check a printed proof: issued documents by verification code, a salted
hash of the holder's ID number (never the number), and the ratings. Faults are set on command.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import secrets
import socket
import sqlite3
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from flows.hub import RatingSubmission
from flows.identity import InvalidIdNumber, validate_id_number
from simulator.hub_records import ERRAND_TITLES, enrollment_fields, refusal_for
from simulator.json_body import BodyRefused, parse_json_object, read_body
from simulator.processes import StartsAndStops

log = logging.getLogger(__name__)

CHINA_STANDARD_TIME = dt.timezone(dt.timedelta(hours=8), "CST")

# "down" closes the listening socket, so the terminal sees connections refused, as it does when
# the hub's host or the village's uplink is gone. "error" answers 503, as a gateway in front of a
# dead back end does. "slow" does the work, then holds each answer for delay_s: the terminal gives
# up while the hub has already acted, which is what makes idempotent ratings matter.
FAULT_MODES = ("ok", "down", "slow", "error")

_MAX_REQUEST_BYTES = 64 * 1024
_REQUEST_IO_TIMEOUT_S = 10.0  # a client that stops mid-request must not hold a thread forever
_SHORT_TEXT = 64  # longest terminal id, case number or errand id the hub accepts
# Crockford's base32: no I, L, O or U, so a code read off paper is typed back without confusion.
_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# ID numbers have few possible values, so the hash is deliberately slow; the salt is per database.
_HOLDER_HASH_ROUNDS = 50_000


@dataclass(frozen=True)
class _Answer:
    status: int
    body: dict[str, Any]


class _HubStore:
    """The hub's SQLite file: issued documents, ratings, and the per-day case sequence."""

    def __init__(self, db_path: Path) -> None:
        # One connection shared by the request threads, serialised by a lock: the hub's load is a
        # few requests a minute, and one writer keeps SQLite free of "database is locked".
        self._db = sqlite3.connect(db_path, timeout=5.0, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock, self._db:
            self._db.executescript(
                """
                CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
                CREATE TABLE IF NOT EXISTS case_sequence (
                    day TEXT PRIMARY KEY, last INTEGER NOT NULL);
                CREATE TABLE IF NOT EXISTS documents (
                    verification_code TEXT PRIMARY KEY,
                    case_number TEXT NOT NULL UNIQUE,
                    errand_id TEXT NOT NULL,
                    title TEXT NOT NULL,
                    issued_at TEXT NOT NULL,
                    terminal_id TEXT NOT NULL,
                    holder_hash TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS ratings (
                    case_number TEXT PRIMARY KEY,
                    errand_id TEXT NOT NULL,
                    level INTEGER NOT NULL,
                    terminal_id TEXT NOT NULL,
                    rated_at TEXT NOT NULL);
                """
            )
            row = self._db.execute("SELECT value FROM meta WHERE key = 'holder_salt'").fetchone()
            if row is None:
                self._salt = secrets.token_bytes(16)
                self._db.execute(
                    "INSERT INTO meta (key, value) VALUES ('holder_salt', ?)", (self._salt,)
                )
            else:
                self._salt = bytes(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def holder_hash(self, id_number: str) -> str:
        digest = hashlib.pbkdf2_hmac(
            "sha256", id_number.encode("ascii"), self._salt, _HOLDER_HASH_ROUNDS
        )
        return digest.hex()

    def issue(
        self,
        *,
        errand_id: str,
        title: str,
        holder_hash: str,
        terminal_id: str,
        issued_at: dt.datetime,
    ) -> tuple[str, str]:
        """Record a new document; return its case number and verification code."""
        day = issued_at.strftime("%Y%m%d")
        with self._lock, self._db:
            row = self._db.execute(
                "INSERT INTO case_sequence (day, last) VALUES (?, 1)"
                " ON CONFLICT (day) DO UPDATE SET last = last + 1 RETURNING last",
                (day,),
            ).fetchone()
            case_number = f"SB{day}{int(row[0]):06d}"
            code = _new_verification_code()
            self._db.execute(
                "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)",
                (code, case_number, errand_id, title, issued_at.isoformat(), terminal_id,
                 holder_hash),
            )  # fmt: skip
        return case_number, code

    def document(self, code: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT errand_id, title, issued_at, terminal_id FROM documents"
                " WHERE verification_code = ?",
                (code,),
            ).fetchone()
        if row is None:
            return None
        return {"errand_id": row[0], "title": row[1], "issued_at": row[2], "terminal_id": row[3]}

    def case_errand(self, case_number: str) -> str | None:
        """The errand a case number was issued for, or None if this hub never issued it."""
        with self._lock:
            row = self._db.execute(
                "SELECT errand_id FROM documents WHERE case_number = ?", (case_number,)
            ).fetchone()
        return None if row is None else str(row[0])

    def add_rating(self, rating: RatingSubmission) -> bool:
        """Store a rating; False when this case was rated before (the first rating stands)."""
        with self._lock, self._db:
            cursor = self._db.execute(
                "INSERT INTO ratings VALUES (?, ?, ?, ?, ?) ON CONFLICT (case_number) DO NOTHING",
                (rating.case_number, rating.errand_id, rating.level, rating.terminal_id,
                 rating.rated_at.isoformat()),
            )  # fmt: skip
            return cursor.rowcount == 1

    def ratings(self) -> list[RatingSubmission]:
        with self._lock:
            rows = self._db.execute(
                # Rows are never deleted, so rowid order is the order of first receipt.
                "SELECT case_number, errand_id, level, terminal_id, rated_at FROM ratings"
                " ORDER BY rowid"
            ).fetchall()
        return [
            RatingSubmission(row[0], row[1], row[2], row[3], dt.datetime.fromisoformat(row[4]))
            for row in rows
        ]


def _new_verification_code() -> str:
    """Four groups of four Crockford base32 characters: 80 random bits, e.g. ``7K2D-QX9M-...``."""
    chars = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(16))
    return "-".join(chars[i : i + 4] for i in range(0, 16, 4))


class _RequestError(Exception):
    """A request the hub cannot read; carries the error answer, never the request's content."""

    def __init__(self, answer: _Answer) -> None:
        super().__init__(answer.body["error"])
        self.answer = answer


def _error(status: int, code: str, message: str) -> _Answer:
    return _Answer(status, {"error": code, "message": message})


def _short_text(body: dict[str, Any], key: str, error: _Answer) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= _SHORT_TEXT:
        raise _RequestError(error)
    return value


class SimHub(StartsAndStops):
    """The simulated hub: ``start()``, point the terminal at ``url``, ``stop()`` when done."""

    def __init__(
        self,
        *,
        db_path: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], dt.datetime] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """``clock`` gives issue times (default: now in UTC+8); ``tls`` serves HTTPS instead."""
        self._db_path = db_path
        self._host = host
        self._port = port
        self._clock = clock or (lambda: dt.datetime.now(CHINA_STANDARD_TIME))
        self._tls = tls
        # (mode, delay_s), replaced whole so request threads always read a consistent pair.
        self._fault: tuple[str, float] = ("ok", 0.0)
        self._stopping = threading.Event()
        self._control = threading.Lock()  # serialises start, stop and the listener going down/up
        self._store: _HubStore | None = None
        self._server: _HubHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"SimHub(port={self._port}, fault={self._fault[0]!r})"



    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234``; fixed from ``start()`` on, even while down."""
        if self._store is None:
            raise RuntimeError("SimHub is not started")
        scheme = "https" if self._tls else "http"
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{scheme}://{host}:{self._port}"

    def start(self) -> None:
        with self._control:
            if self._store is not None:
                raise RuntimeError("SimHub already started")
            store = _HubStore(self._db_path)
            try:
                self._store = store
                self._open_listener()
            except BaseException:
                self._store = None
                store.close()
                raise

    def stop(self) -> None:
        with self._control:
            self._stopping.set()  # wakes answers held back by "slow"
            self._close_listener()
            if self._store is not None:
                self._store.close()

    @property
    def fault(self) -> tuple[str, float]:
        """The fault mode now in force and its delay (``("ok", 0.0)`` when healthy)."""
        return self._fault

    def set_fault(self, mode: str, delay_s: float = 0.0) -> None:
        """Switch to ``ok``, ``down``, ``slow`` (answers held ``delay_s``) or ``error`` (503)."""
        if mode not in FAULT_MODES:
            raise ValueError(f"unknown fault mode {mode!r}; expected one of {FAULT_MODES}")
        if delay_s < 0:
            raise ValueError("delay_s must not be negative")
        with self._control:
            if self._store is None or self._stopping.is_set():
                raise RuntimeError("SimHub is not running")
            self._fault = (mode, delay_s)
            if mode == "down":
                self._close_listener()
            elif self._server is None:
                self._open_listener()
        log.info("sim hub fault set to %s (delay %.2f s)", mode, delay_s)

    def ratings(self) -> list[RatingSubmission]:
        """Every stored rating, in the order the hub first received them (while running)."""
        if self._store is None or self._stopping.is_set():
            raise RuntimeError("SimHub is not running")
        return self._store.ratings()

    # --- the listener ----------------------------------------------------------------------

    def _open_listener(self) -> None:
        # After the first start the port is the one clients know, so it is bound again exactly;
        # SO_REUSEADDR (set by HTTPServer) lets it come back while old connections sit in TIME_WAIT.
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        server = _HubHTTPServer(
            (self._host, self._port), answer=self._answer, tls=self._tls, family=family
        )
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="sim-hub", daemon=True
        )
        self._thread.start()

    def _close_listener(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5.0)

    # --- answering (called on the server's request threads) ---------------------------------

    def _answer(self, method: str, path: str, read_body: Callable[[], bytes]) -> _Answer:
        mode, delay_s = self._fault
        if mode == "error":
            return _error(503, "unavailable", "hub temporarily unavailable")
        try:
            answer = self._route(method, path, read_body)
        except Exception:
            # A bug here must still answer like a server would; the traceback names no request.
            log.exception("sim hub failed to answer")
            answer = _error(500, "internal", "simulated hub failed")
        if mode == "slow":
            self._stopping.wait(delay_s)
        return answer

    def _route(self, method: str, path: str, read_body: Callable[[], bytes]) -> _Answer:
        parts = [unquote(part) for part in urlsplit(path).path.strip("/").split("/")]
        try:
            match parts:
                case ["v1", "health"]:
                    _require(method, "GET")
                    return _Answer(200, {"status": "ok"})
                case ["v1", "errands", errand_id, "run"]:
                    _require(method, "POST")
                    return self._run_errand(errand_id, read_body)
                case ["v1", "documents", code]:
                    _require(method, "GET")
                    return self._verify_document(code)
                case ["v1", "ratings"]:
                    _require(method, "POST")
                    return self._submit_rating(read_body)
                case _:
                    return _error(404, "not_found", "no such endpoint")
        except _RequestError as bad:
            return bad.answer

    def _run_errand(self, errand_id: str, read_body: Callable[[], bytes]) -> _Answer:
        title = ERRAND_TITLES.get(errand_id)
        if title is None:
            return _error(404, "unknown_errand", "no such errand")
        body = _json_object(read_body())
        bad = _error(400, "bad_request", "id_number and terminal_id are required strings")
        terminal_id = _short_text(body, "terminal_id", bad)
        raw_id = body.get("id_number")
        if not isinstance(raw_id, str):
            raise _RequestError(bad)
        try:
            id_number = validate_id_number(raw_id)
        except InvalidIdNumber as invalid:
            # The reason (shape, birth_date, check_digit) helps staff; the number stays out.
            return _error(422, "invalid_id", f"ID number failed validation: {invalid.reason}")
        issued_at = self._clock().astimezone(CHINA_STANDARD_TIME).replace(microsecond=0)
        refusal = refusal_for(id_number, issued_at.date())
        if refusal is not None:
            return _error(409, refusal, f"errand refused: {refusal}")
        fields = enrollment_fields(id_number, issued_at.date())
        store = self._running_store()
        case_number, code = store.issue(
            errand_id=errand_id,
            title=title,
            holder_hash=store.holder_hash(id_number),
            terminal_id=terminal_id,
            issued_at=issued_at,
        )
        return _Answer(
            200,
            {
                "errand_id": errand_id,
                "title": title,
                "case_number": case_number,
                "verification_code": code,
                "verify_url": f"{self.url}/v1/documents/{code}",
                "issued_at": issued_at.isoformat(),
                "fields": [{"label": f.label, "value": f.value} for f in fields],
            },
        )

    def _verify_document(self, code: str) -> _Answer:
        document = self._running_store().document(code.strip().upper())
        if document is None:
            return _Answer(
                404, {"valid": False, "error": "unknown_document", "message": "no such document"}
            )
        return _Answer(200, {"valid": True, **document})

    def _submit_rating(self, read_body: Callable[[], bytes]) -> _Answer:
        body = _json_object(read_body())
        invalid = _error(422, "invalid_rating", "rating fields missing or out of range")
        level = body.get("level")
        # bool is an int in Python and JSON true must not pass as level 1.
        if type(level) is not int or not 1 <= level <= 5:
            raise _RequestError(invalid)
        rated_at_text = _short_text(body, "rated_at", invalid)
        try:
            rated_at = dt.datetime.fromisoformat(rated_at_text)
        except ValueError:
            raise _RequestError(invalid) from None
        if rated_at.tzinfo is None:
            raise _RequestError(invalid)
        rating = RatingSubmission(
            case_number=_short_text(body, "case_number", invalid),
            errand_id=_short_text(body, "errand_id", invalid),
            level=level,
            terminal_id=_short_text(body, "terminal_id", invalid),
            rated_at=rated_at,
        )
        store = self._running_store()
        # Only a case this hub issued can be rated, and only for its own errand.
        errand_id = store.case_errand(rating.case_number)
        if errand_id is None:
            raise _RequestError(_error(404, "unknown_case", "no case with this number"))
        if errand_id != rating.errand_id:
            raise _RequestError(_error(422, "invalid_rating", "errand_id is not this case's"))
        created = store.add_rating(rating)
        return _Answer(
            201 if created else 200,
            {"case_number": rating.case_number, "status": "created" if created else "duplicate"},
        )

    def _running_store(self) -> _HubStore:
        if self._store is None or self._stopping.is_set():
            raise _RequestError(_error(503, "unavailable", "hub shutting down"))
        return self._store


def _require(method: str, expected: str) -> None:
    if method != expected:
        raise _RequestError(_error(405, "method_not_allowed", f"use {expected}"))


# The hub API's error codes for a body it will not read (docs/hub-api.yaml).
_BODY_ERROR_CODES = {400: "bad_request", 408: "request_timeout", 411: "length_required",
                     413: "too_large"}  # fmt: skip


def _refused(refusal: BodyRefused) -> _RequestError:
    code = _BODY_ERROR_CODES.get(refusal.status, "bad_request")
    return _RequestError(_error(refusal.status, code, refusal.message))


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        return parse_json_object(raw, max_bytes=_MAX_REQUEST_BYTES)
    except BodyRefused as refusal:
        raise _refused(refusal) from None


# (method, path, read_body) -> answer; read_body is only called for requests that carry one.
_Answerer = Callable[[str, str, Callable[[], bytes]], _Answer]


class _HubHTTPServer(ThreadingHTTPServer):
    """One listening socket of the hub; daemon request threads, so held answers never block exit."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        *,
        answer: _Answerer,
        tls: ssl.SSLContext | None,
        family: socket.AddressFamily,
    ) -> None:
        self.address_family = family
        self.answer = answer
        self.tls = tls
        super().__init__(address, _HubRequestHandler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.tls is not None:
            # Handshake on the request thread (first read, under the handler's timeout), not here
            # on the accepting thread, where one silent client would stall every other.
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback to stderr; a client that gave up (the terminal's
        # timeout against "slow") is routine here. Log the kind only, never the request.
        log.debug("sim hub request ended abnormally")


class _HubRequestHandler(BaseHTTPRequestHandler):
    """Reads one request, asks the hub for the answer, writes it as JSON."""

    server: _HubHTTPServer
    server_version = "sim-hub/1"
    sys_version = ""
    timeout = _REQUEST_IO_TIMEOUT_S

    def log_message(self, format: str, *args: Any) -> None:
        # http.server logs every request line to stderr; paths are no business of any log.
        return

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        answer = self.server.answer(method, self.path, self._read_body)
        payload = json.dumps(answer.body, ensure_ascii=False).encode("utf-8")
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        if answer.status == 503:
            self.send_header("Retry-After", "30")
        self.end_headers()
        self.wfile.write(payload)

    def _read_body(self) -> bytes:
        try:
            return read_body(
                self.headers, self.rfile, max_bytes=_MAX_REQUEST_BYTES, required=True
            )
        except BodyRefused as refusal:
            # The rest of the body is unread: it must not be taken for a next request.
            self.close_connection = True
            raise _refused(refusal) from None


def main(argv: list[str] | None = None) -> None:
    """Run the simulated hub on its own: ``python -m simulator.hub --db var/hub.sqlite``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", type=Path, default=Path("var/sim-hub.sqlite"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8600)
    args = parser.parse_args(argv)
    args.db.parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO)
    hub = SimHub(db_path=args.db, host=args.host, port=args.port)
    hub.start()
    print(f"sim hub listening on {hub.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        hub.stop()


if __name__ == "__main__":
    main()
