"""Fixtures for terminal tests: a real mosquitto on a free port, stopped after each test, and
speech into WAV files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.broker import Mosquitto
from terminal.speech_engines import WavSpeech


@pytest.fixture
def mosquitto() -> Iterator[Mosquitto]:
    """A fresh broker per test, so retained messages never leak from one test into another.

    Sessions and retained messages survive ``restart()`` (persistence saved on stop), so a test's
    own subscriber misses nothing that arrives while it reconnects after the "broker down" fault.
    """
    broker = Mosquitto(persistent=True)
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture
def wav_speech(tmp_path: Path) -> Iterator[WavSpeech]:
    """Speech through espeak-ng into numbered WAV files under the test's directory."""
    speech = WavSpeech(tmp_path / "speech")
    yield speech
    speech.close()
