"""The terminal's HTTPS + JSON adapter for the service hub ports (``flows.hub.ServiceHub``,
``flows.hub.ApplicationHub`` and ``flows.hub.IdentityHub``).

Speaks the API of docs/hub-api.yaml over terminal.hub_wire. Failures come out as the port's errors,
so the flows never see the wire: no answer in time, no connection, a 5xx -> ``HubUnavailable`` (try
again later); the hub refusing -> ``ErrandRefused`` with its reason (``SlotTaken``,
``CaseUnknown``, ``CodeExpired``, ``CodeUsed``, ``CodeUnknown`` for theirs); anything unreadable ->
``HubError("bad_answer")``. Personal values (an ID number, a phone, the pages, an e-ID code) travel
only in request bodies, so they never appear in a URL, an exception or a log line;
answers are validated strictly before anything of them is used.

Every call ends within its deadline whatever the far end does: name lookup, connect, TLS, the
status line and headers (dripped, or an endless run of ``100 Continue``) and the body all count
against it: the exchange runs on an asyncio event loop owned by the adapter, inside
``asyncio.timeout_at``. The deadline is ``timeout_s``,
except for a submission with scanned pages: its upload of up to several megabytes gets
``timeout_s`` plus the time its size takes at ``upload_bytes_per_s``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import hashlib
import json
import logging
import secrets
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlencode

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from contracts.codes import is_e_id_code
from devices.base import CardHolder, IdentityDocument, Sex
from flows.hub import (
    REFUSAL_REASONS,
    Appointment,
    CaseAccepted,
    CaseProgress,
    CaseStatus,
    CaseSubmission,
    CaseUnknown,
    CodeExpired,
    CodeUnknown,
    CodeUsed,
    DocumentField,
    ErrandDocument,
    ErrandRefused,
    HubError,
    HubUnavailable,
    PostalAddress,
    RatingSubmission,
    Report,
    ReportFiled,
    Slot,
    SlotTaken,
)
from flows.identity import InvalidIdNumber, validate_id_number
from terminal.hub_wire import AnswerTooLarge, HubAddress, HubWire, WireError, describe

if TYPE_CHECKING:
    from socket import _GetAddrInfoResult as _AddressInfo  # what asyncio's getaddrinfo returns

log = logging.getLogger(__name__)

T = TypeVar("T")

# 410 Gone: an e-ID code that expired.
_REFUSAL_STATUSES = frozenset({404, 409, 410, 422})
# Statuses that say "later", not "never": a gateway's timeout and rate limit, besides any 5xx.
# 401/403 come from an auth proxy or an expired credential in front of the hub: fixable, so
# "try again later", never a final refusal of what was sent.
_RETRY_LATER_STATUSES = frozenset({401, 403, 408, 429})
_MAX_ANSWER_BYTES = 256 * 1024  # a document is a few kB; more is not a hub answer
# What the hub takes in one submission (docs/hub-api.yaml, POST /v1/cases), checked before
# sending: a submission it would refuse for its size is never uploaded over a village's uplink.
MAX_PAGES = 32
MAX_PAGE_BYTES = 1024 * 1024
MAX_SUBMISSION_BYTES = 8 * 1024 * 1024
# The slowest uplink a submission's deadline allows for: about 1 Mbit/s, a weak mobile signal.
# Ten pages of 500 kB then get 8 s + 39 s; a small call keeps its plain ``timeout_s``.
UPLOAD_BYTES_PER_S = 128 * 1024
# Refusals with a type of their own in the port, so a flow can catch exactly them.
_TYPED_REFUSALS: dict[str, type[ErrandRefused]] = {
    SlotTaken.reason: SlotTaken,
    CaseUnknown.reason: CaseUnknown,
    CodeExpired.reason: CodeExpired,
    CodeUsed.reason: CodeUsed,
    CodeUnknown.reason: CodeUnknown,
}
# The two lanes that call the hub (errands, ratings) need one connection each; a call waiting
# for a free one still waits within its own deadline.
_MAX_CONNECTIONS = 4
# Lookups left hanging by a dead resolver; beyond this a call fails at once instead of leaving
# yet another thread behind.
_MAX_PENDING_LOOKUPS = 4
# How much later than its deadline a caller stops waiting for the event loop, should the loop
# itself ever be stuck; the deadline inside the loop is what normally ends a call.
_BACKSTOP_S = 0.5
_CLOSE_WAIT_S = 1.0


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)


class _FieldAnswer(_Strict):
    label: str = Field(min_length=1, max_length=64)
    value: str = Field(max_length=512)


class _DocumentAnswer(_Strict):
    errand_id: str
    title: str = Field(min_length=1, max_length=64)
    case_number: str = Field(min_length=1, max_length=64)
    verification_code: str = Field(min_length=1, max_length=64)
    verify_url: str = Field(pattern=r"^https?://", max_length=512)
    issued_at: AwareDatetime
    fields: list[_FieldAnswer] = Field(max_length=64)


class _ErrorAnswer(_Strict):
    error: str = Field(min_length=1, max_length=64)


_Id = Field(min_length=1, max_length=64)
_Reference = Field(min_length=1, max_length=128)  # L-<terminal id>-<yyyymmdd>-<nnnn>


class _AddressAnswer(_Strict):
    address: str | None = Field(min_length=1, max_length=256)  # required; null: none on record


class _CaseAcceptedAnswer(_Strict):
    reference: str = _Reference
    case_number: str = _Id
    authority: str = Field(min_length=1, max_length=128)
    received_at: AwareDatetime
    cross_region: bool = False


class _CaseProgressAnswer(_Strict):
    case_number: str = _Id
    reference: str | None = Field(default=None, max_length=128)  # none: lodged elsewhere
    item_id: str = _Id
    status: CaseStatus
    received_on: dt.date
    updated_at: AwareDatetime
    promised_by: dt.date | None = None


class _CaseListAnswer(_Strict):
    cases: list[_CaseProgressAnswer] = Field(max_length=200)


class _SlotAnswer(_Strict):
    slot_id: str = _Id
    day: dt.date
    start: dt.time
    end: dt.time
    free: int = Field(ge=0, le=10_000)


class _SlotListAnswer(_Strict):
    slots: list[_SlotAnswer] = Field(max_length=200)


class _AppointmentAnswer(_Strict):
    appointment_id: str = _Id
    code: str = _Id
    service_id: str = _Id
    site_id: str = _Id
    day: dt.date
    start: dt.time
    end: dt.time


class _AppointmentListAnswer(_Strict):
    appointments: list[_AppointmentAnswer] = Field(max_length=100)


class _ReportFiledAnswer(_Strict):
    reference: str = _Reference
    hub_reference: str = _Id
    callback_by: AwareDatetime


class _IdentityAnswer(_Strict):
    id_number: str = Field(min_length=18, max_length=18)  # checked as an ID number after
    # A name as the hub holds it: Chinese, or a minority name with its middle dot; no controls.
    name: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f-\x9f]+$")
    sex: Sex
    birth_date: dt.date


_Answer = TypeVar("_Answer", bound=_Strict)


class HttpServiceHub:
    """``ServiceHub`` over HTTP(S); safe to call from several threads at once.

    A call gives up with ``HubUnavailable`` once ``timeout_s`` has passed since it was made,
    name lookup included. The adapter owns one event loop thread (``hub-io``); ``close()`` stops
    it and cancels calls in flight. ``ca_file`` pins the CA bundle that signs the hub's
    certificate; without it the system's CAs are trusted. Environment proxy settings are ignored
    on purpose: the kiosk's route to the hub is configuration, not ambient state. Redirects are
    never followed (the hub API has none; following one would send the body elsewhere).
    ``upload_bytes_per_s`` is the slowest uplink a submission with pages is allowed for: its
    deadline is ``timeout_s`` plus its size at that rate.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 8.0,
        ca_file: Path | None = None,
        upload_bytes_per_s: float = UPLOAD_BYTES_PER_S,
    ) -> None:
        if not timeout_s > 0:
            raise ValueError("timeout_s must be positive")
        if not upload_bytes_per_s > 0:
            raise ValueError("upload_bytes_per_s must be positive")
        self._upload_bytes_per_s = upload_bytes_per_s
        self._base_url = base_url.rstrip("/")
        address = HubAddress.from_url(self._base_url)
        self._timeout_s = timeout_s
        tls = (ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
               if address.scheme == "https" else None)
        # No keep-alive: a connection idle for minutes behind a mobile uplink's NAT can be dead
        # without either end knowing, and would cost a resident a timed-out errand. No proxies,
        # certificates or netrc from the environment either: only what the config says.
        self._wire = HubWire(address, tls, max_connections=_MAX_CONNECTIONS,
                             max_answer_bytes=_MAX_ANSWER_BYTES)
        self._loop = _HubLoop()
        self._thread = threading.Thread(target=self._loop.serve, name="hub-io", daemon=True)
        self._thread.start()
        self._lock = threading.Lock()
        self._closed = False
        # Also winds down the loop of an adapter dropped without close(): tests, a rebuilt one.
        self._finalizer = weakref.finalize(self, self._loop.wind_down_soon)
        self._finalizer.atexit = False  # a daemon thread; exiting needs nothing from it

    def __repr__(self) -> str:
        return f"HttpServiceHub({self._base_url!r}, timeout_s={self._timeout_s})"

    def close(self) -> None:
        """Cancel calls in flight (they raise ``HubUnavailable``) and stop the loop thread."""
        with self._lock:
            self._closed = True
        self._finalizer()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=_CLOSE_WAIT_S)

    def run_errand(self, errand_id: str, id_number: str, terminal_id: str) -> ErrandDocument:
        """POST /v1/errands/{errand_id}/run and return the issued document."""
        path = f"/v1/errands/{_segment(errand_id)}/run"
        status, body = self._exchange(
            "run_errand", path, {"id_number": id_number, "terminal_id": terminal_id}
        )
        if status != 200:
            raise _refusal_or_error(status, body)
        answer = _read_document(body)
        if answer.errand_id != errand_id:
            raise HubError("hub answered for another errand", reason="bad_answer")
        return ErrandDocument(
            errand_id=answer.errand_id,
            title=answer.title,
            case_number=answer.case_number,
            verification_code=answer.verification_code,
            verify_url=answer.verify_url,
            issued_at=_stdlib_zone(answer.issued_at),
            fields=tuple(DocumentField(f.label, f.value) for f in answer.fields),
        )

    def submit_rating(self, rating: RatingSubmission) -> None:
        """POST /v1/ratings; the hub keeps the first rating per case, so resending is safe."""
        if rating.rated_at.tzinfo is None:
            raise ValueError("rated_at must be timezone-aware")
        status, _body = self._exchange(
            "submit_rating",
            "/v1/ratings",
            {
                "case_number": rating.case_number,
                "errand_id": rating.errand_id,
                "level": rating.level,
                "terminal_id": rating.terminal_id,
                "rated_at": rating.rated_at.isoformat(),
            },
        )
        if status in {200, 201}:
            return
        if 400 <= status < 500:
            # Final: the outbox must drop it rather than retry what will never be accepted.
            raise HubError(f"hub rejected the rating (HTTP {status})", reason="rating_rejected")
        raise HubError(f"hub answered the rating with HTTP {status}", reason="bad_answer")

    # --- applications, progress, appointments, reports (flows.hub.ApplicationHub) ---------------

    def delivery_address(self, id_number: str) -> PostalAddress | None:
        """POST /v1/residents/address: the address on record for mail delivery, or None."""
        status, body = self._exchange(
            "delivery_address", "/v1/residents/address", {"id_number": id_number}
        )
        address = _read_ok(status, body, _AddressAnswer).address
        return None if address is None else PostalAddress(address)

    def submit_case(self, submission: CaseSubmission) -> CaseAccepted:
        """POST /v1/cases (multipart: the fields as JSON, then each page as image/jpeg).

        The hub answers the case it made for ``submission.reference`` however often it is sent,
        so a submission whose answer was lost is safe to send again. ValueError for one the hub
        would refuse for its size or a time without a zone: the capture got something wrong.
        """
        body, content_type = _submission_body(submission)
        # The upload itself may take a while on a slow uplink; the answer then takes as long
        # as any other call's.
        timeout_s = self._timeout_s + len(body) / self._upload_bytes_per_s
        status, answer = self._call(
            "submit_case", "POST", "/v1/cases", body, content_type=content_type,
            timeout_s=timeout_s,
        )  # fmt: skip
        accepted = _read_ok(status, answer, _CaseAcceptedAnswer, ok=(200, 201))
        if accepted.reference != submission.reference:
            raise HubError("hub answered for another submission", reason="bad_answer")
        return CaseAccepted(
            reference=accepted.reference,
            case_number=accepted.case_number,
            authority=accepted.authority,
            received_at=_stdlib_zone(accepted.received_at),
            cross_region=accepted.cross_region,
        )

    def case_progress(self, reference: str) -> CaseProgress:
        """GET /v1/cases/{reference}: by case number or the terminal's local reference."""
        if not reference:
            raise CaseUnknown("no case reference given")
        status, body = self._call("case_progress", "GET", f"/v1/cases/{_segment(reference)}")
        progress = _read_ok(status, body, _CaseProgressAnswer)
        if reference not in {progress.case_number, progress.reference}:
            raise HubError("hub answered for another case", reason="bad_answer")
        return _progress(progress)

    def cases_of(self, id_number: str) -> tuple[CaseProgress, ...]:
        """POST /v1/residents/cases: the resident's cases, newest first."""
        status, body = self._exchange(
            "cases_of", "/v1/residents/cases", {"id_number": id_number}
        )
        return tuple(_progress(c) for c in _read_ok(status, body, _CaseListAnswer).cases)

    def slots(self, service_id: str, site_id: str, day: dt.date) -> tuple[Slot, ...]:
        """GET /v1/slots: one day's periods at one centre for one service, with free places."""
        query = urlencode({"service_id": service_id, "site_id": site_id, "day": day.isoformat()})
        status, body = self._call("slots", "GET", f"/v1/slots?{query}")
        found = _read_ok(status, body, _SlotListAnswer).slots
        if any(slot.day != day or slot.end <= slot.start for slot in found):
            raise HubError("hub answered slots of another day", reason="bad_answer")
        return tuple(Slot(s.slot_id, s.day, s.start, s.end, s.free) for s in found)

    def book(self, id_number: str, service_id: str, site_id: str, slot_id: str) -> Appointment:
        """POST /v1/appointments; SlotTaken when the slot filled up since it was shown."""
        status, body = self._exchange(
            "book",
            "/v1/appointments",
            {"id_number": id_number, "service_id": service_id, "site_id": site_id,
             "slot_id": slot_id},
        )  # fmt: skip
        booked = _read_ok(status, body, _AppointmentAnswer, ok=(200, 201))
        if (booked.service_id, booked.site_id) != (service_id, site_id):
            raise HubError("hub booked another service or centre", reason="bad_answer")
        return _appointment(booked)

    def appointments_of(self, id_number: str) -> tuple[Appointment, ...]:
        """POST /v1/residents/appointments: the resident's appointments still to come."""
        status, body = self._exchange(
            "appointments_of", "/v1/residents/appointments", {"id_number": id_number}
        )
        found = _read_ok(status, body, _AppointmentListAnswer).appointments
        return tuple(_appointment(a) for a in found)

    def cancel(self, id_number: str, appointment_id: str) -> None:
        """POST /v1/appointments/{id}/cancel; cancelling a cancelled one again is fine."""
        path = f"/v1/appointments/{_segment(appointment_id)}/cancel"
        status, body = self._exchange("cancel", path, {"id_number": id_number})
        if status != 200:
            raise _refusal_or_error(status, body)

    def file_report(self, report: Report) -> ReportFiled:
        """POST /v1/reports; the hub keeps the first report per reference, so resending is safe."""
        if report.filed_at.tzinfo is None:
            raise ValueError("filed_at must be timezone-aware")
        status, body = self._exchange(
            "file_report",
            "/v1/reports",
            {
                "reference": report.reference,
                "problem": report.problem,
                "item_id": report.item_id,
                "phone": report.phone,
                "terminal_id": report.terminal_id,
                "screen": report.screen,
                "filed_at": report.filed_at.isoformat(),
            },
        )
        filed = _read_ok(status, body, _ReportFiledAnswer, ok=(200, 201))
        if filed.reference != report.reference:
            raise HubError("hub answered for another report", reason="bad_answer")
        return ReportFiled(filed.reference, filed.hub_reference, _stdlib_zone(filed.callback_by))

    # --- identity (flows.hub.IdentityHub) --------------------------------------------------------

    def resolve_code(self, code: str, terminal_id: str) -> CardHolder:
        """POST /v1/identity/codes/resolve: who an e-ID code stands for; it resolves once.

        A code not of the e-ID form is CodeUnknown without asking: whatever else a scanner read
        (it may be personal) never leaves the terminal. The answer is checked, not trusted: an
        ID number failing its check digit, or a birth date other than the one it carries, is a
        bad answer rather than a resident.
        """
        if not is_e_id_code(code):
            raise CodeUnknown("not an e-ID code")
        status, body = self._exchange(
            "resolve_code", "/v1/identity/codes/resolve", {"code": code, "terminal_id": terminal_id}
        )
        person = _read_ok(status, body, _IdentityAnswer)
        return _holder(person)

    # --- the wire ------------------------------------------------------------------------------

    def _exchange(self, operation: str, path: str, payload: dict[str, Any]) -> tuple[int, bytes]:
        """POST JSON; return the status and body of any HTTP answer, 5xx and the like excepted."""
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        return self._call(operation, "POST", path, body)

    def _call(
        self,
        operation: str,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        content_type: str = "application/json",
        timeout_s: float | None = None,
    ) -> tuple[int, bytes]:
        allowed_s = self._timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + allowed_s
        call = self._send(method, path, body, content_type, deadline)
        status, answer = self._on_loop(call, deadline)
        # The operation, not the path: a path may hold a case number or an appointment id.
        log.debug("hub %s -> HTTP %d", operation, status)
        return status, answer

    def _on_loop(self, call: Coroutine[Any, Any, T], deadline: float) -> T:
        """Run ``call`` on the adapter's loop and wait for it, at most until just past deadline."""
        with self._lock:
            if self._closed:
                call.close()
                raise HubUnavailable("hub adapter is closed")
            future = asyncio.run_coroutine_threadsafe(call, self._loop)
        try:
            return future.result(timeout=max(0.0, deadline - time.monotonic()) + _BACKSTOP_S)
        except concurrent.futures.TimeoutError:
            future.cancel()
            log.warning("hub call outlived its deadline on the event loop")
        except concurrent.futures.CancelledError:
            pass  # cancelled by close()
        raise HubUnavailable("hub call abandoned")

    async def _send(
        self, method: str, path: str, body: bytes | None, content_type: str, deadline: float
    ) -> tuple[int, bytes]:
        failure: str
        try:
            async with asyncio.timeout_at(deadline):
                return await self._wire.exchange(method, path, body, content_type, _check_status)
        except TimeoutError:
            failure = "timed out"
        except AnswerTooLarge:
            failure = ""
        except (WireError, OSError) as exc:
            # Refused, unreachable, TLS, resets, broken HTTP framing. Only the kind of failure is
            # kept: an error's message may quote the answer, and its context holds the request.
            failure = _describe(exc)
        # Raised here, outside the handlers, so that nothing of the wire is chained to it.
        if not failure:
            raise HubError("hub answer too large", reason="bad_answer")
        raise HubUnavailable(f"hub not reachable: {failure}")


def _check_status(status: int) -> None:
    """Give up on an answer by its status alone, before its body is read."""
    if 500 <= status < 600 or status in _RETRY_LATER_STATUSES:
        raise HubUnavailable(f"hub answered HTTP {status}")
    # No status HTTP defines.
    if not 200 <= status < 600:
        raise HubError(f"hub answered HTTP {status}", reason="bad_answer")


def _segment(value: str) -> str:
    """One path segment: "../health" or "a/b" names a thing, never another endpoint."""
    return quote(value, safe="")


def _stdlib_zone(moment: dt.datetime) -> dt.datetime:
    """The same aware time with the stdlib's fixed-offset tzinfo instead of pydantic's."""
    offset = moment.utcoffset()
    return moment if offset is None else moment.replace(tzinfo=dt.timezone(offset))


def _read_ok(
    status: int, body: bytes, model: type[_Answer], *, ok: tuple[int, ...] = (200,)
) -> _Answer:
    """The answer as ``model`` when the status is one of ``ok``, else the refusal or error."""
    if status not in ok:
        raise _refusal_or_error(status, body)
    try:
        return model.model_validate_json(body)
    except ValidationError:
        pass
    # Raised outside the handler: the validation error quotes the answer, which may echo
    # personal data, so it must not hang off this error even as its suppressed context.
    raise HubError("hub sent an unreadable answer", reason="bad_answer")


def _progress(answer: _CaseProgressAnswer) -> CaseProgress:
    if answer.status in (CaseStatus.QUEUED, CaseStatus.NOT_SUBMITTED):
        # The terminal's own statuses, never the hub's.
        raise HubError("hub answered a status it cannot have", reason="bad_answer")
    return CaseProgress(
        case_number=answer.case_number,
        item_id=answer.item_id,
        status=answer.status,
        received_on=answer.received_on,
        updated_at=_stdlib_zone(answer.updated_at),
        promised_by=answer.promised_by,
    )


def _holder(answer: _IdentityAnswer) -> CardHolder:
    try:
        id_number = validate_id_number(answer.id_number)
    except InvalidIdNumber:
        id_number = ""
    # The birth date is in the ID number too; two that differ mean the answer is not one person.
    if not id_number or id_number[6:14] != answer.birth_date.isoformat().replace("-", ""):
        raise HubError("hub answered an identity that does not hold together", reason="bad_answer")
    return CardHolder(
        id_number=id_number,
        name=answer.name,
        sex=answer.sex,
        birth_date=answer.birth_date,
        card_number="",
        region_code=id_number[:6],
        expires=None,
        document=IdentityDocument.E_CODE,
    )


def _appointment(answer: _AppointmentAnswer) -> Appointment:
    if answer.end <= answer.start:
        raise HubError("hub answered an appointment ending before it starts", reason="bad_answer")
    return Appointment(
        appointment_id=answer.appointment_id,
        code=answer.code,
        service_id=answer.service_id,
        site_id=answer.site_id,
        day=answer.day,
        start=answer.start,
        end=answer.end,
    )


def _submission_body(submission: CaseSubmission) -> tuple[bytes, str]:
    """The multipart/form-data body of a submission and its Content-Type.

    A JSON part ``submission`` first, then one ``image/jpeg`` part ``page`` per page in the
    order the JSON's ``pages`` lists them, each with its SHA-256 so the hub can tell a page
    damaged on the way from a page. Written by hand, so the framing
    is exactly what docs/hub-api.yaml says and the size is known before anything is sent.
    """
    if submission.submitted_at.tzinfo is None:
        raise ValueError("submitted_at must be timezone-aware")
    pages = submission.pages
    if len(pages) > MAX_PAGES:
        raise ValueError(f"a submission carries at most {MAX_PAGES} pages")
    if any(len(page.jpeg) > MAX_PAGE_BYTES for page in pages):
        raise ValueError(f"a page is larger than {MAX_PAGE_BYTES} bytes")
    fields = {
        "reference": submission.reference,
        "item_id": submission.item_id,
        "id_number": submission.id_number,
        "phone": submission.phone,
        "delivery": submission.delivery.value,
        "pickup_site": submission.pickup_site,
        "materials": [
            {
                "material_id": m.material_id,
                "outcome": m.outcome.value,
                "pages": m.pages,
                "deferred_until": m.deferred_until.isoformat() if m.deferred_until else None,
            }
            for m in submission.materials
        ],
        "pages": [
            {
                "material_id": p.material_id,
                "page": p.page,
                "sha256": hashlib.sha256(p.jpeg).hexdigest(),
            }
            for p in pages
        ],
        "terminal_id": submission.terminal_id,
        "submitted_at": submission.submitted_at.isoformat(),
    }
    boundary = _boundary(pages)
    delimiter = b"--" + boundary.encode("ascii")
    chunks = [
        delimiter,
        b'\r\nContent-Disposition: form-data; name="submission"'
        b"\r\nContent-Type: application/json\r\n\r\n",
        json.dumps(fields, ensure_ascii=False).encode("utf-8"),
    ]
    for index, page in enumerate(pages, start=1):
        chunks += [
            b"\r\n" + delimiter,
            b'\r\nContent-Disposition: form-data; name="page"; filename="page-%02d.jpg"' % index,
            b"\r\nContent-Type: image/jpeg\r\n\r\n",
            page.jpeg,
        ]
    chunks.append(b"\r\n" + delimiter + b"--\r\n")
    body = b"".join(chunks)
    if len(body) > MAX_SUBMISSION_BYTES:
        raise ValueError(f"the submission is larger than {MAX_SUBMISSION_BYTES} bytes")
    return body, f"multipart/form-data; boundary={boundary}"


def _boundary(pages: tuple[Any, ...]) -> str:
    """A boundary found in no page. 128 random bits make a clash a non-event, but a page is
    arbitrary bytes, so it is checked rather than trusted."""
    while True:
        boundary = "kiosk-" + secrets.token_hex(16)
        if not any(boundary.encode("ascii") in page.jpeg for page in pages):
            return boundary


def _read_document(body: bytes) -> _DocumentAnswer:
    try:
        return _DocumentAnswer.model_validate_json(body)
    except ValidationError:
        pass
    # Raised outside the handler: the validation error quotes the answer, which may echo the ID
    # number, so it must not hang off this error even as its suppressed context.
    raise HubError("hub sent an unreadable document", reason="bad_answer")


def _refusal_or_error(status: int, body: bytes) -> HubError:
    if status in _REFUSAL_STATUSES:
        try:
            code = _ErrorAnswer.model_validate_json(body).error
        except ValidationError:
            code = None
        # No error code means the answer came from something else (a proxy's HTML 404
        # because the base URL is wrong), not from the hub refusing this person.
        if code is not None:
            reason = code if code in REFUSAL_REASONS else ErrandRefused.reason
            refusal = _TYPED_REFUSALS.get(reason, ErrandRefused)
            return refusal(f"hub refused: {reason}", reason=reason)
    return HubError(f"hub answered HTTP {status}", reason="bad_answer")


def _describe(exc: BaseException) -> str:
    # A lookup error first: asyncio may wrap it, and its own message names the host.
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, _LookupsStuck):
            return "name lookups not answering"
        if isinstance(seen, socket.gaierror):
            return "hub name not resolved"
        seen = seen.__cause__ or seen.__context__
    return describe(exc)


class _LookupsStuck(socket.gaierror):
    """Too many earlier lookups are still waiting for the resolver to answer."""


class _HubLoop(asyncio.SelectorEventLoop):
    """An event loop whose name lookups run on daemon threads, so a hung one can be abandoned.

    asyncio resolves names in its default executor, whose threads the interpreter joins at exit
    (and ``asyncio.run`` on return): a resolver that never answers would hold every later
    lookup's worker and the terminal's shutdown for as long as the resolver's own timeout. A
    call cancelled at its deadline leaves its daemon thread behind; a few may wait at once.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lookups = threading.BoundedSemaphore(_MAX_PENDING_LOOKUPS)
        self._winding_down: asyncio.Task[None] | None = None  # held: tasks are weakly referenced

    def serve(self) -> None:
        """The ``hub-io`` thread: run until wound down, then close."""
        try:
            self.run_forever()
        finally:
            self.close()

    def wind_down_soon(self) -> None:
        """Cancel the calls in flight and stop; never blocks the caller.

        Safe from any thread: the garbage collector may call it on another adapter's loop.
        """
        with contextlib.suppress(RuntimeError):  # already closed
            self.call_soon_threadsafe(self._start_winding_down)

    def _start_winding_down(self) -> None:
        if self._winding_down is None:
            self._winding_down = self.create_task(self._wind_down())

    async def _wind_down(self) -> None:
        try:
            async with asyncio.timeout(_CLOSE_WAIT_S):
                calls = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for call in calls:
                    call.cancel()
                await asyncio.gather(*calls, return_exceptions=True)
                await self.shutdown_asyncgens()
        except Exception:  # a stuck close must not keep the thread running
            log.warning("hub adapter did not close its connections in time")
        finally:
            self.stop()

    async def getaddrinfo(
        self,
        host: bytes | str | None,
        port: bytes | str | int | None,
        *,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> _AddressInfo:
        if not self._lookups.acquire(blocking=False):
            raise _LookupsStuck(socket.EAI_AGAIN, "earlier name lookups still unanswered")
        found: asyncio.Future[_AddressInfo] = self.create_future()

        def settle(result: _AddressInfo | None, error: Exception | None) -> None:
            if found.done():  # the call was cancelled at its deadline
                return
            if error is not None:
                found.set_exception(error)
            else:
                found.set_result(result or [])

        def resolve() -> None:
            result: _AddressInfo | None = None
            error: Exception | None = None
            try:
                result = socket.getaddrinfo(host, port, family, type, proto, flags)
            except Exception as exc:  # handed to the waiting call, which maps it
                error = exc
            finally:
                self._lookups.release()
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                self.call_soon_threadsafe(settle, result, error)

        threading.Thread(target=resolve, name="hub-dns", daemon=True).start()
        return await found
