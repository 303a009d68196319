"""The alert tone: the chime itself, and the speech engines sounding it before a forgotten card's
words (real espeak-ng; a stand-in player where a sound card's timing matters)."""

from __future__ import annotations

import array
import contextlib
import itertools
import math
import os
import time
from pathlib import Path

import pytest
from wav_support import LONG_ZH, needs_espeak, pcm, read_wav, rms

from devices.base import DeviceState
from flows.catalogue import Catalogue
from flows.clock import FakeClock
from flows.engine import SessionEngine
from flows.steps import CardInserted, EffectDone, Failed, ReadCard, Tick
from terminal.alert_tone import (
    ATTACK_S,
    CHIME_S,
    ESPEAK_RATE_HZ,
    HIGH_HZ,
    LEVEL,
    LOW_HZ,
    NOTE_S,
    PAUSE_S,
    chime_pcm,
    chime_wav,
)
from terminal.app import LOCALES_DIR
from terminal.deferred import Deferred, DeferredSpeech
from terminal.i18n import Translator
from terminal.presentation import speech_for
from terminal.speech import NullSpeech
from terminal.speech_engines import EspeakSpeech, WavSpeech

READER = "Virtual PCD 00 00"








def level_at(samples: array.array[int], rate: int, frequency: float,
             start_s: float, length_s: float) -> float:
    """The amplitude (fraction of full scale) of ``frequency`` in a stretch of ``samples``, by
    the Goertzel algorithm: 1.0 for a full-scale sine at exactly that frequency."""
    part = samples[round(start_s * rate): round((start_s + length_s) * rate)]
    assert len(part) > 0
    coefficient = 2 * math.cos(2 * math.pi * frequency / rate)
    s1 = s2 = 0.0
    for x in part:
        s1, s2 = x + coefficient * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - coefficient * s1 * s2
    return 2 * math.sqrt(max(power, 0.0)) / len(part) / 32768




def card_left_speech(lang: str) -> str:
    """What the engine's forgotten-card screen says, reached as the engine reaches it: a card
    that could not be read, its error screen left to time out with the card still in."""
    clock = FakeClock()
    engine = SessionEngine(catalogue=Catalogue(items=(), themes=(), departments=()), clock=clock,
                           terminal_id="T-0001", idle_timeout_s=60, countdown_visible_s=20,
                           effect_timeout_s=120)
    engine.start()
    read = next(e for e in engine.handle(CardInserted(READER)).effects
                if isinstance(e, ReadCard))
    engine.handle(EffectDone(read, Failed("card_unreadable")))
    clock.advance(60)
    view = engine.handle(Tick()).view
    assert view.screen.screen == "card_left"
    return speech_for(view, Translator.load(LOCALES_DIR), lang)


# --- the chime ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [ESPEAK_RATE_HZ, 16000, 48000])
def test_the_chime_is_880_then_660_hz_without_clicks(rate: int) -> None:
    samples = pcm(chime_pcm(rate))
    assert len(samples) == 2 * round(NOTE_S * rate) + round(PAUSE_S * rate)
    # Each note is (almost) all of its stretch's sound, and none of the other's.
    assert level_at(samples, rate, HIGH_HZ, 0.02, 0.2) > 0.9 * LEVEL
    assert level_at(samples, rate, LOW_HZ, 0.02, 0.2) < 0.05 * LEVEL
    assert level_at(samples, rate, LOW_HZ, NOTE_S + 0.02, 0.2) > 0.9 * LEVEL
    assert level_at(samples, rate, HIGH_HZ, NOTE_S + 0.02, 0.2) < 0.05 * LEVEL
    # Faded in and out: every note's first and last 2 ms are far quieter than the note, no
    # step anywhere is bigger than the high note's own plus its fade-in's, and the pause after
    # the chime is silent.
    note = round(NOTE_S * rate)
    edge = round(0.002 * rate)
    for start in (0, note - edge, note, 2 * note - edge):
        assert max(map(abs, samples[start:start + edge])) < 0.2 * LEVEL * 32768, start
    biggest_step = LEVEL * 32768 * (2 * math.pi * HIGH_HZ + math.pi / (2 * ATTACK_S)) / rate
    assert max(abs(b - a) for a, b in itertools.pairwise(samples)) <= biggest_step + 1
    assert not any(samples[2 * note:])
    assert max(map(abs, samples)) <= LEVEL * 32768 + 1


def test_the_chime_wav_is_16_bit_mono_pcm(tmp_path: Path) -> None:
    path = tmp_path / "chime.wav"
    path.write_bytes(chime_wav(ESPEAK_RATE_HZ))
    samples, rate = read_wav(path)
    assert rate == ESPEAK_RATE_HZ
    assert samples.tobytes() == pcm(chime_pcm(ESPEAK_RATE_HZ)).tobytes()
    with pytest.raises(ValueError, match="sample rate"):
        chime_pcm(100)


# --- WavSpeech: the simulator's sound card -----------------------------------------------------


@needs_espeak
@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_the_card_left_wav_begins_with_the_chime_then_says_its_words(
    wav_speech: WavSpeech, lang: str,
) -> None:
    text = card_left_speech(lang)
    wav_speech.say(text, lang, alert=True)
    assert wav_speech.wait_idle(10)
    assert wav_speech.state() == DeviceState.ok()
    assert wav_speech.last_spoken == text
    assert wav_speech.last_wav is not None
    samples, rate = read_wav(wav_speech.last_wav)
    assert rate == ESPEAK_RATE_HZ  # the chime made at the speech's own rate
    assert level_at(samples, rate, HIGH_HZ, 0.0, 0.2) > 0.8 * LEVEL
    assert level_at(samples, rate, LOW_HZ, NOTE_S + 0.02, 0.2) > 0.8 * LEVEL
    assert rms(samples, rate, CHIME_S) > 0.02, "the words after the chime are silent"
    # The same words without the tone: exactly the chime shorter.
    wav_speech.say(text, lang)
    assert wav_speech.wait_idle(10)
    assert wav_speech.last_wav is not None
    plain, _ = read_wav(wav_speech.last_wav)
    assert len(samples) - len(plain) == round(CHIME_S * rate)
    assert samples[round(CHIME_S * rate):] == plain


@needs_espeak
def test_an_ordinary_screens_wav_has_no_chime(wav_speech: WavSpeech) -> None:
    wav_speech.say("请将社会保障卡插入读卡器。", "zh_CN", slow=True)
    assert wav_speech.wait_idle(10)
    assert wav_speech.last_wav is not None
    samples, rate = read_wav(wav_speech.last_wav)
    assert level_at(samples, rate, HIGH_HZ, 0.0, 0.2) < 0.01
    assert level_at(samples, rate, LOW_HZ, NOTE_S + 0.02, 0.2) < 0.01
    assert rms(samples, rate, 0.0) > 0.02


@needs_espeak
def test_a_cut_alerting_utterance_keeps_its_chime_and_the_next_has_none(
    wav_speech: WavSpeech, tmp_path: Path,
) -> None:
    wav_speech.say(LONG_ZH, "zh_CN", alert=True)
    first = tmp_path / "speech" / "0001-zh_CN.wav"
    deadline = time.monotonic() + 2
    while not (first.exists() and first.stat().st_size > 44):
        assert time.monotonic() < deadline
        time.sleep(0.002)
    wav_speech.say("请取走您的卡。", "zh_CN")
    assert wav_speech.wait_idle(10)
    assert wav_speech.state() == DeviceState.ok()  # a cut is not a failure
    cut, rate = read_wav(first)
    assert level_at(cut, rate, HIGH_HZ, 0.0, 0.2) > 0.8 * LEVEL
    assert len(cut) / rate < 30  # LONG_ZH said in full lasts minutes
    after, rate = read_wav(tmp_path / "speech" / "0002-zh_CN.wav")
    assert level_at(after, rate, HIGH_HZ, 0.0, 0.2) < 0.01


# --- EspeakSpeech: the sound card --------------------------------------------------------------


def stand_in_player(tmp_path: Path) -> tuple[Path, Path]:
    """An ``aplay`` that notes its arguments, keeps a copy of any chime it is handed, and then
    "plays" for 30 s before it would read the speech on stdin: a chime in progress."""
    player = tmp_path / "aplay"
    calls = tmp_path / "calls"
    player.write_text(
        "#!/bin/sh\n"
        f'n=$(wc -l < "{calls}" 2>/dev/null || echo 0)\n'
        'for f in "$@"; do case "$f" in /dev/fd/*) '
        f'cat "$f" > "{tmp_path}/chime-$n.wav";; esac; done\n'
        f'echo "$$ $*" >> "{calls}"\n'
        "exec sleep 30\n")
    player.chmod(0o755)
    return player, calls


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def tone_memfds() -> int:
    """How many of this process's descriptors are the chime's memfd."""
    found = 0
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):  # the listing's own descriptor, gone by now
            found += os.readlink(fd).startswith("/memfd:kiosk-alert-tone")
    return found


def wait_for_lines(path: Path, count: int) -> list[str]:
    deadline = time.monotonic() + 5
    while not (path.exists() and len(lines := path.read_text().splitlines()) >= count):
        assert time.monotonic() < deadline, "the player did not start"
        time.sleep(0.002)
    return lines


@needs_espeak
def test_a_new_say_cuts_a_chime_in_progress_within_200_ms(tmp_path: Path) -> None:
    player, calls = stand_in_player(tmp_path)
    speech = EspeakSpeech(player=str(player), audio_device="null")
    try:
        speech.say(card_left_speech("zh_CN"), "zh_CN", alert=True)
        pid, *args = wait_for_lines(calls, 1)[0].split()
        # The chime first, then the speech on stdin, from one player.
        assert args[:3] == ["-q", "-D", "null"]
        assert args[3].startswith("/dev/fd/") and args[4:] == ["-"]
        assert (tmp_path / "chime-0.wav").read_bytes() == chime_wav(ESPEAK_RATE_HZ)
        start = time.monotonic()
        speech.say("请插入社会保障卡。", "zh_CN")
        while alive(int(pid)):
            assert time.monotonic() - start < 0.2, "the chime was not cut"
            time.sleep(0.002)
        second = wait_for_lines(calls, 2)[1].split()
        assert second[1:] == ["-q", "-D", "null", "-"]  # no chime on an ordinary screen
        speech.stop()
        assert speech.wait_idle(5)
        assert speech.state() == DeviceState.ok()  # cut, not failed
        assert tone_memfds() == 1  # made once, kept for the next alert
    finally:
        speech.close()
    assert tone_memfds() == 0


@needs_espeak
def test_the_real_player_plays_the_chime_then_the_speech() -> None:
    # aplay's "null" device takes the chime and the speech as fast as they come.
    speech = EspeakSpeech(audio_device="null")
    try:
        for _ in range(2):  # the chime's memfd is read from its start every time
            speech.say(card_left_speech("en"), "en", alert=True)
            assert speech.wait_idle(10)
            assert speech.state() == DeviceState.ok()
    finally:
        speech.close()


@needs_espeak
def test_an_alerting_utterance_on_a_missing_sound_card_is_a_fault_as_any_other() -> None:
    speech = EspeakSpeech(audio_device="no_such_alsa_device")
    try:
        for _ in range(3):
            speech.say(card_left_speech("zh_CN"), "zh_CN", alert=True)  # returns at once
            assert speech.wait_idle(10)
        assert speech.state() == DeviceState.fault("audio_failed")
    finally:
        speech.close()


def test_a_failing_engine_with_the_alert_degrades_as_any_other(tmp_path: Path) -> None:
    engine = tmp_path / "espeak-ng"
    engine.write_text("#!/bin/sh\ncat >/dev/null\nexit 1\n")
    engine.chmod(0o755)
    speech = WavSpeech(tmp_path / "speech", binary=str(engine))
    try:
        speech.say("A card is still in the reader", "en", alert=True)
        assert speech.wait_idle(5)
        assert speech.state() == DeviceState.degraded("engine_failed")
        assert list((tmp_path / "speech").iterdir()) == []  # no chime alone, no leftovers
    finally:
        speech.close()


# --- the other ports ---------------------------------------------------------------------------


def test_null_speech_accepts_the_alert_and_says_nothing() -> None:
    speech = NullSpeech()
    speech.say("读卡器中还有一张卡", "zh_CN", alert=True)
    assert speech.last_spoken is None


@needs_espeak
def test_deferred_speech_passes_the_alert_on(tmp_path: Path) -> None:
    built = WavSpeech(tmp_path / "speech")
    speech = DeferredSpeech(Deferred(lambda: built, "speech"))
    try:
        speech.say("A card is still in the reader", "en", alert=True)
        assert built.wait_idle(10) and built.last_wav is not None
        samples, rate = read_wav(built.last_wav)
        assert level_at(samples, rate, HIGH_HZ, 0.0, 0.2) > 0.8 * LEVEL
    finally:
        speech.close()
    assert not os.path.exists(tmp_path / "speech" / "0001-en.wav.partial")
