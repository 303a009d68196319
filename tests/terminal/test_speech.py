"""The speech port with the real espeak-ng: audible WAVs, cutting, faults, and the personal net."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import get_args

import pytest
from wav_support import LONG_ZH, needs_espeak, wav_rms

from devices.base import DeviceState, Health
from flows.steps import (
    Action,
    Attract,
    Confirm,
    Done,
    FieldKind,
    Form,
    FormField,
    Guide,
    GuideSection,
    Menu,
    Message,
    Progress,
    Scan,
    Screen,
    ShowQr,
    SummaryRow,
    View,
    t,
)
from terminal import speech_engines
from terminal.app import LOCALES_DIR
from terminal.i18n import Translator
from terminal.presentation import speech_for
from terminal.speech import (
    DEFAULT_VOICES,
    MAX_SPEECH_CHARS,
    NullSpeech,
    SpeechLanguageError,
    speech_refusal,
)
from terminal.speech_engines import EspeakSpeech, WavSpeech

# scripts/setup.sh installs espeak-ng and sox; sox only cross-checks what the stdlib measures.







def sox_rms(path: Path) -> float:
    stat = subprocess.run(["sox", str(path), "-n", "stat"], capture_output=True, text=True,
                          timeout=10, check=True).stderr
    found = re.search(r"RMS\s+amplitude:\s+([0-9.]+)", stat)
    assert found is not None, stat
    return float(found.group(1))


def espeak_children() -> set[int]:
    """This process's live (not zombie) espeak-ng and aplay children, read from /proc."""
    pids = set()
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = stat_file.read_text()
        except OSError:
            continue  # it ended while we looked
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
        if comm in ("espeak-ng", "aplay") and int(ppid) == os.getpid() and state != "Z":
            pids.add(int(stat_file.parent.name))
    return pids


def wait_for(condition: object, timeout_s: float) -> float:
    """Seconds until ``condition()`` held; fails the test after ``timeout_s``."""
    assert callable(condition)
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout_s:
            pytest.fail(f"not within {timeout_s} s")
        time.sleep(0.002)
    return time.monotonic() - start


# --- the voices --------------------------------------------------------------------------------


@needs_espeak
def test_the_mandarin_voice_reads_hanzi_as_mandarin_not_as_english_pinyin() -> None:
    # espeak-ng 1.51's "cmn" voice turns 好 into "hao2" and reads that with English rules
    # ("(en)h,eI55@55Tr'i:55" = "hay-oh three"); the default voice must stay in Mandarin.
    phonemes = subprocess.run(
        ["espeak-ng", "-q", "-b", "1", "-x", "-v", DEFAULT_VOICES["zh_CN"]],
        input="请插入社会保障卡".encode(), capture_output=True, timeout=10, check=True,
    ).stdout.decode()
    assert phonemes.strip()
    assert "(en)" not in phonemes


# --- audible speech ----------------------------------------------------------------------------


@needs_espeak
@pytest.mark.parametrize(("lang", "text"), [
    ("zh_CN", "请插入社会保障卡。"),
    ("en", "Please insert your social security card."),
])
def test_each_language_writes_an_audible_wav(wav_speech: WavSpeech, lang: str, text: str) -> None:
    wav_speech.say(text, lang)
    assert wav_speech.wait_idle(10)
    wav = wav_speech.last_wav
    assert wav is not None and wav.name == f"0001-{lang}.wav"
    rms, seconds = wav_rms(wav)
    assert rms > 0.02, f"silent: RMS {rms:.4f}"
    assert 0.5 < seconds < 10
    assert wav_speech.state() == DeviceState.ok()
    assert wav_speech.last_spoken == text
    if shutil.which("sox"):
        assert sox_rms(wav) == pytest.approx(rms, rel=0.05)


@needs_espeak
def test_elder_mode_speaks_more_slowly(wav_speech: WavSpeech) -> None:
    lengths = []
    for slow in (False, True):
        wav_speech.say("Please take your card and your receipt.", "en", slow=slow)
        assert wav_speech.wait_idle(10)
        assert wav_speech.last_wav is not None
        lengths.append(wav_rms(wav_speech.last_wav)[1])
    assert lengths[1] > lengths[0] * 1.2


def _one_screen_of_each_kind() -> list[Screen]:
    """A screen of every kind, titled and instructed with real translation keys."""
    back = (Action("nav.back", t("ui.more_time")),)
    return [
        Attract("attract", t("attract.title"), lines=(t("attract.hint"),)),
        Message("m", t("take_card.title"), actions=back),
        Progress("p", t("proof.printing.title")),
        Menu("menu", t("home.menu.title"), options=back),
        Guide("g", t("guides.browse.title"), sections=(GuideSection(t("ui.qr_hint"), ()),)),
        Confirm("c", t("proof.confirm.title"), rows=(SummaryRow(t("ui.qr_hint"), "张*"),)),
        Done("d", t("proof.done.title")),
        ShowQr("q", t("guides.browse.title"), qr_data="https://example.invalid",
               qr_caption=t("ui.qr_hint")),
        Form("f", t("proof.confirm.title"),
             fields=(FormField("phone", t("ui.qr_hint"), FieldKind.DIGITS, shown="138****1234"),)),
        Scan("s", t("intake.scan.title"), t("ui.qr_hint"), pages=1,
             lines=(t("intake.scan.blank_page"),), thumbnail=b"\xff\xd8\xff\xd9"),
    ]


@needs_espeak
@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_every_screen_kind_is_spoken_audibly_in_elder_mode(wav_speech: WavSpeech,
                                                           lang: str) -> None:
    tr = Translator.load(LOCALES_DIR)
    screens = _one_screen_of_each_kind()
    assert {type(s) for s in screens} == set(get_args(Screen))
    for screen in screens:
        assert tr.has(screen.title.key, lang), f"{screen.title.key} renamed? pick another key"
        text = speech_for(View(screen, elder=True), tr, lang)
        wav_speech.say(text, lang, slow=True)
        assert wav_speech.wait_idle(10)
        assert wav_speech.last_spoken == text, type(screen).__name__  # not refused as personal
        assert wav_speech.last_wav is not None
        rms, seconds = wav_rms(wav_speech.last_wav)
        assert rms > 0.02 and seconds > 0.3, type(screen).__name__
    assert wav_speech.state() == DeviceState.ok()


# --- cutting -----------------------------------------------------------------------------------


@needs_espeak
def test_a_new_utterance_cuts_the_file_being_written(wav_speech: WavSpeech,
                                                     tmp_path: Path) -> None:
    wav_speech.say(LONG_ZH, "zh_CN")
    first = tmp_path / "speech" / "0001-zh_CN.wav"
    wait_for(lambda: first.exists() and first.stat().st_size > 44, 2)
    time.sleep(0.05)
    wav_speech.say("请取走您的卡。", "zh_CN")
    size_at_cut = first.stat().st_size
    time.sleep(0.2)
    # Killed at once: the first file no longer grows, and is far shorter than the whole text.
    assert first.stat().st_size < size_at_cut + 256 * 1024  # a pipe buffer or so, no more
    assert wav_speech.wait_idle(10)
    assert wav_speech.last_spoken == "请取走您的卡。"
    full = tmp_path / "full.wav"
    subprocess.run(["espeak-ng", "-b", "1", "-v", DEFAULT_VOICES["zh_CN"], "-s", "160",
                    "-w", str(full)], input=LONG_ZH.encode(), timeout=30, check=True)
    cut_rms, cut_seconds = wav_rms(first)
    assert cut_seconds < wav_rms(full)[1] / 2
    assert cut_rms > 0.02  # what was said before the cut is still there, header repaired
    if shutil.which("sox"):
        assert sox_rms(first) == pytest.approx(cut_rms, rel=0.05)
    assert wav_rms(tmp_path / "speech" / "0002-zh_CN.wav")[0] > 0.02
    assert wav_speech.state() == DeviceState.ok()  # a cut is not an engine failure


@needs_espeak
def test_a_new_utterance_kills_the_engine_and_player_within_200_ms() -> None:
    # aplay's "null" device accepts audio as fast as it comes, so espeak-ng's synthesis
    # (about half a second for LONG_ZH) is what keeps the pipeline alive.
    speech = EspeakSpeech(audio_device="null")
    try:
        speech.say(LONG_ZH, "zh_CN")
        wait_for(lambda: len(espeak_children()) == 2, 2)
        running = espeak_children()
        speech.say("Please take your card.", "en")
        killed_in = wait_for(lambda: not (espeak_children() & running), 1)
        assert killed_in < 0.2
        assert speech.wait_idle(10)
        assert speech.state() == DeviceState.ok()
        speech.say(LONG_ZH, "zh_CN")
        wait_for(lambda: len(espeak_children()) == 2, 2)
        speech.stop()
        assert speech.last_spoken is None
        assert wait_for(lambda: not espeak_children(), 1) < 0.2
    finally:
        speech.close()


# --- faults ------------------------------------------------------------------------------------


def test_a_missing_engine_is_a_fault_and_saying_still_returns_at_once(tmp_path: Path) -> None:
    speech = WavSpeech(tmp_path / "speech", binary=str(tmp_path / "no-such-espeak"))
    try:
        assert speech.state() == DeviceState.fault("engine_missing")
        start = time.monotonic()
        speech.say("请插入社会保障卡。", "zh_CN")  # the screen goes on; nothing raises
        assert time.monotonic() - start < 0.05
        assert speech.wait_idle(5)
        assert speech.state() == DeviceState.fault("engine_missing")
        assert speech.last_spoken == "请插入社会保障卡。"  # the screen's words, said or not
        assert list((tmp_path / "speech").iterdir()) == []
    finally:
        speech.close()


def test_a_failing_engine_degrades_then_faults_and_logs_its_reason_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    engine = tmp_path / "espeak-ng"
    engine.write_text("#!/bin/sh\ncat >/dev/null\nexit 1\n")
    engine.chmod(0o755)
    speech = WavSpeech(tmp_path / "speech", binary=str(engine))
    try:
        with caplog.at_level(logging.INFO, logger="terminal.speech_engines"):
            speech.say("Please wait.", "en")
            assert speech.wait_idle(5)
            assert speech.state() == DeviceState.degraded("engine_failed")
            for _ in range(4):
                speech.say("Please wait.", "en")
                assert speech.wait_idle(5)
            assert speech.state() == DeviceState.fault("engine_failed")
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "engine_failed" in warnings[0].getMessage()
        assert not any("Please wait" in r.getMessage() for r in caplog.records)
    finally:
        speech.close()


def test_a_hung_engine_is_killed_at_its_timeout(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(speech_engines, "TIMEOUT_BASE_S", 0.3)
    monkeypatch.setattr(speech_engines, "TIMEOUT_PER_CHAR_S", 0.0)
    engine = tmp_path / "espeak-ng"
    engine.write_text("#!/bin/sh\ncat >/dev/null\nexec sleep 30\n")
    engine.chmod(0o755)
    speech = WavSpeech(tmp_path / "speech", binary=str(engine))
    try:
        start = time.monotonic()
        speech.say("Please wait.", "en")
        assert speech.wait_idle(5)
        assert time.monotonic() - start < 2
        assert speech.state() == DeviceState.degraded("engine_timeout")
    finally:
        speech.close()


@needs_espeak
def test_a_missing_sound_card_is_told_apart_from_a_failing_engine(tmp_path: Path) -> None:
    speech = EspeakSpeech(audio_device="no_such_alsa_device")
    try:
        speech.say("Please insert your card.", "en")
        assert speech.wait_idle(10)
        assert speech.state() == DeviceState.degraded("audio_failed")
    finally:
        speech.close()
    missing_player = EspeakSpeech(player=str(tmp_path / "no-such-aplay"))
    try:
        assert missing_player.state() == DeviceState.fault("player_missing")
    finally:
        missing_player.close()


# --- the personal-data net ---------------------------------------------------------------------


@pytest.mark.parametrize(("text", "reason"), [
    ("您的身份证号码是11010519491231002X", "digit_run"),
    ("ID 1101**********002X", "masked_value"),
    ("您好，张*", "masked_value"),
    ("欧***，请取卡", "masked_value"),
    ("手机 138****1234", "masked_value"),
    ("Call 13812345678", "digit_run"),
    ("Call 138 1234 5678", "digit_run"),
    ("号码 １１０１０５１９", "digit_run"),  # full-width digits are digits
    ("电话一三八一二三四五六七八", "digit_run"),
    ("Card A12345678", "digit_run"),
    ("Call +86 13812345678", "digit_run"),
    ("姓名：张三", "labelled_value"),
    ("Name: Zhang San", "labelled_value"),
    ("x" * (MAX_SPEECH_CHARS + 1), "too_long"),
])
def test_personal_text_is_refused_with_a_reason_code(text: str, reason: str) -> None:
    assert speech_refusal(text) == reason


@pytest.mark.parametrize("text", [
    "请插入社会保障卡。", "请核对您的姓名和证件信息", "预计3个工作日内办结",
    "Please check your name.", "Step 2 of 5", "请在30秒内取走卡片",
])
def test_guidance_text_passes(text: str) -> None:
    assert speech_refusal(text) is None


def test_every_real_translation_passes_unless_it_carries_a_personal_field() -> None:
    # A net that refuses ordinary guidance would silence elder mode; only the templates that
    # show a personal value (the identity screen's "姓名：{name}") may trip it.
    tr = Translator.load(LOCALES_DIR)
    for lang in ("zh_CN", "en"):
        for key in tr.keys(lang):
            refusal = speech_refusal(tr.text(t(key), lang))
            assert refusal is None or key.startswith("identify.identity."), (lang, key, refusal)


@needs_espeak
def test_refused_text_is_not_said_not_recorded_and_logged_once_without_it(
    wav_speech: WavSpeech, caplog: pytest.LogCaptureFixture, tmp_path: Path,
) -> None:
    wav_speech.say("请插入社会保障卡。", "zh_CN")
    assert wav_speech.wait_idle(10)
    personal = ["您好，张*", "11010519491231002X", "Call 13812345678"]
    with caplog.at_level(logging.DEBUG, logger="terminal.speech_engines"):
        for text in personal:
            wav_speech.say(text, "zh_CN")
            assert wav_speech.last_spoken is None
        assert wav_speech.wait_idle(10)
    assert wav_speech.refused_count == 3
    assert [p.name for p in (tmp_path / "speech").iterdir()] == ["0001-zh_CN.wav"]
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2  # one a reason
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert not any(part in logged for part in ("张", "1101", "138"))


# --- bounds and contract -----------------------------------------------------------------------


@needs_espeak
def test_only_the_last_50_files_are_kept_and_numbering_survives_a_restart(tmp_path: Path) -> None:
    directory = tmp_path / "speech"
    speech = WavSpeech(directory)
    try:
        for _ in range(55):
            speech.say("好", "zh_CN")
            assert speech.wait_idle(10)
    finally:
        speech.close()
    names = sorted(p.name for p in directory.iterdir())
    assert len(names) == 50
    assert names[0] == "0006-zh_CN.wav" and names[-1] == "0055-zh_CN.wav"
    again = WavSpeech(directory)
    try:
        again.say("OK", "en")
        assert again.wait_idle(10)
        assert again.last_wav == directory / "0056-en.wav"
        assert len(list(directory.iterdir())) == 50
    finally:
        again.close()


def test_calls_that_can_only_be_bugs_raise_typed_errors(tmp_path: Path) -> None:
    for speech in (NullSpeech(), WavSpeech(tmp_path, binary=str(tmp_path / "none"))):
        with pytest.raises(SpeechLanguageError, match="zh_CN"):
            speech.say("Hello", "fr")
        with pytest.raises(TypeError):
            speech.say(b"Hello", "en")  # type: ignore[arg-type]
        speech.close()
    with pytest.raises(ValueError, match="keep"):
        WavSpeech(tmp_path, keep=0)


def test_null_speech_says_nothing_and_is_healthy() -> None:
    speech = NullSpeech()
    speech.say("请插入社会保障卡。", "zh_CN", slow=True)
    assert speech.last_spoken is None
    assert speech.state().health is Health.OK


def test_blank_text_is_silence_and_after_close_nothing_is_said(tmp_path: Path) -> None:
    speech = WavSpeech(tmp_path / "speech", binary=str(tmp_path / "none"))
    speech.say("Hello", "en")
    speech.say("  \n", "en")
    assert speech.last_spoken is None
    speech.close()
    speech.say("Hello", "en")
    assert speech.last_spoken is None
