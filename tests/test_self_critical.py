"""Self-critical training (objectives/self_critical.py): the ROUGE-L reward and the sign of
its gradient, on the hierarchical NSE and the Transformer."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqweave.config import ExperimentConfig, ModelConfig
from seqweave.data.tokenized import Batch
from seqweave.errors import ConfigError
from seqweave.objectives.registry import build_training_loss
from seqweave.objectives.self_critical import (
    SelfCritical,
    rollout,
    rouge_l,
    sequence_log_prob,
)
from seqweave.objectives.settings import ObjectivesConfig, SelfCriticalConfig
from tests.conftest import VOCAB, random_sources, tiny_config
from tests.test_hier_nse import marked_sources, nse_model

WORDS = ["w", "x", "y", "z", "v"]


@settings(max_examples=40, deadline=None)
@given(
    output=st.lists(st.integers(0, 4), min_size=1, max_size=12),
    reference=st.lists(st.integers(0, 4), min_size=1, max_size=12),
)
def test_rouge_l_on_ids_equals_rouge_score_on_the_words(output, reference):
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    words = [" ".join(WORDS[i] for i in ids) for ids in (reference, output)]
    expected = scorer.score(*words)["rougeL"].fmeasure
    assert rouge_l(output, reference) == pytest.approx(expected, abs=1e-12)


def test_rouge_l_known_values():
    assert rouge_l([1, 2, 3], [1, 2, 3]) == 1.0
    assert rouge_l([1, 2], [3, 4]) == 0.0
    assert rouge_l([1, 9, 2], [1, 2, 7, 8]) == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))


def models():
    yield "hier_nse", nse_model(7)
    torch.manual_seed(7)
    from seqweave.models import build_model

    yield "transformer", build_model(tiny_config()).eval()


@pytest.mark.parametrize("advantage", [1.0, -1.0])
@pytest.mark.parametrize("kind", ["hier_nse", "transformer"])
def test_a_better_sample_becomes_more_likely_and_a_worse_one_less(kind, advantage):
    """One small gradient step on the loss with the sampled reward above greedy's
    (advantage > 0) raises the sampled output's log-likelihood; below greedy's lowers it.
    One source at a time, so the claim is the first-order one, for every source."""
    for seed, source in enumerate(marked_sources(torch.Generator().manual_seed(8), 3)):
        model = dict(models())[kind]
        cfg = model.config
        src, lengths = torch.tensor([source]), torch.tensor([len(source)])
        ids = (cfg.decoder_start_id, cfg.eos_id, cfg.pad_id)
        torch.manual_seed(seed)
        sampled = rollout(model, src, lengths, ids, max_len=6, greedy=False)
        objective = SelfCritical(SelfCriticalConfig(weight=1.0), *ids)
        scored = (model, src, lengths, sampled, *ids[::2])  # start and pad ids
        before = sequence_log_prob(*scored).detach()
        objective.loss(model, src, lengths, sampled, torch.tensor([advantage])).backward()
        with torch.no_grad():
            for parameter in model.parameters():
                if parameter.grad is not None:
                    parameter -= 1e-3 * parameter.grad
            after = sequence_log_prob(*scored)
        assert float((after - before) * advantage) > 0, (before, after)


def test_sampled_equal_to_greedy_has_no_gradient():
    """r(sampled) == r(greedy): the advantage is 0 and so is the loss's gradient."""
    model = nse_model(9)
    sources = random_sources(torch.Generator().manual_seed(9), 2)
    src = torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s in sources], batch_first=True)
    lengths = torch.tensor([len(s) for s in sources])
    ids = (1, 2, 0)
    greedy = rollout(model, src, lengths, ids, max_len=5, greedy=True)
    objective = SelfCritical(SelfCriticalConfig(weight=1.0), *ids)
    advantage = objective.rewards(greedy, greedy) - objective.rewards(greedy, greedy)
    objective.loss(model, src, lengths, greedy, advantage).backward()
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())


def test_the_training_loss_adds_the_self_critical_term():
    model = nse_model(10).train()
    cfg = ExperimentConfig(
        model=model.config,
        objectives=ObjectivesConfig(self_critical=SelfCriticalConfig(weight=1.0, max_len=4)),
    )
    loss_fn = build_training_loss(cfg)
    assert type(loss_fn.additive[0]) is SelfCritical
    sources = marked_sources(torch.Generator().manual_seed(10), 2)
    src = torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s in sources], batch_first=True)
    tgt_out = torch.tensor([[9, 10, 2], [11, 2, 0]])
    tgt_in = torch.tensor([[1, 9, 10], [1, 11, 2]])
    micro = Batch(src, torch.tensor([len(s) for s in sources]), tgt_in, tgt_out, 5)
    loss = loss_fn(model, model, micro)
    loss.backward()
    assert torch.isfinite(loss)
    assert (
        ExperimentConfig(model=ModelConfig(vocab_size=VOCAB)).objectives.self_critical.weight == 0
    )


def test_models_that_do_not_decode_refuse_self_critical():
    on = ObjectivesConfig(self_critical=SelfCriticalConfig(weight=1.0))
    with pytest.raises(ConfigError, match="token by token"):
        ExperimentConfig(model=ModelConfig(architecture="nar_editor"), objectives=on)
