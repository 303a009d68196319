"""Availability: the share of opening hours with a serving heartbeat, per terminal and site."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from fleet.availability import BUCKET_S, OpeningHours, availability, by_site, open_buckets

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = dt.date(2026, 12, 6)
END_OF_DAY = dt.datetime(2026, 12, 7, 0, 0, tzinfo=SHANGHAI)


def test_a_whole_day_is_288_buckets_and_a_day_served_throughout_is_100_percent() -> None:
    buckets = open_buckets(DAY, SHANGHAI, OpeningHours(), END_OF_DAY)
    assert len(buckets) == 288
    assert availability(buckets, DAY, SHANGHAI, OpeningHours(), END_OF_DAY) == 1.0


def test_half_the_buckets_served_is_half() -> None:
    buckets = open_buckets(DAY, SHANGHAI, OpeningHours(), END_OF_DAY)
    assert availability(buckets[::2], DAY, SHANGHAI, OpeningHours(), END_OF_DAY) == 0.5


def test_opening_hours_count_only_their_buckets_in_local_time() -> None:
    hours = OpeningHours.parse("08:30-17:30")
    buckets = open_buckets(DAY, SHANGHAI, hours, END_OF_DAY)
    assert len(buckets) == 9 * 12
    first = dt.datetime.fromtimestamp(buckets[0], SHANGHAI)
    assert (first.hour, first.minute) == (8, 30)
    night = dt.datetime(2026, 12, 6, 3, 0, tzinfo=SHANGHAI).timestamp()
    assert availability([night], DAY, SHANGHAI, hours, END_OF_DAY) == 0.0


def test_today_counts_only_the_buckets_begun_and_none_before_opening() -> None:
    hours = OpeningHours.parse("08:00-18:00")
    early = dt.datetime(2026, 12, 6, 7, 0, tzinfo=SHANGHAI)
    assert availability([], DAY, SHANGHAI, hours, early) is None
    at_nine = dt.datetime(2026, 12, 6, 9, 0, tzinfo=SHANGHAI)
    assert len(open_buckets(DAY, SHANGHAI, hours, at_nine)) == 12
    served = [dt.datetime(2026, 12, 6, 8, 0, tzinfo=SHANGHAI).timestamp() + n * BUCKET_S
              for n in range(6)]
    assert availability(served, DAY, SHANGHAI, hours, at_nine) == 0.5


@pytest.mark.parametrize("bad", ["08:00", "18:00-08:00", "25:00-26:00", "08:00-08:00"])
def test_bad_opening_hours_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        OpeningHours.parse(bad)


def test_a_site_is_the_mean_of_its_terminals_with_a_figure() -> None:
    shares = {"T-1": 1.0, "T-2": 0.5, "T-3": None, "T-4": 0.25}
    sites = {"T-1": "town-a", "T-2": "town-a", "T-3": "town-a", "T-4": "town-b"}
    assert by_site(shares, sites) == {"town-a": 0.75, "town-b": 0.25}
