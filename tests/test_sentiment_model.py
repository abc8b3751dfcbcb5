"""The classifier: padding never changes a sequence's prediction; configs reject bad values."""

import pytest
import torch

from rnnkit.errors import UserError
from rnnkit.models.classifier import (
    POOLINGS,
    ClassifierConfig,
    EnsembleClassifier,
    TextClassifier,
    build_classifier,
    members,
)
from rnnkit.nn.registry import ARCHS

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("pooling", POOLINGS)
def test_padding_does_not_change_a_prediction(arch, pooling):
    torch.manual_seed(0)
    cfg = ClassifierConfig(vocab_size=30, num_classes=3, arch=arch, layers=2, hidden=6, embed=5,
                           pooling=pooling)
    model = TextClassifier(cfg).eval()
    short = torch.randint(2, 30, (4,))
    alone, _ = model(short[None], torch.tensor([4]))
    # the same sentence in a batch with longer ones; padding holds arbitrary ids, not just 0
    batch = torch.randint(2, 30, (3, 9))
    batch[1, :4] = short
    batch[1, 4:] = torch.randint(0, 30, (5,))
    lengths = torch.tensor([9, 4, 7])
    logits, _ = model(batch, lengths)
    torch.testing.assert_close(logits[1], alone[0], atol=1e-5, rtol=1e-5)
    # and the longer sentences are not affected by their neighbours either
    again, _ = model(batch[[0]], lengths[[0]])
    torch.testing.assert_close(logits[0], again[0], atol=1e-5, rtol=1e-5)


def test_attention_weights_are_zero_on_padding_and_sum_to_one():
    torch.manual_seed(0)
    model = TextClassifier(ClassifierConfig(vocab_size=20, num_classes=2, hidden=4, embed=4,
                                            pooling="attention")).eval()
    _, w = model.encode(torch.randint(2, 20, (2, 6)), torch.tensor([6, 3]))
    assert w.shape == (2, 6)
    torch.testing.assert_close(w.sum(1), torch.ones(2))
    assert (w[1, 3:] == 0).all() and (w[1, :3] > 0).all()


def test_class_weights_weigh_the_loss():
    torch.manual_seed(0)
    base = ClassifierConfig(vocab_size=10, num_classes=2, hidden=3, embed=3, dropout=0.0,
                            embed_dropout=0.0, word_dropout=0.0)
    plain = TextClassifier(base)
    heavy = TextClassifier(ClassifierConfig(**{**base.to_dict(), "class_weights": [1.0, 3.0]}))
    heavy.load_state_dict(plain.state_dict())
    tokens, lengths, y = torch.randint(2, 10, (4, 5)), torch.tensor([5, 4, 3, 2]), \
        torch.tensor([0, 1, 1, 0])
    logits, loss = plain(tokens, lengths, y)
    _, weighted = heavy(tokens, lengths, y)
    per = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    w = torch.tensor([1.0, 3.0, 3.0, 1.0])
    torch.testing.assert_close(weighted, (per * w).sum() / w.sum())
    torch.testing.assert_close(loss, per.mean())


def test_config_rejects_bad_values():
    with pytest.raises(UserError, match="arch must be one of lstm, gru"):
        ClassifierConfig(vocab_size=5, num_classes=2, arch="transformer")
    with pytest.raises(UserError, match="pooling must be one of"):
        ClassifierConfig(vocab_size=5, num_classes=2, pooling="sum")
    with pytest.raises(UserError, match="at least two classes"):
        ClassifierConfig(vocab_size=5, num_classes=1)
    with pytest.raises(UserError, match="unknown classifier settings: colour"):
        ClassifierConfig.from_dict({"vocab_size": 5, "num_classes": 2, "colour": 1})


def test_ensemble_predicts_the_mean_of_its_members_probabilities():
    torch.manual_seed(0)
    cfg = ClassifierConfig(vocab_size=20, num_classes=3, hidden=4, embed=4, ensemble=3,
                           pooling="attention")
    model = build_classifier(cfg).eval()
    assert isinstance(model, EnsembleClassifier) and len(members(model)) == 3
    first = [m.embedding.weight for m in members(model)]
    assert not torch.equal(first[0], first[1])  # each member starts from its own weights
    tokens, lengths, y = torch.randint(2, 20, (4, 6)), torch.tensor([6, 5, 3, 1]), \
        torch.tensor([0, 2, 1, 2])
    log_probs, loss = model(tokens, lengths, y)
    outs = [m(tokens, lengths, y) for m in members(model)]
    mean = torch.stack([torch.softmax(logits, 1) for logits, _ in outs]).mean(0)
    torch.testing.assert_close(log_probs.exp(), mean)
    torch.testing.assert_close(loss, torch.stack([member_loss for _, member_loss in outs]).mean())
    _, weights = model.encode(tokens, lengths)
    mean_w = torch.stack([m.encode(tokens, lengths)[1] for m in members(model)]).mean(0)
    torch.testing.assert_close(weights, mean_w)
    single = build_classifier(ClassifierConfig(vocab_size=20, num_classes=3))
    assert isinstance(single, TextClassifier) and members(single) == [single]
    with pytest.raises(UserError, match="ensemble"):
        ClassifierConfig(vocab_size=20, num_classes=2, ensemble=0)
