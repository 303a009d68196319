"""Public notices (政务公开) on the attract screen: the model, its parser, and which one shows when.

The terminal reads ``notices.toml`` (beside the catalogue) into a plain dict and hands it to
``parse_notices``; the result is immutable. Each notice is valid from ``valid_from`` (inclusive)
until ``valid_until`` (exclusive). What the screen shows at an instant is a pure function of that
instant (``Notices.showing``), so the UI, the automation API and tests agree without sharing a
timer; ``Notices.next_change`` says when to look again, so an expired notice leaves the glass on
time rather than at the next rotation. Texts reach the UI through ``Notices.translations()`` under
``notices.<id>.title`` and ``notices.<id>.body``, like every other text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flows.catalogue import LANGUAGES
from flows.clock import CHINA_ZONE
from flows.content_table import ContentTable, Localised

# Ids become translation keys (``notices.<id>.title``): one plain segment, as catalogue ids.
MAX_PRIORITY = 999
# The attract screen gives a notice a title line and a short paragraph beside the call to action;
# longer text would be cut off on the 7-inch screen, so the file is refused instead.
TITLE_MAX_CHARS = 60
BODY_MAX_CHARS = 400
DEFAULT_PERIOD_S = 10.0
# Rotation slots are counted from a fixed origin, not from start-up, so two screens (or a test and
# the UI) that ask about the same instant get the same notice.
_ROTATION_ORIGIN = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


class NoticeError(ValueError):
    """The notices file is wrong; ``path`` says where (``notices[2].valid_until``)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem


@dataclass(frozen=True)
class Notice:
    """One public notice; ``urgent`` ones (a maintenance window) push every other one aside."""

    id: str
    title: Localised
    body: Localised
    valid_from: dt.datetime  # aware; shown from this instant on
    valid_until: dt.datetime  # aware; gone at this instant
    priority: int = 0  # higher shows first
    urgent: bool = False

    def __post_init__(self) -> None:
        for when in (self.valid_from, self.valid_until):
            _require_aware(when)
        if self.valid_until <= self.valid_from:
            raise ValueError(f"notice {self.id!r}: valid_until must be after valid_from")

    @property
    def title_key(self) -> str:
        return f"notices.{self.id}.title"

    @property
    def body_key(self) -> str:
        return f"notices.{self.id}.body"

    def valid_at(self, now: dt.datetime) -> bool:
        return self.valid_from <= now < self.valid_until


@dataclass(frozen=True)
class Notices:
    """The notice board: every notice in the file, most important first (priority, then file
    order), whether valid now or not; ``showing`` picks what the screen shows at an instant."""

    notices: tuple[Notice, ...] = ()
    version: str = ""

    def notice(self, notice_id: str) -> Notice | None:
        return next((n for n in self.notices if n.id == notice_id), None)

    def valid_at(self, now: dt.datetime) -> tuple[Notice, ...]:
        """The notices in force at ``now``, in board order."""
        _require_aware(now)
        return tuple(n for n in self.notices if n.valid_at(now))

    def rotation(self, now: dt.datetime) -> tuple[Notice, ...]:
        """What rotates at ``now``: the urgent notices in force if there are any (an urgent one
        stays up until it expires), else every notice in force; in board order."""
        valid = self.valid_at(now)
        urgent = tuple(n for n in valid if n.urgent)
        return urgent or valid

    def showing(self, now: dt.datetime, *, period_s: float = DEFAULT_PERIOD_S) -> Notice | None:
        """The notice on the attract screen at ``now``, each in turn for ``period_s``; None when
        nothing is in force (the screen then shows only its call to action)."""
        rotation = self.rotation(now)
        if not rotation:
            return None
        return rotation[_slot(now, period_s) % len(rotation)]

    def next_change(
        self, now: dt.datetime, *, period_s: float = DEFAULT_PERIOD_S
    ) -> dt.datetime | None:
        """The next instant after ``now`` at which ``showing`` may answer differently: the next
        rotation step (when more than one notice rotates) or the next ``valid_from`` /
        ``valid_until`` of any notice; None when the answer stays as it is for good.

        Not every such instant changes the answer (a notice starting behind an urgent one does
        not); refreshing then costs nothing, and missing an expiry would show a stale notice.
        """
        _require_aware(now)
        candidates = [
            edge
            for notice in self.notices
            for edge in (notice.valid_from, notice.valid_until)
            if edge > now
        ]
        if len(self.rotation(now)) > 1:
            period = _period(period_s)
            candidates.append(_ROTATION_ORIGIN + (_slot(now, period_s) + 1) * period)
        if not candidates:
            return None
        return min(candidates).astimezone(now.tzinfo)

    def translations(self) -> dict[str, dict[str, str]]:
        """``{lang: {key: text}}`` for every notice's title and body, for the UI's translator."""
        tables: dict[str, dict[str, str]] = {lang: {} for lang in LANGUAGES}
        for notice in self.notices:
            for lang in LANGUAGES:
                tables[lang][notice.title_key] = notice.title.get(lang)
                tables[lang][notice.body_key] = notice.body.get(lang)
        return tables


def _period(period_s: float) -> dt.timedelta:
    if not period_s > 0:
        raise ValueError("period_s must be positive")
    return dt.timedelta(seconds=period_s)


def _slot(now: dt.datetime, period_s: float) -> int:
    # timedelta // timedelta is exact integer arithmetic on microseconds: no float drift at the
    # edge of a slot, so a test at the boundary and the UI agree.
    _require_aware(now)
    return (now - _ROTATION_ORIGIN) // _period(period_s)


def _require_aware(when: dt.datetime) -> None:
    if when.tzinfo is None or when.utcoffset() is None:
        # A naive instant compared with aware ones raises deep inside; say what is wrong here.
        raise ValueError("notices need timezone-aware datetimes")


# --- parsing ----------------------------------------------------------------------------------


def parse_notices(data: Mapping[str, Any], *, zone: dt.tzinfo = CHINA_ZONE) -> Notices:
    """Build the board from the notices file's dict; NoticeError says what is wrong and where.

    ``zone``: where a date-time written without an offset (a TOML local date-time, as editors
    write them: ``2027-01-15T08:30:00``) is read, normally the terminal's configured zone.
    """
    root = ContentTable("", data, NoticeError)
    version = root.string("version") if root.has("version") else ""
    # No notices is a real state (nothing to announce), so an empty or absent list is allowed;
    # a misspelt ``[[notice]]`` is still caught as an unknown key.
    tables = root.tables("notices", empty=None, not_a_list="must be a list of tables ([[notices]])")
    notices = tuple(_parse_notice(table, zone) for table in tables)
    root.done()
    ids = [notice.id for notice in notices]
    for index, notice_id in enumerate(ids):
        if notice_id in ids[:index]:
            raise NoticeError(f"notices[{index}].id", f"{notice_id!r} appears twice")
    # Board order: priority, highest first; ties keep file order (sorted is stable).
    board = tuple(sorted(notices, key=lambda notice: -notice.priority))
    return Notices(notices=board, version=version)


def _parse_notice(table: ContentTable, zone: dt.tzinfo) -> Notice:
    notice_id = table.ident("id")
    title = table.localised("title", max_chars=TITLE_MAX_CHARS)
    body = table.localised("body", max_chars=BODY_MAX_CHARS)
    valid_from = _instant(table, "valid_from", zone)
    valid_until = _instant(table, "valid_until", zone)
    if valid_until <= valid_from:
        raise NoticeError(table.at("valid_until"), "must be after valid_from")
    priority = table.optional_integer("priority", default=0, minimum=0, maximum=MAX_PRIORITY)
    urgent = table.boolean("urgent", default=False)
    table.done()
    return Notice(
        id=notice_id,
        title=title,
        body=body,
        valid_from=valid_from,
        valid_until=valid_until,
        priority=priority,
        urgent=urgent,
    )


def _instant(table: ContentTable, key: str, zone: dt.tzinfo) -> dt.datetime:
    value = table.value(key)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            return value.replace(tzinfo=zone)  # a local date-time: the terminal's zone
        return value
    if isinstance(value, dt.date):
        # A bare date leaves open whether the day itself is included; make the editor say.
        raise table.fail(key, "needs a time of day too (2027-01-15T00:00:00), not only a date")
    if isinstance(value, str):
        raise table.fail(key, "must be a TOML date-time without quotes (2027-01-15T08:30:00)")
    raise table.fail(key, "must be a date-time (2027-01-15T08:30:00)")
