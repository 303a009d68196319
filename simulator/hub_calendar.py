"""Working days as the simulated hub counts them: the terminal's own holiday calendar.

The hub uses them for promised dates (承诺时限), the days it offers appointments on and the day a
办不成事 report is called back by. A real platform and the terminals of its province count on the
same State Council notice, so the simulated hub reads the very file the terminal ships
(``terminal/content/holidays.toml``, through ``flows.working_days``): a make-up Saturday has
appointments, a holiday Monday none. A year the file does not cover counts weekends alone.
"""

from __future__ import annotations

import datetime as dt
import functools
import tomllib
from pathlib import Path

from flows.working_days import WorkingCalendar, parse_calendar

SHIPPED_HOLIDAYS = Path(__file__).resolve().parents[1] / "terminal" / "content" / "holidays.toml"


@functools.cache
def shipped_calendar() -> WorkingCalendar:
    """The calendar of the shipped holiday file, read once; CalendarError if the file is wrong."""
    with SHIPPED_HOLIDAYS.open("rb") as file:
        return parse_calendar(tomllib.load(file))


def is_working_day(day: dt.date) -> bool:
    return shipped_calendar().is_working_day(day)


def add_working_days(start: dt.date, count: int) -> dt.date:
    """The ``count``-th working day after ``start`` (``start`` itself never counts); 0: start."""
    return shipped_calendar().add_working_days(start, count)
