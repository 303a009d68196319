"""The dashboard's application: the store behind a lock, who is asking, errors, and the routes.

Starlette, served by uvicorn (``kiosk-fleet serve``). Handlers are async; every store call and
every command send runs on a worker thread (``Dashboard.db``, ``Dashboard.send``) so a slow
disk or broker never stalls the pages of other operators. The store's one SQLite connection is
used by one thread at a time, under ``Dashboard``'s lock; the monitor writes through its own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts.mqtt import utc_now
from fleet.accounts import Principal, token_digest
from fleet.availability import OpeningHours, by_site, day_availability, day_window
from fleet.commands import Command
from fleet.store import AlertState, FleetStore
from fleet.web.dispatch import Broker, Dispatcher
from fleet.web.metrics import FleetFigures, fleet_registry

log = logging.getLogger(__name__)

T = TypeVar("T")

HERE = Path(__file__).parent
SESSION_COOKIE = "kiosk_fleet_session"
SESSION_HOURS = 12.0  # one shift and a bit; then log in again
REFRESH_S = 20  # list pages reload themselves this often (unless a form is being filled in)
MAX_BODY_BYTES = 64 * 1024  # a command's args and a form: far below this
LOGIN_FAILURES_MAX = 5  # per account name within LOGIN_WINDOW_S, then refused until it passes
LOGIN_WINDOW_S = 300.0

_SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"
     b" form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]


@dataclass(frozen=True)
class WebSettings:
    broker: Broker | None = None
    secure_cookies: bool = False  # behind TLS: cookies only over HTTPS
    private_metrics: bool = False  # /metrics wants a token too
    display_tz: dt.tzinfo | None = None  # None: this machine's zone
    clock: Callable[[], dt.datetime] = utc_now
    opening_hours: OpeningHours = field(default_factory=OpeningHours)  # for availability


class ApiProblem(Exception):
    """An answer other than success, with a message for whoever asked (never internal detail)."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


@dataclass
class LoginThrottle:
    """Failed logins per account name; past the limit, refused until the window passes."""

    failures: dict[str, list[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def blocked(self, name: str, now: float) -> bool:
        with self._lock:
            recent = [t for t in self.failures.get(name, []) if now - t < LOGIN_WINDOW_S]
            self.failures[name] = recent
            return len(recent) >= LOGIN_FAILURES_MAX

    def failed(self, name: str, now: float) -> None:
        with self._lock:
            self.failures.setdefault(name, []).append(now)
            if len(self.failures) > 10_000:  # a spray of made-up names must not grow forever
                self.failures = {k: v for k, v in self.failures.items()
                                 if v and now - v[-1] < LOGIN_WINDOW_S}

    def succeeded(self, name: str) -> None:
        with self._lock:
            self.failures.pop(name, None)


class Dashboard:
    """What every handler reaches through ``request.app.state.dashboard``."""

    def __init__(self, store: FleetStore, settings: WebSettings) -> None:
        self.store = store
        self.settings = settings
        self.dispatcher = Dispatcher(settings.broker)
        self.throttle = LoginThrottle()
        self._lock = threading.Lock()
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                                 autoescape=True, undefined=jinja2.StrictUndefined)
        # Arguments such as a staff name in Chinese are shown as written, not as \u escapes.
        env.policies["json.dumps_kwargs"] = {"sort_keys": True, "ensure_ascii": False}
        self.templates = Jinja2Templates(env=env)
        self.registry = fleet_registry(self._figures)

    def _figures(self) -> FleetFigures:
        """What /metrics reports; called by the registry's collector inside ``db``."""
        messages, rejected = self.store.message_totals()
        return FleetFigures(self.store.terminals(self.now()), self.store.alerts(AlertState.OPEN),
                            messages, rejected)

    def now(self) -> dt.datetime:
        return self.settings.clock()

    async def db(self, read: Callable[[FleetStore], T]) -> T:
        """Run ``read`` with the store on a worker thread, one at a time."""
        def locked() -> T:
            with self._lock:
                return read(self.store)
        return await anyio.to_thread.run_sync(locked)

    async def send(self, command: Command) -> None:
        """Publish a command (BrokerDown if no broker takes it) and record it in the store."""
        def record(sent: Command) -> None:
            with self._lock:
                self.store.record_command(sent.request_id, sent.tid, sent.payload)
        await anyio.to_thread.run_sync(self.dispatcher.send, command, record)

    # --- who is asking -------------------------------------------------------------------------

    async def token_principal(self, request: Request) -> Principal | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        digest = token_digest(token.strip())
        found = await self.db(lambda s: s.token(digest))
        return None if found is None else Principal(found.name, found.role, via_token=True)

    async def api_principal(self, request: Request) -> Principal:
        """The token's owner; ApiProblem 401 without a valid one."""
        principal = await self.token_principal(request)
        if principal is None:
            raise ApiProblem(401, "a valid API token is needed: Authorization: Bearer TOKEN")
        return principal

    async def session_principal(self, request: Request) -> Principal | None:
        sid = request.session.get("sid")
        if not isinstance(sid, str):
            return None
        digest = session_digest(sid)
        now = self.now()
        found = await self.db(lambda s: s.session_user(digest, now))
        return None if found is None else Principal(found.name, found.role)


def session_digest(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use); every form carries it."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def csrf_ok(request: Request, sent: object) -> bool:
    expected = request.session.get("csrf")
    return (isinstance(expected, str) and isinstance(sent, str)
            and secrets.compare_digest(expected.encode(), sent.encode()))


def dashboard(request: Request) -> Dashboard:
    found: Dashboard = request.app.state.dashboard
    return found


# --- errors ----------------------------------------------------------------------------------


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


async def _problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiProblem)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse({"error": exc.message, **exc.extra}, status_code=exc.status,
                        headers=headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {404: "not found", 405: "method not allowed"}.get(exc.status_code,
                                                                 str(exc.detail))
    if _is_api(request) or request.url.path == "/metrics":
        return JSONResponse({"error": message}, status_code=exc.status_code,
                            headers=exc.headers)
    return error_page(request, exc.status_code, message)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("error answering %s %s", request.method, request.url.path)
    if _is_api(request):
        return JSONResponse({"error": "internal error (logged on the server)"}, status_code=500)
    return HTMLResponse("<!doctype html><title>Error</title><p>Something went wrong on the"
                        " server; it is logged. Reload the page.</p>", status_code=500)


def error_page(request: Request, status: int, message: str) -> Response:
    return render(request, None, "error.html", {"status": status, "message": message},
                  status=status)


def render(request: Request, user: Principal | None, name: str, context: dict[str, Any], *,
           status: int = 200, refresh: bool = False) -> Response:
    dash = dashboard(request)
    tz = tz_of(dash)
    now = dash.now()

    def when(moment: dt.datetime | None) -> str:
        return "never" if moment is None else f"{moment.astimezone(tz):%Y-%m-%d %H:%M:%S}"

    def ago(moment: dt.datetime | None) -> str:
        if moment is None:
            return "never"
        seconds = int((now - moment).total_seconds())
        if seconds < 0:
            return "just now"
        for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
            if seconds >= size:
                return f"{seconds // size} {unit} ago"
        return f"{seconds} s ago"

    flash = request.session.pop("flash", None)
    return dash.templates.TemplateResponse(request, name, {
        "user": user, "csrf": csrf_token(request), "flash": flash, "when": when, "ago": ago,
        "tz": tz, "tz_name": dt.datetime.now(tz).tzname() or "", "refresh": refresh,
        "refresh_s": REFRESH_S, "section": name.removesuffix(".html"), **context,
    }, status_code=status)


def availability_on(dash: Dashboard, store: FleetStore, day: dt.date
                    ) -> tuple[dict[str, float | None], dict[str, float]]:
    """Per terminal and per site, the share of ``day``'s opening hours it could serve (call
    inside ``Dashboard.db``)."""
    zone, now = tz_of(dash), dash.now()
    since, until = day_window(day, zone)
    views = store.terminals(now)
    shares = day_availability(store.serving_buckets(since, until), [v.tid for v in views], day,
                              zone=zone, hours=dash.settings.opening_hours, now=now)
    return shares, by_site(shares, {v.tid: v.site for v in views})


def tz_of(dash: Dashboard) -> dt.tzinfo:
    if dash.settings.display_tz is not None:
        return dash.settings.display_tz
    local = dt.datetime.now().astimezone().tzinfo
    return local or dt.UTC


# --- the middleware --------------------------------------------------------------------------


class Guard:
    """Security headers on every answer, and bodies over MAX_BODY_BYTES refused (413) before a
    handler reads them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
            await JSONResponse({"error": f"the body is over {MAX_BODY_BYTES} bytes"},
                               status_code=413)(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > MAX_BODY_BYTES:
                    raise HTTPException(413, f"the body is over {MAX_BODY_BYTES} bytes")
            return message

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *[h for h in _SECURITY_HEADERS if h[0] not in names]]
            await send(message)

        await self.app(scope, limited, secured)


def create_app(store: FleetStore, settings: WebSettings | None = None) -> Starlette:
    """The dashboard over ``store`` (which it uses from its worker threads, one at a time)."""
    from fleet.web import api, pages  # noqa: PLC0415 (they import this module's helpers)

    settings = settings or WebSettings()
    dash = Dashboard(store, settings)
    routes = [
        Route("/api/terminals", api.terminals),
        Route("/api/terminals/{tid}", api.terminal),
        Route("/api/terminals/{tid}/commands", api.send_command, methods=["POST"]),
        Route("/api/commands/{request_id}", api.command),
        Route("/api/alerts", api.alerts),
        Route("/api/alerts/{alert_id:int}/ack", api.ack_alert, methods=["POST"]),
        Route("/api/help", api.help_calls),
        Route("/api/help/{help_id}/ack", api.ack_help, methods=["POST"]),
        Route("/api/availability", api.availability),
        Route("/metrics", api.metrics),
        Route("/", pages.overview),
        Route("/login", pages.login, methods=["GET", "POST"]),
        Route("/logout", pages.logout, methods=["POST"]),
        Route("/terminals", pages.terminal_list),
        Route("/terminals/{tid}", pages.terminal_page),
        Route("/alerts", pages.alerts_page),
        Route("/alerts/{alert_id:int}/ack", pages.ack_alert, methods=["POST"]),
        Route("/help", pages.help_page),
        Route("/help/{tid}/{help_id}/ack", pages.ack_help, methods=["POST"]),
        Route("/commands", pages.commands_page, methods=["GET", "POST"]),
        Route("/commands/{request_id}", pages.command_page),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    secret = store.web_secret("session-cookie")
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(Guard),
            Middleware(SessionMiddleware, secret_key=secret, session_cookie=SESSION_COOKIE,
                       max_age=int(SESSION_HOURS * 3600), same_site="strict",
                       https_only=settings.secure_cookies),
        ],
        exception_handlers={ApiProblem: _problem, HTTPException: _http_error,
                            Exception: _server_error},
    )
    app.state.dashboard = dash
    return app
