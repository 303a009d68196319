"""The codes the terminal scans: the progress and appointment URLs it prints, and e-ID codes."""

from __future__ import annotations

import base64
import enum
import hashlib
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

# A case number (SB20261207000123) or a terminal's local reference (L-T0001-20261207-0007, whose
# terminal id may hold . _ : and be 64 characters long); an appointment code follows the same
# rule. Nothing here needs percent-encoding in a URL path.
REFERENCE_PATTERN: Final = r"[A-Za-z0-9][A-Za-z0-9._:-]{5,89}"
_REFERENCE = re.compile(REFERENCE_PATTERN)

CHECK_LENGTH: Final = 4
_CHECK = re.compile(r"[A-Z2-7]{4}")  # base32's alphabet

# Longer than any URL we print with a reasonable base; a QR code holding more is not ours, and
# urlsplit never sees a megabyte of junk.
MAX_CODE_CHARS: Final = 512

_SCHEMES: Final = frozenset({"http", "https"})
_API_VERSION: Final = "v1"


class CodeKind(enum.StrEnum):
    """What a scanned code leads to."""

    PROGRESS = "progress"  # a case's progress (办件进度), from a submission receipt
    APPOINTMENT = "appointment"  # a booked appointment (预约), from an appointment slip
    # An e-ID code (电子社保卡 / 一码办) on the resident's phone: identifies them once the hub has
    # resolved it. Never printed by a terminal, so it has no URL form and no check of ours.
    E_ID = "e_id"


# The kinds a terminal prints, and so ``parse_code`` gives back.
PRINTED_KINDS: Final = frozenset({CodeKind.PROGRESS, CodeKind.APPOINTMENT})


# The path segment of each kind: part of the contract, as printed on paper already out there.
_SEGMENT: Final = {CodeKind.PROGRESS: "progress", CodeKind.APPOINTMENT: "appointments"}
_KIND_OF_SEGMENT: Final = {segment: kind for kind, segment in _SEGMENT.items()}


@dataclass(frozen=True)
class PrintedCode:
    """A code the terminal (this one or another of the same hub) printed."""

    kind: CodeKind
    reference: str  # the case number, local reference or appointment code


def check_code(kind: CodeKind, reference: str) -> str:
    """The 4-character check of a code: base32 of sha256("kiosk-<kind>:<reference>").

    Not a secret and not a signature: it tells our codes from foreign or damaged ones (about one
    in a million passes by chance), never a forger from a resident. The kind is hashed in, so a
    progress code's check does not validate the same reference as an appointment.
    """
    digest = hashlib.sha256(f"kiosk-{kind.value}:{reference}".encode()).digest()
    return base64.b32encode(digest)[:CHECK_LENGTH].decode("ascii")


def is_reference(reference: str) -> bool:
    """True if ``reference`` can go into a printed code (6-40 of A-Z a-z 0-9 -)."""
    return isinstance(reference, str) and _REFERENCE.fullmatch(reference) is not None


def progress_url(base_url: str, reference: str) -> str:
    """``{base}/v1/progress/{reference}?c={check}``, printed as the receipt's QR code."""
    return _url(CodeKind.PROGRESS, base_url, reference)


def appointment_url(base_url: str, code: str) -> str:
    """``{base}/v1/appointments/{code}?c={check}``, printed as the appointment slip's QR code."""
    return _url(CodeKind.APPOINTMENT, base_url, code)


def _url(kind: CodeKind, base_url: str, reference: str) -> str:
    if not is_reference(reference):
        raise ValueError(f"a {kind.value} reference must be 6-40 characters of A-Z a-z 0-9 -")
    base = _checked_base(base_url)
    return f"{base}/{_API_VERSION}/{_SEGMENT[kind]}/{reference}?c={check_code(kind, reference)}"


def _checked_base(base_url: str) -> str:
    # Refused here rather than printed: a code parse_code would not take back is worse than none.
    base = base_url.rstrip("/")
    parts = urlsplit(base)
    if (
        parts.scheme not in _SCHEMES
        or not parts.hostname
        or parts.username is not None
        or parts.query
        or parts.fragment
        or base.endswith("?")
        or base.endswith("#")
        or not _clean_prefix(parts.path)
        or not base.isascii()
        or any(char.isspace() or not char.isprintable() for char in base)
    ):
        raise ValueError("base URL must be http(s)://host[:port][/path] without query or fragment")
    return base


def _clean_prefix(path: str) -> bool:
    """A base URL's own path: empty, or segments that are neither empty nor dot segments."""
    if not path:
        return True
    segments = path.split("/")
    return segments[0] == "" and all(s not in ("", ".", "..") for s in segments[1:])


def parse_code(text: str) -> PrintedCode | None:
    """The printed code ``text`` is, or None: any host (a receipt from another terminal of the
    same hub must work), but http(s), the exact path and query we print, and the right check."""
    if not isinstance(text, str) or not 0 < len(text) <= MAX_CODE_CHARS or not text.isascii():
        return None
    if any(char.isspace() or not char.isprintable() for char in text):
        return None
    try:
        parts = urlsplit(text)
        hostname = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number in range
    except ValueError:
        return None
    if parts.scheme not in _SCHEMES or not hostname or parts.username is not None:
        return None
    # Nothing but what we print: no fragment, and the query exactly c=<check>.
    if parts.fragment or "#" in text or not parts.query.startswith("c="):
        return None
    check = parts.query[2:]
    if not _CHECK.fullmatch(check):
        return None
    segments = parts.path.split("/")
    if len(segments) < 4 or not _clean_prefix("/".join(segments[:-3])):
        return None
    version, segment, reference = segments[-3:]
    kind = _KIND_OF_SEGMENT.get(segment)
    if version != _API_VERSION or kind is None or not is_reference(reference):
        return None
    if check != check_code(kind, reference):
        return None
    return PrintedCode(kind, reference)


# --- e-ID codes -----------------------------------------------------------------------------------
#
# ``EID1:`` then a token of 22-64 characters of base64url's alphabet (A-Z a-z 0-9 _ -), nothing
# else, case as issued. The hub makes the token at random (at least 128 bits) and alone knows
# whom it stands for, until when, and whether it was used: the token is opaque, and nothing on
# the terminal decodes it or reads anything from it. The prefix tells it from a printed code (a
# URL) and from anything else a scanner may read, and its version digit leaves room for another
# form later; a code of another form is not sent to the hub at all.

E_ID_PREFIX: Final = "EID1:"
E_ID_TOKEN_PATTERN: Final = r"[A-Za-z0-9_-]{22,64}"
E_ID_PATTERN: Final = re.escape(E_ID_PREFIX) + E_ID_TOKEN_PATTERN
_E_ID = re.compile(E_ID_PATTERN)


def is_e_id_code(text: str) -> bool:
    """True if ``text`` is exactly an e-ID code's form (blanks around it are the caller's to
    strip); says nothing of whether the hub issued it or it is still valid."""
    # fullmatch, not match with $: "$" would take a code followed by a newline.
    return isinstance(text, str) and _E_ID.fullmatch(text) is not None
