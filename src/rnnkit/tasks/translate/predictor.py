"""A trained translation run: ``Translator`` (what ``load`` returns)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from rnnkit.data.pairs import Vocabularies, encode_pairs
from rnnkit.data.parallel import ParallelText, describe_skips, read_pairs, to_stderr
from rnnkit.errors import UserError
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
from rnnkit.tasks import precision as P
from rnnkit.tasks.runs import load_run
from rnnkit.tasks.translate.config import TASK, TranslateConfig
from rnnkit.tasks.translate.decoding import bleu_chrf, decode, token_loss


class Translator:
    """A trained model with its tokenizers and decoding settings (a ``Predictor``)."""

    task = TASK

    def __init__(self, model: Seq2Seq, vocab: Vocabularies, config: dict[str, Any]):
        self.model = model.eval()
        self.vocab = vocab
        self.config = config
        saved = config.get("translate", {})
        self.decoding = {k: saved.get(k, v) for k, v in TranslateConfig().decoding().items()}
        self.metrics: dict[str, Any] = {}
        self.precision = P.FLOAT32

    def probe(self, bf16: bool) -> torch.Tensor:
        """Four made-up 15-token sentences translated with the saved decoding settings (what is
        timed), and the next-token probabilities of made-up targets (what is compared)."""
        cfg = self.model.cfg
        first = max(cfg.pad_id, cfg.bos_id, cfg.eos_id) + 1
        src = P.made_up_ids((4, 15), first, cfg.src_vocab)
        tgt = P.made_up_ids((4, 15), first, cfg.tgt_vocab)
        device = next(self.model.parameters()).device
        with P.autocast_of(self.model, bf16):
            decode(self.model, list(src), **self.decoding)
            logits, _ = self.model(src.to(device), torch.full((4,), 15), tgt.to(device))
        return logits.float().softmax(-1)

    @property
    def module(self) -> Seq2Seq:
        return self.model

    def _settings(self, **given) -> dict[str, Any]:
        return {**self.decoding, **{k: v for k, v in given.items() if v is not None}}

    def encode(self, texts: Sequence[str], source: str = "the text",
               numbers: Sequence[int] | None = None) -> list[torch.Tensor]:
        """Source ids; a character the model never saw is a UserError naming the line
        (``numbers``: each text's 1-based line, default 1, 2, ...)."""
        out = []
        numbers = numbers or range(1, len(texts) + 1)
        for n, text in zip(numbers, texts, strict=True):
            what = source if len(texts) == 1 and n == 1 else f"line {n} of {source}"
            ids = self.vocab.src.encode(text.strip(), what=what)
            out.append(torch.tensor(ids, dtype=torch.long))
        return out

    @P.in_precision
    def translate(self, texts: Sequence[str] | str, beam: int | None = None,
                  length_penalty: float | None = None, max_len_ratio: float | None = None,
                  source: str = "the text") -> list[str]:
        """Detokenized translations of ``texts`` (beam search; ``beam=1`` is greedy). Empty
        texts translate to empty strings."""
        if isinstance(texts, str):
            texts = [texts]
        settings = self._settings(beam=beam, length_penalty=length_penalty,
                                  max_len_ratio=max_len_ratio)
        keep = [i for i, t in enumerate(texts) if t.strip()]
        ids = self.encode([texts[i] for i in keep], source, [i + 1 for i in keep])
        out = [""] * len(texts)
        for i, h in zip(keep, decode(self.model, ids, **settings), strict=True):
            out[i] = self.vocab.tgt.decode(h.tokens)
        return out

    def predict(self, texts: Sequence[str] | str, beam: int | None = None,
                **options: Any) -> list[str]:
        """The Predictor entry point: ``translate``."""
        return self.translate(texts, beam=beam, **options)

    @P.in_precision
    def evaluate_pairs(self, data: ParallelText, beam: int | None = None) -> dict[str, float]:
        """BLEU and chrF of the translations, perplexity of the references, speed."""
        pairs = encode_pairs(data, self.vocab)
        unknown = sum(int((s == self.vocab.src.unk_id).any()) for s in pairs.src)
        if unknown:
            to_stderr(f"note: {unknown} source sentences in {data.source} have characters the "
                      "model never saw; they are read as unknown")
        loss = token_loss(self.model, pairs)
        settings = self._settings(beam=beam)
        t0 = time.perf_counter()
        hyps = decode(self.model, pairs.src, **settings)
        seconds = time.perf_counter() - t0
        out = [self.vocab.tgt.decode(h.tokens) for h in hyps]
        return {**bleu_chrf(out, data.tgt), "loss": loss, "ppl": math.exp(min(loss, 50.0)),
                "sentences": float(len(out)), "sentences_per_s": len(out) / max(seconds, 1e-9),
                "beam": float(settings["beam"])}

    def evaluate(self, data: str | Path | Sequence[str | Path], tgt: str | Path | None = None,
                 beam: int | None = None) -> dict[str, float]:
        """``evaluate_pairs`` on a source and a target file (``[src, tgt]``, or ``src, tgt``),
        or on one TSV file."""
        paths = [data] if isinstance(data, str | Path) else list(data)
        if tgt is not None:
            paths.append(tgt)
        if len(paths) not in (1, 2):
            raise UserError(f"evaluate takes a source and a target file (or one .tsv) for a "
                            f"translation run, found {len(paths)} files")
        pairs = read_pairs(str(paths[0]), str(paths[1]) if len(paths) == 2 else None)
        describe_skips(pairs)
        return self.evaluate_pairs(pairs, beam)

    @torch.no_grad()
    @P.in_precision
    def attention(self, text: str, beam: int | None = None
                  ) -> tuple[list[str], list[str], torch.Tensor]:
        """``(source subwords, output subwords, weights (output, source))`` for the translation
        of ``text``; the last output row is the end token's."""
        ids = self.encode([text])[0]
        h = decode(self.model, [ids], **self._settings(beam=beam))[0]
        out = torch.tensor([*h.tokens, self.model.cfg.eos_id])
        tgt_in = torch.cat([torch.tensor([self.model.cfg.bos_id]), out[:-1]])
        device = next(self.model.parameters()).device
        _, weights = self.model(ids[None].to(device), torch.tensor([len(ids)]),
                                tgt_in[None].to(device))
        return (self.vocab.src.pieces(ids.tolist()), self.vocab.tgt.pieces(out.tolist()),
                weights[0].float().cpu())

    def plot_attention(self, text: str, path: str | Path, beam: int | None = None) -> Path:
        """Save the attention heat map of ``text``'s translation as a PNG."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        src, out, weights = self.attention(text, beam)
        fig, ax = plt.subplots(figsize=(max(4, 0.45 * len(src) + 2), max(3, 0.4 * len(out) + 2)))
        ax.imshow(weights.numpy(), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        ax.set_xticks(range(len(src)), src, rotation=60, ha="right")
        ax.set_yticks(range(len(out)), out)
        ax.set_xlabel("source subwords")
        ax.set_ylabel("output subwords")
        ax.set_title("attention")
        path = Path(path)
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        return path


def _read(config: dict[str, Any]) -> tuple[Seq2SeqConfig, Vocabularies]:
    return Seq2SeqConfig.from_dict(config["model"]), Vocabularies.from_dict(config["tokenizer"])


def load(run_dir: str | Path, device: str = "cpu", which: str = "best",
         precision: str = "auto") -> Translator:
    """The translator of a translation run directory (its best checkpoint, else the last),
    inferring in ``precision`` (auto: ``rnnkit.tasks.precision``)."""
    model, vocab, config = load_run(run_dir, TASK, which, _read, Seq2Seq, "translation")
    tr = Translator(model.to(device), vocab, config)
    tr.precision = P.choose(precision, device, tr.model, tr.probe)
    return tr
