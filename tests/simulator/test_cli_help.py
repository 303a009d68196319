"""`kiosk-sim --help`: every option says what it does and what happens when it is left out."""

from __future__ import annotations

import argparse
import re

import pytest

from simulator.cli import build_parser

# DESIGN section 5 fixes these names for swapping a virtual device for a real endpoint.
FIXED_OPTIONS = (
    "--printer", "--broker", "--hub", "--real-reader", "--scanner-serial", "--idcard-serial",
    "--controller-serial", "--camera",
    "--heartbeat",
)


def options() -> list[argparse.Action]:
    return [action for action in build_parser()._actions if action.dest != "help"]


@pytest.mark.parametrize("action", options(), ids=lambda action: action.option_strings[0])
def test_every_option_is_described_with_its_default(action: argparse.Action) -> None:
    assert action.help, f"{action.option_strings[0]} has no description"
    text = action.help % {"default": action.default}
    assert "(default: " in text, f"{action.option_strings[0]} does not say its default: {text}"
    if action.default not in (None, False):
        # A real value is shown as such (a tuple like (1920, 1080) is said as 1920x1080).
        shown = "x".join(map(str, action.default)) if isinstance(action.default, tuple) else str(
            action.default
        )
        assert f"(default: {shown})" in text, text


def test_the_help_text_names_the_defaults_of_the_options_that_had_none() -> None:
    text = build_parser().format_help()
    flat = re.sub(r"\s+", " ", text)
    for expected in (
        "--panel-port PORT port of the control panel",
        "(default: 8700)",
        "(default: 8701)",
        "(default: T-SIM-0001)",
    ):
        assert expected in flat, expected


def test_the_fixed_options_of_the_design_are_there_and_explained() -> None:
    flat = re.sub(r"\s+", " ", build_parser().format_help())
    for option in FIXED_OPTIONS:
        assert option in flat, option
    assert "--printer HOST:PORT" in flat and "PORT defaults to 9100" in flat
    assert "--broker URL" in flat and "mqtt://HOST:PORT" in flat
    assert "--heartbeat SECONDS" in flat
    assert "--scanner-serial PATH" in flat and "/dev/serial/by-id/" in flat
    assert "WORKDIR/scanner.tty" in flat  # where the virtual scanner's port is otherwise
    assert "--camera URL" in flat and "MJPEG" in flat and "http://HOST:PORT" in flat
    assert "http://127.0.0.1:8704" in flat  # the virtual camera's default place
