"""The terminal's content (catalogue, notices, holidays): loaded so that a bad file never stops it.

Each file is read from the content directory and checked in full. A good one is kept as the new
*last good* copy under the state directory; a missing, unreadable or invalid one is replaced by the
last good copy, or failing that by what the package ships (the catalogue) or an empty board (the
notices). Every such replacement is a ``ContentProblem``: the terminal reports it as a
``content_invalid`` event and as the ``content`` row of its heartbeat, and keeps serving. Only a
catalogue with no usable copy at all stops start-up (``ContentError``).
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from contracts.personal import screen_event_fields
from devices.base import DeviceState
from flows.catalogue import Catalogue, CatalogueError, parse_catalogue
from flows.clock import CHINA_ZONE
from flows.event_names import EventType
from flows.notices import NoticeError, Notices, parse_notices
from flows.steps import RecordEvent
from flows.working_days import CalendarError, WorkingCalendar, parse_calendar
from terminal.state_file import write_atomic

log = logging.getLogger(__name__)

PACKAGED_CONTENT_DIR = Path(__file__).parent / "content"
CATALOGUE_FILE = "catalogue.toml"
NOTICES_FILE = "notices.toml"
HOLIDAYS_FILE = "holidays.toml"
# A content file is text a person edits; megabytes of it are a wrong file, not content, and would
# only slow start-up down.
MAX_CONTENT_BYTES = 4 * 1024 * 1024
CONTENT_INVALID = "content_invalid"  # the heartbeat reason of the content row, as the event type

_T = TypeVar("_T")


class ContentError(Exception):
    """No usable catalogue at all, not even the packaged one: the terminal cannot start."""


class ProblemCode(enum.StrEnum):
    """What was wrong with a content file; a stable code for events and heartbeats."""

    MISSING = "missing"
    UNREADABLE = "unreadable"
    TOO_LARGE = "too_large"
    NOT_UTF8 = "not_utf8"
    BAD_TOML = "bad_toml"
    INVALID = "invalid"  # well-formed TOML that the parser refused


class Fallback(enum.StrEnum):
    """What the terminal uses instead of a bad content file."""

    LAST_GOOD = "last_good"
    PACKAGED = "packaged"
    EMPTY = "empty"


_USING = {
    Fallback.LAST_GOOD: "the last good copy",
    Fallback.PACKAGED: "the packaged copy",
    Fallback.EMPTY: "an empty notice board",
}


@dataclass(frozen=True)
class ContentProblem:
    """A content file the terminal could not use: which, why, and what it shows instead.

    ``message`` is for the log and a technician: the file's own text (the parser may quote a
    content value, which is public text) and positions, never personal data or a traceback.
    """

    file: str
    code: ProblemCode
    message: str
    fallback: Fallback
    at: str = ""  # where in the file, when the parser said (``items[1].guide.fees.en``)

    def event(self) -> RecordEvent:
        """The ``content_invalid`` event operations see, its fields screened like any other."""
        fields: dict[str, object] = {
            "file": self.file,
            "problem": self.code.value,
            "fallback": self.fallback.value,
        }
        if self.at:
            fields["at"] = self.at
        screened = screen_event_fields(fields)
        for problem in screened.problems:
            log.warning("content_invalid event: dropped a field: %s", problem)
        kept = {key: value for key, value in screened.kept.items() if value is not None}
        return RecordEvent(EventType.CONTENT_INVALID, "warning", kept)


@dataclass(frozen=True)
class LoadedContent:
    """What the terminal runs with, and every file it had to replace on the way."""

    catalogue: Catalogue
    notices: Notices
    problems: tuple[ContentProblem, ...] = ()
    # Working days and holidays; without a usable file, weekends only and dates flagged estimated.
    calendar: WorkingCalendar = field(default_factory=WorkingCalendar)

    def translations(self) -> dict[str, dict[str, str]]:
        """Catalogue and notice texts together, for ``Translator.load(..., extra=...)``."""
        tables: dict[str, dict[str, str]] = {}
        for source in (self.catalogue.translations(), self.notices.translations()):
            for lang, entries in source.items():
                tables.setdefault(lang, {}).update(entries)
        return tables

    def events(self) -> tuple[RecordEvent, ...]:
        """One ``content_invalid`` event per problem, to record at start-up."""
        return tuple(problem.event() for problem in self.problems)

    def health(self) -> DeviceState:
        """The content as a device for heartbeats: degraded while any file was replaced (still
        serving, but someone must fix the file), else ok."""
        return DeviceState.degraded(CONTENT_INVALID) if self.problems else DeviceState.ok()


def load_content(
    content_dir: Path,
    state_dir: Path,
    *,
    flows: frozenset[str] | None = None,
    zone: dt.tzinfo = CHINA_ZONE,
    packaged_dir: Path = PACKAGED_CONTENT_DIR,
) -> LoadedContent:
    """Load the catalogue and notices from ``content_dir``, falling back file by file.

    ``flows``: the flow names the terminal has, so an item naming another is refused at start-up.
    ``zone``: where notice times written without an offset are read. ``packaged_dir``: the
    content shipped with the package, the catalogue's last resort. Raises ContentError only when
    no catalogue can be had at all.
    """
    last_good_dir = state_dir / "content" / "last-good"
    problems: list[ContentProblem] = []

    def report(name: str, refused: _Refused, fallback: Fallback) -> None:
        problems.append(ContentProblem(name, refused.code, refused.message, fallback, refused.at))
        log.warning("content %s: %s; using %s", name, refused.message, _USING[fallback])

    def catalogue_from(data: Mapping[str, Any]) -> Catalogue:
        # The flows check is passed only when asked for, so this works with a parser without it.
        return parse_catalogue(data) if flows is None else parse_catalogue(data, flows=flows)

    def notices_from(data: Mapping[str, Any]) -> Notices:
        return parse_notices(data, zone=zone)

    catalogue: Catalogue
    loaded_catalogue = _load_file(content_dir, last_good_dir, CATALOGUE_FILE, catalogue_from)
    if isinstance(loaded_catalogue, _Refused):
        catalogue = _packaged_catalogue(content_dir, packaged_dir, catalogue_from, loaded_catalogue)
        report(CATALOGUE_FILE, loaded_catalogue, Fallback.PACKAGED)
    else:
        catalogue, refused = loaded_catalogue
        if refused is not None:
            report(CATALOGUE_FILE, refused, Fallback.LAST_GOOD)
    notices: Notices
    loaded_notices = _load_file(content_dir, last_good_dir, NOTICES_FILE, notices_from)
    if isinstance(loaded_notices, _Refused):
        notices = Notices()  # an empty board: the attract screen shows only its call to action
        report(NOTICES_FILE, loaded_notices, Fallback.EMPTY)
    else:
        notices, refused = loaded_notices
        if refused is not None:
            report(NOTICES_FILE, refused, Fallback.LAST_GOOD)
    calendar: WorkingCalendar
    loaded_calendar = _load_file(content_dir, last_good_dir, HOLIDAYS_FILE, parse_calendar)
    if isinstance(loaded_calendar, _Refused):
        calendar = _packaged_calendar(content_dir, packaged_dir)
        # Content made before the calendar existed has no such file: the packaged calendar is
        # the official one, so that is no problem to report. A broken file is.
        if loaded_calendar.code is not ProblemCode.MISSING or not calendar.covered_years:
            report(HOLIDAYS_FILE, loaded_calendar,
                   Fallback.PACKAGED if calendar.covered_years else Fallback.EMPTY)
    else:
        calendar, refused = loaded_calendar
        if refused is not None:
            report(HOLIDAYS_FILE, refused, Fallback.LAST_GOOD)
    return LoadedContent(catalogue=catalogue, notices=notices, problems=tuple(problems),
                         calendar=calendar)


class _Refused(Exception):
    """Why a copy of a content file cannot be used."""

    def __init__(self, code: ProblemCode, message: str, at: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.at = at


def _load_file(
    content_dir: Path,
    last_good_dir: Path,
    name: str,
    parse: Callable[[Mapping[str, Any]], _T],
) -> tuple[_T, _Refused | None] | _Refused:
    """The file from ``content_dir`` (saved as the new last good copy) and None; if it is
    refused, its last good copy and why; with no usable last good copy either, only why."""
    try:
        text, value = _read_and_parse(content_dir / name, parse)
    except _Refused as refused:
        why = refused
    else:
        _save_last_good(last_good_dir / name, text)
        return value, None
    try:
        return _read_and_parse(last_good_dir / name, parse)[1], why
    except _Refused as refused:
        if refused.code is not ProblemCode.MISSING:
            # A last good copy this software refuses (say a flow it names is gone): go on to the
            # next fallback, and leave a trace for the technician.
            log.warning("content %s: the last good copy is unusable too: %s",
                        name, refused.message)
        return why


def _packaged_calendar(content_dir: Path, packaged_dir: Path) -> WorkingCalendar:
    """The holiday calendar shipped with the package, else weekends only (never no terminal:
    promised dates are then printed as estimates)."""
    if packaged_dir.resolve() != content_dir.resolve():
        try:
            return _read_and_parse(packaged_dir / HOLIDAYS_FILE, parse_calendar)[1]
        except _Refused as refused:
            log.error("content %s: the packaged copy is unusable: %s", HOLIDAYS_FILE,
                      refused.message)
    return WorkingCalendar()


def _packaged_catalogue(
    content_dir: Path,
    packaged_dir: Path,
    parse: Callable[[Mapping[str, Any]], Catalogue],
    why: _Refused,
) -> Catalogue:
    """The catalogue shipped with the package; ContentError when even that cannot be used."""
    if packaged_dir.resolve() != content_dir.resolve():  # else it is the file just refused
        try:
            return _read_and_parse(packaged_dir / CATALOGUE_FILE, parse)[1]
        except _Refused as refused:
            log.error("content %s: the packaged copy is unusable: %s",
                      CATALOGUE_FILE, refused.message)
    raise ContentError(
        f"{CATALOGUE_FILE}: {why.message}; there is no last good copy and no usable packaged one"
    )


def _read_and_parse(path: Path, parse: Callable[[Mapping[str, Any]], _T]) -> tuple[str, _T]:
    """The file's text and what ``parse`` made of it; _Refused says why it cannot be used."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_CONTENT_BYTES + 1)
    except FileNotFoundError:
        raise _Refused(ProblemCode.MISSING, "the file is missing") from None
    except OSError as e:
        raise _Refused(ProblemCode.UNREADABLE, f"cannot be read: {e.strerror}") from None
    if len(raw) > MAX_CONTENT_BYTES:
        raise _Refused(ProblemCode.TOO_LARGE, f"larger than {MAX_CONTENT_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise _Refused(
            ProblemCode.NOT_UTF8, f"not UTF-8 text (line {line}, byte {e.start}); save it as UTF-8"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        # The decoder's message names the line and column, never the text itself.
        raise _Refused(ProblemCode.BAD_TOML, f"not valid TOML: {e}") from None
    try:
        return text, parse(data)
    except (CatalogueError, NoticeError, CalendarError) as e:
        raise _Refused(ProblemCode.INVALID, str(e), e.path) from None


def _save_last_good(path: Path, text: str) -> None:
    """Keep ``text`` as the last good copy; unchanged copies are not rewritten (flash wear)."""
    try:
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text)
    except (OSError, UnicodeDecodeError) as e:
        # The content in use is good; only the safety copy is stale. The storage's own health
        # shows a full or failing disk in the heartbeat.
        reason = e.strerror if isinstance(e, OSError) else "not UTF-8"
        log.warning("content %s: could not save the last good copy: %s", path.name, reason)
