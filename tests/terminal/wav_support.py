"""What the speech and alert-tone tests share: reading the WAV files speech writes, and levels."""

from __future__ import annotations

import array
import math
import shutil
import sys
import wave
from pathlib import Path

import pytest

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng is not installed (run scripts/setup.sh)")

# About 2,000 characters of Mandarin: espeak-ng needs about half a second to synthesise them,
# long enough to be cut mid-way.
LONG_ZH = ("请将社保卡插入读卡器，然后按照屏幕提示操作。" * 90)[:1990]


def read_wav(path: Path) -> tuple[array.array[int], int]:
    """The samples and the sample rate of a 16-bit mono WAV (what espeak-ng writes)."""
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
        rate = wav.getframerate()
        data = wav.readframes(wav.getnframes())
    return pcm(data), rate


def pcm(data: bytes) -> array.array[int]:
    """16-bit little-endian PCM bytes as samples."""
    samples = array.array("h")
    samples.frombytes(data[: len(data) - len(data) % 2])
    if sys.byteorder == "big":
        samples.byteswap()  # WAV data is little-endian
    return samples


def rms(samples: array.array[int], rate: int, start_s: float = 0.0) -> float:
    """The RMS level (fraction of full scale) from ``start_s`` on."""
    part = samples[round(start_s * rate):]
    return math.sqrt(sum(s * s for s in part) / max(1, len(part))) / 32768


def wav_rms(path: Path) -> tuple[float, float]:
    """The RMS level (fraction of full scale) and the length in seconds of a WAV."""
    samples, rate = read_wav(path)
    return rms(samples, rate), len(samples) / rate
