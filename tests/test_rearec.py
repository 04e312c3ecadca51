"""SASRec and ReaRec (models/sasrec.py): K = 0 is plain SASRec, reasoning through the kept
keys and values equals re-running the whole sequence, causality, padding; the config's
refusals; ERL and PRL losses (objectives/rearec.py) against hand references."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from seqweave.config import ExperimentConfig, ModelConfig, ObjectivesConfig, ReaRecConfig
from seqweave.errors import ConfigError
from seqweave.models import build_model
from seqweave.objectives.rearec import (
    consecutive_kl,
    info_nce,
    next_item_loss,
    prl_temperatures,
    step_logits,
)

VOCAB = 30


def sasrec_config(**overrides) -> ModelConfig:
    values = dict(
        architecture="sasrec",
        position="learned",
        vocab_size=VOCAB,
        d_model=16,
        num_heads=2,
        decoder_layers=2,
        ffn_dim=32,
        dropout=0.0,
        max_positions=12,
    )
    return ModelConfig(**{**values, **overrides})


def sasrec(seed: int = 0, **overrides):
    torch.manual_seed(seed)
    return build_model(sasrec_config(**overrides)).eval()


def histories(lengths=(5, 2, 8), seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded framed histories: items 4.. then </s> (2), padded with 0."""
    generator = torch.Generator().manual_seed(seed)
    S = max(lengths) + 1
    src = torch.zeros(len(lengths), S, dtype=torch.long)
    for row, n in enumerate(lengths):
        src[row, :n] = torch.randint(4, VOCAB, (n,), generator=generator)
        src[row, n] = 2
    return src, torch.tensor(lengths) + 1


def reference_steps(model, src, src_lengths) -> torch.Tensor:
    """Written from the paper, with no kept keys and values: per step, the whole
    [items ; reasoning inputs so far] sequence through every layer again, each row's
    reasoning inputs right after its own last item."""
    B = src.shape[0]
    out = []
    for row in range(B):
        n = int(src_lengths[row]) - 1
        items = src[row : row + 1, :n]
        x = model.embed.forward(items, torch.arange(n)[None])
        inputs = [x]
        states = None
        for k in range(model.config.reasoning_steps + 1):
            h = torch.cat(inputs, dim=1)
            T = h.shape[1]
            mask = torch.ones(T, T, dtype=torch.bool).tril()[None, None]
            for layer in model.layers:
                h = layer.forward(h, mask, None)
            h = model.norm(h)
            states = h if states is None else torch.cat([states, h[:, -1:]], dim=1)
            if k < model.config.reasoning_steps:
                inputs.append((h[:, -1] + model.reasoning[k])[:, None])
        out.append(states[0, n - 1 :])
    return torch.stack(out)


def test_k0_is_sasrec_and_step0_of_a_reasoning_model_is_too():
    plain = sasrec()
    src, lengths = histories()
    with torch.no_grad():
        scores = plain.scores(src, lengths)
        expected = plain.logits(reference_steps(plain, src, lengths)[:, 0])
        torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-5)
        assert plain.reasoning is None  # no parameter beyond SASRec's
        reasoning = sasrec(seed=5, reasoning_steps=3)
        missing = reasoning.load_state_dict(plain.state_dict(), strict=False)
        assert missing.missing_keys == ["reasoning"] and not missing.unexpected_keys
        steps = reasoning.step_states(src, lengths)
        assert steps.shape == (3, 4, 16)
        torch.testing.assert_close(reasoning.logits(steps[:, 0]), scores, rtol=0, atol=0)


@pytest.mark.parametrize("readout", ["last", "mean"])
def test_reasoning_with_kept_keys_equals_rerunning_the_sequence(readout):
    model = sasrec(reasoning_steps=3, reasoning_readout=readout)
    src, lengths = histories()
    with torch.no_grad():
        steps = model.step_states(src, lengths)
        expected = reference_steps(model, src, lengths)
        torch.testing.assert_close(steps, expected, rtol=1e-5, atol=1e-5)
        user = expected.mean(1) if readout == "mean" else expected[:, -1]
        torch.testing.assert_close(
            model.scores(src, lengths), model.logits(user), rtol=1e-5, atol=1e-5
        )
        assert not torch.allclose(steps[:, 0], steps[:, -1])  # the steps do something


def test_causal_a_state_never_depends_on_later_items():
    model = sasrec(reasoning_steps=2)
    src, lengths = histories((8, 8, 8))
    changed = src.clone()
    changed[:, 5] = (changed[:, 5] - 4 + 1) % (VOCAB - 4) + 4  # another item at position 5
    with torch.no_grad():
        before, _ = model.item_states(src, lengths)
        after, _ = model.item_states(changed, lengths)
    torch.testing.assert_close(before[:, :5], after[:, :5], rtol=0, atol=0)
    assert not torch.allclose(before[:, 5:8], after[:, 5:8])


def test_padding_and_batching_change_nothing():
    model = sasrec(reasoning_steps=2)
    src, lengths = histories((5, 2, 8))
    noisy = src.clone()
    noisy[0, 6:] = 7  # garbage past row 0's end token
    noisy[1, 3:] = 9
    with torch.no_grad():
        batched = model.step_states(src, lengths)
        garbage = model.step_states(noisy, lengths)
        alone = torch.cat(
            [
                model.step_states(src[i : i + 1, : int(lengths[i])], lengths[i : i + 1])
                for i in range(3)
            ]
        )
    torch.testing.assert_close(garbage, batched, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(alone, batched, rtol=1e-5, atol=1e-5)


def test_noise_views_leave_step0_alone_and_training_runs_backward():
    model = sasrec(reasoning_steps=2).train()
    src, lengths = histories()
    clean, views = model(src, lengths, views=2, noise_std=0.5)
    assert len(views) == 2
    torch.testing.assert_close(views[0][:, 0], clean[:, 0])
    assert not torch.allclose(views[0][:, 1:], views[1][:, 1:])
    settings = ReaRecConfig(mode="prl", temperature_decay=2.0, contrastive_weight=0.1)
    loss = next_item_loss(model.output_tokens.weight, clean, views, src[:, 0], settings)
    loss.backward()
    assert model.reasoning.grad is not None and model.reasoning.grad.abs().sum() > 0


# -- config ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model, objectives, fragment",
    [
        (dict(position="sinusoidal"), {}, "position='learned'"),
        (dict(tie_output=False), {}, "tie_output"),
        (dict(reasoning_steps=-1), {}, "reasoning_steps must be >= 0"),
        (dict(reasoning_steps=2, reasoning_readout="last"), dict(mode="erl"), "'mean'"),
        (dict(reasoning_steps=0), dict(mode="prl"), "reasoning_steps >= 1"),
    ],
)
def test_config_refuses(model, objectives, fragment):
    with pytest.raises(ConfigError, match=fragment):
        ExperimentConfig(
            model=sasrec_config(**model),
            objectives=ObjectivesConfig(rearec=ReaRecConfig(**objectives)),
        )


def test_config_refuses_reasoning_elsewhere():
    with pytest.raises(ConfigError, match=r"needs model\.architecture=.sasrec."):
        ModelConfig(reasoning_steps=2)
    with pytest.raises(ConfigError, match=r"needs model\.architecture=.sasrec."):
        ExperimentConfig(objectives=ObjectivesConfig(rearec=ReaRecConfig(mode="prl")))
    with pytest.raises(ConfigError, match="kl_weight is ERL's"):
        ReaRecConfig(mode="prl", kl_weight=0.1)


# -- losses against hand references -----------------------------------------------------------


def hand_cross_entropy(logits: list[float], target: int, temperature: float = 1.0) -> float:
    scaled = [z / temperature for z in logits]
    return -scaled[target] + math.log(sum(math.exp(z) for z in scaled))


def hand_kl(p_logits: list[float], q_logits: list[float]) -> float:
    zp = sum(math.exp(z) for z in p_logits)
    zq = sum(math.exp(z) for z in q_logits)
    return sum(
        math.exp(a) / zp * (math.log(math.exp(a) / zp) - math.log(math.exp(b) / zq))
        for a, b in zip(p_logits, q_logits, strict=True)
    )


def tiny_example():
    """Two users, K = 2 (three steps), D = 2, three items (identity-like embedding)."""
    weight = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    steps = torch.tensor(
        [
            [[1.0, 0.0], [0.5, 0.5], [0.0, 2.0]],
            [[0.0, 1.0], [2.0, 0.0], [1.0, -1.0]],
        ]
    )
    targets = torch.tensor([1, 0])
    # logits = steps @ weight.T, by hand: item scores (x, y, x + y)
    logits = [
        [[1.0, 0.0, 1.0], [0.5, 0.5, 1.0], [0.0, 2.0, 2.0]],
        [[0.0, 1.0, 1.0], [2.0, 0.0, 2.0], [1.0, -1.0, 0.0]],
    ]
    return weight, steps, targets, logits


def test_erl_loss_by_hand():
    weight, steps, targets, logits = tiny_example()
    settings = ReaRecConfig(mode="erl", kl_weight=0.3)
    loss = next_item_loss(weight, steps, [], targets, settings)
    ce = (
        sum(hand_cross_entropy(logits[b][k], int(targets[b])) for b in range(2) for k in range(3))
        / 6
    )
    kl = sum(hand_kl(logits[b][k], logits[b][k + 1]) for b in range(2) for k in range(2)) / 4
    assert float(loss) == pytest.approx(ce - 0.3 * kl, rel=1e-6)
    assert float(consecutive_kl(torch.tensor(logits))) == pytest.approx(kl, rel=1e-6)


def test_prl_loss_by_hand():
    weight, steps, targets, logits = tiny_example()
    settings = ReaRecConfig(
        mode="prl",
        temperature=0.5,
        temperature_decay=2.0,
        contrastive_weight=0.4,
        contrastive_temperature=0.5,
    )
    temperatures = [2.0, 1.0, 0.5]  # 0.5 * 2 ** (K - k)
    assert prl_temperatures(3, 0.5, 2.0).tolist() == temperatures
    first = steps + 0.1
    second = steps.flip(0)  # the other user's states: a hard view to match
    loss = next_item_loss(weight, steps, [first, second], targets, settings)
    ce = (
        sum(
            hand_cross_entropy(logits[b][k], int(targets[b]), temperatures[k])
            for b in range(2)
            for k in range(3)
        )
        / 6
    )

    def cosine(u, v):
        return float(F.cosine_similarity(u, v, dim=0))

    contrast = 0.0
    for k in (1, 2):  # the reasoning steps only
        for b in range(2):
            sims = [cosine(first[b, k], second[c, k]) / 0.5 for c in range(2)]
            contrast += hand_cross_entropy(sims, b)
    contrast /= 4
    assert float(loss) == pytest.approx(ce + 0.4 * contrast, rel=1e-6)
    assert float(info_nce(first[:, 1], second[:, 1], 0.5)) > 0


def test_off_mode_and_k0_are_plain_cross_entropy():
    weight, steps, targets, logits = tiny_example()
    last = steps[:, -1:]
    loss = next_item_loss(weight, last, [], targets, ReaRecConfig())
    expected = sum(hand_cross_entropy(logits[b][2], int(targets[b])) for b in range(2)) / 2
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    # ERL and PRL with one step are the same plain cross-entropy
    for mode in ("erl", "prl"):
        settings = ReaRecConfig(mode=mode)
        assert float(next_item_loss(weight, last, [], targets, settings)) == pytest.approx(expected)


def test_sampled_softmax_scores_target_first_and_masks_collisions():
    weight, steps, targets, _ = tiny_example()
    torch.manual_seed(0)
    logits, index = step_logits(weight, steps, targets, negatives=50)
    assert logits.shape == (2, 3, 51) and index.tolist() == [0, 0]
    full = steps @ weight.T
    torch.testing.assert_close(logits[:, :, 0], full[torch.arange(2), :, targets])
    torch.manual_seed(0)
    drawn = torch.randint(0, 3, (50,))
    for b in range(2):
        hits = drawn == targets[b]
        assert torch.isinf(logits[b, :, 1:][:, hits]).all()
        assert torch.isfinite(logits[b, :, 1:][:, ~hits]).all()
