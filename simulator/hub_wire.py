"""The simulated hub's side of the wire: a request as the desks see it, answers, field readers.

Every refusal is an ``Answer`` with a stable ``error`` code and a message that names at most a
field, never a value: what a request carries may be personal (an ID number, a phone number).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from contracts.identifiers import IDENTIFIER_PATTERN
from flows.identity import InvalidIdNumber, validate_id_number
from simulator.json_body import BodyRefused, parse_json_object

CHINA_STANDARD_TIME = dt.timezone(dt.timedelta(hours=8), "CST")

MAX_JSON_BYTES = 64 * 1024
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)
# A terminal's local reference, ``L-<terminal id>-<yyyymmdd>-<nnnn>``: a terminal id of up to 64
# characters and the rest, so longer than an identifier.
REFERENCE_MAX_CHARS = 128
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")

# The hub API's error codes for a body it will not read (docs/hub-api.yaml).
_BODY_ERROR_CODES = {400: "bad_request", 408: "request_timeout", 411: "length_required",
                     413: "too_large", 415: "unsupported_media_type"}  # fmt: skip


@dataclass(frozen=True)
class Answer:
    """What the hub answers: an HTTP status, a JSON object and any headers of its own."""

    status: int
    body: dict[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


class RequestError(Exception):
    """A request the hub will not act on; carries the error answer, never the request's content."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.body["error"])
        self.answer = answer


def error(status: int, code: str, message: str) -> Answer:
    return Answer(status, {"error": code, "message": message})


def refuse(status: int, code: str, message: str) -> RequestError:
    return RequestError(error(status, code, message))


def body_refused(refusal: BodyRefused) -> RequestError:
    code = _BODY_ERROR_CODES.get(refusal.status, "bad_request")
    return refuse(refusal.status, code, refusal.message)


@dataclass(frozen=True)
class Request:
    """One request: its method, the path's segments (unquoted), the query and a way to its body.

    ``read_body(max_bytes)`` reads the whole body (Content-Length only) or raises RequestError;
    only a desk that takes a body calls it, with the cap of that endpoint.
    """

    method: str
    segments: tuple[str, ...]
    query: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    content_type: str = ""
    read_body: Callable[[int], bytes] = field(default=lambda _cap: b"", repr=False)

    def json(self) -> dict[str, Any]:
        """The body as a JSON object (bounded, see ``simulator.json_body``)."""
        try:
            return parse_json_object(self.read_body(MAX_JSON_BYTES), max_bytes=MAX_JSON_BYTES)
        except BodyRefused as refusal:
            raise body_refused(refusal) from None

    def one_query(self, name: str, bad: Answer) -> str:
        """The single value of a query parameter, or RequestError(bad) if absent or repeated."""
        values = self.query.get(name, ())
        if len(values) != 1:
            raise RequestError(bad)
        return values[0]


def require(method: str, expected: str) -> None:
    if method != expected:
        raise RequestError(
            Answer(
                405,
                {"error": "method_not_allowed", "message": f"use {expected}"},
                {"Allow": expected},
            )
        )


# --- fields of a JSON body; each raises RequestError(bad) rather than quote what it got -----------


def text(body: Mapping[str, Any], key: str, bad: Answer, *, max_chars: int = 64) -> str:
    """A non-empty string of at most ``max_chars`` without control characters."""
    value = body.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= max_chars:
        raise RequestError(bad)
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value):
        raise RequestError(bad)
    return value


def identifier(body: Mapping[str, Any], key: str, bad: Answer) -> str:
    """An id as contracts.identifiers defines it: 1-64 of A-Z a-z 0-9 . _ : - ."""
    value = body.get(key)
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise RequestError(bad)
    return value


def reference(body: Mapping[str, Any], key: str, bad: Answer) -> str:
    """A terminal's local reference: an identifier's characters, up to 128 of them."""
    value = body.get(key)
    if not isinstance(value, str) or not _REFERENCE.fullmatch(value):
        raise RequestError(bad)
    return value


def is_identifier(value: str) -> bool:
    return _IDENTIFIER.fullmatch(value) is not None


def aware_datetime(body: Mapping[str, Any], key: str, bad: Answer) -> dt.datetime:
    """An ISO 8601 date-time with an offset; one without is a time nobody can place."""
    raw = text(body, key, bad)
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise RequestError(bad) from None
    if value.tzinfo is None:
        raise RequestError(bad)
    return value


def iso_date(raw: object, bad: Answer) -> dt.date:
    """A calendar date written YYYY-MM-DD, nothing looser."""
    if not isinstance(raw, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        raise RequestError(bad)
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise RequestError(bad) from None


def id_number(body: Mapping[str, Any], bad: Answer) -> str:
    """The ``id_number`` field, validated (GB 11643); a bad one is 422 ``invalid_id``."""
    raw = body.get("id_number")
    if not isinstance(raw, str):
        raise RequestError(bad)
    try:
        return validate_id_number(raw)
    except InvalidIdNumber as invalid:
        # The reason (shape, birth_date, check_digit) helps staff; the number stays out.
        raise refuse(422, "invalid_id", f"ID number failed validation: {invalid.reason}") from None


def masked_phone(phone: str) -> str:
    """What the hub keeps of a phone number: the first 3 and last 4 digits (138****5678)."""
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:] if phone else ""


def iso(moment: dt.datetime) -> str:
    """A time as the hub writes it: in UTC+8, to the second."""
    return moment.astimezone(CHINA_STANDARD_TIME).replace(microsecond=0).isoformat()
