"""A trained language model loaded from its run directory, for sampling and evaluation.

Prompts and evaluation texts may hold characters the model's vocabulary lacks: they are read as
its unknown symbol (U+FFFD), or left out by a run saved before it had one
(``rnnkit.data.tokenizers``); ``unknown_chars`` says which, ``unknown_note`` says so in a
sentence, and ``evaluate`` counts them in ``unknown_chars``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from rnnkit.data.text import read_corpus
from rnnkit.data.tokenizers import tokenizer_from_dict
from rnnkit.errors import UserError
from rnnkit.models.language_model import LanguageModel, LanguageModelConfig
from rnnkit.models.sampling import check_sampling, generate
from rnnkit.tasks import precision as P
from rnnkit.tasks.runs import load_run
from rnnkit.tasks.textgen.config import TASK
from rnnkit.tasks.textgen.task import stream_loss, text_size


class TextGenerator:
    """A trained language model with its tokenizer, for sampling and evaluation."""

    task = TASK

    def __init__(self, model: LanguageModel, tokenizer, config: dict[str, Any]):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.config = config
        self.metrics: dict[str, Any] = {}
        self.precision = P.FLOAT32

    @property
    def module(self) -> LanguageModel:
        return self.model

    def predict(self, prompts: str | Sequence[str], length: int = 200, **sampling: Any
                ) -> str | list[str]:
        """The continuation of a prompt (a str), or one continuation per prompt of a list;
        ``sampling``: ``generate``'s ``temperature``, ``top_k``, ``top_p``, ``seed``."""
        if isinstance(prompts, str):
            return self.generate(prompts, length, **sampling)
        wrong = [type(p).__name__ for p in prompts if not isinstance(p, str)] \
            if isinstance(prompts, Sequence) else [type(prompts).__name__]
        if wrong:
            raise UserError(f"predict takes a prompt (str) or a list of prompts, found {wrong[0]}")
        for i, prompt in enumerate(prompts):  # every prompt is checked before any is continued
            self._prompt_ids(prompt, f"prompt {i + 1}")
        return [self.generate(p, length, **sampling) for p in prompts]

    def check(self, prompt: str, length: int = 200, *, temperature: float = 1.0,
              top_k: int | None = None, top_p: float | None = None, samples: int = 1) -> None:
        """Raise the UserError ``generate`` would raise for these settings, before any output."""
        check_sampling(length, temperature, top_k, top_p, samples)
        if not prompt:
            raise UserError("the prompt is empty; give at least one character to start from")
        self._prompt_ids(prompt, "the prompt")

    def _prompt_ids(self, prompt: str, what: str) -> list[int]:
        ids = self.tokenizer.encode(prompt, what=what)
        if prompt and not ids:  # an old vocabulary without an unknown symbol skipped them all
            raise UserError(f"{what} has none of the {self.tokenizer.vocab_size} characters of "
                            "the model's vocabulary")
        return ids

    def unknown_chars(self, text: str) -> dict[str, int]:
        """The characters of ``text`` that the vocabulary lacks, with their counts."""
        return self.tokenizer.unknown(text)

    def unknown_note(self, text: str, what: str = "the prompt") -> str | None:
        """A sentence saying how many characters of ``text`` the model lacks and what became of
        them; None when it has them all."""
        unknown = self.unknown_chars(text)
        if not unknown:
            return None
        n = sum(unknown.values())
        shown = ", ".join(repr(ch) for ch in list(unknown)[:5]) + (", ..." if len(unknown) > 5
                                                                   else "")
        unk = self.tokenizer.unk
        fate = (f"read as the unknown symbol U+{ord(unk):04X}" if unk
                else "left out (this run's vocabulary has no unknown symbol)")
        return (f"{what} has {n} character{'s' if n > 1 else ''} that the model's vocabulary "
                f"lacks ({shown}), {fate}")

    def generate(self, prompt: str, length: int = 200, *, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, samples: int = 1,
                 seed: int | None = None, include_prompt: bool = False,
                 on_text: Callable[[int, str], None] | None = None) -> str | list[str]:
        """Continue ``prompt`` by ``length`` tokens.

        Returns the new text (``include_prompt``: prompt + new text); a list of ``samples`` texts
        when ``samples > 1``. ``on_text(sample_index, piece)`` receives each sample's text as it
        is produced (whole characters only: a multi-byte character waits for its last byte).
        """
        check_sampling(length, temperature, top_k, top_p, samples)
        prompt_ids = self._prompt_ids(prompt, "the prompt")
        streams = [self.tokenizer.stream_decoder() for _ in range(samples)]
        pieces: list[list[str]] = [[] for _ in range(samples)]

        def emit(tokens: torch.Tensor) -> None:
            for i, token in enumerate(tokens.tolist()):
                piece = streams[i].feed(token)
                if piece:
                    pieces[i].append(piece)
                    if on_text is not None:
                        on_text(i, piece)

        generate(self.model, prompt_ids, length, samples=samples, temperature=temperature,
                 top_k=top_k, top_p=top_p, seed=seed, on_token=emit)
        texts = []
        for i, stream in enumerate(streams):
            tail = stream.flush()
            if tail:
                pieces[i].append(tail)
                if on_text is not None:
                    on_text(i, tail)
            texts.append((prompt if include_prompt else "") + "".join(pieces[i]))
        return texts[0] if samples == 1 else texts

    def evaluate(self, data: str | Path | Sequence[str | Path], errors: str = "strict",
                 seq_len: int | None = None) -> dict[str, float]:
        """Loss (nats/token), perplexity, bits per character and per byte on other text, with
        ``tokens`` and ``unknown_chars``: the characters of the text the vocabulary lacks (each
        scored as the unknown symbol, or left out of the scores by an old run without one)."""
        paths = [data] if isinstance(data, str | Path) else list(data)
        text = read_corpus([Path(p) for p in paths], errors)
        unknown = self.unknown_chars(text)
        ids = torch.tensor(self.tokenizer.encode(text, what="the evaluation text"),
                           dtype=torch.long)
        if unknown and self.tokenizer.unk is None:  # per character and byte of what was scored
            text = text.translate(dict.fromkeys(map(ord, unknown)))
        if len(ids) < 2:
            raise UserError(f"the evaluation text is shorter than two tokens, found {len(ids)}")
        seq_len = seq_len or self.config.get("textgen", {}).get("seq_len", 128)
        device = next(self.model.parameters()).device
        loss = stream_loss(self.model, ids.to(device), seq_len)
        chars, nbytes = text_size(text)
        return {"loss": loss, "ppl": math.exp(min(loss, 700.0)),
                "bpc": loss * len(ids) / chars / math.log(2),
                "bpb": loss * len(ids) / nbytes / math.log(2), "tokens": float(len(ids)),
                "unknown_chars": sum(unknown.values())}


def _read(config: dict[str, Any]) -> tuple[LanguageModelConfig, Any]:
    return (LanguageModelConfig.from_dict(config["model"]),
            tokenizer_from_dict(config["tokenizer"]))


def load(run_dir: str | Path, device: str = "cpu", which: str = "best",
         precision: str = "auto") -> TextGenerator:
    """The model of a textgen run directory (its best checkpoint, else the last), inferring in
    ``precision`` (auto: ``rnnkit.tasks.precision``).

    In bf16 the weights themselves are bf16 (not autocast): that halves their memory traffic,
    which is what limits sampling at batch 1 on a CPU; the probabilities then differ from
    float32's in the third digit.
    """
    model, tokenizer, config = load_run(run_dir, TASK, which, _read, LanguageModel, "textgen")
    model = model.to(device).eval()
    chosen = P.choose(precision, device, model, _probe(model))
    gen = TextGenerator(model.to(chosen.dtype or torch.float32), tokenizer, config)
    gen.precision = chosen
    return gen


def _probe(model: LanguageModel) -> P.Probe:
    """The next-token probabilities of 48 made-up tokens read one step at a time, as sampling
    steps, by the model in float32 or by a bf16 copy of it (``rnnkit.tasks.precision``)."""
    copies = {False: model}

    def probe(bf16: bool) -> torch.Tensor:
        if bf16 not in copies:
            copies[bf16] = copy.deepcopy(model).to(torch.bfloat16)
        m = copies[bf16]
        device = next(m.parameters()).device
        state, probs = None, []
        for token in P.made_up_ids((48, 1), 0, m.cfg.vocab_size).to(device):
            logits, state = m.step(token, state)
            probs.append(logits.float().softmax(-1))
        return torch.stack(probs)

    return probe
