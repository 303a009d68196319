"""A strict reader of multipart/form-data bodies (RFC 7578) for the simulated hub's submissions.

Written by hand over bytes rather than through ``email``'s feed parser: that parser is lenient by
design (a missing closing delimiter, a part without headers, a body that is no multipart at all
all come out as something), decodes binary parts through surrogate escapes, and cannot be told to
stop at a number of parts. Here the body is already capped in size by the caller; this caps the
parts and each part's header block, and refuses anything not framed exactly, with a
``BodyRefused`` whose message never quotes the body. Only the small header block of each part
goes through ``email`` (for its parameter syntax: quoting, RFC 2231).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import collapse_rfc2231_value
from http import HTTPStatus

from simulator.json_body import BodyRefused

MAX_HEADER_BYTES = 1024  # a part's headers: a disposition and a type
# RFC 2046: 1-70 characters from this set, not ending in a space.
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_CRLF = b"\r\n"


@dataclass(frozen=True, repr=False)
class Part:
    """One part of a form: its field name, media type and content (possibly personal)."""

    name: str
    content_type: str
    data: bytes

    def __repr__(self) -> str:
        return f"Part({self.name!r}, {self.content_type!r}, <{len(self.data)} bytes>)"


def boundary_of(content_type: str) -> str:
    """The boundary of a ``multipart/form-data`` Content-Type; 415 for another type, 400 if bad."""
    header = Message()
    header["Content-Type"] = content_type
    if header.get_content_type() != "multipart/form-data":
        raise BodyRefused(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send the submission as multipart/form-data"
        )
    boundary = header.get_boundary()
    if boundary is None or not _BOUNDARY.fullmatch(boundary):
        raise _bad("multipart/form-data needs a boundary of 1-70 allowed characters")
    return boundary


def parse_form(body: bytes, boundary: str, *, max_parts: int) -> list[Part]:
    """The parts of a form in order; BodyRefused (400) unless framed exactly per RFC 7578."""
    delimiter = b"--" + boundary.encode("ascii")
    if not body.startswith(delimiter):
        # A preamble is legal MIME but no HTTP client sends one; refusing it keeps this simple.
        raise _bad("multipart body must start with its boundary")
    parts: list[Part] = []
    position = len(delimiter)
    while True:
        if body.startswith(b"--", position):
            break  # the closing delimiter; what follows (an epilogue) is ignored
        if not body.startswith(_CRLF, position):
            raise _bad("multipart boundary not followed by a line break")
        if len(parts) == max_parts:
            raise _bad(f"multipart body has more than {max_parts} parts")
        head_start = position + 2
        head_end = body.find(_CRLF + _CRLF, head_start, head_start + MAX_HEADER_BYTES + 4)
        if head_end < 0:
            raise _bad(f"multipart part headers missing or longer than {MAX_HEADER_BYTES} bytes")
        content_start = head_end + 4
        content_end = body.find(_CRLF + delimiter, content_start)
        if content_end < 0:
            raise _bad("multipart body ends without its closing boundary")
        parts.append(_part(body[head_start : head_end + 2], body[content_start:content_end]))
        position = content_end + 2 + len(delimiter)
    return parts


def _part(head: bytes, data: bytes) -> Part:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("multipart part headers are not UTF-8 text") from None
    headers = BytesHeaderParser().parsebytes(head + _CRLF)
    if headers.defects or len(headers.get_all("Content-Disposition") or ()) != 1:
        raise _bad("each multipart part needs one Content-Disposition header")
    if headers.get_content_disposition() != "form-data":
        raise _bad("multipart parts must be form-data")
    name = headers.get_param("name", header="content-disposition")
    if name is None:
        raise _bad("multipart part without a name")
    if len(headers.get_all("Content-Type") or ()) > 1:
        raise _bad("multipart part with two Content-Type headers")
    # RFC 7578: a part without a Content-Type is text/plain.
    return Part(collapse_rfc2231_value(name), headers.get_content_type(), data)


def _bad(message: str) -> BodyRefused:
    return BodyRefused(HTTPStatus.BAD_REQUEST, message)
