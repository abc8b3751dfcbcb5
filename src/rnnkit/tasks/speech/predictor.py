"""A loaded speech run: ``Recognizer`` (transcribe, stream, evaluate) and ``load``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit.data.audio import read_audio
from rnnkit.data.features import FeatureConfig, Featurizer, StreamingFeatures
from rnnkit.data.padding import pad_batch
from rnnkit.data.utterances import (
    Alphabet,
    Normalizer,
    SpeechData,
    load_data,
    pad_targets,
)
from rnnkit.errors import UserError
from rnnkit.metrics.speech import error_rates, write_utterance_errors
from rnnkit.models.ctc_decoding import CharNgramLM, greedy_decode, prefix_beam_search, rescore
from rnnkit.models.ctc_recognizer import (
    CTCEnsemble,
    CTCRecognizer,
    CTCRecognizerConfig,
    build_recognizer,
)
from rnnkit.tasks import precision as P
from rnnkit.tasks.registry import saved_settings
from rnnkit.tasks.speech.config import TASK, SpeechConfig
from rnnkit.threads import one_thread

Audio = str | Path | np.ndarray | torch.Tensor


@torch.no_grad()
def decode_features(model: CTCRecognizer | CTCEnsemble, feats: Sequence[torch.Tensor],
                    alphabet: Alphabet, ids: Sequence[list[int]] | None = None, beam: int = 1,
                    lm: CharNgramLM | None = None, lm_weight: float = 0.5,
                    batch_size: int = 32) -> tuple[float, list[str]]:
    """``(mean CTC loss or nan, transcripts)`` of normalised features, batched by length; an
    ensemble's transcript is the likeliest, for all members together, of the members' own."""
    device = next(model.parameters()).device
    order = sorted(range(len(feats)), key=lambda i: len(feats[i]))
    hyps: list[str] = [""] * len(feats)
    loss_sum = 0.0
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        x, lengths = pad_batch([feats[i] for i in idx])
        y = y_lengths = None
        if ids is not None:
            y, y_lengths = pad_targets([ids[i] for i in idx])
            y, y_lengths = y.to(device), y_lengths.to(device)
        log_probs, out_lengths, loss = model(x.to(device), lengths.to(device), y, y_lengths)
        if loss is not None:
            loss_sum += float(loss) * len(idx)
        log_probs = log_probs.cpu()
        members = log_probs if log_probs.dim() == 4 else log_probs[None]  # (M, B, T', V)
        for j, i in enumerate(idx):
            lps = members[:, j, :int(out_lengths[j])]
            found = [greedy_decode(lp) if beam == 1 and lm is None else
                     prefix_beam_search(lp, beam, lm, lm_weight) for lp in lps]
            labels = found[0] if all(f == found[0] for f in found) else \
                rescore(lps, found, lm, lm_weight)
            hyps[i] = alphabet.decode(labels)
    return (loss_sum / len(feats) if ids is not None else float("nan")), hyps


class Recognizer:
    """A trained recogniser with its features, alphabet and language model."""

    task = TASK

    def __init__(self, model: CTCRecognizer | CTCEnsemble, config: dict[str, Any]):
        self.model = model.eval()
        self.config = config
        self.features = FeatureConfig(**config["features"])
        self.featurizer = Featurizer(self.features)
        self.alphabet = Alphabet(config["alphabet"])
        self.normalizer = Normalizer.from_dict(config["normalizer"])
        self.lm = CharNgramLM.from_dict(config["lm"]) if config.get("lm") else None
        self.settings = SpeechConfig(**saved_settings(SpeechConfig, config.get("speech", {})))
        self.metrics: dict[str, Any] = {}
        self.precision = P.FLOAT32

    def probe(self, bf16: bool) -> torch.Tensor:
        """Frame probabilities of four made-up 3-second recordings (``rnnkit.tasks.precision``)."""
        x = P.made_up_values(4, 300, self.model.cfg.input_size)
        device = next(self.model.parameters()).device
        with P.autocast_of(self.model, bf16):
            log_probs, _, _ = self.model(x.to(device), torch.full((4,), 300, device=device))
        return log_probs.float().exp()

    @property
    def module(self) -> CTCRecognizer | CTCEnsemble:
        return self.model

    def _lm(self, lm_weight: float):
        return self.lm if lm_weight > 0 else None

    def features_of(self, audio: Audio, resample: bool = True) -> torch.Tensor:
        """Normalised features of a recording: a file, or samples at the model's rate."""
        if isinstance(audio, str | Path):
            samples, name = read_audio(audio, self.features.sample_rate, resample), str(audio)
        else:
            samples, name = np.asarray(audio, dtype=np.float32), "the audio"
            if samples.ndim != 1:
                raise UserError(f"audio samples must be a 1-D array (mono, at "
                                f"{self.features.sample_rate} Hz), found shape "
                                f"{tuple(samples.shape)}.")
            if not np.isfinite(samples).all():
                raise UserError("the audio holds samples that are not finite numbers (NaN or "
                                "inf).")
        return self.normalizer(self.featurizer(samples, name))

    def predict(self, audio: Audio | Sequence[Audio], beam: int = 1,
                lm_weight: float = 0.0) -> list[str]:
        """The transcript of each recording (a path, an array of samples at the model's sample
        rate, or a list of them): greedy with ``beam=1`` and no LM weight, else prefix beam
        search (with the character LM when ``lm_weight > 0``)."""
        items = [audio] if isinstance(audio, Audio) else list(audio)
        # features in float32 whatever the network's precision: as in training, and the
        # filterbank's product in bf16 was slower and coarser
        with one_thread():
            feats = [self.features_of(a) for a in items]
        if not feats:
            return []
        return self._decode(feats, beam, lm_weight)

    @P.in_precision
    def _decode(self, feats: list[torch.Tensor], beam: int, lm_weight: float) -> list[str]:
        return decode_features(self.model, feats, self.alphabet, beam=beam,
                               lm=self._lm(lm_weight), lm_weight=lm_weight)[1]

    def transcribe(self, paths: Audio | Sequence[Audio], beam: int = 1,
                   lm_weight: float = 0.0) -> list[str]:
        """``predict``: the transcript of each recording."""
        return self.predict(paths, beam=beam, lm_weight=lm_weight)

    @torch.no_grad()
    def stream(self, chunks: Iterable) -> Iterator[str]:
        """Transcribe audio as it arrives (chunks of samples at the model's rate): yields the
        text recognised so far after each chunk, greedy. Needs a unidirectional model; streams in
        float32 (the precision probe times whole recordings, not steps)."""
        if isinstance(self.model, CTCEnsemble):
            raise UserError("streaming needs a single model; this run is an ensemble of "
                            f"{self.model.cfg.ensemble} (train with --ensemble 1).")
        if self.model.cfg.bidirectional:
            raise UserError("streaming needs a unidirectional model (train with "
                            "--unidirectional); this one reads each recording both ways.")
        if self.normalizer.mode != "global":
            raise UserError("streaming needs training-set feature statistics (normalize: "
                            "global); this model normalises each whole recording.")
        feats = StreamingFeatures(self.featurizer, self.normalizer.mean, self.normalizer.std)
        state, labels, prev = None, [], 0
        for chunk in chunks:
            frames = feats.push(chunk)
            if len(frames):
                log_probs, state = self.model.stream(frames[None], state)
                for k in log_probs[0].argmax(-1).tolist():
                    if k != prev and k != 0:
                        labels.append(k)
                    prev = k
            yield self.alphabet.decode(labels)

    @P.in_precision
    def evaluate_data(self, data: SpeechData, errors_csv: str | Path | None = None,
                      beam: int = 1, lm_weight: float = 0.0) -> dict[str, Any]:
        feats = [self.normalizer(f) for f in data.feats]
        loss, hyps = decode_features(self.model, feats, self.alphabet, data.ids, beam,
                                     self._lm(lm_weight), lm_weight)
        m: dict[str, Any] = {**error_rates(data.texts, hyps), "loss": loss,
                             "utterances": len(hyps)}
        if errors_csv is not None:
            write_utterance_errors(errors_csv, data.names, data.texts, hyps)
        return m

    def evaluate(self, source: str | Path | Sequence[str | Path],
                 errors_csv: str | Path | None = None, beam: int = 1, lm_weight: float = 0.0,
                 skip_bad: bool = False) -> dict[str, Any]:
        """WER, CER, CTC loss and utterances on a manifest or folder (or several, together);
        per-utterance errors to a CSV."""
        sources = [source] if isinstance(source, str | Path) else list(source)
        if not sources:
            raise UserError("no manifest or folder to evaluate on was given.")
        parts = [load_data(s, self.featurizer, self.alphabet, self.settings,
                           self.model.cfg.subsample, skip_bad) for s in sources]
        data = parts[0] if len(parts) == 1 else SpeechData.merge(parts)
        return self.evaluate_data(data, errors_csv, beam, lm_weight)


def load(run_dir: str | Path, device: str = "cpu", which: str = "best",
         precision: str = "auto") -> Recognizer:
    """The recogniser of a speech run directory (its best checkpoint, else the last), inferring
    in ``precision`` (auto: ``rnnkit.tasks.precision``)."""
    from rnnkit.train import load_for_inference

    config, state_dict = load_for_inference(run_dir, expect_task=TASK, which=which)
    try:
        model = build_recognizer(CTCRecognizerConfig.from_dict(config["model"]))
        model.load_state_dict(state_dict)
        rec = Recognizer(model.to(device), config)
    except (KeyError, TypeError, RuntimeError) as e:
        raise UserError(f"the checkpoint in {run_dir} does not describe a speech model rnnkit "
                        f"can rebuild ({type(e).__name__}: {e}).") from None
    rec.precision = P.choose(precision, device, rec.model, rec.probe)
    return rec
