"""The working-day calendar against the State Council's published 2026 schedule: every day off and
every make-up day, promised dates across the Spring Festival and National Day, what happens
outside the covered years, properties of the count, and errors in the file naming where."""

from __future__ import annotations

import copy
import datetime as dt
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.working_days import CalendarError, WorkingCalendar, parse_calendar

SHIPPED = Path(__file__).resolve().parents[2] / "terminal/content/holidays.toml"
D = dt.date

# 国务院办公厅关于2026年部分节假日安排的通知 (4 November 2025), item by item, typed again here
# from the notice rather than read from the file, so a slip in the file cannot agree with itself.
PUBLISHED_2026: dict[str, tuple[D, D, int, tuple[D, ...]]] = {
    # 一、元旦：1月1日（周四）至3日（周六）放假调休，共3天。1月4日（周日）上班。
    "new_year": (D(2026, 1, 1), D(2026, 1, 3), 3, (D(2026, 1, 4),)),
    # 二、春节：2月15日（农历腊月二十八、周日）至23日（农历正月初七、周一）放假调休，共9天。
    #     2月14日（周六）、2月28日（周六）上班。
    "spring_festival": (D(2026, 2, 15), D(2026, 2, 23), 9, (D(2026, 2, 14), D(2026, 2, 28))),
    # 三、清明节：4月4日（周六）至6日（周一）放假，共3天。
    "qingming": (D(2026, 4, 4), D(2026, 4, 6), 3, ()),
    # 四、劳动节：5月1日（周五）至5日（周二）放假调休，共5天。5月9日（周六）上班。
    "labour_day": (D(2026, 5, 1), D(2026, 5, 5), 5, (D(2026, 5, 9),)),
    # 五、端午节：6月19日（周五）至21日（周日）放假，共3天。
    "dragon_boat": (D(2026, 6, 19), D(2026, 6, 21), 3, ()),
    # 六、中秋节：9月25日（周五）至27日（周日）放假，共3天。
    "mid_autumn": (D(2026, 9, 25), D(2026, 9, 27), 3, ()),
    # 七、国庆节：10月1日（周四）至7日（周三）放假调休，共7天。
    #     9月20日（周日）、10月10日（周六）上班。
    "national_day": (D(2026, 10, 1), D(2026, 10, 7), 7, (D(2026, 9, 20), D(2026, 10, 10))),
}
# The weekdays the notice prints beside each date (Monday 0 .. Sunday 6).
NOTICE_WEEKDAYS = {
    D(2026, 1, 1): 3, D(2026, 1, 3): 5, D(2026, 1, 4): 6,
    D(2026, 2, 15): 6, D(2026, 2, 23): 0, D(2026, 2, 14): 5, D(2026, 2, 28): 5,
    D(2026, 4, 4): 5, D(2026, 4, 6): 0,
    D(2026, 5, 1): 4, D(2026, 5, 5): 1, D(2026, 5, 9): 5,
    D(2026, 6, 19): 4, D(2026, 6, 21): 6,
    D(2026, 9, 25): 4, D(2026, 9, 27): 6,
    D(2026, 10, 1): 3, D(2026, 10, 7): 2, D(2026, 9, 20): 6, D(2026, 10, 10): 5,
}


def shipped_data() -> dict[str, Any]:
    return tomllib.loads(SHIPPED.read_text(encoding="utf-8"))


CALENDAR = parse_calendar(shipped_data())


def days_between(first: D, last: D) -> list[D]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


# --- the published 2026 schedule -------------------------------------------------------------


def test_the_shipped_file_is_the_published_2026_schedule_item_by_item() -> None:
    [year] = CALENDAR.years
    assert year.year == 2026
    assert year.source.startswith("https://www.gov.cn/")
    shipped = {h.id: (h.first_day, h.last_day, len(h.days_off), h.make_up_days)
               for h in year.holidays}
    assert shipped == PUBLISHED_2026


def test_the_notice_weekdays_match_the_gregorian_calendar() -> None:
    for day, weekday in NOTICE_WEEKDAYS.items():
        assert day.weekday() == weekday, day


@pytest.mark.parametrize("holiday_id", sorted(PUBLISHED_2026))
def test_every_published_day_off_is_no_working_day(holiday_id: str) -> None:
    first, last, count, _make_up = PUBLISHED_2026[holiday_id]
    days = days_between(first, last)
    assert len(days) == count
    for day in days:
        assert not CALENDAR.is_working_day(day), day
        holiday = CALENDAR.holiday_on(day)
        assert holiday is not None
        assert holiday.id == holiday_id


@pytest.mark.parametrize("holiday_id", sorted(PUBLISHED_2026))
def test_every_published_make_up_day_is_a_working_weekend_day(holiday_id: str) -> None:
    for day in PUBLISHED_2026[holiday_id][3]:
        assert day.weekday() >= 5, day
        assert CALENDAR.is_working_day(day), day


def test_every_other_day_of_2026_is_a_working_day_exactly_when_it_is_a_weekday() -> None:
    off = {d for first, last, _n, _m in PUBLISHED_2026.values() for d in days_between(first, last)}
    worked = {d for *_range, make_up in PUBLISHED_2026.values() for d in make_up}
    for day in days_between(D(2026, 1, 1), D(2026, 12, 31)):
        if day in off or day in worked:
            continue
        assert CALENDAR.is_working_day(day) == (day.weekday() < 5), day
    # 365 days, 104 weekend days, 19 of the 33 days off on weekdays, 6 make-up days:
    working = sum(CALENDAR.is_working_day(d) for d in days_between(D(2026, 1, 1), D(2026, 12, 31)))
    weekdays_off = sum(1 for d in off if d.weekday() < 5)
    assert (len(off), weekdays_off, len(worked)) == (33, 19, 6)
    assert working == 365 - 104 - weekdays_off + len(worked) == 248


def test_2026_is_covered_and_its_neighbours_are_not() -> None:
    assert CALENDAR.covered_years == {2026}
    assert CALENDAR.covers(D(2026, 12, 31))
    assert not CALENDAR.covers(D(2025, 12, 31))
    assert not CALENDAR.covers(D(2027, 1, 1))


# --- promised dates (承诺时限) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("received", "working_days", "promised"),
    [
        # An ordinary week: Monday + 5 is the next Monday (the day of receipt does not count).
        (D(2026, 3, 9), 5, D(2026, 3, 16)),
        # Received on Friday 13 Feb, before the Spring Festival: Sat 14 Feb is a make-up day (1),
        # 15-23 Feb are off, then 24, 25, 26, 27 Feb (2-5).
        (D(2026, 2, 13), 5, D(2026, 2, 27)),
        # ... and the sixth is the make-up Saturday 28 Feb.
        (D(2026, 2, 13), 6, D(2026, 2, 28)),
        # Received on the make-up Saturday itself: the next working day is after the festival.
        (D(2026, 2, 14), 1, D(2026, 2, 24)),
        # Received during the festival (a 24-hour terminal): 24 Feb is the first counted day.
        (D(2026, 2, 17), 1, D(2026, 2, 24)),
        (D(2026, 2, 17), 5, D(2026, 2, 28)),
        (D(2026, 2, 17), 20, D(2026, 3, 20)),
        # Before National Day: Sun 20 Sep is a make-up day, 25-27 Sep is Mid-Autumn, 1-7 Oct off,
        # Sat 10 Oct worked. From Fri 18 Sep: 20, 21, 22, 23, 24, 28, 29, 30 Sep, 8, 9, 10 Oct.
        (D(2026, 9, 18), 8, D(2026, 9, 30)),
        (D(2026, 9, 18), 9, D(2026, 10, 8)),
        (D(2026, 9, 18), 11, D(2026, 10, 10)),
        (D(2026, 9, 18), 12, D(2026, 10, 12)),
        # Received on 30 Sep with 1 working day: 8 Oct.
        (D(2026, 9, 30), 1, D(2026, 10, 8)),
        # 即办 (0 working days): the day of receipt, whatever it is.
        (D(2026, 2, 17), 0, D(2026, 2, 17)),
        # New Year: received on Fri 2 Jan (a day off); Sat 3 Jan is off too, Sun 4 Jan is worked.
        (D(2026, 1, 2), 1, D(2026, 1, 4)),
        (D(2026, 1, 2), 2, D(2026, 1, 5)),
    ],
)
def test_promised_dates_across_the_holidays(received: D, working_days: int, promised: D) -> None:
    reckoning = CALENDAR.promised_date(received, working_days)
    assert reckoning.dates == (promised,)
    assert reckoning.last == promised
    assert not reckoning.estimated
    assert CALENDAR.add_working_days(received, working_days) == promised


def test_appointment_days_skip_the_spring_festival_and_include_its_make_up_days() -> None:
    reckoning = CALENDAR.appointment_days(D(2026, 2, 12), 5)
    assert reckoning.dates == (D(2026, 2, 13), D(2026, 2, 14), D(2026, 2, 24), D(2026, 2, 25),
                               D(2026, 2, 26))
    assert not reckoning.estimated
    # A same-day appointment is offered only on a working day.
    assert CALENDAR.next_working_days(D(2026, 2, 13), 2, include_start=True) == (
        D(2026, 2, 13), D(2026, 2, 14))
    assert CALENDAR.next_working_days(D(2026, 2, 15), 1, include_start=True) == (D(2026, 2, 24),)
    assert CALENDAR.next_working_days(D(2026, 2, 15), 0) == ()


def test_appointment_days_across_national_day() -> None:
    assert CALENDAR.next_working_days(D(2026, 9, 29), 4) == (
        D(2026, 9, 30), D(2026, 10, 8), D(2026, 10, 9), D(2026, 10, 10))


def test_a_negative_number_of_days_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        CALENDAR.add_working_days(D(2026, 3, 9), -1)
    with pytest.raises(ValueError, match="negative"):
        CALENDAR.next_working_days(D(2026, 3, 9), -1)


# --- outside the covered years ---------------------------------------------------------------


def test_a_count_into_an_uncovered_year_is_weekends_alone_and_flagged() -> None:
    # Thu 24 Dec 2026 + 10: 25, 28-31 Dec (5), then 2027 on weekends alone: 1, 4, 5, 6, 7 Jan.
    # (1 Jan 2027 is surely a holiday: exactly why the answer must say it is an estimate.)
    reckoning = CALENDAR.promised_date(D(2026, 12, 24), 10)
    assert reckoning.dates == (D(2027, 1, 7),)
    assert reckoning.estimated
    assert reckoning.uncovered_years == (2027,)
    # A count that stays inside 2026 is not flagged even late in the year.
    assert not CALENDAR.promised_date(D(2026, 12, 24), 5).estimated


def test_a_count_wholly_outside_is_flagged_and_an_empty_calendar_flags_everything() -> None:
    assert CALENDAR.promised_date(D(2025, 12, 30), 1).uncovered_years == (2025,)
    assert CALENDAR.uncovered_years(D(2025, 6, 1), D(2028, 1, 1)) == (2025, 2027, 2028)
    empty = WorkingCalendar()
    assert not empty.covers(D(2026, 2, 17))
    assert empty.is_working_day(D(2026, 2, 17))  # a Tuesday, by weekends alone
    reckoning = empty.appointment_days(D(2026, 2, 13), 2)
    assert reckoning.dates == (D(2026, 2, 16), D(2026, 2, 17))
    assert reckoning.uncovered_years == (2026,)


# --- properties ------------------------------------------------------------------------------

STARTS = st.dates(min_value=D(2025, 6, 1), max_value=D(2027, 6, 30))
COUNTS = st.integers(min_value=0, max_value=60)


@given(start=STARTS, n=COUNTS)
def test_the_promised_date_is_a_working_day_with_n_working_days_up_to_it(start: D, n: int) -> None:
    promised = CALENDAR.add_working_days(start, n)
    if n == 0:
        assert promised == start
        return
    assert promised > start
    assert CALENDAR.is_working_day(promised)
    between = [d for d in days_between(start + dt.timedelta(days=1), promised)
               if CALENDAR.is_working_day(d)]
    assert len(between) == n
    assert CALENDAR.next_working_days(start, n) == tuple(between)


@given(start=STARTS, n=COUNTS, more=st.integers(min_value=0, max_value=10))
def test_more_working_days_never_promise_an_earlier_date(start: D, n: int, more: int) -> None:
    assert CALENDAR.add_working_days(start, n) <= CALENDAR.add_working_days(start, n + more)
    if more:
        assert CALENDAR.add_working_days(start, n) < CALENDAR.add_working_days(start, n + more)


@given(start=STARTS, later=st.integers(min_value=0, max_value=40), n=COUNTS)
def test_a_later_receipt_never_promises_an_earlier_date(start: D, later: int, n: int) -> None:
    received_later = start + dt.timedelta(days=later)
    assert CALENDAR.add_working_days(start, n) <= CALENDAR.add_working_days(received_later, n)


@given(start=STARTS, n=COUNTS)
def test_the_flag_is_raised_exactly_when_the_count_touches_an_uncovered_year(
    start: D, n: int
) -> None:
    reckoning = CALENDAR.promised_date(start, n)
    touched = set(range(start.year, reckoning.last.year + 1))
    assert reckoning.estimated == bool(touched - {2026})


# --- errors in the file name where they are --------------------------------------------------


def _holiday(data: dict[str, Any], index: int) -> dict[str, Any]:
    holiday: dict[str, Any] = data["years"][0]["holidays"][index]
    return holiday


def _bad(change: Any) -> CalendarError:
    data = copy.deepcopy(shipped_data())
    change(data)
    with pytest.raises(CalendarError) as raised:
        parse_calendar(data)
    return raised.value


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (lambda d: _holiday(d, 1).update(days=8), "years[0].holidays[1].days", "9 days"),
        (lambda d: _holiday(d, 1).update(last_day=D(2026, 2, 14)),
         "years[0].holidays[1].last_day", "before"),
        (lambda d: _holiday(d, 1).update(make_up_days=[D(2026, 2, 14), D(2026, 2, 27)]),
         "years[0].holidays[1].make_up_days[1]", "Friday"),
        (lambda d: _holiday(d, 1).update(make_up_days=[D(2026, 2, 14), D(2026, 2, 14)]),
         "years[0].holidays[1].make_up_days[1]", "twice"),
        (lambda d: _holiday(d, 1).update(make_up_days=[D(2026, 2, 21)]),
         "years[0].holidays[1].make_up_days[0]", "day off"),
        (lambda d: _holiday(d, 1).update(make_up_days="2026-02-14"),
         "years[0].holidays[1].make_up_days", "list of dates"),
        (lambda d: _holiday(d, 1).update(first_day="2026-02-15"),
         "years[0].holidays[1].first_day", "without quotes"),
        (lambda d: _holiday(d, 1).update(first_day=dt.datetime(2026, 2, 15, 0, 0)),
         "years[0].holidays[1].first_day", "date alone"),
        (lambda d: _holiday(d, 0).update(first_day=D(2025, 12, 31), days=4),
         "years[0].holidays[0].first_day", "not in 2026"),
        (lambda d: _holiday(d, 2).update(first_day=D(2026, 2, 23), last_day=D(2026, 2, 25),
                                         days=3),
         "years[0].holidays[2].first_day", "already a day off of holidays[1]"),
        (lambda d: _holiday(d, 2).update(id="spring_festival"),
         "years[0].holidays[2].id", "twice"),
        (lambda d: _holiday(d, 2).update(last_day=D(2026, 4, 30), days=27),
         "years[0].holidays[2].days", "between"),
        (lambda d: _holiday(d, 2).update(frist_day=D(2026, 4, 4)),
         "years[0].holidays[2].frist_day", "unknown key"),
        (lambda d: _holiday(d, 2).pop("name"), "years[0].holidays[2].name", "missing"),
        (lambda d: d["years"][0].update(year=2062), "years[0].holidays[0].first_day", "not in"),
        (lambda d: d["years"][0].update(year=3026), "years[0].year", "between"),
        (lambda d: d["years"][0].update(source="www.gov.cn"), "years[0].source", "https://"),
        (lambda d: d["years"].append(copy.deepcopy(d["years"][0])), "years[1].year", "twice"),
        (lambda d: d.update(years=[]), "years", "non-empty"),
        (lambda d: d.update(yeras=[]), "yeras", "unknown key"),
    ],
)
def test_a_bad_file_is_refused_with_the_path_of_the_bad_entry(
    change: Any, path: str, words: str
) -> None:
    error = _bad(change)
    assert error.path == path
    assert words in error.problem
    assert str(error).startswith(path)
