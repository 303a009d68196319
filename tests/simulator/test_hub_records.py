"""Synthetic records beyond the proofs: addresses, processing authorities, a case's pace and a
period's capacity, all fixed by their inputs so scenarios keep their data."""

from __future__ import annotations

import datetime as dt

from flows.hub import CaseStatus
from flows.identity import check_character
from simulator.hub_calendar import add_working_days
from simulator.hub_progress import Pace, Timeline, pace_for
from simulator.hub_records import SPECIAL_PEOPLE, delivery_address, processing_authority
from simulator.hub_slots import initial_places, periods
from simulator.hub_wire import CHINA_STANDARD_TIME

PERSON = "34052419800101001X"
OTHER = "510107199211300021"


def with_check(first17: str) -> str:
    return first17 + check_character(first17)


def many_people(count: int) -> list[str]:
    return [with_check(f"5101071980{1 + n % 12:02d}{1 + n % 28:02d}{n % 1000:03d}")
            for n in range(count)]  # fmt: skip


def test_addresses_are_pinned_so_scenarios_keep_their_data() -> None:
    # A change in the derivation changes every synthetic person; it must be a deliberate one.
    assert delivery_address(PERSON) == "安徽省临河县龙泉乡杨柳村8组37号"
    assert delivery_address("510107199211300021") == "四川省成都市河口区马头镇陈湾村7组60号"
    assert delivery_address("330106198506120015") is None


def test_some_have_no_address_and_the_special_people_none() -> None:
    people = many_people(400)
    missing = sum(delivery_address(p) is None for p in people)
    assert 0.05 < missing / len(people) < 0.25
    assert all(delivery_address(p) is None for p in SPECIAL_PEOPLE)
    assert delivery_address(with_check("99010119800101001")) is None  # no such province
    addresses = {delivery_address(p) for p in people} - {None}
    assert len(addresses) > 300  # not one canned answer
    assert all(a.startswith("四川省成都市") and a.endswith("号") for a in addresses if a)


def test_the_authority_follows_the_item_and_where_the_resident_is_registered() -> None:
    # Decided where registered (异地通办), at the level the tables know.
    hangzhou, chengdu, beijing = "330106198506120015", OTHER, with_check("11010519491231002")
    assert processing_authority("human_resources", hangzhou) == "杭州市人力资源和社会保障局"
    assert processing_authority("healthcare_security", chengdu) == "成都市医疗保障局"
    assert processing_authority("public_security", beijing) == "北京市公安局"
    assert processing_authority("human_resources", PERSON) == "安徽省人力资源和社会保障厅"
    # Registered here, or unknown to the tables: the receiving county's own.
    assert processing_authority("human_resources", with_check("33038119900101001")) == (
        "示范县人力资源和社会保障局"
    )
    assert processing_authority("human_resources", with_check("99010119800101001")) == (
        "示范县人力资源和社会保障局"
    )
    # Decided where received, whoever applies.
    assert processing_authority("civil_affairs", PERSON) == "示范县民政局"
    assert processing_authority("rural_land", "510107199211300021") == "示范县农业农村局"
    assert processing_authority("no_such_department", PERSON) == "示范县行政审批服务局"


def test_a_cases_pace_is_fixed_by_its_reference() -> None:
    assert pace_for("T-0001-20250303-0001", 5) == pace_for("T-0001-20250303-0001", 5)
    assert pace_for("T-0001-20250303-0001", 5) != pace_for("T-0001-20250303-0002", 5)
    paces = [pace_for(f"T-9-{n}", 5) for n in range(200)]
    assert all(5 * 60 <= p.accept_after_s <= 30 * 60 for p in paces)
    assert all(3600 <= p.review_after_s <= 4 * 3600 for p in paces)
    assert all(6 * 3600 <= p.decide_after_s <= 48 * 3600 for p in paces)
    assert all(p.decide_after_s <= 2 * 3600 for p in (pace_for(f"T-{n}", 0) for n in range(50)))


def test_a_timeline_reads_off_the_status_at_any_moment() -> None:
    received = dt.datetime(2025, 3, 3, 10, 0, tzinfo=CHINA_STANDARD_TIME)
    pace = Pace(accept_after_s=600, review_after_s=3600, decide_after_s=7200, deliver_after_s=86400)
    timeline = Timeline(received, dt.date(2025, 3, 10), pace, False, None, rejected=False)

    def at(minutes: int) -> tuple[CaseStatus, dt.datetime]:
        return timeline.status_at(received + dt.timedelta(minutes=minutes))

    assert at(0) == (CaseStatus.RECEIVED, received)
    assert at(9)[0] is CaseStatus.RECEIVED
    assert at(10) == (CaseStatus.ACCEPTED, received + dt.timedelta(minutes=10))
    assert at(70)[0] is CaseStatus.IN_REVIEW
    assert at(190) == (CaseStatus.APPROVED, received + dt.timedelta(minutes=190))
    assert at(190 + 24 * 60)[0] is CaseStatus.DELIVERED


def test_a_decision_comes_by_the_promised_day() -> None:
    received = dt.datetime(2025, 3, 3, 16, 0, tzinfo=CHINA_STANDARD_TIME)
    slow = Pace(accept_after_s=600, review_after_s=3600, decide_after_s=48 * 3600,
                deliver_after_s=3600)  # fmt: skip
    timeline = Timeline(received, dt.date(2025, 3, 4), slow, False, None, rejected=False)
    status, since = timeline.status_at(received + dt.timedelta(days=3))
    assert (status, since) == (
        CaseStatus.DELIVERED, dt.datetime(2025, 3, 4, 18, 0, tzinfo=CHINA_STANDARD_TIME)
    )


def test_working_days_skip_weekends_and_never_count_the_first_day() -> None:
    friday = dt.date(2025, 3, 7)
    assert add_working_days(friday, 0) == friday
    assert add_working_days(friday, 1) == dt.date(2025, 3, 10)
    assert add_working_days(dt.date(2025, 3, 8), 1) == dt.date(2025, 3, 10)  # a Saturday
    assert add_working_days(friday, 5) == dt.date(2025, 3, 14)


def test_period_capacities_are_pinned_and_vary() -> None:
    day = dt.date(2025, 3, 4)
    starts = [start for start, _ in periods()]
    places = [initial_places("window", "ruian-tangxia", day, start) for start in starts]
    assert places == [initial_places("window", "ruian-tangxia", day, s) for s in starts]
    assert all(2 <= capacity <= 6 and 0 <= taken <= capacity for capacity, taken in places)
    assert len(set(places)) > 3
