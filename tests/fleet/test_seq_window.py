"""The anti-replay window takes every heartbeat once, in any order within the window."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fleet.seq_window import WINDOW, SeqWindow, Verdict


def test_a_repeat_is_refused_and_a_late_one_taken_once() -> None:
    w = SeqWindow()
    for seq in (1, 2, 4):
        verdict, w = w.check(seq)
        assert verdict is Verdict.NEW
    assert w.check(2)[0] is Verdict.REPEAT
    verdict, w = w.check(3)  # late, not seen
    assert verdict is Verdict.NEW
    assert w.check(3)[0] is Verdict.REPEAT


def test_older_than_the_window_is_too_old() -> None:
    _, w = SeqWindow().check(1000)
    assert w.check(1000 - WINDOW)[0] is Verdict.TOO_OLD
    assert w.check(1000 - WINDOW + 1)[0] is Verdict.NEW


def test_the_window_survives_a_signed_64_bit_column() -> None:
    w = SeqWindow()
    for seq in range(WINDOW):
        w = w.check(seq)[1]
    assert w.seen == (1 << WINDOW) - 1
    stored = w.stored()
    assert -(1 << 63) <= stored < (1 << 63)
    assert SeqWindow.from_stored(w.top, stored) == w


@given(st.permutations(list(range(40))), st.lists(st.integers(0, 39), max_size=20))
def test_any_order_within_the_window_counts_each_exactly_once(order: list[int],
                                                              repeats: list[int]) -> None:
    w, counted = SeqWindow(), []
    for seq in [*order, *repeats]:  # every seq once, in any order, then repeats of some
        verdict, w = w.check(seq)
        if verdict is Verdict.NEW:
            counted.append(seq)
    assert sorted(counted) == list(range(40))
