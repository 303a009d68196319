"""Speech engines behind the speech port: espeak-ng played on the sound card, or into WAV files.

Threads: each engine owns one daemon worker that runs the engine's processes; ``say`` and
``stop`` only swap the one pending utterance and kill the running process group, so they return
at once from the UI thread. The pending slot is a queue of one where the latest utterance wins: a
screen that has already been left has nothing left to say. An utterance with ``alert`` carries the
alert tone before its words in the same job, so one kill cuts both.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import struct
import subprocess
import threading
import time
import wave
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from devices.base import DeviceState, Health
from terminal.alert_tone import CHIME_S, ESPEAK_RATE_HZ, chime_pcm, chime_wav
from terminal.speech import DEFAULT_VOICES, check_request, speech_refusal

log = logging.getLogger(__name__)

# espeak-ng's default is 175 words a minute; guidance is a little slower, elder mode slower still.
RATE_WPM = 160
SLOW_RATE_WPM = 120
# A process is given this long plus a margin per character (elder-mode Mandarin runs about four
# characters a second) before it counts as hung and is killed.
TIMEOUT_BASE_S = 5.0
TIMEOUT_PER_CHAR_S = 0.5
# Failures in a row before degraded (the engine mostly works) becomes fault (it does not).
FAULT_AFTER_FAILURES = 3
WAV_FILES_KEPT = 50


class _StartFailed(Exception):
    """The processes for an utterance could not be started; ``reason`` is the state's code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Utterance:
    text: str
    lang: str
    slow: bool
    alert: bool = False


@dataclass
class _Job:
    """The processes saying one utterance: one process group, so one kill stops them all."""

    processes: list[subprocess.Popen[bytes]]
    cut: bool = False  # killed because something newer came; not an engine failure
    wav: Path | None = None
    alert: bool = False  # the alert tone comes before the words

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):  # it has already ended
            os.killpg(self.processes[0].pid, signal.SIGKILL)


@dataclass
class _Health:
    state: DeviceState = field(default_factory=DeviceState.ok)
    failures: int = 0


class _EngineSpeech:
    """The port's behaviour shared by the engines; a subclass says how one utterance is run."""

    def __init__(self, binary: str, voices: Mapping[str, str], rate_wpm: int,
                 slow_rate_wpm: int) -> None:
        self._binary = binary
        self._voices = dict(voices)
        self._rates = {False: rate_wpm, True: slow_rate_wpm}
        self._lock = threading.Condition()
        self._pending: _Utterance | None = None
        self._current: _Job | None = None
        self._generation = 0  # +1 on every say/stop, so a job started meanwhile is known stale
        self._last_spoken: str | None = None
        self._health = _Health()
        self._refused = 0
        self._refusals_logged: set[str] = set()
        self._closed = False
        self._busy = False
        if shutil.which(binary) is None:
            self._record("engine_missing", fault=True)
        self._worker = threading.Thread(target=self._run, name="speech", daemon=True)
        self._worker.start()

    # --- the port ------------------------------------------------------------------------------

    def say(self, text: str, lang: str, *, slow: bool = False, alert: bool = False) -> None:
        check_request(text, lang, self._voices)
        refusal = speech_refusal(text)
        first = False
        with self._lock:
            if self._closed:
                return
            self._cut_locked()
            if refusal is not None:
                self._refused += 1
                self._last_spoken = None
                first = refusal not in self._refusals_logged
                self._refusals_logged.add(refusal)
            elif text.strip():
                self._pending = _Utterance(text, lang, slow, alert)
                self._last_spoken = text
                self._lock.notify_all()
            else:
                self._last_spoken = None  # nothing to say is silence, not an utterance
        if refusal is not None and first:
            log.warning("speech refused an utterance that looks personal (%s); later ones are "
                        "only counted", refusal)

    def stop(self) -> None:
        with self._lock:
            self._cut_locked()
            self._last_spoken = None

    def state(self) -> DeviceState:
        with self._lock:
            return self._health.state

    def close(self) -> None:
        with self._lock:
            self._cut_locked()
            self._closed = True
            self._lock.notify_all()
        self._worker.join(timeout=2.0)

    @property
    def last_spoken(self) -> str | None:
        with self._lock:
            return self._last_spoken

    @property
    def refused_count(self) -> int:
        """Utterances refused as personal since start (the texts themselves are never kept)."""
        with self._lock:
            return self._refused

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until nothing is pending or being said; False if ``timeout_s`` passed first."""
        with self._lock:
            return self._lock.wait_for(
                lambda: self._pending is None and not self._busy, timeout_s)

    # --- the worker ----------------------------------------------------------------------------

    def _cut_locked(self) -> None:
        self._generation += 1
        self._pending = None
        if self._current is not None:
            self._current.cut = True
            self._current.kill()

    def _run(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._pending is not None or self._closed)
                if self._closed:
                    return
                utterance, self._pending = self._pending, None
                generation = self._generation
                self._busy = True
            assert utterance is not None
            try:
                self._speak(utterance, generation)
            except Exception:  # a bug here must not end voice guidance for the whole uptime
                log.exception("speech worker failed")
                self._record("engine_failed")
            finally:
                with self._lock:
                    self._busy = False
                    self._lock.notify_all()

    def _speak(self, utterance: _Utterance, generation: int) -> None:
        if shutil.which(self._binary) is None:
            self._record("engine_missing", fault=True)
            return
        voice = self._voices[utterance.lang]
        rate = self._rates[utterance.slow]
        try:
            job = self._start(utterance, voice, rate)
        except _StartFailed as failed:
            self._record(failed.reason, fault=True)
            return
        except OSError:  # found but not runnable (permissions, a broken install)
            self._record("engine_failed")
            return
        with self._lock:
            self._current = job
            if generation != self._generation:  # cut while the processes were starting
                job.cut = True
                job.kill()
        deadline = time.monotonic() + TIMEOUT_BASE_S + TIMEOUT_PER_CHAR_S * len(utterance.text)
        if utterance.alert:
            deadline += CHIME_S  # the engine waits, blocked on its pipe, while the chime plays
        timed_out = False
        for process in job.processes:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                timed_out = True
                job.kill()
                process.wait(timeout=2.0)  # SIGKILL is not refused; this returns at once
        with self._lock:
            self._current = None
        self._finish(job)
        if job.cut:
            return
        self._record("engine_timeout" if timed_out else self._failure(job))

    def _start(self, utterance: _Utterance, voice: str, rate: int) -> _Job:
        raise NotImplementedError

    def _failure(self, job: _Job) -> str | None:
        """The reason the job failed, or None if it said its utterance."""
        return "engine_failed" if job.processes[0].returncode != 0 else None

    def _finish(self, job: _Job) -> None:
        """After the job's processes ended (said, cut or failed)."""

    def _engine(self, voice: str, rate: int, *sink: str) -> list[str]:
        # The text goes in on stdin, never in argv: a process listing must not show it, and a
        # text starting with "-" must not read as an option. -b 1: the input is UTF-8.
        return [self._binary, "-b", "1", "-v", voice, "-s", str(rate), *sink]

    def _spawn(self, argv: Sequence[str], *, text: bytes | None, group: int,
               stdin: int | None = None, stdout: int | None = subprocess.DEVNULL,
               pass_fds: Sequence[int] = ()) -> subprocess.Popen[bytes]:
        # stderr is dropped: the reason code says enough, and engine chatter must not reach logs.
        process = subprocess.Popen(
            argv, stdin=subprocess.PIPE if text is not None else stdin, stdout=stdout,
            stderr=subprocess.DEVNULL, process_group=group, close_fds=True, pass_fds=pass_fds)
        if text is not None and process.stdin is not None:
            try:
                process.stdin.write(text)  # at most MAX_SPEECH_CHARS: fits the pipe's buffer
                process.stdin.close()
            except BrokenPipeError:
                pass  # the engine died at once; its exit status says so
        return process

    def _record(self, failure: str | None, *, fault: bool = False) -> None:
        with self._lock:
            before = self._health.state
            if failure is None:
                self._health = _Health()
            else:
                failures = self._health.failures + 1
                broken = fault or failures >= FAULT_AFTER_FAILURES
                state = DeviceState.fault(failure) if broken else DeviceState.degraded(failure)
                self._health = _Health(state, failures)
            after = self._health.state
        # Logged once per new reason (not per utterance, not when degraded turns to fault for
        # the same reason: the heartbeat shows that), and never with the text.
        if after.health is Health.OK and before.health is not Health.OK:
            log.info("speech engine works again")
        elif after.health is not Health.OK and after.reason != before.reason:
            log.warning("speech engine %s: %s", after.health, after.reason)


class EspeakSpeech(_EngineSpeech):
    """espeak-ng streamed into ``aplay`` on the given ALSA device.

    espeak-ng could play by itself, but through ``aplay`` the device is named in config (HDMI or
    the headphone jack), a missing sound card is told apart from a failing engine by exit status
    (``audio_failed`` vs ``engine_failed``), and audio starts as soon as the first samples exist
    (``--stdout`` streams; writing a file first would wait for the whole utterance).

    The alert tone is played by the same ``aplay``, named before ``-``: aplay plays its files one
    after the other, so the chime sounds first while espeak-ng waits on the full pipe, and the
    speech follows on the same device without a second process racing it for the sound card.
    """

    def __init__(self, *, binary: str = "espeak-ng", player: str = "aplay",
                 audio_device: str = "default", voices: Mapping[str, str] = DEFAULT_VOICES,
                 rate_wpm: int = RATE_WPM, slow_rate_wpm: int = SLOW_RATE_WPM) -> None:
        self._player = player
        self._audio_device = audio_device
        self._tone_fd: int | None = None  # the chime's WAV in memory, made on first use
        self._tone_unavailable = False
        super().__init__(binary, voices, rate_wpm, slow_rate_wpm)
        if shutil.which(player) is None and self.state().health is Health.OK:
            self._record("player_missing", fault=True)

    def close(self) -> None:
        super().close()
        if self._tone_fd is not None and not self._worker.is_alive():
            os.close(self._tone_fd)
            self._tone_fd = None

    def _start(self, utterance: _Utterance, voice: str, rate: int) -> _Job:
        tone = self._tone() if utterance.alert else None
        engine = self._spawn(self._engine(voice, rate, "--stdout"),
                             text=utterance.text.encode(), group=0, stdout=subprocess.PIPE)
        assert engine.stdout is not None
        files = ["-"] if tone is None else [f"/dev/fd/{tone}", "-"]
        try:
            # Joins the engine's group (a finished engine stays a zombie until waited for, so the
            # group still exists): one killpg stops both.
            player = self._spawn([self._player, "-q", "-D", self._audio_device, *files],
                                 text=None, group=engine.pid, stdin=engine.stdout.fileno(),
                                 pass_fds=() if tone is None else (tone,))
        except OSError as error:
            _Job([engine]).kill()
            engine.wait(timeout=2.0)
            raise _StartFailed("player_missing") from error
        finally:
            engine.stdout.close()  # the player holds it now; the engine sees SIGPIPE if it dies
        return _Job([engine, player], alert=tone is not None)

    def _tone(self) -> int | None:
        """A descriptor of the chime's WAV for the player, or None: the words then go alone.

        In memory (memfd), not on disk: a full disk must not silence the alert, and there is
        nothing to clean up. Opening ``/dev/fd/N`` of a memfd starts at its beginning each time.
        """
        if self._tone_fd is None and not self._tone_unavailable:
            fd = -1
            try:
                fd = os.memfd_create("kiosk-alert-tone", os.MFD_CLOEXEC)
                with open(fd, "wb", closefd=False) as tone:
                    tone.write(chime_wav(ESPEAK_RATE_HZ))
            except OSError:
                log.warning("alert tone unavailable; alerting utterances are said without it",
                            exc_info=True)
                if fd >= 0:
                    os.close(fd)
                self._tone_unavailable = True
                return None
            self._tone_fd = fd
        return self._tone_fd

    def _failure(self, job: _Job) -> str | None:
        engine, player = job.processes
        if player.returncode != 0:
            return "audio_failed"  # checked first: a dead player also kills the engine (SIGPIPE)
        return "engine_failed" if engine.returncode != 0 else None


class WavSpeech(_EngineSpeech):
    """espeak-ng writing each utterance to ``directory/NNNN-<lang>.wav``, the last 50 kept: the
    simulator's and the tests' sound card. An alerting utterance's file holds the chime, at the
    speech's own sample rate, followed by the speech (put together once espeak-ng has ended)."""

    def __init__(self, directory: Path, *, binary: str = "espeak-ng",
                 voices: Mapping[str, str] = DEFAULT_VOICES, rate_wpm: int = RATE_WPM,
                 slow_rate_wpm: int = SLOW_RATE_WPM, keep: int = WAV_FILES_KEPT) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, not {keep}")
        directory.mkdir(parents=True, exist_ok=True)
        self._directory = directory
        self._keep = keep
        # Numbering goes on after a restart, so the newest file is always the highest number.
        self._sequence = max((n for n, _ in _numbered_wavs(directory)), default=0)
        self._last_wav: Path | None = None
        super().__init__(binary, voices, rate_wpm, slow_rate_wpm)

    @property
    def last_wav(self) -> Path | None:
        """The file of the last utterance the engine finished or was cut in."""
        with self._lock:
            return self._last_wav

    def _start(self, utterance: _Utterance, voice: str, rate: int) -> _Job:
        self._sequence += 1
        wav = self._directory / f"{self._sequence:04d}-{utterance.lang}.wav"
        process = self._spawn(self._engine(voice, rate, "-w", str(wav)),
                              text=utterance.text.encode(), group=0)
        return _Job([process], wav=wav, alert=utterance.alert)

    def _finish(self, job: _Job) -> None:
        if job.wav is None or not job.wav.exists():
            return
        if job.cut:
            _repair_wav_sizes(job.wav)
        if job.alert:
            _prepend_chime(job.wav)
        with self._lock:
            self._last_wav = job.wav
        for _, old in _numbered_wavs(self._directory)[:-self._keep]:
            old.unlink(missing_ok=True)


_WAV_NAME = re.compile(r"(\d+)-[A-Za-z_]+\.wav")


def _numbered_wavs(directory: Path) -> list[tuple[int, Path]]:
    """The speech files in ``directory``, oldest first."""
    found = ((_WAV_NAME.fullmatch(p.name), p) for p in directory.iterdir())
    return sorted((int(m.group(1)), p) for m, p in found if m is not None)


def _prepend_chime(wav: Path) -> None:
    """Put the alert tone before the speech in ``wav``, at the speech's own sample rate."""
    try:
        with wave.open(str(wav), "rb") as speech:
            params = speech.getparams()
            frames = speech.readframes(params.nframes)
    except (wave.Error, EOFError, OSError):
        return  # cut before espeak-ng wrote its header, or a failed engine's leftovers
    if params.nchannels != 1 or params.sampwidth != 2:
        log.warning("speech WAV is not 16-bit mono; its alert tone is left out")
        return
    partial = wav.with_name(wav.name + ".partial")
    try:
        with wave.open(str(partial), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(params.framerate)
            out.writeframes(chime_pcm(params.framerate))
            out.writeframes(frames)
        partial.replace(wav)
    except (OSError, ValueError):  # a full disk; a rate no chime can be made at
        log.warning("could not put the alert tone into the speech WAV", exc_info=True)
        partial.unlink(missing_ok=True)


def _repair_wav_sizes(wav: Path) -> None:
    """Write the real sizes into the header of a WAV whose writer was killed mid-way.

    espeak-ng writes placeholder sizes (about 2 GiB) first and the real ones on close; a file
    cut short keeps the placeholders, which players and ``sox`` take for a damaged file.
    """
    size = wav.stat().st_size
    if size < 44:
        return
    with wav.open("r+b") as f:
        header = f.read(44)
        if header[:4] != b"RIFF" or header[36:40] != b"data":
            return  # not the canonical 44-byte header espeak-ng writes; leave it alone
        f.seek(4)
        f.write(struct.pack("<I", size - 8))
        f.seek(40)
        f.write(struct.pack("<I", size - 44))
