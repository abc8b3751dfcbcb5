"""Speech recognition: recordings with transcripts in, a CTC recogniser out.

From Python::

    from rnnkit.tasks import speech
    rec = speech.train("train.csv", "runs/asr", val="dev.csv", max_time="10m")
    rec.predict(["hello.wav", samples])            # -> ["hello world", "..."]
    rec = speech.load("runs/asr")                  # later, in another process
    rec.evaluate("test.csv", errors_csv="errors.csv")   # {"wer": ..., "cer": ...}

Every recording is decoded and featurised once, when the data is read (``rnnkit.data.
utterances``). The alphabet is the set of characters of the training transcripts (after
lower-casing), unless given.
"""

from __future__ import annotations

from pathlib import Path

from rnnkit.data.utterances import (
    Alphabet,
    Normalizer,
    SpeechData,
    ctc_min_frames,
    load_data,
    pad_targets,
)
from rnnkit.tasks import registry
from rnnkit.tasks.registry import TaskSpec
from rnnkit.tasks.runs import path_settings
from rnnkit.tasks.speech.config import TASK, TRAIN_DEFAULTS, SpeechConfig
from rnnkit.tasks.speech.predictor import Recognizer, decode_features, load
from rnnkit.tasks.speech.smoke import smoke
from rnnkit.tasks.speech.task import SpeechTask, build, fit, summary

__all__ = [
    "TASK", "SPEC", "SpeechConfig", "TRAIN_DEFAULTS", "Alphabet", "ctc_min_frames", "SpeechData",
    "load_data", "pad_targets", "Normalizer", "SpeechTask", "decode_features",
    "build", "configs", "fit", "train", "Recognizer", "load",
]

SPEC = TaskSpec(
    name=TASK, config=SpeechConfig, fit=fit, load=load,
    help="Train a speech recogniser (recurrent encoder + CTC) on recordings with transcripts.",
    example="rnnkit train speech --data train.csv --val dev.csv --out runs/asr --max-time 10m",
    train_defaults=TRAIN_DEFAULTS, summary=summary, smoke=smoke,
)
configs = SPEC.configs


def train(data: str | Path, out: str | Path, *, val: str | Path | None = None,
          test: str | Path | None = None, resume: bool = False, config: str | Path | None = None,
          **settings) -> Recognizer:
    """Train a recogniser on ``data`` into run directory ``out``; ``settings`` are any
    SpeechConfig or TrainConfig fields. Returns the recogniser, its metrics in ``.metrics``."""
    return registry.train(TASK, out, config=config, resume=resume, **settings,
                          **path_settings(data=data, val=val, test=test))
