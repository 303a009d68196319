"""Deferred parts are built once, whether warmed up in the background or first used."""

import threading
import time

import pytest

from terminal.deferred import Deferred


def test_built_once_under_concurrent_first_use() -> None:
    builds: list[int] = []

    def build() -> object:
        time.sleep(0.05)  # long enough for every caller to arrive while building
        builds.append(1)
        return object()

    part: Deferred[object] = Deferred(build, "part")
    assert part.built is None
    part.warm()
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(part.get())) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert len(builds) == 1
    assert all(result is results[0] for result in results)
    assert part.built is results[0]


def test_a_failed_build_is_raised_at_first_use_and_tried_again() -> None:
    attempts: list[int] = []

    def build() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("printer library missing")
        return "printer"

    part: Deferred[str] = Deferred(build, "printer")
    with pytest.raises(OSError):
        part.get()
    assert part.get() == "printer"


def test_deferred_speech_is_built_by_speaking_not_by_stopping() -> None:
    from terminal.deferred import DeferredSpeech  # noqa: PLC0415
    from terminal.speech import NullSpeech  # noqa: PLC0415

    builds: list[NullSpeech] = []

    def build() -> NullSpeech:
        builds.append(NullSpeech())
        return builds[-1]

    speech = DeferredSpeech(Deferred(build, "speech"))
    speech.stop()
    speech.close()
    assert speech.last_spoken is None and builds == []  # nothing said, nothing to build
    speech.say("欢迎使用", "zh_CN")
    assert len(builds) == 1 and speech.state() == builds[0].state()
