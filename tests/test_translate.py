"""Translation: parallel data, subwords, the attention model, incremental and beam decoding."""

import gzip

import pytest
import torch

from rnnkit.data.pairs import make_batch
from rnnkit.data.parallel import filter_long, read_pairs, read_parallel, split_pairs
from rnnkit.data.subword import SubwordTokenizer
from rnnkit.errors import UserError
from rnnkit.models.beam_search import beam_search, greedy
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig

pytestmark = pytest.mark.usefixtures("one_thread")


# -- data ---------------------------------------------------------------------------------------

def test_aligned_files_skip_and_count_empty_lines(tmp_path):
    (tmp_path / "a.de").write_text("Hallo Welt\n\nzwei\n  \ndrei", encoding="utf-8")
    with gzip.open(tmp_path / "a.en.gz", "wt", encoding="utf-8") as f:
        f.write("hello world\nempty source\n\nblank\nthree\n")
    data = read_parallel(tmp_path / "a.de", tmp_path / "a.en.gz")
    assert data.src == ["Hallo Welt", "drei"] and data.tgt == ["hello world", "three"]
    assert data.skipped_empty == 3 and data.line_numbers == [1, 5]


def test_different_line_counts_name_both(tmp_path):
    (tmp_path / "a.de").write_text("a\nb\nc\n")
    (tmp_path / "a.en").write_text("a\nb\n")
    with pytest.raises(UserError, match=r"has 3 lines .* has 2"):
        read_parallel(tmp_path / "a.de", tmp_path / "a.en")


def test_tsv_and_a_line_without_tab(tmp_path):
    (tmp_path / "p.tsv").write_text("eins\tone\n\nzwei\ttwo\textra\n", encoding="utf-8")
    data = read_parallel(tmp_path / "p.tsv")
    assert data.src == ["eins", "zwei"] and data.tgt == ["one", "two"] and data.skipped_empty == 1
    (tmp_path / "bad.tsv").write_text("eins\tone\nzwei two\n", encoding="utf-8")
    with pytest.raises(UserError, match="line 2 of .* has no tab"):
        read_parallel(tmp_path / "bad.tsv")


def test_long_pairs_are_filtered_and_counted(tmp_path):
    (tmp_path / "a.de").write_text("a\nb\nc\n")
    (tmp_path / "a.en").write_text("a\nb\nc\n")
    data = read_parallel(tmp_path / "a.de", tmp_path / "a.en")
    kept, keep = filter_long(data, [1, 5, 2], [2, 1, 3], max_len=2)
    assert keep == [0] and kept.src == ["a"] and kept.skipped_long == 2


def test_a_lone_source_file_must_be_a_tsv_and_the_split_holds_out_a_fraction(tmp_path):
    (tmp_path / "a.de").write_text("".join(f"s{i}\n" for i in range(20)))
    (tmp_path / "a.en").write_text("".join(f"t{i}\n" for i in range(20)))
    with pytest.raises(UserError, match="needs its target-side file"):
        read_pairs(tmp_path / "a.de", None, "the training source")
    data = read_pairs(tmp_path / "a.de", tmp_path / "a.en")
    train, val = split_pairs(data, 0.1, seed=0)
    assert len(val) == 2 and len(train) == 18 and train.src == sorted(train.src, key=data.src.index)
    assert sorted(train.src + val.src) == sorted(data.src)
    assert split_pairs(data, 0.1, seed=0)[1].src == val.src  # a resumed run holds out the same
    with pytest.raises(UserError, match="too few"):
        split_pairs(data.subset([0]), 0.5, seed=0)


def test_batches_shift_the_target_and_pad_with_zero():
    src, src_len, tgt_in, tgt_out = make_batch(
        [torch.tensor([5, 6, 7]), torch.tensor([8])],
        [torch.tensor([9, 3]), torch.tensor([10, 11, 3])], bos_id=2)
    assert src.tolist() == [[5, 6, 7], [8, 0, 0]] and src_len.tolist() == [3, 1]
    assert tgt_out.tolist() == [[9, 3, 0], [10, 11, 3]]
    assert tgt_in.tolist() == [[2, 9, 3], [2, 10, 11]]


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_subwords_round_trip_and_refuse_unknown_characters(kind):
    texts = ["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee!", "Hallo, Welt"] * 5
    tok = SubwordTokenizer.train(texts, kind, 60)
    again = SubwordTokenizer.from_dict(tok.to_dict())
    for text in ["Ein Hund spielt im Schnee.", "Hallo, Mann!"]:
        ids = again.encode(text)
        assert min(ids) >= 4 and again.decode(ids) == text
    with pytest.raises(UserError, match="'Ø' at position 4"):
        tok.encode("Ein Øl")
    assert tok.unk_id in tok.encode_batch(["Ein Øl"])[0]  # training and scoring data: <unk>


# -- the model ----------------------------------------------------------------------------------

def make_model(arch="gru", attention="multiplicative", input_feeding=True, seed=0, **kw):
    torch.manual_seed(seed)
    cfg = Seq2SeqConfig(17, 13, arch=arch, attention=attention, input_feeding=input_feeding,
                        hidden=12, embed=8, dropout=0.1, **kw)
    return Seq2Seq(cfg).eval()


def padded_batch(seed=0, lengths=(6, 3, 1, 5)):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, 17, (len(lengths), max(lengths)), generator=g)
    lengths = torch.tensor(lengths)
    src[torch.arange(src.shape[1])[None] >= lengths[:, None]] = 0
    return src, lengths, torch.randint(4, 13, (len(lengths), 5), generator=g)


CASES = [("gru", "multiplicative", True), ("lstm", "additive", False),
         ("mingru", "additive", True), ("rnn", "multiplicative", False)]


@pytest.mark.parametrize("arch,attention,feed", CASES)
def test_attention_sums_to_one_and_ignores_padding(arch, attention, feed):
    model = make_model(arch, attention, feed)
    src, lengths, tgt = padded_batch()
    with torch.no_grad():
        logits, weights = model(src, lengths, tgt)
        torch.testing.assert_close(weights.sum(-1), torch.ones(4, 5))
        for i, n in enumerate(lengths.tolist()):
            if n < src.shape[1]:
                assert weights[i, :, n:].abs().max() == 0
            alone, w_alone = model(src[i:i + 1, :n], lengths[i:i + 1], tgt[i:i + 1])
            torch.testing.assert_close(logits[i:i + 1], alone, atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(weights[i:i + 1, :, :n], w_alone, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("arch,attention,feed", CASES)
def test_incremental_steps_equal_teacher_forced_forward(arch, attention, feed):
    model = make_model(arch, attention, feed)
    src, lengths, tgt = padded_batch(1)
    with torch.no_grad():
        logits, weights = model(src, lengths, tgt)
        memory, state = model.encode(src, lengths)
        for t in range(tgt.shape[1]):
            step_logits, state, w = model.decoder.step(tgt[:, t], state, memory)
            torch.testing.assert_close(step_logits, logits[:, t], atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(w, weights[:, t], atol=1e-6, rtol=1e-5)


def test_teacher_forcing_zero_reads_own_predictions():
    model = make_model()
    src, lengths, tgt = padded_batch(2)
    with torch.no_grad():
        logits, _ = model(src, lengths, tgt, teacher_forcing=0.0)
        memory, state = model.encode(src, lengths)
        y = tgt[:, 0]
        for t in range(tgt.shape[1]):
            step_logits, state, _ = model.decoder.step(y, state, memory)
            torch.testing.assert_close(step_logits, logits[:, t], atol=1e-5, rtol=1e-4)
            y = step_logits.argmax(-1)


def test_an_unknown_arch_names_the_registry_ones():
    with pytest.raises(UserError, match="arch must be one of lstm, gru, rnn, mingru, minlstm"):
        Seq2SeqConfig(10, 10, arch="transformer")


def test_tied_embeddings_share_the_matrix():
    model = make_model(tie_embeddings=True)
    assert model.decoder.out.weight is model.decoder.embedding.weight
    assert model.decoder.to_embed is not None  # hidden 12 -> embed 8 before the output layer


def _as_padded(hyps, eos):
    rows = [h.tokens + ([eos] if h.ended else []) for h in hyps]
    out = torch.zeros(len(rows), max(len(r) for r in rows), dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, :len(r)] = torch.tensor(r)
    return out


@pytest.mark.parametrize("arch,attention,feed", CASES[:2])
def test_beam_one_is_greedy_and_wider_beams_score_at_least_as_well(arch, attention, feed):
    for seed in range(3):
        model = make_model(arch, attention, feed, seed=seed)
        src, lengths, _ = padded_batch(seed, lengths=(6, 3, 1, 5, 4, 2))
        g = greedy(model, src, lengths, max_len_ratio=1.5, max_len_extra=3)
        b1 = beam_search(model, src, lengths, beam=1, max_len_ratio=1.5, max_len_extra=3)
        assert [h.tokens for h in g] == [h.tokens for h in b1]
        b4 = beam_search(model, src, lengths, beam=4, length_penalty=0.0, max_len_ratio=1.5,
                         max_len_extra=3)
        for hyps in (g, b4):  # the scores are the model's log-probabilities of the outputs
            recomputed = model.sequence_logprob(src, lengths, _as_padded(hyps, 3))
            torch.testing.assert_close(torch.tensor([h.score for h in hyps]), recomputed,
                                       atol=1e-4, rtol=1e-4)
        for a, b in zip(g, b4, strict=True):
            assert b.score >= a.score - 1e-5
        limits = [int(1.5 * n + 0.999) + 3 for n in lengths.tolist()]
        assert all(len(h.tokens) <= n for h, n in zip(b4, limits, strict=True))


@pytest.mark.parametrize("arch", ["gru", "lstm"])
def test_whole_sequence_decoder_matches_the_step_loop_with_gradients(arch):
    model = make_model(arch, "additive", input_feeding=False)
    model.train()
    for m in model.modules():  # same masks on both paths: no dropout
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    src, lengths, tgt = padded_batch(3)
    results = []
    for stepwise in (False, True):
        model.zero_grad()
        memory, state = model.encode(src, lengths)
        logits, weights = model.decoder(tgt, state, memory, stepwise=stepwise)
        (logits.square().mean() + weights[..., 0].sum()).backward()
        results.append((logits, weights, {n: p.grad.clone() for n, p in model.named_parameters()
                                          if p.grad is not None}))
    (la, wa, ga), (lb, wb, gb) = results
    torch.testing.assert_close(la, lb, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(wa, wb, atol=1e-6, rtol=1e-5)
    assert ga.keys() == gb.keys() and len(ga) > 10
    for name in ga:
        torch.testing.assert_close(ga[name], gb[name], atol=1e-5, rtol=1e-4, msg=name)
