"""The help_ack command: its args are checked, and its ack says whether the screen showed it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import ValidationError

from flows.steps import HelpAcknowledged
from terminal.commands import CommandError
from terminal.help_command import HelpAckArgs, help_ack_handler


def _args(**overrides: object) -> HelpAckArgs:
    return HelpAckArgs.model_validate({"help_id": "h-1", "staff": "王工", "minutes": 5,
                                       **overrides})


@pytest.mark.parametrize("bad", [
    {"staff": ""}, {"staff": "   "}, {"staff": "a\nb"}, {"staff": "x" * 33},
    {"staff": "13812345678"},  # a phone number on a public screen
    {"minutes": 0}, {"minutes": 241}, {"minutes": "5"}, {"help_id": "a/b"}, {"extra": 1},
])
def test_bad_args_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        _args(**bad)


def test_a_call_open_on_the_screen_is_shown() -> None:
    seen: list[HelpAcknowledged] = []

    def deliver(ack: HelpAcknowledged, done: Callable[[bool], None]) -> None:
        seen.append(ack)
        done(True)

    assert help_ack_handler(deliver)(_args(staff=" 王工 ")) == {"shown": True}
    assert seen == [HelpAcknowledged("h-1", "王工", 5)]


def test_a_call_no_longer_open_fails_with_the_reason() -> None:
    with pytest.raises(CommandError, match="no help call"):
        help_ack_handler(lambda _ack, done: done(False))(_args())


def test_a_screen_that_never_answers_fails_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("terminal.help_command.ANSWER_WAIT_S", 0.05)
    with pytest.raises(CommandError, match="did not answer"):
        help_ack_handler(lambda _ack, _done: None)(_args())
