"""Availability: the share of a day's opening hours a terminal was online and able to serve; pure.

The store keeps, per terminal and five-minute bucket, how many heartbeats arrived and how many
of them said the terminal could serve (state idle or in_session: a terminal out of service, in
maintenance or updating cannot, even online). A bucket of the opening hours counts as available
when one serving heartbeat fell in it; today counts only the buckets already begun. Opening
hours are the service centre's, in its time zone: a 24-hour self-service area by default.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

BUCKET_S = 300
# Heartbeat states in which a resident can be served (contract: TerminalState).
SERVING_STATES = frozenset({"idle", "in_session", "degraded"})


@dataclass(frozen=True)
class OpeningHours:
    """From ``opens`` to ``closes`` every day, local time; ``closes`` of midnight (00:00) is the
    end of the day, so the default is the whole day."""

    opens: dt.time = dt.time(0, 0)
    closes: dt.time = dt.time(0, 0)

    @classmethod
    def parse(cls, text: str) -> OpeningHours:
        """``HH:MM-HH:MM`` (``24:00`` allowed for the end); ValueError with the reason."""
        first, sep, last = text.partition("-")
        if not sep:
            raise ValueError("opening hours as HH:MM-HH:MM, e.g. 08:30-17:30 or 00:00-24:00")
        opens = dt.time.fromisoformat(first.strip())
        closes = dt.time(0, 0) if last.strip() == "24:00" else dt.time.fromisoformat(last.strip())
        hours = cls(opens, closes)
        start, end = hours.span(dt.date(2026, 1, 1), dt.UTC)
        if end <= start:
            raise ValueError("the centre must close after it opens")
        return hours

    def __str__(self) -> str:
        closes = "24:00" if self.closes == dt.time(0, 0) else f"{self.closes:%H:%M}"
        return f"{self.opens:%H:%M}-{closes}"

    def span(self, day: dt.date, zone: dt.tzinfo) -> tuple[float, float]:
        """The day's opening hours as [start, end) epoch seconds."""
        start = dt.datetime.combine(day, self.opens, zone)
        end_day = day + dt.timedelta(days=1) if self.closes == dt.time(0, 0) else day
        end = dt.datetime.combine(end_day, self.closes, zone)
        return start.timestamp(), end.timestamp()


def open_buckets(day: dt.date, zone: dt.tzinfo, hours: OpeningHours,
                 now: dt.datetime) -> list[float]:
    """The bucket starts of the day's opening hours that have begun by ``now``."""
    start, end = hours.span(day, zone)
    first = start // BUCKET_S * BUCKET_S
    last = min(end, now.timestamp())
    return [b for b in _range(first, last) if b + BUCKET_S > start]


def _range(first: float, last: float) -> Iterable[float]:
    bucket = first
    while bucket < last:
        yield bucket
        bucket += BUCKET_S


def availability(serving_buckets: Iterable[float], day: dt.date, zone: dt.tzinfo,
                 hours: OpeningHours, now: dt.datetime) -> float | None:
    """The share (0..1) of the day's opening buckets so far with a serving heartbeat; None
    before the day's opening hours have begun."""
    wanted = open_buckets(day, zone, hours, now)
    if not wanted:
        return None
    served = set(serving_buckets)
    return sum(1 for b in wanted if b in served) / len(wanted)


def by_site(per_terminal: Mapping[str, float | None],
            sites: Mapping[str, str | None]) -> dict[str, float]:
    """Each site's availability: the mean of its terminals' (those with a figure)."""
    shares: dict[str, list[float]] = {}
    for tid, share in per_terminal.items():
        if share is not None:
            shares.setdefault(sites.get(tid) or "", []).append(share)
    return {site: sum(values) / len(values) for site, values in shares.items()}


def day_availability(serving: Mapping[str, Iterable[float]], tids: Iterable[str],
                     day: dt.date, *, zone: dt.tzinfo, hours: OpeningHours,
                     now: dt.datetime) -> dict[str, float | None]:
    """Every terminal's availability on ``day`` from its serving buckets (``FleetStore.
    serving_buckets``); a terminal with none that day is at 0, not missing."""
    return {tid: availability(serving.get(tid, ()), day, zone, hours, now) for tid in tids}


def day_window(day: dt.date, zone: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    """The whole local day as aware datetimes [start, end), for the store's query."""
    start = dt.datetime.combine(day, dt.time(0, 0), zone)
    return start, dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 0), zone)

