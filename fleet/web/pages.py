"""The dashboard's pages: server-rendered, one template each (fleet/web/templates/), plain forms.

Every page needs a logged-in operator; every form carries the session's CSRF token, checked on
every POST before anything else, and only the operator role may act (acknowledge, send). A POST
that worked redirects (303) to a page that says so; one that did not shows the form again with
the reason.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode

import anyio.to_thread
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from fleet.accounts import Principal, verify_password
from fleet.availability import availability, day_window
from fleet.commands import DEFAULT_TTL_S, KNOWN_COMMANDS
from fleet.liveness import Liveness
from fleet.store import AlertState, FleetStore
from fleet.web.api import RECENT_EVENTS, answer_help
from fleet.web.app import (
    SESSION_HOURS,
    Dashboard,
    availability_on,
    csrf_ok,
    csrf_token,
    dashboard,
    error_page,
    new_session_id,
    render,
    session_digest,
    tz_of,
)
from fleet.web.chart import activity_chart
from fleet.web.dispatch import BadCommand, BrokerDown, check_minutes, check_staff
from fleet.web.views import (
    ACTIVE_ALERT_STATES,
    HELP_SHOWN_FOR,
    HelpCall,
    HelpState,
    alerts_by_terminal,
    filter_terminals,
    help_calls,
    liveness_counts,
    site_summaries,
)

log = logging.getLogger(__name__)

HELP_MINUTES_DEFAULT = 10
RECENT_COMMANDS = 30

Handler = Callable[[Request, Principal, FormData | None], Awaitable[Response]]


def _safe_next(target: str | None) -> str:
    """Only a path on this dashboard (never //elsewhere or a full URL) to go to after login."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _redirect(path: str) -> Response:
    return RedirectResponse(path, status_code=303)


def _flash(request: Request, kind: str, text: str) -> None:
    request.session["flash"] = {"kind": kind, "text": text}


def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A page for logged-in users; a POST also needs the CSRF token and the operator role."""
    async def guarded(request: Request) -> Response:
        dash = dashboard(request)
        user = await dash.session_principal(request)
        if user is None:
            wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return _redirect(f"/login?next={quote(wanted)}")
        if request.method != "POST":
            return await handler(request, user, None)
        form = await request.form()
        if not csrf_ok(request, form.get("csrf")):
            return error_page(request, 403, "This form has expired or did not come from this "
                                             "dashboard. Go back, reload the page and try again.")
        if not user.role.may_act:
            return error_page(request, 403, "Your account is a viewer: it may look, not act. "
                                             "Ask for an operator account to do this.")
        return await handler(request, user, form)
    guarded.__name__ = handler.__name__
    return guarded


# --- logging in and out ------------------------------------------------------------------------


async def login(request: Request) -> Response:
    dash = dashboard(request)
    target = _safe_next(request.query_params.get("next"))
    if request.method != "POST":
        if await dash.session_principal(request) is not None:
            return _redirect(target)
        notice = "You are logged out." if request.query_params.get("out") else None
        return render(request, None, "login.html", {"error": None, "notice": notice,
                                                    "next": target, "name": ""})
    form = await request.form()
    name = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    target = _safe_next(str(form.get("next", "/")))
    if not csrf_ok(request, form.get("csrf")):
        return error_page(request, 403, "The login form has expired. Reload it and try again.")
    monotonic = anyio.current_time()
    if dash.throttle.blocked(name, monotonic):
        return render(request, None, "login.html", {
            "error": "Too many failed attempts for this name: wait five minutes.",
            "notice": None, "next": target, "name": name}, status=429)
    found = await dash.db(lambda s: s.user(name))
    matches = await anyio.to_thread.run_sync(
        verify_password, password, None if found is None else found.password_hash)
    if found is None or not matches:
        dash.throttle.failed(name, monotonic)
        log.warning("failed login for a name of %d characters", len(name))
        return render(request, None, "login.html", {
            "error": "Wrong name or password.", "notice": None, "next": target, "name": name},
            status=401)
    dash.throttle.succeeded(name)
    sid = new_session_id()
    now = dash.now()
    await dash.db(lambda s: s.open_session(
        session_digest(sid), found.name, now + dt.timedelta(hours=SESSION_HOURS), now))
    request.session.clear()  # a new session id and CSRF token: nothing from before login
    request.session["sid"] = sid
    csrf_token(request)
    log.info("%s logged in (%s)", found.name, found.role)
    return _redirect(target)


async def logout(request: Request) -> Response:
    dash = dashboard(request)
    form = await request.form()
    if not csrf_ok(request, form.get("csrf")):
        return error_page(request, 403, "This form has expired. Reload the page and try again.")
    sid = request.session.get("sid")
    if isinstance(sid, str):
        await dash.db(lambda s: s.close_session(session_digest(sid)))
    request.session.clear()
    return _redirect("/login?out=1")


# --- the fleet ---------------------------------------------------------------------------------


async def _help_calls(dash: Dashboard) -> list[HelpCall]:
    now = dash.now()
    return help_calls(await dash.db(lambda s: s.help_requests(now - HELP_SHOWN_FOR)), now)


@page
async def overview(request: Request, user: Principal, _form: FormData | None) -> Response:
    dash = dashboard(request)
    now = dash.now()
    today = now.astimezone(tz_of(dash)).date()
    views, alerts, (_, available) = await dash.db(
        lambda s: (s.terminals(now), s.alerts(), availability_on(dash, s, today)))
    calls = await _help_calls(dash)
    active = [a for a in alerts if a.state in ACTIVE_ALERT_STATES]
    urgent = [a for a in active if a.state is AlertState.OPEN and a.severity == "critical"]
    return render(request, user, "overview.html", {
        "sites": site_summaries(views, active, calls), "counts": liveness_counts(views),
        "total": len(views), "open_alerts": sum(a.state is AlertState.OPEN for a in active),
        "urgent": urgent[:20], "help_open": [c for c in calls if c.state is HelpState.OPEN],
        "available": available, "opening_hours": str(dash.settings.opening_hours),
    }, refresh=True)


@page
async def terminal_list(request: Request, user: Principal, _form: FormData | None) -> Response:
    dash = dashboard(request)
    now = dash.now()
    site = request.query_params.get("site") or None
    state = request.query_params.get("state") or None
    search = request.query_params.get("q") or None
    problem = None
    if state is not None and state not in {str(s) for s in Liveness}:
        problem, state = f"There is no state {state!r}: showing every state.", None
    views, alerts = await dash.db(lambda s: (s.terminals(now), s.alerts()))
    shown = filter_terminals(views, site=site, state=state, search=search)
    sites = sorted({v.site for v in views if v.site})
    return render(request, user, "terminals.html", {
        "terminals": shown, "total": len(views), "sites": sites, "site": site or "",
        "state": state or "", "q": search or "", "problem": problem,
        "states": [str(s) for s in Liveness], "alerts": alerts_by_terminal(alerts),
    }, refresh=True)


@page
async def terminal_page(request: Request, user: Principal, _form: FormData | None) -> Response:
    dash = dashboard(request)
    tid = request.path_params["tid"]
    now = dash.now()

    zone = tz_of(dash)
    today = now.astimezone(zone).date()
    since, until = day_window(today, zone)

    def read(s: FleetStore) -> Any:
        serving = s.serving_buckets(since, until, tid=tid).get(tid, [])
        return (s.terminal(tid, now), s.alerts(), s.events(tid, RECENT_EVENTS),
                s.activity(tid, now - dt.timedelta(days=1)), s.recent_commands(10, tid=tid),
                availability(serving, today, zone, dash.settings.opening_hours, now))

    view, alerts, events, activity, commands, available = await dash.db(read)
    if view is None:
        return error_page(request, 404, f"No terminal {tid!r} is known to the fleet store.")
    return render(request, user, "terminal.html", {
        "t": view, "alerts": alerts_by_terminal(alerts).get(tid, []), "events": events,
        "chart": activity_chart(activity, now, tz_of(dash)),
        "commands": commands, "names": sorted(KNOWN_COMMANDS), "ttl": int(DEFAULT_TTL_S),
        "available": available, "opening_hours": str(dash.settings.opening_hours),
    }, refresh=True)


# --- alerts and help calls ---------------------------------------------------------------------

ALERT_FILTERS = ("active", "open", "acknowledged", "resolved", "all")


@page
async def alerts_page(request: Request, user: Principal, _form: FormData | None) -> Response:
    dash = dashboard(request)
    shown = request.query_params.get("state", "active")
    if shown not in ALERT_FILTERS:
        shown = "active"
    found = await dash.db(lambda s: s.alerts(
        AlertState(shown) if shown in {str(a) for a in AlertState} else None))
    if shown == "active":
        found = [a for a in found if a.state in ACTIVE_ALERT_STATES]
    return render(request, user, "alerts.html", {
        "alerts": found[:500], "more": max(0, len(found) - 500), "shown": shown,
        "filters": ALERT_FILTERS}, refresh=True)


@page
async def ack_alert(request: Request, user: Principal, _form: FormData | None) -> Response:
    dash = dashboard(request)
    alert_id = request.path_params["alert_id"]
    now = dash.now()
    found = await dash.db(lambda s: s.acknowledge_alert(alert_id, user.label, now))
    if found is None:
        return error_page(request, 404, f"There is no alert {alert_id}.")
    if found.state is AlertState.RESOLVED:
        _flash(request, "warn", f"Alert {alert_id} ({found.cause} at {found.tid}) had already "
                                "resolved itself.")
    else:
        _flash(request, "ok", f"Alert {alert_id} ({found.cause} at {found.tid}) acknowledged.")
    return _redirect("/alerts")


@page
async def help_page(request: Request, user: Principal, _form: FormData | None) -> Response:
    return await _render_help(request, user)


async def _render_help(request: Request, user: Principal, status: int = 200,
                       error: str | None = None, values: dict[str, str] | None = None
                       ) -> Response:
    calls = await _help_calls(dashboard(request))
    return render(request, user, "help.html", {
        "calls": calls, "error": error, "values": values or {},
        "staff": user.name, "minutes": HELP_MINUTES_DEFAULT,
    }, status=status, refresh=error is None)


@page
async def ack_help(request: Request, user: Principal, form: FormData | None) -> Response:
    assert form is not None
    dash = dashboard(request)
    tid, help_id = request.path_params["tid"], request.path_params["help_id"]
    matching = [c for c in await _help_calls(dash)
                if c.request.tid == tid and c.request.help_id == help_id]
    if not matching:
        return error_page(request, 404, f"There is no help call {help_id!r} at {tid} today.")
    call = matching[0]
    values = {"key": f"{tid}/{help_id}", "staff": str(form.get("staff", "")),
              "minutes": str(form.get("minutes", ""))}
    if call.state is not HelpState.OPEN:
        _flash(request, "warn", f"The help call at {tid} is {call.state} already.")
        return _redirect("/help")
    try:
        minutes_text = str(form.get("minutes", "")).strip()
        minutes = int(minutes_text) if minutes_text.isdigit() else -1
        answer = await answer_help(dash, user, call, check_staff(form.get("staff")),
                                   check_minutes(minutes))
    except BadCommand as e:
        return await _render_help(request, user, 422, str(e), values)
    except BrokerDown as e:
        return await _render_help(request, user, 503, f"Not sent, the terminal does not know "
                                                      f"yet: {e}", values)
    _flash(request, "ok", f"{tid} told: {answer.staff} comes within {answer.minutes} min "
                          f"(command {answer.request_id}).")
    return _redirect("/help")


# --- commands ----------------------------------------------------------------------------------


@page
async def commands_page(request: Request, user: Principal, form: FormData | None) -> Response:
    dash = dashboard(request)
    if form is None:
        values = {"tid": request.query_params.get("tid", ""), "name": "ping", "args": "{}",
                  "ttl": str(int(DEFAULT_TTL_S))}
        return await _render_commands(request, user, values)
    values = {k: str(form.get(k, "")).strip() for k in ("tid", "name", "args", "ttl")}
    now = dash.now()
    tid = values["tid"]
    if not tid or await dash.db(lambda s: s.terminal(tid, now)) is None:
        return await _render_commands(request, user, values, 422,
                                      f"No terminal {tid!r} is known to the fleet store.")
    try:
        args = json.loads(values["args"] or "{}")
    except json.JSONDecodeError as e:
        return await _render_commands(request, user, values, 422,
                                      f"The arguments are not JSON: {e.msg}.")
    if not isinstance(args, dict):
        return await _render_commands(request, user, values, 422,
                                      'The arguments must be a JSON object, such as {}.')
    try:
        ttl = float(values["ttl"] or DEFAULT_TTL_S)
        command = dash.dispatcher.prepare(tid, values["name"], args, ttl)
        await dash.send(command)
    except ValueError as e:  # BadCommand, or a ttl that is not a number
        text = str(e) if isinstance(e, BadCommand) else "The ttl must be a number of seconds."
        return await _render_commands(request, user, values, 422, text)
    except BrokerDown as e:
        return await _render_commands(request, user, values, 503, f"Not sent: {e}")
    log.info("command %s %s to %s sent by %s", command.request_id, command.payload.name, tid,
             user.label)
    _flash(request, "ok", f"Sent {command.payload.name} to {tid}.")
    return _redirect(f"/commands/{quote(command.request_id)}")


async def _render_commands(request: Request, user: Principal, values: dict[str, str],
                           status: int = 200, error: str | None = None) -> Response:
    dash = dashboard(request)
    now = dash.now()
    recent, views = await dash.db(lambda s: (s.recent_commands(RECENT_COMMANDS), s.terminals(now)))
    return render(request, user, "commands.html", {
        "values": values, "error": error, "recent": recent, "names": sorted(KNOWN_COMMANDS),
        "tids": [v.tid for v in views]}, status=status)


@page
async def command_page(request: Request, user: Principal, _form: FormData | None) -> Response:
    dash = dashboard(request)
    request_id = request.path_params["request_id"]
    found, acks = await dash.db(lambda s: (s.command(request_id), s.ack_details(request_id)))
    if found is None:
        return error_page(request, 404, f"No command {request_id!r} was sent from here.")
    final = any(a.status in ("succeeded", "failed", "rejected") for a in acks)
    return render(request, user, "command.html", {
        "c": found, "acks": acks, "final": final,
        "again": "/commands?" + urlencode({"tid": found.tid})}, refresh=not final)
