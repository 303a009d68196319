"""A terminal's last day as an inline SVG chart: heartbeats per 5-minute bucket as bars (a gap is
time the terminal was not heard) and the day's sessions so far as a line; pure geometry, the
template draws it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from fleet.store import ACTIVITY_BUCKET_S

WIDTH = 720
HEIGHT = 160
LEFT = 36  # room for the heartbeat axis labels
RIGHT = 36  # and the sessions' on the right
TOP = 10
BOTTOM = 22  # hour labels
DAY = dt.timedelta(days=1)
TICK_EVERY_H = 3


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class ActivityChart:
    width: int
    height: int
    plot_left: int
    plot_right: int
    plot_top: int
    plot_bottom: int
    bars: list[Bar]
    sessions_points: str  # an SVG polyline's points
    ticks: list[Tick]
    beats_max: int
    sessions_max: int
    empty: bool
    summary: str  # the same in words, for screen readers and for who cannot tell the colours


def activity_chart(buckets: Sequence[tuple[dt.datetime, int, int]], now: dt.datetime,
                   tz: dt.tzinfo, interval_s: float = 30.0) -> ActivityChart:
    """The chart of ``buckets`` (start, heartbeats, sessions so far today) over the day up to
    ``now``; hour ticks in ``tz``; bars scaled to what ``interval_s`` makes a full bucket."""
    start = now - DAY
    span = DAY.total_seconds()
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    bottom = TOP + plot_h
    shown = [b for b in buckets if start <= b[0] <= now]
    expected = max(1, round(ACTIVITY_BUCKET_S / max(interval_s, 1.0)))
    beats_max = max([expected, *(beats for _, beats, _ in shown)])
    sessions_max = max([1, *(sessions for _, _, sessions in shown)])
    bucket_w = plot_w * ACTIVITY_BUCKET_S / span

    def x_of(when: dt.datetime) -> float:
        return LEFT + plot_w * (when - start).total_seconds() / span

    bars = []
    points = []
    for when, beats, sessions in shown:
        height = plot_h * beats / beats_max
        local = when.astimezone(tz)
        bars.append(Bar(round(x_of(when), 1), round(bottom - height, 1),
                        round(max(bucket_w - 0.5, 0.5), 2), round(height, 1),
                        f"{local:%H:%M} {beats} heartbeats, {sessions} sessions today"))
        mid = x_of(when) + bucket_w / 2
        points.append(f"{mid:.1f},{bottom - plot_h * sessions / sessions_max:.1f}")
    ticks = []
    first = start.astimezone(tz).replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    tick = first
    while tick <= now:
        if tick.hour % TICK_EVERY_H == 0:
            ticks.append(Tick(round(x_of(tick), 1), f"{tick:%H:%M}"))
        tick += dt.timedelta(hours=1)
    heard = len([b for b in shown if b[1] > 0])
    summary = (f"Heard in {heard} of the day's {int(span // ACTIVITY_BUCKET_S)} five-minute "
               f"periods; {shown[-1][2] if shown else 0} sessions today so far.")
    return ActivityChart(WIDTH, HEIGHT, LEFT, LEFT + plot_w, TOP, bottom, bars, " ".join(points),
                         ticks, beats_max, sessions_max, not shown, summary)
