"""The paper roll's receipt count: counting, persistence, a damaged file, threads, the estimate."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from devices.base import DeviceState
from terminal.paper_roll import PAPER_LOW_ESTIMATED, PaperRoll


def test_counts_receipts_and_says_low_at_the_threshold(tmp_path: Path) -> None:
    roll = PaperRoll(tmp_path / "paper_roll.json", 10, low_at=0.8)
    assert (roll.count, roll.capacity, roll.low) == (0, 10, False)
    for _ in range(7):
        roll.printed()
    assert roll.count == 7 and not roll.low
    assert roll.printed() == 8
    assert roll.low


def test_refilled_starts_the_count_again(tmp_path: Path) -> None:
    roll = PaperRoll(tmp_path / "paper_roll.json", 10)
    roll.printed(9)
    assert roll.low
    roll.refilled()
    assert (roll.count, roll.low) == (0, False)
    assert PaperRoll(tmp_path / "paper_roll.json", 10).count == 0


def test_capacity_zero_counts_but_is_never_low(tmp_path: Path) -> None:
    roll = PaperRoll(tmp_path / "paper_roll.json", 0)
    roll.printed(10_000)
    assert roll.count == 10_000 and not roll.low
    assert roll.with_estimate(DeviceState.ok()) == DeviceState.ok()


def test_count_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state" / "paper_roll.json"  # the directory is made on the first write
    first = PaperRoll(path, 100)
    first.printed()
    first.printed(4)
    assert PaperRoll(path, 100).count == 5
    assert not list(path.parent.glob(".*.tmp"))  # replaced whole, nothing left behind


def test_missing_file_starts_at_zero_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="terminal.paper_roll"):
        roll = PaperRoll(tmp_path / "paper_roll.json", 100)
    assert roll.count == 0
    assert "not found; counting from 0" in caplog.text


@pytest.mark.parametrize("text", ["{not json", '{"printed": -3}', '{"printed": "7"}',
                                  '{"printed": true}', "[]", ""])
def test_corrupt_file_starts_at_zero_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str
) -> None:
    path = tmp_path / "paper_roll.json"
    path.write_text(text, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="terminal.paper_roll"):
        roll = PaperRoll(path, 100)
    assert roll.count == 0
    assert "corrupt; counting from 0" in caplog.text
    roll.printed()
    assert PaperRoll(path, 100).count == 1  # and the next receipt writes a good file again


def test_counting_from_many_threads_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "paper_roll.json"
    roll = PaperRoll(path, 1000)
    start = threading.Barrier(8)

    def print_some() -> None:
        start.wait()
        for _ in range(25):
            roll.printed()

    threads = [threading.Thread(target=print_some) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert roll.count == 200
    assert PaperRoll(path, 1000).count == 200  # the last write on disk is the last count


def test_an_unwritable_file_keeps_counting_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("", encoding="utf-8")
    roll = PaperRoll(blocker / "paper_roll.json", 10)
    with caplog.at_level(logging.WARNING, logger="terminal.paper_roll"):
        roll.printed(3)
    assert roll.count == 3
    assert "could not save the paper roll count" in caplog.text


def test_the_estimate_degrades_an_ok_printer_only(tmp_path: Path) -> None:
    roll = PaperRoll(tmp_path / "paper_roll.json", 10)
    roll.printed(9)
    assert roll.with_estimate(DeviceState.ok()) == DeviceState.degraded(PAPER_LOW_ESTIMATED)
    # What the printer measures wins over what the terminal guesses.
    assert roll.with_estimate(DeviceState.fault("paper_out")) == DeviceState.fault("paper_out")
    assert (roll.with_estimate(DeviceState.degraded("paper_near_end"))
            == DeviceState.degraded("paper_near_end"))
    roll.refilled()
    assert roll.with_estimate(DeviceState.ok()) == DeviceState.ok()


@pytest.mark.parametrize(("capacity", "low_at"), [(-1, 0.9), (10, 0.0), (10, 1.5)])
def test_bad_settings_are_refused(tmp_path: Path, capacity: int, low_at: float) -> None:
    with pytest.raises(ValueError):
        PaperRoll(tmp_path / "paper_roll.json", capacity, low_at=low_at)
