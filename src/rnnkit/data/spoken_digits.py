"""Spoken digit strings made on the fly by eSpeak NG, the speech synthesiser whose library and
voice data ship inside the ``espeakng-loader`` package: a small speech-recognition set that
needs no download (``rnnkit demo``).

A voice is one of eSpeak's English accents with one of its voice variants (formants, pitch
range, breathiness); each utterance also gets its own speaking rate and pitch. Splitting the
variants between training and test gives a test set of voices the model never heard.
"""

from __future__ import annotations

import csv
import ctypes
import random
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnkit.errors import UserError

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan",
           "en-gb-x-gbcwmd", "en-us-nyc")
# eSpeak's variants that sound like a person (not the robots, whispers and croaks)
TRAIN_VARIANTS = ("m1", "m2", "m3", "m4", "m7", "f1", "f2", "f3", "Andy", "Annie", "john",
                  "max", "Michael", "anika", "Lee", "norbert")
TEST_VARIANTS = ("m5", "m6", "f4", "f5", "Mario", "linda")

# espeak.h: AUDIO_OUTPUT_SYNCHRONOUS, espeakRATE, espeakPITCH, POS_CHARACTER, espeakCHARS_UTF8
_SYNCHRONOUS, _RATE, _PITCH, _POS_CHARACTER, _UTF8 = 2, 1, 3, 1, 1
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.c_void_p)


@dataclass(frozen=True)
class Voice:
    accent: str
    variant: str

    @property
    def name(self) -> str:
        return f"{self.accent}+{self.variant}"


class Espeak:
    """eSpeak NG through ctypes, synthesising into memory. The library keeps one global state,
    so there is one instance per process (``Espeak.get()``) and calls are serialised."""

    _instance: Espeak | None = None
    _lock = threading.Lock()

    def __init__(self):
        try:
            import espeakng_loader
        except ImportError:
            raise UserError("synthesised speech needs espeakng-loader (it ships eSpeak NG): "
                            "pip install espeakng-loader.") from None
        self.lib = lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p,
                                          ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint,
                                     ctypes.c_int, ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p,
                                     ctypes.c_void_p]
        data = Path(espeakng_loader.get_data_path())
        self.sample_rate = lib.espeak_Initialize(_SYNCHRONOUS, 0, str(data).encode(), 0)
        if self.sample_rate <= 0:
            raise RuntimeError("eSpeak NG did not start (espeak_Initialize failed)")
        # eSpeak falls back to the plain voice for an unknown variant: check them here
        self.variants = {p.name for p in (data / "voices" / "!v").iterdir()}
        self._chunks: list[np.ndarray] = []
        self._callback = _CALLBACK(self._collect)  # kept alive: the library holds the pointer
        lib.espeak_SetSynthCallback(self._callback)

    @classmethod
    def get(cls) -> Espeak:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _collect(self, wav, n, events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0  # go on synthesising

    def say(self, text: str, voice: Voice, words_per_minute: int = 160, pitch: int = 50
            ) -> np.ndarray:
        """``text`` spoken by ``voice``: float32 samples in [-1, 1] at ``sample_rate``."""
        with self._lock:
            if voice.variant not in self.variants or \
                    self.lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
                raise UserError(f"eSpeak NG has no voice {voice.name!r}.")
            self.lib.espeak_SetParameter(_RATE, words_per_minute, 0)
            self.lib.espeak_SetParameter(_PITCH, pitch, 0)
            self._chunks = []
            data = text.encode("utf-8")
            self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _UTF8, None, None)
            samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return samples.astype(np.float32) / 32768.0


def voices(variants: tuple[str, ...]) -> list[Voice]:
    """Every accent with every one of ``variants``."""
    return [Voice(a, v) for v in variants for a in ACCENTS]


def write_digit_set(folder: str | Path, n: int, variants: tuple[str, ...], seed: int = 0,
                    name: str = "train", sample_rate: int = 8000, min_digits: int = 2,
                    max_digits: int = 5) -> Path:
    """``n`` recordings of random digit strings (the words, e.g. "three one four"; transcript
    "314"), each by a voice of ``variants`` in a random accent, at a random rate (130-220
    words per minute) and pitch, written as WAV files at ``sample_rate`` beside a manifest
    ``NAME.csv`` (path, transcript, voice); returns the manifest."""
    import soundfile as sf
    import soxr

    engine = Espeak.get()
    rng = random.Random(seed)
    pool = voices(variants)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        digits = [rng.randrange(10) for _ in range(rng.randint(min_digits, max_digits))]
        voice = rng.choice(pool)
        audio = engine.say(" ".join(DIGIT_WORDS[d] for d in digits), voice,
                           rng.randint(130, 220), rng.randint(25, 75))
        audio = soxr.resample(audio, engine.sample_rate, sample_rate).astype(np.float32)
        path = folder / f"{name}_{i:04d}.wav"
        sf.write(path, audio * rng.uniform(0.3, 1.0), sample_rate)
        rows.append((path.name, "".join(map(str, digits)), voice.name))
    manifest = folder / f"{name}.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "transcript", "voice"])
        writer.writerows(rows)
    return manifest
