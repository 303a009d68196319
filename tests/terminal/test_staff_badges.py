"""The staff badge list (config, command, kept across restarts) and the staff commands' handlers."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from devices.base import PaperOut, Receipt, TextLine
from terminal.commands import CommandError
from terminal.config import ConfigError, parse_config
from terminal.staff_badges import BadgeListError, StaffBadges, normalise
from terminal.staff_commands import (
    NoArgs,
    SetStaffBadgesArgs,
    print_test_page_handler,
    restart_app_handler,
    set_staff_badges_handler,
)
from terminal.staff_parts import StaffParts

UID = "04A1B2C3D4E580"


def test_uids_are_checked_and_upper_cased() -> None:
    assert normalise(["04a1b2c3d4e580", "DEADBEEF", "00112233445566778899"]) == frozenset(
        {UID, "DEADBEEF", "00112233445566778899"})
    for bad in (["04A1B2"], ["zzzzzzzz"], ["04A1B2C3D4E5801"], [7]):
        with pytest.raises(BadgeListError) as refused:
            normalise(bad)  # type: ignore[arg-type]
        assert str(bad[0]) not in str(refused.value)  # the message names the position only


def test_the_config_lists_badges_and_refuses_bad_ones() -> None:
    assert parse_config({"staff": {"badges": [UID.lower()]}}).staff.badges == (UID,)
    with pytest.raises(ConfigError, match=r"\[staff\] badges: badge 2"):
        parse_config({"staff": {"badges": [UID, "nope"]}})
    with pytest.raises(ConfigError, match="list of strings"):
        parse_config({"staff": {"badges": UID}})


def test_a_replaced_list_outlives_a_restart_and_beats_the_config(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    badges = StaffBadges(tmp_path, [UID])
    assert badges.uids == {UID}
    badges.replace(["DEADBEEF"])
    assert StaffBadges(tmp_path, [UID]).uids == {"DEADBEEF"}
    assert UID not in caplog.text and "DEADBEEF" not in caplog.text


def test_a_damaged_badge_file_falls_back_to_the_config(tmp_path: Path) -> None:
    (tmp_path / StaffBadges.FILE_NAME).write_text("{not json", encoding="utf-8")
    assert StaffBadges(tmp_path, [UID]).uids == {UID}
    (tmp_path / StaffBadges.FILE_NAME).write_text(json.dumps({"badges": ["x"]}), encoding="utf-8")
    assert StaffBadges(tmp_path, [UID]).uids == {UID}


def test_set_staff_badges_keeps_then_applies(tmp_path: Path) -> None:
    applied: list[frozenset[str]] = []
    handle = set_staff_badges_handler(StaffBadges(tmp_path, []), applied.append)
    assert handle(SetStaffBadgesArgs(badges=[UID.lower(), "DEADBEEF"])) == {"count": 2}
    assert applied == [frozenset({UID, "DEADBEEF"})]
    with pytest.raises(CommandError, match="badge 1"):
        handle(SetStaffBadgesArgs(badges=["12"]))
    assert len(applied) == 1  # a refused list changes nothing
    assert handle(SetStaffBadgesArgs(badges=[])) == {"count": 0}  # every badge withdrawn


def test_restart_and_test_print_never_interrupt_a_resident() -> None:
    restarted: list[bool] = []
    printed: list[Receipt] = []
    page = Receipt((TextLine("打印测试页"),))
    serving = [True]
    restart = restart_app_handler(lambda: serving[0], lambda: restarted.append(True))
    test_print = print_test_page_handler(lambda: serving[0], lambda: page, printed.append)
    with pytest.raises(CommandError, match="being served"):
        restart(NoArgs())
    with pytest.raises(CommandError, match="being served"):
        test_print(NoArgs())
    serving[0] = False
    assert restart(NoArgs()) == {"restarting": True} and restarted == [True]
    assert test_print(NoArgs()) == {"printed": True} and printed == [page]

    def out_of_paper(_receipt: Receipt) -> None:
        raise PaperOut("no paper", reason="paper_out")

    with pytest.raises(CommandError, match="paper_out"):
        print_test_page_handler(lambda: False, lambda: page, out_of_paper)(NoArgs())


def test_staff_parts_register_the_three_commands(tmp_path: Path) -> None:
    class Agent:
        def __init__(self) -> None:
            self.names: list[str] = []

        def register_command(self, name: str, _model: Any, _handler: Any) -> None:
            self.names.append(name)

    agent = Agent()
    parts = StaffParts(parse_config({"terminal": {"state_dir": str(tmp_path)}}), tmp_path)
    parts.register_commands(agent, serving=lambda: False,  # type: ignore[arg-type]
                            apply_badges=lambda _u: None, restart=lambda: None,
                            test_page=lambda: Receipt(()), print_receipt=lambda _r: None)
    assert agent.names == ["set_staff_badges", "restart_app", "test_print"]
