"""The working-day calendar: holidays and make-up days from content, promised dates, next days.

A day is a working day when it is a make-up working day (调休上班), or a Monday to Friday that is
not a public holiday (放假). The holidays and make-up days come from ``holidays.toml``, one table
per year copied from the State Council General Office's notice for that year; ``parse_calendar``
turns the file's dict into an immutable ``WorkingCalendar``.

How a promised date (承诺时限) is counted. Time limits of administrative licensing are counted in
working days, legal holidays excluded (行政许可法 art. 82: "本法规定的行政机关实施行政许可的期限
以工作日计算，不含法定节假日"), and a period counted in days does not count the day it starts:
it runs from the next day (民法典 art. 201: "按照年、月、日计算期间的，开始的当日不计入，自下一日
开始计算"). So a case received on day D with a limit of N working days is promised by the N-th
working day after D; D itself never counts, whether it is a working day or not (a Saturday at a
24-hour terminal). N = 0 is 即办: done on the day of receipt.

Outside the years the file covers the calendar falls back on weekends alone, which is wrong
around every holiday of those years. It never does so silently: ``covers`` says whether a day is
known, and ``promised_date`` / ``appointment_days`` return the years they had to guess in
(``Reckoning.uncovered_years``), so the caller can print "预计" and log it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from flows.content_table import ContentTable, Localised

SATURDAY = 5  # date.weekday(): Monday 0 .. Sunday 6
# A year outside this range in the file is a typo (2062 for 2026), not a plan.
FIRST_YEAR = 2000
LAST_YEAR = 2100
# The longest single holiday the State Council has ever given is 9 days (2026's Spring Festival);
# a range much longer than that is a mistyped date, which would silently close weeks of days.
MAX_HOLIDAY_DAYS = 14
NOTICE_MAX_CHARS = 120


class CalendarError(ValueError):
    """The holiday file is wrong; ``path`` says where (``years[0].holidays[1].last_day``)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem


@dataclass(frozen=True)
class Holiday:
    """One item of a year's notice: the days off (inclusive) and the weekend days worked."""

    id: str
    name: Localised
    first_day: dt.date
    last_day: dt.date
    make_up_days: tuple[dt.date, ...] = ()

    def __post_init__(self) -> None:
        if self.last_day < self.first_day:
            raise ValueError(f"holiday {self.id!r}: last_day is before first_day")

    @property
    def days_off(self) -> tuple[dt.date, ...]:
        return tuple(_days(self.first_day, self.last_day))


@dataclass(frozen=True)
class HolidayYear:
    """A year's holidays as one notice announced them; ``source`` is where it was published."""

    year: int
    notice: str
    source: str
    holidays: tuple[Holiday, ...]


@dataclass(frozen=True)
class Reckoning:
    """Days counted on the calendar, and the years among them it had to count on weekends alone.

    ``uncovered_years`` empty: the dates are as the notices make them. Otherwise they are an
    estimate (a holiday of those years may move them) and the caller must say so.
    """

    dates: tuple[dt.date, ...]
    uncovered_years: tuple[int, ...] = ()

    @property
    def estimated(self) -> bool:
        return bool(self.uncovered_years)

    @property
    def last(self) -> dt.date:
        return self.dates[-1]


class WorkingCalendar:
    """Which days are working days; immutable once built. No years: weekends alone, all flagged."""

    def __init__(self, years: Iterable[HolidayYear] = (), *, version: str = "") -> None:
        self.version = version
        self.years: tuple[HolidayYear, ...] = tuple(sorted(years, key=lambda y: y.year))
        self._covered = frozenset(year.year for year in self.years)
        if len(self._covered) != len(self.years):
            raise ValueError("a year appears twice in the working calendar")
        self._off: dict[dt.date, Holiday] = {}
        self._worked: dict[dt.date, Holiday] = {}
        for year in self.years:
            for holiday in year.holidays:
                for day in holiday.days_off:
                    self._off[day] = holiday
                for day in holiday.make_up_days:
                    self._worked[day] = holiday
        both = sorted(set(self._off) & set(self._worked))
        if both:
            raise ValueError(f"{both[0].isoformat()} is both a day off and a make-up working day")

    @property
    def covered_years(self) -> frozenset[int]:
        return self._covered

    def covers(self, day: dt.date) -> bool:
        """Whether ``day``'s year is in the file, so that ``is_working_day`` is not a guess."""
        return day.year in self._covered

    def uncovered_years(self, first: dt.date, last: dt.date) -> tuple[int, ...]:
        """The years from ``first`` to ``last`` (inclusive, any order) the file does not cover."""
        low, high = sorted((first.year, last.year))
        return tuple(year for year in range(low, high + 1) if year not in self._covered)

    def holiday_on(self, day: dt.date) -> Holiday | None:
        """The holiday ``day`` is a day off of, or None."""
        return self._off.get(day)

    def is_working_day(self, day: dt.date) -> bool:
        """A make-up day, or Monday to Friday and no holiday. Weekends alone in an uncovered year
        (see ``covers``)."""
        if day in self._worked:
            return True
        if day in self._off:
            return False
        return day.weekday() < SATURDAY

    def add_working_days(self, start: dt.date, n: int) -> dt.date:
        """The ``n``-th working day after ``start`` (``start`` itself never counts); ``start`` for
        n = 0. Use ``promised_date`` to learn whether the answer rests on a guessed year."""
        if n < 0:
            raise ValueError("a number of working days cannot be negative")
        day = start
        counted = 0
        while counted < n:
            day += dt.timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
        return day

    def next_working_days(
        self, start: dt.date, n: int, *, include_start: bool = False
    ) -> tuple[dt.date, ...]:
        """The first ``n`` working days after ``start`` (from ``start`` on with
        ``include_start``, for a same-day appointment), in order."""
        if n < 0:
            raise ValueError("a number of working days cannot be negative")
        days: list[dt.date] = []
        day = start if include_start else start + dt.timedelta(days=1)
        while len(days) < n:
            if self.is_working_day(day):
                days.append(day)
            day += dt.timedelta(days=1)
        return tuple(days)

    def promised_date(self, received_on: dt.date, working_days: int) -> Reckoning:
        """The date a case received on ``received_on`` is promised by (``dates`` holds that one
        date), with the years it had to guess."""
        promised = self.add_working_days(received_on, working_days)
        return Reckoning((promised,), self.uncovered_years(received_on, promised))

    def appointment_days(
        self, start: dt.date, n: int, *, include_start: bool = False
    ) -> Reckoning:
        """The next ``n`` working days to offer for appointments, with the years it had to guess."""
        days = self.next_working_days(start, n, include_start=include_start)
        last = days[-1] if days else start
        return Reckoning(days, self.uncovered_years(start, last))


def _days(first: dt.date, last: dt.date) -> Iterator[dt.date]:
    day = first
    while day <= last:
        yield day
        day += dt.timedelta(days=1)


# --- parsing ----------------------------------------------------------------------------------


def parse_calendar(data: Mapping[str, object]) -> WorkingCalendar:
    """Build the calendar from the holiday file's dict; CalendarError says what is wrong and where.

    Beyond each value's type, it checks what a slip in copying a notice would break: a range whose
    length is not the notice's "共N天", a make-up day that is not a weekend day (a weekday needs
    no make-up), a date outside its year's table, a day both off and worked, two holidays on one
    day, and a year or an id given twice.
    """
    root = ContentTable("", data, CalendarError)
    version = root.string("version") if root.has("version") else ""
    years = tuple(_parse_year(table) for table in root.tables("years"))
    root.done()
    seen: set[int] = set()
    for index, year in enumerate(years):
        if year.year in seen:
            raise CalendarError(f"years[{index}].year", f"{year.year} appears twice")
        seen.add(year.year)
    return WorkingCalendar(years, version=version)


def _parse_year(table: ContentTable) -> HolidayYear:
    year = table.integer("year", minimum=FIRST_YEAR, maximum=LAST_YEAR)
    notice = table.string("notice", max_chars=NOTICE_MAX_CHARS)
    source = table.string("source")
    if not source.startswith("https://"):
        raise table.fail("source", "must be the https:// address the notice was published at")
    holidays = tuple(_parse_holiday(h, year) for h in table.tables("holidays"))
    table.done()
    _check_year(table, holidays)
    return HolidayYear(year=year, notice=notice, source=source, holidays=holidays)


def _parse_holiday(table: ContentTable, year: int) -> Holiday:
    holiday_id = table.ident("id")
    name = table.localised("name")
    first_day = _date(table, "first_day", year)
    last_day = _date(table, "last_day", year)
    if last_day < first_day:
        raise table.fail("last_day", "must not be before first_day")
    days = table.integer("days", minimum=1, maximum=MAX_HOLIDAY_DAYS)
    span = (last_day - first_day).days + 1
    if span != days:
        raise table.fail("days", f"is {days}, but {first_day} to {last_day} is {span} days")
    make_up_days = _make_up_days(table, year)
    table.done()
    return Holiday(holiday_id, name, first_day, last_day, make_up_days)


def _make_up_days(table: ContentTable, year: int) -> tuple[dt.date, ...]:
    key = "make_up_days"
    if not table.has(key):
        return ()
    raw = table.value(key)
    if not isinstance(raw, list):
        raise table.fail(key, "must be a list of dates ([2026-02-14, 2026-02-28])")
    days: list[dt.date] = []
    for index, value in enumerate(raw):
        path = f"{key}[{index}]"
        day = _checked_date(table, path, value, year)
        if day.weekday() < SATURDAY:
            raise table.fail(path, f"{day} is a {day:%A}: a make-up working day is a weekend day")
        if day in days:
            raise table.fail(path, f"{day} appears twice")
        days.append(day)
    return tuple(days)


def _check_year(table: ContentTable, holidays: tuple[Holiday, ...]) -> None:
    """Across one year: ids once, no day in two holidays, no day both off and worked."""
    off: dict[dt.date, int] = {}
    ids: set[str] = set()
    for index, holiday in enumerate(holidays):
        at = f"holidays[{index}]"
        if holiday.id in ids:
            raise table.fail(f"{at}.id", f"{holiday.id!r} appears twice")
        ids.add(holiday.id)
        for day in holiday.days_off:
            if day in off:
                raise table.fail(f"{at}.first_day",
                                 f"{day} is already a day off of holidays[{off[day]}]")
            off[day] = index
    for index, holiday in enumerate(holidays):
        for position, day in enumerate(holiday.make_up_days):
            if day in off:
                raise table.fail(f"holidays[{index}].make_up_days[{position}]",
                                 f"{day} is a day off of holidays[{off[day]}]")


def _date(table: ContentTable, key: str, year: int) -> dt.date:
    return _checked_date(table, key, table.value(key), year)


def _checked_date(table: ContentTable, key: str, value: object, year: int) -> dt.date:
    # A TOML date-time is a datetime, which is also a date: refuse it, a day off has no hour.
    if isinstance(value, dt.datetime):
        raise table.fail(key, "must be a date alone (2026-02-15), without a time of day")
    if isinstance(value, str):
        raise table.fail(key, "must be a TOML date without quotes (2026-02-15)")
    if not isinstance(value, dt.date):
        raise table.fail(key, "must be a date (2026-02-15)")
    if value.year != year:
        raise table.fail(key, f"{value} is not in {year}: put it under the year it falls in")
    return value
