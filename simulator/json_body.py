"""Reads the JSON body of a request to a simulator server (hub, control panel), bounded throughout.

Python's ``json`` takes too much on trust for a server: nesting a thousand brackets deep raises
RecursionError, an integer of 4,301 digits raises a bare ValueError, ``NaN`` and ``1e999`` pass as
numbers, a duplicate key silently wins, ``"\\ud800"`` decodes to a string no UTF-8 writer (SQLite,
the answer's own encoder) can take, and bytes in UTF-16 are read without a word. Each of those was
a 500, a dropped connection or a silent misreading here. Every limit is checked before or while
parsing, and every refusal is a ``BodyRefused`` carrying the HTTP status and a message that quotes
at most a field name, never a value.
"""

from __future__ import annotations

import json
import math
import re
from email.message import Message
from http import HTTPStatus
from io import BufferedIOBase
from typing import cast

MAX_BODY_BYTES = 64 * 1024
# Our bodies are flat objects; a few levels leave room for a future nested field, and the bound
# keeps json's recursion (and ours) far from the interpreter's limit on any thread.
MAX_DEPTH = 16
# Far above any count, port or level a request carries, far below Python's 4,300-digit limit.
MAX_INTEGER_DIGITS = 20
_SHOWN_KEY_CHARS = 40

# A whole string (escapes included; an unterminated one runs to the end), or one bracket.
_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[{]|[\]}]', re.DOTALL)
_OPENERS = frozenset("[{")


class BodyRefused(Exception):
    """A body the server will not read: the HTTP status to answer and why, for the client."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def read_body(
    headers: Message, rfile: BufferedIOBase, *, max_bytes: int = MAX_BODY_BYTES, required: bool
) -> bytes:
    """Exactly the Content-Length bytes of the request; ``required=False``: no header is empty.

    The caller must close the connection after a refusal: what is left of the body is unread.
    """
    if headers.get("Transfer-Encoding") is not None:
        raise BodyRefused(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length")
    values = {value.strip() for value in headers.get_all("Content-Length") or ()}
    if not values:
        if required:
            raise BodyRefused(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length")
        return b""
    if len(values) > 1:
        raise BodyRefused(HTTPStatus.BAD_REQUEST, "Content-Length headers disagree")
    [text] = values
    # int() would also take "+5", "5_0" and non-ASCII digits; a length is plain ASCII digits.
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise BodyRefused(HTTPStatus.BAD_REQUEST, "Content-Length is not a valid length")
    length = int(text)
    if length > max_bytes:
        raise BodyRefused(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"request body larger than {max_bytes} bytes"
        )
    try:
        body = rfile.read(length)
    except (TimeoutError, OSError):
        raise BodyRefused(
            HTTPStatus.REQUEST_TIMEOUT,
            f"request body stopped before the {length} bytes its Content-Length announced",
        ) from None
    if len(body) < length:
        raise BodyRefused(
            HTTPStatus.BAD_REQUEST,
            f"request body ended after {len(body)} of the {length} bytes its Content-Length "
            "announced",
        )
    return body


def parse_json_object(raw: bytes, *, max_bytes: int = MAX_BODY_BYTES) -> dict[str, object]:
    """The body as a JSON object of UTF-8 text; BodyRefused (400 or 413) for anything else."""
    if len(raw) > max_bytes:
        raise BodyRefused(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"request body larger than {max_bytes} bytes"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        raise _bad(f"request body is not UTF-8 text (byte {bad.start})") from None
    _check_depth(text)
    try:
        value = json.loads(
            text,
            parse_int=_integer,
            parse_float=_finite_float,
            parse_constant=_no_constant,
            object_pairs_hook=_object_without_duplicates,
        )
    except json.JSONDecodeError as bad:
        # Its message names the line and column, never the content.
        raise _bad(f"request body is not valid JSON: {bad}") from None
    if not isinstance(value, dict):
        raise _bad("request body must be a JSON object")
    _check_text(value)
    return cast(dict[str, object], value)


def _bad(message: str) -> BodyRefused:
    return BodyRefused(HTTPStatus.BAD_REQUEST, message)


def _check_depth(text: str) -> None:
    depth = 0
    for match in _STRUCTURE.finditer(text):
        token = match.group()
        if token in _OPENERS:
            depth += 1
            if depth > MAX_DEPTH:
                raise _bad(f"request body is nested deeper than {MAX_DEPTH} levels")
        elif token in "]}":
            depth -= 1


def _integer(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise _bad(f"request body holds an integer of more than {MAX_INTEGER_DIGITS} digits")
    return int(digits)


def _finite_float(text: str) -> float:
    number = float(text)
    # 1e999 parses to inf; no field of ours means an infinite number.
    if not math.isfinite(number):
        raise _bad("request body holds a number too large to be finite")
    return number


def _no_constant(name: str) -> float:
    # json accepts NaN, Infinity and -Infinity by default; they are not JSON.
    raise _bad(f"request body is not valid JSON: {name} is not a JSON number")


def _object_without_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            # Which of two values counts is not defined by JSON; refusing says so.
            shown = key if len(key) <= _SHOWN_KEY_CHARS else key[:_SHOWN_KEY_CHARS] + "…"
            raise _bad(f"request body names the field {shown!r} twice")
        result[key] = value
    return result


def _check_text(value: object) -> None:
    """Every key and string is Unicode text: JSON's \\ud800 escape decodes to a lone surrogate."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise _bad(
                    "request body holds a lone surrogate escape (such as \\ud800), "
                    "which is not text"
                ) from None
