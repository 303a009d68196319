"""The simulated government service hub: the hub API of docs/hub-api.yaml served from SQLite.

It stands at the far end of the terminal's real HTTP adapter, so the adapter runs unchanged. It
answers for any valid ID number with synthetic records (see ``hub_records``) and keeps only what a
real platform must keep: issued documents by verification code, ratings, cases with their scanned
pages (``hub_cases``), appointments (``hub_slots``) and 办不成事 reports (``hub_reports``), each
holder as a salted hash of the ID number (never the number), phones masked; and e-ID codes
(``hub_ecodes``), which hold their person only until they are used or expire. Its clock can be
moved on (``advance``), so cases progress in a test as they would over days. Faults are set on
command and apply to every endpoint.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from flows.hub import RatingSubmission
from simulator.hub_cases import CaseDesk, SimCase
from simulator.hub_db import HubDatabase
from simulator.hub_documents import DocumentDesk
from simulator.hub_ecodes import DEFAULT_CODE_TTL_S, ECodeDesk, SimCode
from simulator.hub_items import ApplicationItem, load_items
from simulator.hub_records import (
    ERRAND_TITLES,
    delivery_address,
    enrollment_fields,
    refusal_for,
)
from simulator.hub_reports import ReportDesk, SimReport
from simulator.hub_slots import AppointmentDesk, SimAppointment
from simulator.hub_wire import (
    CHINA_STANDARD_TIME,
    Answer,
    Request,
    RequestError,
    body_refused,
    error,
    id_number,
    refuse,
    require,
)
from simulator.json_body import BodyRefused, read_body
from simulator.processes import StartsAndStops

log = logging.getLogger(__name__)

__all__ = ["CHINA_STANDARD_TIME", "FAULT_MODES", "SimHub"]

# "down" closes the listening socket, so the terminal sees connections refused, as it does when
# the hub's host or the village's uplink is gone. "error" answers 503, as a gateway in front of a
# dead back end does. "slow" does the work, then holds each answer for delay_s: the terminal gives
# up while the hub has already acted, which is what makes idempotent ratings matter.
FAULT_MODES = ("ok", "down", "slow", "error")

_REQUEST_IO_TIMEOUT_S = 10.0  # a client that stops mid-request must not hold a thread forever
_SHORT_TEXT = 64  # longest terminal id, case number or errand id the hub accepts
_MAX_QUERY_FIELDS = 16


def _short_text(body: Mapping[str, Any], key: str, bad: Answer) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= _SHORT_TEXT:
        raise RequestError(bad)
    return value


@dataclass(frozen=True)
class _Desks:
    """What a running hub answers from; all over one database."""

    db: HubDatabase
    documents: DocumentDesk
    cases: CaseDesk
    appointments: AppointmentDesk
    reports: ReportDesk
    e_codes: ECodeDesk

    def close(self) -> None:
        self.db.close()


class SimHub(StartsAndStops):
    """The simulated hub: ``start()``, point the terminal at ``url``, ``stop()`` when done.

    Control hooks for tests and the control panel (plain methods, not part of the hub API):
    ``set_fault``; the clock: ``now``, ``advance``; cases: ``cases``, ``supply_materials``,
    ``reject_case``; appointments: ``fill_slot``, ``appointments``; ``reports``; ``ratings``;
    e-ID codes: ``issue_code``, ``codes``.
    """

    def __init__(
        self,
        *,
        db_path: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], dt.datetime] | None = None,
        tls: ssl.SSLContext | None = None,
        items: Mapping[str, ApplicationItem] | None = None,
    ) -> None:
        """``clock`` gives the hub's time before ``advance`` (default: now in UTC+8); ``tls``
        serves HTTPS instead; ``items``: the application items (default: the terminal's shipped
        catalogue's). Scanned pages are kept beside the database, in ``<db stem>-pages/``."""
        self._db_path = db_path
        self._host = host
        self._port = port
        self._clock = clock or (lambda: dt.datetime.now(CHINA_STANDARD_TIME))
        self._offset = dt.timedelta(0)
        self._tls = tls
        self._items = items
        # (mode, delay_s), replaced whole so request threads always read a consistent pair.
        self._fault: tuple[str, float] = ("ok", 0.0)
        self._stopping = threading.Event()
        self._control = threading.Lock()  # serialises start, stop and the listener going down/up
        self._time_lock = threading.Lock()
        self._desks: _Desks | None = None
        self._server: _HubHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"SimHub(port={self._port}, fault={self._fault[0]!r})"

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234``; fixed from ``start()`` on, even while down."""
        if self._desks is None:
            raise RuntimeError("SimHub is not started")
        scheme = "https" if self._tls else "http"
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{scheme}://{host}:{self._port}"

    def start(self) -> None:
        with self._control:
            if self._desks is not None:
                raise RuntimeError("SimHub already started")
            items = self._items if self._items is not None else load_items()
            db = HubDatabase(self._db_path)
            try:
                pages_dir = self._db_path.with_name(self._db_path.stem + "-pages")
                self._desks = _Desks(
                    db=db,
                    documents=DocumentDesk(db),
                    cases=CaseDesk(db, items=items, now=self.now, pages_dir=pages_dir),
                    appointments=AppointmentDesk(db, now=self.now),
                    reports=ReportDesk(db, now=self.now),
                    e_codes=ECodeDesk(db, now=self.now),
                )
                self._open_listener()
            except BaseException:
                self._desks = None
                db.close()
                raise

    def stop(self) -> None:
        with self._control:
            self._stopping.set()  # wakes answers held back by "slow"
            self._close_listener()
            if self._desks is not None:
                self._desks.close()

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
            if self._desks is None or self._stopping.is_set():
                raise RuntimeError("SimHub is not running")
            self._fault = (mode, delay_s)
            if mode == "down":
                self._close_listener()
            elif self._server is None:
                self._open_listener()
        log.info("sim hub fault set to %s (delay %.2f s)", mode, delay_s)

    # --- the clock ---------------------------------------------------------------------------

    def now(self) -> dt.datetime:
        """The hub's time, in UTC+8: the clock given at construction plus every ``advance``."""
        with self._time_lock:
            offset = self._offset
        return (self._clock() + offset).astimezone(CHINA_STANDARD_TIME)

    def advance(self, seconds: float) -> None:
        """Move the hub's clock on (cases progress, slots pass, days turn); never back."""
        if not seconds >= 0:
            raise ValueError("the hub's clock only moves forward")
        with self._time_lock:
            self._offset += dt.timedelta(seconds=seconds)

    # --- control hooks -------------------------------------------------------------------------

    def ratings(self) -> list[RatingSubmission]:
        """Every stored rating, in the order the hub first received them (while running)."""
        return self._running().documents.ratings()

    def cases(self) -> list[SimCase]:
        """Every submitted case with its status now, its materials and stored pages."""
        return self._running().cases.cases()

    def supply_materials(self, case_number: str) -> None:
        """The deferred materials of a case arrived: its review starts (KeyError: no such case)."""
        self._running().cases.supply_materials(case_number)

    def reject_case(self, case_number: str) -> None:
        """Make a case end ``rejected`` when it is decided (KeyError if no such case)."""
        self._running().cases.reject_case(case_number)

    def fill_slot(
        self, service_id: str, site_id: str, day: dt.date, start: dt.time, *, leave: int = 0
    ) -> None:
        """Others book a period until ``leave`` places are free (0: the period is full)."""
        self._running().appointments.fill_slot(service_id, site_id, day, start, leave=leave)

    def appointments(self) -> list[SimAppointment]:
        """Every appointment booked here, cancelled ones included."""
        return self._running().appointments.appointments()

    def reports(self) -> list[SimReport]:
        """Every 办不成事 report, in the order first received."""
        return self._running().reports.reports()

    def issue_code(self, id_number: str, name: str, *, ttl_s: float = DEFAULT_CODE_TTL_S) -> str:
        """A new e-ID code for this person, as their phone would show it (the control panel's
        ``POST /api/ecode/issue``): it resolves once within ``ttl_s`` seconds of the hub's clock.

        ValueError, naming the field but never its value, for an ID number that fails GB 11643
        (shape, birth date or check digit), an empty or over-long name, or ``ttl_s`` not in
        (0, 86400]. RuntimeError while the hub is not running.
        """
        code = self._running().e_codes.issue(id_number, name, ttl_s=ttl_s)
        log.info("sim hub issued an e-ID code, valid %.0f s", ttl_s)
        return code

    def codes(self) -> list[SimCode]:
        """Every e-ID code issued (never the code itself), in the order issued."""
        return self._running().e_codes.codes()

    def _running(self) -> _Desks:
        desks = self._desks
        if desks is None or self._stopping.is_set():
            raise RuntimeError("SimHub is not running")
        return desks

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

    def _answer(self, request: Request) -> Answer:
        mode, delay_s = self._fault
        if mode == "error":
            return error(503, "unavailable", "hub temporarily unavailable")
        try:
            answer = self._route(request)
        except RequestError as refused:
            answer = refused.answer
        except Exception:
            # A bug here must still answer like a server would; the traceback names no request.
            log.exception("sim hub failed to answer")
            answer = error(500, "internal", "simulated hub failed")
        if mode == "slow":
            self._stopping.wait(delay_s)
        return answer

    def _route(self, request: Request) -> Answer:
        method = request.method
        match request.segments:
            case ("v1", "health"):
                require(method, "GET")
                return Answer(200, {"status": "ok"})
            case ("v1", "errands", errand_id, "run"):
                require(method, "POST")
                return self._run_errand(errand_id, request)
            case ("v1", "documents", code):
                require(method, "GET")
                return self._verify_document(code)
            case ("v1", "ratings"):
                require(method, "POST")
                return self._submit_rating(request)
            case ("v1", "residents", "address"):
                require(method, "POST")
                return self._delivery_address(request)
            case ("v1", "cases"):
                require(method, "POST")
                return self._desk().cases.submit(request)
            case ("v1", "cases", case_ref):
                require(method, "GET")
                return self._desk().cases.progress(case_ref)
            case ("v1", "residents", "cases"):
                require(method, "POST")
                return self._desk().cases.of_resident(request)
            case ("v1", "slots"):
                require(method, "GET")
                return self._desk().appointments.slots(request)
            case ("v1", "appointments"):
                require(method, "POST")
                return self._desk().appointments.book(request)
            case ("v1", "appointments", appointment_id, "cancel"):
                require(method, "POST")
                return self._desk().appointments.cancel(appointment_id, request)
            case ("v1", "residents", "appointments"):
                require(method, "POST")
                return self._desk().appointments.of_resident(request)
            case ("v1", "reports"):
                require(method, "POST")
                return self._desk().reports.file(request)
            case ("v1", "identity", "codes", "resolve"):
                require(method, "POST")
                return self._desk().e_codes.resolve(request)
            case _:
                return error(404, "not_found", "no such endpoint")

    def _desk(self) -> _Desks:
        desks = self._desks
        if desks is None or self._stopping.is_set():
            raise refuse(503, "unavailable", "hub shutting down")
        return desks

    def _run_errand(self, errand_id: str, request: Request) -> Answer:
        title = ERRAND_TITLES.get(errand_id)
        if title is None:
            return error(404, "unknown_errand", "no such errand")
        body = request.json()
        bad = error(400, "bad_request", "id_number and terminal_id are required strings")
        terminal_id = _short_text(body, "terminal_id", bad)
        person = id_number(body, bad)
        issued_at = self.now().replace(microsecond=0)
        refusal = refusal_for(person, issued_at.date())
        if refusal is not None:
            return error(409, refusal, f"errand refused: {refusal}")
        fields = enrollment_fields(person, issued_at.date())
        desks = self._desk()
        case_number, code = desks.documents.issue(
            errand_id=errand_id,
            title=title,
            holder_hash=desks.db.holder_hash(person),
            terminal_id=terminal_id,
            issued_at=issued_at,
        )
        return Answer(
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

    def _verify_document(self, code: str) -> Answer:
        document = self._desk().documents.document(code.strip().upper())
        if document is None:
            return Answer(
                404, {"valid": False, "error": "unknown_document", "message": "no such document"}
            )
        return Answer(200, {"valid": True, **document})

    def _submit_rating(self, request: Request) -> Answer:
        body = request.json()
        invalid = error(422, "invalid_rating", "rating fields missing or out of range")
        level = body.get("level")
        # bool is an int in Python and JSON true must not pass as level 1.
        if type(level) is not int or not 1 <= level <= 5:
            raise RequestError(invalid)
        rated_at_text = _short_text(body, "rated_at", invalid)
        try:
            rated_at = dt.datetime.fromisoformat(rated_at_text)
        except ValueError:
            raise RequestError(invalid) from None
        if rated_at.tzinfo is None:
            raise RequestError(invalid)
        rating = RatingSubmission(
            case_number=_short_text(body, "case_number", invalid),
            errand_id=_short_text(body, "errand_id", invalid),
            level=level,
            terminal_id=_short_text(body, "terminal_id", invalid),
            rated_at=rated_at,
        )
        desks = self._desk()
        # Only a case this hub issued or received can be rated, and only for its own errand
        # (for an application, its item).
        errand_id = desks.documents.case_errand(rating.case_number)
        if errand_id is None:
            errand_id = desks.cases.item_of(rating.case_number)
        if errand_id is None:
            raise refuse(404, "unknown_case", "no case with this number")
        if errand_id != rating.errand_id:
            raise refuse(422, "invalid_rating", "errand_id is not this case's")
        created = desks.documents.add_rating(rating)
        return Answer(
            201 if created else 200,
            {"case_number": rating.case_number, "status": "created" if created else "duplicate"},
        )

    def _delivery_address(self, request: Request) -> Answer:
        body = request.json()
        person = id_number(body, error(400, "bad_request", "id_number is required"))
        return Answer(200, {"address": delivery_address(person)})


# request -> answer; the desks call ``request.read_body`` only where a body belongs.
_Answerer = Callable[[Request], Answer]


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

    def __getattr__(self, name: str) -> Callable[[], None]:
        # http.server looks up do_<METHOD> and answers its HTML 501 page where none exists; every
        # endpoint takes one method, so any other (PUT, TRACE, QUERY...) gets the JSON 405.
        if name.startswith("do_"):
            return lambda: self._handle(name[3:])
        raise AttributeError(name)

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        try:
            query = parse_qs(
                parts.query, keep_blank_values=True, max_num_fields=_MAX_QUERY_FIELDS
            )
        except ValueError:  # more fields than the cap: no endpoint takes that many
            query = {}
        self._body_read = False
        request = Request(
            method=method,
            segments=tuple(unquote(part) for part in parts.path.strip("/").split("/")),
            query={name: tuple(values) for name, values in query.items()},
            content_type=self.headers.get("Content-Type", ""),
            read_body=self._read_body,
        )
        answer = self.server.answer(request)
        if not self._body_read and (
            self.headers.get("Content-Length", "0").strip() not in {"", "0"}
            or self.headers.get("Transfer-Encoding") is not None
        ):
            # A body nobody read (a refusal before it, the "error" fault) must not be taken
            # for the next request on this connection.
            self.close_connection = True
        payload = json.dumps(answer.body, ensure_ascii=False).encode("utf-8")
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        if answer.status == 503:
            self.send_header("Retry-After", "30")
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if method != "HEAD":  # an answer to HEAD has the headers of one to GET, and no body
            self.wfile.write(payload)

    def _read_body(self, max_bytes: int) -> bytes:
        self._body_read = True
        try:
            return read_body(self.headers, self.rfile, max_bytes=max_bytes, required=True)
        except BodyRefused as refusal:
            # The rest of the body is unread: it must not be taken for a next request.
            self.close_connection = True
            raise body_refused(refusal) from None


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
