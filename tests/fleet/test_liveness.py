"""A terminal's liveness from its status and heartbeats: births win, late Wills are ignored, a
terminal is stale after three missed heartbeats, and only a birth brings one back."""

from __future__ import annotations

from fleet_support import T0, at, heartbeat, status
from hypothesis import given
from hypothesis import strategies as st

from fleet.liveness import DEFAULT_INTERVAL_S, Liveness, Presence


def test_nothing_heard_is_offline() -> None:
    assert Presence().liveness(T0) is Liveness.OFFLINE


def test_a_birth_then_heartbeats_is_online_until_three_intervals_pass() -> None:
    p = Presence().on_status(status(True, 1), at(0)).on_heartbeat(heartbeat(interval_s=10), at(5))
    assert p.liveness(at(35)) is Liveness.ONLINE  # exactly 3 x 10 s after the last heartbeat
    assert p.liveness(at(35.001)) is Liveness.STALE
    assert p.on_heartbeat(heartbeat(interval_s=10), at(34)).liveness(at(60)) is Liveness.ONLINE


def test_before_the_first_heartbeat_the_birth_counts_with_the_default_interval() -> None:
    p = Presence().on_status(status(True, 1), at(0))
    assert p.liveness(at(3 * DEFAULT_INTERVAL_S)) is Liveness.ONLINE
    assert p.liveness(at(3 * DEFAULT_INTERVAL_S + 1)) is Liveness.STALE


def test_the_will_of_the_current_connection_makes_it_offline() -> None:
    p = Presence().on_status(status(True, 4), at(0)).on_heartbeat(heartbeat(), at(1))
    assert p.on_status(status(False, 4), at(2)).liveness(at(2)) is Liveness.OFFLINE


def test_a_late_will_of_an_earlier_connection_is_ignored() -> None:
    # The terminal reconnected (bdseq 5) before the broker gave up on connection 4.
    p = Presence().on_status(status(True, 5), at(0))
    later = p.on_status(status(False, 4), at(1))
    assert later == p and later.liveness(at(1)) is Liveness.ONLINE


def test_a_will_of_a_newer_connection_counts_though_its_birth_was_missed() -> None:
    p = Presence().on_status(status(True, 5), at(0))
    assert p.on_status(status(False, 6), at(1)).liveness(at(1)) is Liveness.OFFLINE


def test_a_heartbeat_does_not_bring_an_offline_terminal_back_a_birth_does() -> None:
    p = Presence().on_status(status(True, 1), at(0)).on_status(status(False, 1), at(1))
    p = p.on_heartbeat(heartbeat(), at(2))  # a QoS 0 heartbeat overtaken by its own Will
    assert p.liveness(at(2)) is Liveness.OFFLINE
    assert p.on_status(status(True, 2), at(3)).liveness(at(3)) is Liveness.ONLINE


def test_a_new_install_counting_bdseq_from_zero_again_is_believed() -> None:
    p = Presence().on_status(status(True, 57, "old-boot"), at(0))
    p = p.on_status(status(True, 0, "new-boot"), at(10))
    assert p.liveness(at(10)) is Liveness.ONLINE and p.bdseq == 0


def test_heartbeats_from_before_a_birth_do_not_keep_the_new_boot_fresh() -> None:
    p = Presence().on_heartbeat(heartbeat(interval_s=10), at(100)).on_status(status(True, 1), at(0))
    assert p.last_seen() == at(100)
    assert p.liveness(at(101)) is Liveness.ONLINE


def test_heartbeats_without_a_status_are_online_while_fresh() -> None:
    p = Presence().on_heartbeat(heartbeat(interval_s=10), at(0))
    assert p.liveness(at(30)) is Liveness.ONLINE
    assert p.liveness(at(31)) is Liveness.STALE


def test_an_out_of_order_heartbeat_never_moves_last_seen_back() -> None:
    p = Presence().on_heartbeat(heartbeat(), at(50)).on_heartbeat(heartbeat(), at(20))
    assert p.last_heartbeat == at(50)


Message = tuple[str, int, float]  # ("birth" | "will" | "heartbeat", bdseq, seconds)


@given(st.lists(st.tuples(st.sampled_from(["birth", "will", "heartbeat"]),
                          st.integers(0, 5), st.floats(0, 1000)), max_size=30))
def test_after_any_sequence_the_newest_connection_decides(messages: list[Message]) -> None:
    p = Presence()
    newest_birth: int | None = None
    for kind, bdseq, seconds in messages:
        if kind == "birth":
            p, newest_birth = p.on_status(status(True, bdseq), at(seconds)), bdseq
        elif kind == "will":
            p = p.on_status(status(False, bdseq), at(seconds))
        else:
            p = p.on_heartbeat(heartbeat(), at(seconds))
    if newest_birth is None:
        return
    wills_after = [b for k, b, _ in messages[max(i for i, m in enumerate(messages)
                                                 if m[0] == "birth"):] if k == "will"]
    # Offline exactly when, since the last birth, a Will of that connection or a newer one came.
    assert (p.online is False) == any(b >= newest_birth for b in wills_after)
