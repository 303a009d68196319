"""The notice board: which notice the attract screen shows when, when to look again, the shipped
notices file, and errors for bad notices, each naming where it is."""

from __future__ import annotations

import copy
import datetime as dt
import tomllib
from pathlib import Path
from typing import Any

import pytest

from flows.catalogue import LANGUAGES
from flows.clock import CHINA_ZONE
from flows.notices import NoticeError, Notices, parse_notices

SHIPPED = Path(__file__).resolve().parents[2] / "terminal/content/notices.toml"
US = dt.timedelta(microseconds=1)
DAY = dt.timedelta(days=1)
# A Sunday morning in the township, within every window of ``board()`` except the urgent one.
NOW = dt.datetime(2026, 12, 6, 9, 30, tzinfo=CHINA_ZONE)


def _text(zh: str, en: str) -> dict[str, str]:
    return {"zh_CN": zh, "en": en}


def _notice(notice_id: str, start: dt.datetime, end: dt.datetime, **extra: Any) -> dict[str, Any]:
    return {
        "id": notice_id,
        "title": _text(f"标题{notice_id}", f"Title {notice_id}"),
        "body": _text(f"正文{notice_id}", f"Body {notice_id}"),
        "valid_from": start,
        "valid_until": end,
        **extra,
    }


def board() -> dict[str, Any]:
    """Three notices in force at NOW (priorities 10, 50, 30), one not yet, one over."""
    return {
        "version": "test.1",
        "notices": [
            _notice("low", NOW - DAY, NOW + 30 * DAY, priority=10),
            _notice("high", NOW - DAY, NOW + 30 * DAY, priority=50),
            _notice("middle", NOW - DAY, NOW + 2 * DAY, priority=30),
            _notice("later", NOW + 10 * DAY, NOW + 20 * DAY, priority=90),
            _notice("over", NOW - 10 * DAY, NOW - DAY, priority=90),
        ],
    }


def shown_over(notices: Notices, start: dt.datetime, steps: int, period_s: float) -> list[str]:
    shown = []
    for step in range(steps):
        notice = notices.showing(start + step * dt.timedelta(seconds=period_s), period_s=period_s)
        shown.append(notice.id if notice else "-")
    return shown


# --- what shows when ----------------------------------------------------------------------------


def test_the_valid_notices_rotate_by_priority_each_for_one_period() -> None:
    notices = parse_notices(board())
    start = _slot_start(NOW, 10)
    shown = shown_over(notices, start, 6, 10)
    # Highest priority first in the cycle, then round again; "later" and "over" never show.
    assert sorted(set(shown)) == ["high", "low", "middle"]
    cycle = ["high", "middle", "low"]
    first = cycle.index(shown[0])
    assert shown == [cycle[(first + i) % 3] for i in range(6)]
    # Within one period the answer does not change.
    assert notices.showing(start + dt.timedelta(seconds=9.999999)) == notices.showing(start)


def test_the_answer_depends_only_on_the_instant() -> None:
    # Two screens (or a test and the UI) asking about the same instant agree, however they
    # parsed the file; and the same instant expressed in UTC gives the same notice.
    first, second = parse_notices(board()), parse_notices(board())
    for minute in range(0, 120, 7):
        now = NOW + dt.timedelta(minutes=minute, seconds=3)
        assert first.showing(now) == second.showing(now) == first.showing(now.astimezone(dt.UTC))


def test_an_urgent_notice_pushes_the_others_aside_until_it_expires() -> None:
    data = board()
    urgent_until = NOW + dt.timedelta(hours=8)
    data["notices"].append(
        _notice("maintenance", NOW - dt.timedelta(hours=1), urgent_until, priority=0, urgent=True)
    )
    notices = parse_notices(data)
    # Low priority, but urgent: it is all the screen shows, period after period.
    assert set(shown_over(notices, NOW, 50, 10)) == {"maintenance"}
    assert notices.showing(urgent_until - US).id == "maintenance"  # type: ignore[union-attr]
    after = notices.showing(urgent_until)
    assert after is not None and after.id in {"high", "middle", "low"}


def test_several_urgent_notices_rotate_among_themselves_only() -> None:
    data = board()
    data["notices"] += [
        _notice("outage", NOW - DAY, NOW + DAY, priority=5, urgent=True),
        _notice("storm", NOW - DAY, NOW + DAY, priority=8, urgent=True),
    ]
    notices = parse_notices(data)
    assert [n.id for n in notices.rotation(NOW)] == ["storm", "outage"]
    assert set(shown_over(notices, _slot_start(NOW, 10), 6, 10)) == {"storm", "outage"}


def test_an_expired_notice_disappears_exactly_at_its_valid_until() -> None:
    until = NOW + dt.timedelta(hours=2)
    notices = parse_notices({"notices": [_notice("only", NOW - DAY, until)]})
    assert notices.showing(until - US) is not None
    assert notices.showing(until) is None
    # And it appears exactly at valid_from, not a microsecond before.
    assert notices.showing(NOW - DAY - US) is None
    assert notices.showing(NOW - DAY) is not None


def test_an_empty_board_shows_nothing_and_never_changes() -> None:
    notices = parse_notices({})
    assert notices.showing(NOW) is None
    assert notices.next_change(NOW) is None
    assert notices.translations() == {"zh_CN": {}, "en": {}}


def test_a_naive_instant_or_a_non_positive_period_is_refused() -> None:
    notices = parse_notices(board())
    with pytest.raises(ValueError, match="timezone-aware"):
        notices.showing(dt.datetime(2026, 12, 6, 9, 30))  # naive on purpose
    with pytest.raises(ValueError, match="period_s"):
        notices.showing(NOW, period_s=0)


# --- when to look again ---------------------------------------------------------------------------


def test_next_change_is_the_next_rotation_step_while_several_rotate() -> None:
    notices = parse_notices(board())
    start = _slot_start(NOW, 10)
    now = start + dt.timedelta(seconds=3.5)
    change = notices.next_change(now)
    assert change == start + dt.timedelta(seconds=10)
    assert notices.showing(change - US) == notices.showing(now)
    assert notices.showing(change) != notices.showing(now)


def test_next_change_is_the_expiry_when_one_notice_is_left() -> None:
    until = NOW + dt.timedelta(hours=2)
    later = NOW + 5 * DAY
    notices = parse_notices({
        "notices": [_notice("only", NOW - DAY, until), _notice("next", later, later + DAY)]
    })
    # One notice in force: no rotation steps; the screen must refresh exactly when it expires.
    assert notices.next_change(NOW) == until
    assert notices.next_change(until) == later  # then nothing until the next one starts
    assert notices.next_change(later) == later + DAY
    assert notices.next_change(later + DAY) is None


def test_next_change_comes_before_a_rotation_step_when_a_notice_expires_first() -> None:
    start = _slot_start(NOW, 10)
    expiry = start + dt.timedelta(seconds=4)
    notices = parse_notices({
        "notices": [_notice("a", NOW - DAY, expiry), _notice("b", NOW - DAY, NOW + DAY)]
    })
    assert notices.next_change(start + dt.timedelta(seconds=1)) == expiry
    assert notices.showing(expiry).id == "b"  # type: ignore[union-attr]


def test_next_change_answers_in_the_callers_zone() -> None:
    notices = parse_notices(board())
    change = notices.next_change(NOW.astimezone(dt.UTC))
    assert change is not None and change.utcoffset() == dt.timedelta(0)


# --- parsing ----------------------------------------------------------------------------------


def test_board_order_is_priority_then_file_order_and_keys_cover_both_languages() -> None:
    data = board()
    data["notices"].append(_notice("tied", NOW - DAY, NOW + DAY, priority=50))
    notices = parse_notices(data)
    assert [n.id for n in notices.notices] == ["later", "over", "high", "tied", "middle", "low"]
    assert notices.version == "test.1"
    tables = notices.translations()
    assert tables["zh_CN"]["notices.high.title"] == "标题high"
    assert tables["en"]["notices.high.body"] == "Body high"
    assert set(tables) == set(LANGUAGES)


def test_a_local_date_time_is_read_in_the_given_zone() -> None:
    text = """
    [[notices]]
    id = "hours"
    valid_from = 2027-01-25T00:00:00
    valid_until = 2027-02-16T00:00:00
    title.zh_CN = "春节开放时间"
    title.en = "Spring Festival hours"
    body.zh_CN = "照常开放"
    body.en = "Open as usual"
    """
    data = tomllib.loads(text)
    in_china = parse_notices(data).notices[0]
    assert in_china.valid_from == dt.datetime(2027, 1, 24, 16, 0, tzinfo=dt.UTC)
    in_urumqi = parse_notices(data, zone=dt.timezone(dt.timedelta(hours=6))).notices[0]
    assert in_urumqi.valid_from == dt.datetime(2027, 1, 24, 18, 0, tzinfo=dt.UTC)


def test_an_offset_date_time_keeps_its_offset() -> None:
    data = tomllib.loads("""
    [[notices]]
    id = "x"
    valid_from = 2027-01-01T00:00:00Z
    valid_until = 2027-01-02T00:00:00+08:00
    title = { zh_CN = "标题", en = "Title" }
    body = { zh_CN = "正文", en = "Body" }
    """)
    notice = parse_notices(data).notices[0]
    assert notice.valid_from == dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    assert notice.valid_until == dt.datetime(2027, 1, 1, 16, 0, tzinfo=dt.UTC)


def _broken(change: Any) -> dict[str, Any]:
    data = copy.deepcopy(board())
    change(data)
    return data


def _set(path: list[Any], value: Any) -> Any:
    def change(data: dict[str, Any]) -> None:
        target: Any = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def _delete(path: list[Any]) -> Any:
    def change(data: dict[str, Any]) -> None:
        target: Any = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return change


@pytest.mark.parametrize(
    ("change", "where", "problem"),
    [
        (_set(["notice"], []), "notice", "unknown key"),
        (_set(["notices", 1, "colour"], "red"), "notices[1].colour", "unknown key"),
        (_set(["notices", 0, "title", "fr"], "Titre"), "notices[0].title.fr", "unknown key"),
        (_delete(["notices", 2, "body", "en"]), "notices[2].body.en", "is missing"),
        (_set(["notices", 0, "title", "zh_CN"], "  "), "notices[0].title.zh_CN", "non-empty"),
        (_set(["notices", 0, "body", "en"], "x" * 401), "notices[0].body.en", "at most 400"),
        (_delete(["notices", 0, "valid_until"]), "notices[0].valid_until", "is missing"),
        (_set(["notices", 1, "valid_until"], NOW - DAY), "notices[1].valid_until",
         "after valid_from"),
        (_set(["version"], 3), "version", "non-empty string"),
        (_set(["notices", 0, "valid_from"], dt.date(2026, 12, 1)), "notices[0].valid_from",
         "time of day"),
        (_set(["notices", 0, "valid_from"], "2026-12-01T00:00:00"), "notices[0].valid_from",
         "without quotes"),
        (_set(["notices", 0, "valid_from"], 20261201), "notices[0].valid_from", "date-time"),
        (_set(["notices", 0, "priority"], True), "notices[0].priority", "whole number"),
        (_set(["notices", 0, "priority"], 1000), "notices[0].priority", "between 0 and 999"),
        (_set(["notices", 0, "urgent"], "yes"), "notices[0].urgent", "true or false"),
        (_set(["notices", 0, "id"], "Bad-Id"), "notices[0].id", "not a valid id"),
        (_set(["notices", 3, "id"], "low"), "notices[3].id", "appears twice"),
        (_set(["notices"], {"id": "x"}), "notices", "list of tables"),
        (_set(["notices", 0], "just text"), "notices[0]", "must be a table"),
    ],
)
def test_bad_notices_are_refused_with_where_and_why(change: Any, where: str, problem: str) -> None:
    with pytest.raises(NoticeError) as caught:
        parse_notices(_broken(change))
    assert caught.value.path == where
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"{where}: ")


def test_the_same_day_boundary_is_refused_too() -> None:
    # valid_until equal to valid_from would be a notice that never shows: a typo, not content.
    with pytest.raises(NoticeError, match=r"notices\[0\]\.valid_until: must be after"):
        parse_notices({"notices": [_notice("x", NOW, NOW)]})


# --- the shipped file ---------------------------------------------------------------------------


def shipped() -> dict[str, Any]:
    with SHIPPED.open("rb") as f:
        return tomllib.load(f)


def test_the_shipped_notices_parse_with_both_languages_for_every_notice() -> None:
    notices = parse_notices(shipped())
    assert 4 <= len(notices.notices) <= 6
    tables = notices.translations()
    for notice in notices.notices:
        for lang in LANGUAGES:
            assert tables[lang][notice.title_key].strip()
            assert tables[lang][notice.body_key].strip()
        # Chinese in the zh_CN text, none in the English.
        assert any("\u4e00" <= ch <= "\u9fff" for ch in notice.title.zh + notice.body.zh)
        assert not any("\u4e00" <= ch <= "\u9fff" for ch in notice.title.en + notice.body.en)


def test_the_shipped_board_shows_something_today_and_its_urgent_notice_is_short() -> None:
    notices = parse_notices(shipped())
    today = dt.datetime(2026, 12, 6, 10, 0, tzinfo=CHINA_ZONE)
    assert notices.showing(today) is not None
    for notice in notices.notices:
        if notice.urgent:
            # An urgent notice hides every other one: a long window would hide the board for days.
            assert notice.valid_until - notice.valid_from <= dt.timedelta(days=2)


def _slot_start(now: dt.datetime, period_s: int) -> dt.datetime:
    """The start of the rotation period ``now`` falls in, worked out independently of the code:
    periods are counted from a midnight UTC, and a day is a whole number of periods."""
    midnight = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    elapsed = int((now - midnight).total_seconds())
    return midnight + dt.timedelta(seconds=elapsed - elapsed % period_s)
