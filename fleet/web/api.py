"""The JSON API of DESIGN 13 (``Authorization: Bearer TOKEN``) and ``/metrics``.

A client's mistake is a JSON ``{"error": ...}`` with 400 (not a JSON object), 401 (no valid
token), 403 (a viewer's token acting), 404 (no such terminal, command, alert or help call), 409
(already answered, or resolved), 413 (too big) or 422 (a field that is wrong); 503 when the broker
does not take a command. Never a 500 for what a client sent.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fleet.accounts import Principal
from fleet.alerts import Cause
from fleet.commands import DEFAULT_TTL_S
from fleet.store import AlertState, FleetStore, HelpAckRecord
from fleet.web import metrics as fleet_metrics
from fleet.web.app import ApiProblem, Dashboard, availability_on, dashboard, tz_of
from fleet.web.dispatch import BadCommand, BrokerDown, check_minutes, check_staff, check_ttl
from fleet.web.views import (
    HELP_SHOWN_FOR,
    HelpCall,
    HelpState,
    alert_json,
    alerts_by_terminal,
    command_json,
    event_json,
    help_json,
    terminal_json,
)
from fleet.web.views import help_calls as shape_help_calls

log = logging.getLogger(__name__)

RECENT_EVENTS = 50


async def _body(request: Request, allowed: Iterable[str]) -> dict[str, Any]:
    """The request's JSON object; 400 if it is not one, 422 for a field nobody asked for."""
    raw = await request.body()
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiProblem(400, "the body must be a JSON object") from None
    if not isinstance(value, dict):
        raise ApiProblem(400, "the body must be a JSON object")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ApiProblem(422, f"unknown field(s): {', '.join(unknown[:5])}")
    return value


async def _operator(request: Request) -> tuple[Dashboard, Principal]:
    dash = dashboard(request)
    principal = await dash.api_principal(request)
    if not principal.role.may_act:
        raise ApiProblem(403, "this token's role is viewer: it may read, not act")
    return dash, principal


async def _viewer(request: Request) -> Dashboard:
    dash = dashboard(request)
    await dash.api_principal(request)
    return dash


# --- terminals and commands ------------------------------------------------------------------


async def terminals(request: Request) -> Response:
    dash = await _viewer(request)
    now = dash.now()
    views, alerts = await dash.db(lambda s: (s.terminals(now), s.alerts()))
    active = alerts_by_terminal(alerts)
    return JSONResponse([terminal_json(v, active.get(v.tid, [])) for v in views])


async def terminal(request: Request) -> Response:
    dash = await _viewer(request)
    tid = request.path_params["tid"]
    now = dash.now()

    def read(s: FleetStore) -> Any:
        return s.terminal(tid, now), s.alerts(), s.events(tid, RECENT_EVENTS)

    view, alerts, events = await dash.db(read)
    if view is None:
        raise ApiProblem(404, f"no terminal {tid!r} is known")
    answer = terminal_json(view, alerts_by_terminal(a for a in alerts if a.tid == tid)
                           .get(tid, []))
    answer["events"] = [event_json(e) for e in events]
    return JSONResponse(answer)


async def send_command(request: Request) -> Response:
    dash, principal = await _operator(request)
    tid = request.path_params["tid"]
    now = dash.now()
    if await dash.db(lambda s: s.terminal(tid, now)) is None:
        raise ApiProblem(404, f"no terminal {tid!r} is known")
    body = await _body(request, ("name", "args", "ttl_s"))
    name, args = body.get("name"), body.get("args", {})
    if not isinstance(name, str) or not name:
        raise ApiProblem(422, "name: the command's name is needed")
    if not isinstance(args, dict):
        raise ApiProblem(422, "args: a JSON object")
    try:
        command = dash.dispatcher.prepare(tid, name, args,
                                          check_ttl(body.get("ttl_s", DEFAULT_TTL_S)))
        await dash.send(command)
    except BadCommand as e:
        raise ApiProblem(422, str(e)) from None
    except BrokerDown as e:
        raise ApiProblem(503, f"not sent: {e}") from None
    log.info("command %s %s to %s sent by %s", command.request_id, name, tid, principal.label)
    return JSONResponse({"request_id": command.request_id})


async def command(request: Request) -> Response:
    dash = await _viewer(request)
    request_id = request.path_params["request_id"]
    found, acks = await dash.db(lambda s: (s.command(request_id), s.ack_details(request_id)))
    if found is None:
        raise ApiProblem(404, f"no command {request_id!r} was sent from here")
    return JSONResponse(command_json(found, acks))


# --- alerts and help calls -------------------------------------------------------------------


def _state(request: Request, allowed: Iterable[str]) -> str | None:
    state = request.query_params.get("state")
    if state in (None, "", "all"):
        return None
    if state not in allowed:
        raise ApiProblem(422, f"state: one of {', '.join(allowed)} or all")
    return state


async def alerts(request: Request) -> Response:
    dash = await _viewer(request)
    state = _state(request, [str(s) for s in AlertState])
    found = await dash.db(lambda s: s.alerts(None if state is None else AlertState(state)))
    return JSONResponse([alert_json(a) for a in found])


async def ack_alert(request: Request) -> Response:
    dash, principal = await _operator(request)
    alert_id = request.path_params["alert_id"]
    now = dash.now()
    found = await dash.db(lambda s: s.acknowledge_alert(alert_id, principal.label, now))
    if found is None:
        raise ApiProblem(404, f"no alert {alert_id}")
    if found.state is AlertState.RESOLVED:
        raise ApiProblem(409, f"alert {alert_id} is resolved already", alert=alert_json(found))
    return JSONResponse(alert_json(found))


async def _help_calls(dash: Dashboard) -> list[HelpCall]:
    now = dash.now()
    requests = await dash.db(lambda s: s.help_requests(now - HELP_SHOWN_FOR))
    return shape_help_calls(requests, now)


async def help_calls(request: Request) -> Response:
    dash = await _viewer(request)
    state = _state(request, [str(s) for s in HelpState])
    calls = await _help_calls(dash)
    return JSONResponse([help_json(c) for c in calls if state is None or c.state == state])


async def answer_help(dash: Dashboard, principal: Principal, call: HelpCall, staff: str,
                      minutes: int) -> HelpAckRecord:
    """Send ``help_ack`` to the terminal that called, then remember the answer and acknowledge
    its help alert; BadCommand / BrokerDown as the dispatcher says."""
    request = call.request
    command = dash.dispatcher.prepare(
        request.tid, "help_ack", {"help_id": request.help_id, "staff": staff, "minutes": minutes},
        ttl_s=minutes * 60.0)
    await dash.send(command)
    answer = HelpAckRecord(staff, minutes, command.request_id, principal.label, dash.now())

    def remember(s: FleetStore) -> None:
        s.record_help_ack(request.tid, request.help_id, answer)
        for alert in s.alerts(AlertState.OPEN):
            if alert.tid == request.tid and alert.cause == Cause.HELP_REQUESTED:
                s.acknowledge_alert(alert.id, principal.label, answer.acked_at)

    await dash.db(remember)
    return answer


async def ack_help(request: Request) -> Response:
    dash, principal = await _operator(request)
    help_id = request.path_params["help_id"]
    calls = [c for c in await _help_calls(dash) if c.request.help_id == help_id]
    if not calls:
        raise ApiProblem(404, f"no help call {help_id!r} today")
    if len({c.request.tid for c in calls}) > 1:
        raise ApiProblem(409, f"help call {help_id!r} is on several terminals: answer it on the"
                              " dashboard's help page")
    body = await _body(request, ("staff", "minutes"))
    try:
        staff, minutes = check_staff(body.get("staff")), check_minutes(body.get("minutes"))
    except BadCommand as e:
        raise ApiProblem(422, str(e)) from None
    call = calls[0]
    if call.state is not HelpState.OPEN:
        raise ApiProblem(409, f"help call {help_id!r} is {call.state}", help=help_json(call))
    try:
        answer = await answer_help(dash, principal, call, staff, minutes)
    except BadCommand as e:
        raise ApiProblem(422, str(e)) from None
    except BrokerDown as e:
        raise ApiProblem(503, f"not sent: {e}") from None
    answered = HelpCall(dataclasses.replace(call.request, answer=answer), HelpState.ACKNOWLEDGED)
    return JSONResponse({**help_json(answered), "request_id": answer.request_id})


# --- metrics ---------------------------------------------------------------------------------


async def availability(request: Request) -> Response:
    """``GET /api/availability?day=YYYY-MM-DD`` (default today, in the dashboard's zone): the
    share of the day's opening hours each terminal and each site could serve."""
    dash = await _viewer(request)
    raw = request.query_params.get("day")
    try:
        day = (dash.now().astimezone(tz_of(dash)).date() if raw is None
               else dt.date.fromisoformat(raw))
    except ValueError:
        raise ApiProblem(400, "day must be a date as YYYY-MM-DD") from None
    shares, sites = await dash.db(lambda s: availability_on(dash, s, day))
    hours = dash.settings.opening_hours
    return JSONResponse({
        "day": day.isoformat(),
        "opening_hours": str(hours),
        "terminals": [{"tid": tid, "availability": share}
                      for tid, share in sorted(shares.items())],
        "sites": [{"site": site, "availability": share} for site, share in sorted(sites.items())],
    })


async def metrics(request: Request) -> Response:
    dash = dashboard(request)
    if dash.settings.private_metrics:
        await dash.api_principal(request)
    # The registry's collector reads the store: the scrape runs where store calls run.
    text = await dash.db(lambda _: fleet_metrics.exposition(dash.registry))
    return Response(text, media_type=fleet_metrics.CONTENT_TYPE)
