"""The speech port: what voice guidance needs from a speech engine, and the net that keeps it
from ever saying anything personal. The engines themselves are in ``terminal.speech_engines``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Protocol

from contracts.personal import personal_data_reason
from devices.base import DeviceState

# Display language -> espeak-ng voice. espeak-ng 1.51 (Debian 12) ships two Mandarin voices: "cmn"
# reads Latin text as English, and its dictionary turns each character into pinyin with a tone
# digit, so 好 comes out as "hao two" in English (espeak-ng issues #1236, #1370). "cmn-latn-pinyin"
# reads that pinyin as Mandarin, which is what a resident must hear; the price is that a Latin
# word inside Chinese text ("QR") is read as pinyin. tests/terminal/test_speech.py checks this.
DEFAULT_VOICES: Mapping[str, str] = {"zh_CN": "cmn-latn-pinyin", "en": "en-gb"}

# A screen's title and instructions are a few sentences; anything longer is a caller's bug. The
# bound also keeps the text under a pipe's buffer, so handing it to the engine never blocks.
MAX_SPEECH_CHARS = 2000


class SpeechLanguageError(ValueError):
    """``say`` was asked for a language that has no voice (a programming error, not a fault)."""


class Speech(Protocol):
    """Voice guidance's speech engine; every call returns at once and none raises on a fault."""

    def say(self, text: str, lang: str, *, slow: bool = False, alert: bool = False) -> None:
        """Cut whatever is being said and say ``text`` in ``lang`` (``slow`` for elder mode).

        ``alert`` sounds the alert tone (``terminal.alert_tone``) first: the tone and the words
        are one utterance, so the next ``say`` or ``stop`` cuts both. Text that is refused or
        blank is silence, without the tone.

        ``text`` is built by the caller from translations only; text that looks personal is
        refused here all the same (not said, not recorded in ``last_spoken``).
        """

    def stop(self) -> None:
        """Cut whatever is being said; ``last_spoken`` becomes None (the screen says nothing)."""

    def state(self) -> DeviceState:
        """The engine's health for the heartbeat's device row "speech"."""

    def close(self) -> None:
        """Stop speaking and release the worker; ``say`` is ignored afterwards."""

    @property
    def last_spoken(self) -> str | None:
        """The text of the last utterance accepted since the last ``stop``, or None."""


# --- the personal-data net -----------------------------------------------------------------------

# Masking (DESIGN 10) writes ``*``: 张*, 1101**********002X, 138****1234. No guidance text needs
# a star, and a masked value is still a value about the person, so any star is refused.
_MASKED = re.compile(r"[*＊]")
# Any run of 6 or more digits (Unicode digits: full-width too), and the same run written with
# Chinese numerals: case numbers, ID and phone fragments, dates of birth, postal codes.
_DIGIT_RUN = re.compile(r"\d{6,}|[〇零幺一二三四五六七八九两]{6,}")
# A phone number said in groups ("138 1234 5678"), which the run above does not see.
_GROUPED_PHONE = re.compile(r"(?<!\d)1[3-9]\d[ \-]\d{4}[ \-]\d{4}(?!\d)")
# A personal field's label followed by its value ("姓名：张三", "Name: Zhang San"): guidance may
# say "check your name", never "your name is ...".
_LABELLED_VALUE = re.compile(
    r"(?:姓名|名字|身份证号?码?|证件号码?|手机号?码?|电话号?码?|联系电话|地址|住址|卡号"
    r"|\bname|\bID number|\bphone(?: number)?|\bmobile|\baddress|\bcard number)"
    r"\s*[:：]\s*\S",
    re.IGNORECASE,
)
# contracts.personal refuses any Chinese text (event values are codes); guidance is Chinese text,
# so Chinese characters are blanked before its value screens run. Blanks keep digit runs apart.
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def speech_refusal(text: str) -> str | None:
    """A reason code (``masked_value``, ``digit_run``, ``personal_value``, ``labelled_value``,
    ``too_long``) when ``text`` must not be said aloud, or None. Never echoes the text."""
    if len(text) > MAX_SPEECH_CHARS:
        return "too_long"
    if _MASKED.search(text):
        return "masked_value"
    if _DIGIT_RUN.search(text) or _GROUPED_PHONE.search(text):
        return "digit_run"
    if personal_data_reason("guidance", _CJK.sub(" ", text)) is not None:
        return "personal_value"  # an ID, card or phone number by contracts.personal's shapes
    if _LABELLED_VALUE.search(text):
        return "labelled_value"
    return None


def check_request(text: object, lang: object, voices: Mapping[str, str]) -> None:
    """Raise a typed error for a call that can only be a programming error."""
    if not isinstance(text, str):
        raise TypeError(f"speech text must be a str, not {type(text).__name__}")
    if not isinstance(lang, str) or lang not in voices:
        raise SpeechLanguageError(
            f"no voice for language {lang!r}; known: {', '.join(sorted(voices))}"
        )


class NullSpeech:
    """Speech when voice guidance is switched off: says nothing, is always healthy."""

    def __init__(self, voices: Mapping[str, str] = DEFAULT_VOICES) -> None:
        self._voices = dict(voices)

    def say(self, text: str, lang: str, *, slow: bool = False, alert: bool = False) -> None:
        check_request(text, lang, self._voices)  # the same contract as a real engine

    def stop(self) -> None:
        pass

    def state(self) -> DeviceState:
        return DeviceState.ok()

    def close(self) -> None:
        pass

    @property
    def last_spoken(self) -> str | None:
        return None
