"""Loading content so a bad file never stops the terminal: the last good copy, the packaged
catalogue, an empty board, and a clear problem (event and heartbeat row) for each replacement."""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from pathlib import Path

import pytest

from contracts.personal import screen_event_fields
from devices.base import DeviceState, Health
from flows.clock import CHINA_ZONE
from flows.event_names import EventType
from flows.home import ERRAND_FLOWS
from terminal.content_store import (
    CATALOGUE_FILE,
    NOTICES_FILE,
    PACKAGED_CONTENT_DIR,
    ContentError,
    Fallback,
    LoadedContent,
    ProblemCode,
    load_content,
)

NOTICE = """
version = "test.1"

[[notices]]
id = "{id}"
valid_from = 2026-12-01T00:00:00
valid_until = 2027-01-01T00:00:00
title.zh_CN = "医保缴费"
title.en = "Medical insurance payments"
body.zh_CN = "集中缴费截至12月31日。"
body.en = "The payment period ends on 31 December."
"""
NOW = dt.datetime(2026, 12, 6, 10, 0, tzinfo=CHINA_ZONE)


@pytest.fixture
def content_dir(tmp_path: Path) -> Path:
    """A content directory like a site's: the packaged catalogue and one notice."""
    directory = tmp_path / "content"
    directory.mkdir()
    shutil.copy(PACKAGED_CONTENT_DIR / CATALOGUE_FILE, directory / CATALOGUE_FILE)
    (directory / NOTICES_FILE).write_text(NOTICE.format(id="payments"), encoding="utf-8")
    return directory


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "state"
    directory.mkdir()
    return directory


def last_good(state_dir: Path, name: str) -> Path:
    return state_dir / "content" / "last-good" / name


def only_problem(content: LoadedContent) -> tuple[str, ProblemCode, Fallback]:
    assert len(content.problems) == 1, content.problems
    problem = content.problems[0]
    return problem.file, problem.code, problem.fallback


def test_a_good_load_has_no_problems_and_saves_both_files_as_last_good(
    content_dir: Path, state_dir: Path
) -> None:
    content = load_content(content_dir, state_dir)
    assert content.problems == ()
    assert content.health() == DeviceState.ok()
    assert content.events() == ()
    assert content.notices.showing(NOW).id == "payments"  # type: ignore[union-attr]
    assert content.catalogue.item("pension_qualification_check") is not None
    for name in (CATALOGUE_FILE, NOTICES_FILE):
        assert last_good(state_dir, name).read_bytes() == (content_dir / name).read_bytes()
    # One table for the translator, catalogue and notices together, in both languages.
    tables = content.translations()
    assert tables["en"]["notices.payments.title"] == "Medical insurance payments"
    assert tables["zh_CN"]["catalogue.pension_qualification_check.title"] == "领取养老金资格认证"


def test_a_broken_catalogue_uses_the_last_good_copy_and_reports_it(
    content_dir: Path, state_dir: Path
) -> None:
    load_content(content_dir, state_dir)  # yesterday's good content
    good = last_good(state_dir, CATALOGUE_FILE).read_bytes()
    # Today's push has a typo in a key.
    text = (content_dir / CATALOGUE_FILE).read_text(encoding="utf-8")
    (content_dir / CATALOGUE_FILE).write_text(
        text.replace("\ntime_limit_working_days =", "\ntime_limit_workingdays =", 1),
        encoding="utf-8",
    )
    content = load_content(content_dir, state_dir)
    assert only_problem(content) == (CATALOGUE_FILE, ProblemCode.INVALID, Fallback.LAST_GOOD)
    problem = content.problems[0]
    assert problem.at == "items[0].guide.time_limit_working_days"
    assert problem.message == "items[0].guide.time_limit_working_days: is missing"
    # Operations see where, too: a path in the file, never the file's text.
    assert dict(content.events()[0].fields) == {
        "file": "catalogue.toml", "problem": "invalid", "fallback": "last_good",
        "at": "items[0].guide.time_limit_working_days",
    }
    assert content.catalogue.item("pension_qualification_check") is not None
    # The bad file never overwrites the last good copy.
    assert last_good(state_dir, CATALOGUE_FILE).read_bytes() == good
    # The notices were fine and are still in use.
    assert content.notices.showing(NOW) is not None
    assert content.health() == DeviceState(Health.DEGRADED, "content_invalid")


def test_the_event_carries_file_problem_and_fallback_and_passes_the_screen(
    content_dir: Path, state_dir: Path
) -> None:
    load_content(content_dir, state_dir)
    (content_dir / CATALOGUE_FILE).write_text("items = [", encoding="utf-8")
    (event,) = load_content(content_dir, state_dir).events()
    assert event.type is EventType.CONTENT_INVALID
    assert event.severity == "warning"
    assert dict(event.fields) == {
        "file": "catalogue.toml", "problem": "bad_toml", "fallback": "last_good",
    }
    assert screen_event_fields(event.fields).problems == ()


def test_a_broken_catalogue_without_a_last_good_copy_uses_the_packaged_one(
    content_dir: Path, state_dir: Path
) -> None:
    (content_dir / CATALOGUE_FILE).write_text('version = "x"\n', encoding="utf-8")
    content = load_content(content_dir, state_dir)
    assert only_problem(content) == (CATALOGUE_FILE, ProblemCode.INVALID, Fallback.PACKAGED)
    assert content.problems[0].at == "themes"
    assert content.catalogue.items  # the packaged catalogue
    # A fallback is not content_dir's content: nothing is saved as last good for it.
    assert not last_good(state_dir, CATALOGUE_FILE).exists()


def test_no_usable_catalogue_anywhere_stops_start_up_with_a_clear_error(
    content_dir: Path, state_dir: Path, tmp_path: Path
) -> None:
    (content_dir / CATALOGUE_FILE).write_text("items = [", encoding="utf-8")
    packaged = tmp_path / "packaged"
    packaged.mkdir()
    (packaged / CATALOGUE_FILE).write_text("[[themes]]\n", encoding="utf-8")
    with pytest.raises(ContentError, match=r"catalogue\.toml: not valid TOML.*no last good"):
        load_content(content_dir, state_dir, packaged_dir=packaged)
    # The packaged directory used as the content directory is not a second chance either.
    with pytest.raises(ContentError):
        load_content(packaged, state_dir, packaged_dir=packaged)


def test_broken_notices_without_a_last_good_copy_give_an_empty_board(
    content_dir: Path, state_dir: Path
) -> None:
    (content_dir / NOTICES_FILE).write_text(
        NOTICE.format(id="payments").replace("body.en", "body.fr"), encoding="utf-8"
    )
    content = load_content(content_dir, state_dir)
    assert only_problem(content) == (NOTICES_FILE, ProblemCode.INVALID, Fallback.EMPTY)
    assert content.problems[0].at == "notices[0].body.en"
    assert content.notices.notices == ()
    assert content.notices.showing(NOW) is None
    # The catalogue was good: in use, and saved.
    assert last_good(state_dir, CATALOGUE_FILE).is_file()


def test_broken_notices_use_their_last_good_copy(content_dir: Path, state_dir: Path) -> None:
    load_content(content_dir, state_dir)
    (content_dir / NOTICES_FILE).write_text(
        NOTICE.format(id="payments").replace("2027-01-01", "2026-11-01"), encoding="utf-8"
    )
    content = load_content(content_dir, state_dir)
    assert only_problem(content) == (NOTICES_FILE, ProblemCode.INVALID, Fallback.LAST_GOOD)
    assert "must be after valid_from" in content.problems[0].message
    assert content.notices.showing(NOW).id == "payments"  # type: ignore[union-attr]


def test_a_file_that_is_not_utf8_is_refused_with_its_line(
    content_dir: Path, state_dir: Path
) -> None:
    # An editor saved it as GBK, as Windows tools in China often do.
    text = NOTICE.format(id="payments")
    (content_dir / NOTICES_FILE).write_bytes(text.encode("gbk"))
    content = load_content(content_dir, state_dir)
    assert only_problem(content) == (NOTICES_FILE, ProblemCode.NOT_UTF8, Fallback.EMPTY)
    first_chinese_line = next(
        number for number, line in enumerate(text.split("\n"), start=1) if "医保" in line
    )
    assert f"line {first_chinese_line}," in content.problems[0].message
    assert "save it as UTF-8" in content.problems[0].message


def test_a_missing_notices_file_gives_an_empty_board_and_a_problem(
    content_dir: Path, state_dir: Path
) -> None:
    (content_dir / NOTICES_FILE).unlink()
    content = load_content(content_dir, state_dir)
    assert only_problem(content) == (NOTICES_FILE, ProblemCode.MISSING, Fallback.EMPTY)
    assert content.problems[0].message == "the file is missing"
    assert content.notices.showing(NOW) is None


def test_an_unreadable_file_is_a_problem_not_a_crash(content_dir: Path, state_dir: Path) -> None:
    (content_dir / NOTICES_FILE).unlink()
    (content_dir / NOTICES_FILE).mkdir()  # a directory where the file should be
    content = load_content(content_dir, state_dir)
    assert only_problem(content) == (NOTICES_FILE, ProblemCode.UNREADABLE, Fallback.EMPTY)


def test_an_oversized_file_is_refused_without_parsing_it(
    content_dir: Path, state_dir: Path
) -> None:
    with (content_dir / NOTICES_FILE).open("w", encoding="utf-8") as f:
        f.write("# " + "x" * (4 * 1024 * 1024) + "\n")
    content = load_content(content_dir, state_dir)
    assert only_problem(content) == (NOTICES_FILE, ProblemCode.TOO_LARGE, Fallback.EMPTY)


def test_an_item_naming_an_unknown_flow_is_refused_when_flows_are_given(
    content_dir: Path, state_dir: Path
) -> None:
    text = (content_dir / CATALOGUE_FILE).read_text(encoding="utf-8")
    (content_dir / CATALOGUE_FILE).write_text(
        text.replace('flow = "proof"', 'flow = "print_proof"', 1), encoding="utf-8"
    )
    flows = ERRAND_FLOWS
    assert load_content(content_dir, state_dir).problems == ()  # unchecked, it passes
    content = load_content(content_dir, tmp_state(state_dir), flows=flows)
    assert only_problem(content) == (CATALOGUE_FILE, ProblemCode.INVALID, Fallback.PACKAGED)
    assert "no flow 'print_proof'" in content.problems[0].message


def tmp_state(state_dir: Path) -> Path:
    """A second, empty state directory: a terminal with no last good copy yet."""
    fresh = state_dir.parent / "fresh-state"
    fresh.mkdir()
    return fresh


def test_a_last_good_copy_this_software_refuses_falls_through_to_the_packaged_one(
    content_dir: Path, state_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    load_content(content_dir, state_dir)
    last_good(state_dir, CATALOGUE_FILE).write_text("items = [", encoding="utf-8")
    (content_dir / CATALOGUE_FILE).write_text("", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="terminal.content_store"):
        content = load_content(content_dir, state_dir)
    assert only_problem(content) == (CATALOGUE_FILE, ProblemCode.INVALID, Fallback.PACKAGED)
    assert "last good copy is unusable too" in caplog.text
    assert "Traceback" not in caplog.text


def test_an_unchanged_good_file_is_not_rewritten(content_dir: Path, state_dir: Path) -> None:
    load_content(content_dir, state_dir)
    saved = last_good(state_dir, NOTICES_FILE)
    before = saved.stat().st_mtime_ns
    load_content(content_dir, state_dir)
    assert saved.stat().st_mtime_ns == before
    # A changed good file replaces it, and no temporary file is left beside it.
    (content_dir / NOTICES_FILE).write_text(NOTICE.format(id="renamed"), encoding="utf-8")
    load_content(content_dir, state_dir)
    assert "renamed" in saved.read_text(encoding="utf-8")
    assert sorted(p.name for p in saved.parent.iterdir()) == [CATALOGUE_FILE, NOTICES_FILE]


def test_the_shipped_content_directory_loads_clean(state_dir: Path) -> None:
    content = load_content(PACKAGED_CONTENT_DIR, state_dir, flows=ERRAND_FLOWS)
    assert content.problems == ()
    assert content.notices.notices
