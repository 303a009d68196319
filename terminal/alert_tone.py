"""The alert tone before a forgotten card's words: a two-note chime made here, not shipped."""

from __future__ import annotations

import array
import functools
import io
import math
import sys
import wave

# A falling pair, high then low ("ding-dong"): heard as "attention please", not as an alarm, and
# both notes sit well inside what a small kiosk speaker reproduces.
HIGH_HZ = 880.0
LOW_HZ = 660.0
NOTE_S = 0.25
# Each note rises over ATTACK_S and falls over RELEASE_S (raised-cosine ramps): a note that starts
# or stops at full level clicks. The longer release lets it die away like a struck chime.
ATTACK_S = 0.01
RELEASE_S = 0.06
# Half of full scale: espeak-ng's speech peaks near full scale, so the chime is clearly heard
# without drowning the words that follow or clipping in the player's mixer.
LEVEL = 0.5
# A breath of silence between the chime and the first word.
PAUSE_S = 0.15
CHIME_S = 2 * NOTE_S + PAUSE_S
# espeak-ng's own voices all write 22050 Hz mono 16-bit: the chime matches it, so the player
# plays the chime and then the speech without changing its settings between the two.
ESPEAK_RATE_HZ = 22050


@functools.lru_cache(maxsize=4)
def chime_pcm(rate_hz: int = ESPEAK_RATE_HZ) -> bytes:
    """The chime and its pause as 16-bit little-endian mono samples at ``rate_hz``."""
    if not 8000 <= rate_hz <= 192_000:
        raise ValueError(f"sample rate {rate_hz} Hz is outside 8000..192000")
    samples = array.array("h")
    for frequency in (HIGH_HZ, LOW_HZ):
        samples.extend(_note(frequency, rate_hz))
    samples.extend([0] * round(PAUSE_S * rate_hz))
    if sys.byteorder == "big":
        samples.byteswap()  # WAV data is little-endian
    return samples.tobytes()


def chime_wav(rate_hz: int = ESPEAK_RATE_HZ) -> bytes:
    """The chime as a complete 16-bit mono PCM WAV file."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate_hz)
        wav.writeframes(chime_pcm(rate_hz))
    return out.getvalue()


def _note(frequency: float, rate_hz: int) -> array.array[int]:
    count = round(NOTE_S * rate_hz)
    attack = max(1, round(ATTACK_S * rate_hz))
    release = max(1, round(RELEASE_S * rate_hz))
    peak = LEVEL * 32767
    note = array.array("h")
    for i in range(count):
        envelope = 1.0
        if i < attack:
            envelope = 0.5 - 0.5 * math.cos(math.pi * i / attack)
        elif i >= count - release:
            envelope = 0.5 - 0.5 * math.cos(math.pi * (count - 1 - i) / release)
        note.append(round(peak * envelope * math.sin(2 * math.pi * frequency * i / rate_hz)))
    return note
