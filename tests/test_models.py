"""The decoder-state API against its uncached reference, for every architecture and option."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqweave.decoding.common import pad_batch
from seqweave.errors import ConfigError
from tests.conftest import MODEL_KINDS, VOCAB, random_sources, tiny_config, tiny_model

VARIANTS = [
    dict(**MODEL_KINDS[k], position=p, norm=n)
    for k, p, n in itertools.product(
        MODEL_KINDS, ["sinusoidal", "learned", "rope", "seqpe"], ["pre", "post"]
    )
]
EXTRA_VARIANTS = [
    dict(
        architecture="transformer",
        scale_embedding=True,
        embedding_layer_norm=True,
        position="learned",
        position_offset=2,
        final_logits_bias=True,
        activation="relu",
    ),
    dict(architecture="transformer", share_embeddings=False, tie_output=False, activation="silu"),
    dict(architecture="prefix_lm", prefix_attention="causal"),
]
ATOL = 1e-5


def ragged_batch(seed: int = 0, rows: int = 3):
    generator = torch.Generator().manual_seed(seed)
    sources = random_sources(generator, rows)
    src, lengths = pad_batch(sources, pad_id=0)
    tgt = torch.randint(4, VOCAB, (rows, 7), generator=generator)
    return src, lengths, tgt


@pytest.mark.parametrize("variant", VARIANTS + EXTRA_VARIANTS, ids=str)
def test_cached_steps_equal_uncached_forward(variant):
    model = tiny_model(**variant)
    src, lengths, tgt = ragged_batch()
    with torch.no_grad():
        reference = model(src, lengths, tgt)  # (B, T, V)
        state = model.start(model.encode(src, lengths), capacity=2)  # forces cache growth
        stepped = torch.cat([model.step(state, tgt[:, i : i + 1]) for i in range(7)], dim=1)
    torch.testing.assert_close(stepped, reference, atol=ATOL, rtol=0)
    assert state.lengths.tolist() == [7, 7, 7]


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_k_token_step_equals_k_single_steps(variant):
    model = tiny_model(**variant)
    src, lengths, tgt = ragged_batch(1)
    with torch.no_grad():
        memory = model.encode(src, lengths)
        one = model.start(memory)
        singles = torch.cat([model.step(one, tgt[:, i : i + 1]) for i in range(7)], dim=1)
        block = model.start(memory)
        blocks = torch.cat([model.step(block, tgt[:, :3]), model.step(block, tgt[:, 3:])], dim=1)
    torch.testing.assert_close(blocks, singles, atol=ATOL, rtol=0)


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_ragged_rollback_then_restep_equals_never_stepping(kind):
    model = tiny_model(**MODEL_KINDS[kind])
    src, lengths, tgt = ragged_batch(2)
    noise = torch.randint(4, VOCAB, (3, 5))
    with torch.no_grad():
        memory = model.encode(src, lengths)
        clean = model.start(memory)
        model.step(clean, tgt[:, :2])
        expected = model.step(clean, tgt[:, 2:6])
        dirty = model.start(memory)
        model.step(dirty, tgt[:, :2])
        # each row takes a different number of junk tokens, then forgets them
        model.step(dirty, noise, n_new=torch.tensor([5, 1, 3]))
        assert dirty.lengths.tolist() == [7, 3, 5]
        model.rollback(dirty, torch.tensor([2, 2, 2]))
        got = model.step(dirty, tgt[:, 2:6])
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_ragged_step_rows_match_rows_decoded_alone(kind):
    """Rows at different lengths in one step see only their own cache."""
    model = tiny_model(**MODEL_KINDS[kind])
    src, lengths, tgt = ragged_batch(3)
    with torch.no_grad():
        state = model.start(model.encode(src, lengths))
        model.step(state, tgt[:, :4], n_new=torch.tensor([4, 1, 2]))
        got = model.step(state, tgt[:, 4:6])  # rows now at lengths 4, 1, 2
        for row, used in enumerate([4, 1, 2]):
            alone = model.start(
                model.encode(src[row : row + 1, : lengths[row]], lengths[row : row + 1])
            )
            prefix = tgt[row : row + 1, :used]
            model.step(alone, prefix)
            expected = model.step(alone, tgt[row : row + 1, 4:6])
            torch.testing.assert_close(got[row : row + 1], expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_reorder_gathers_rows(kind):
    model = tiny_model(**MODEL_KINDS[kind])
    src, lengths, tgt = ragged_batch(4)
    with torch.no_grad():
        state = model.start(model.encode(src, lengths))
        model.step(state, tgt[:, :3])
        full = model.step(state, tgt[:, 3:4])
        state = model.start(model.encode(src, lengths))
        model.step(state, tgt[:, :3])
        index = torch.tensor([2, 0, 0])
        model.reorder(state, index)
        gathered = model.step(state, tgt[index, 3:4])
    torch.testing.assert_close(gathered, full[index], atol=ATOL, rtol=0)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    pad=st.integers(1, 6),
    kind=st.sampled_from(sorted(MODEL_KINDS)),
)
def test_padding_never_changes_outputs(seed, pad, kind):
    model = tiny_model(seed=seed % 3, **MODEL_KINDS[kind])
    generator = torch.Generator().manual_seed(seed)
    (source,) = random_sources(generator, 1)
    tgt = torch.randint(4, VOCAB, (1, 5), generator=generator)
    src = torch.tensor([source])
    padded = torch.tensor([source + [0] * pad])
    length = torch.tensor([len(source)])
    with torch.no_grad():
        torch.testing.assert_close(
            model(padded, length, tgt), model(src, length, tgt), atol=ATOL, rtol=0
        )


def test_rollback_past_length_is_an_error():
    model = tiny_model()
    src, lengths, tgt = ragged_batch()
    state = model.start(model.encode(src, lengths))
    with torch.no_grad():
        model.step(state, tgt[:, :2])
    with pytest.raises(ValueError, match="rollback"):
        model.rollback(state, torch.tensor([3, 0, 0]))


def test_position_past_max_positions_is_an_error():
    model = tiny_model(max_positions=4, position="learned")
    src, _, tgt = ragged_batch()
    state = model.start(model.encode(src[:, :3], torch.tensor([3, 3, 3])))
    with torch.no_grad(), pytest.raises(ValueError, match="max_positions"):
        model.step(state, tgt[:, :5])


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(d_model=10, num_heads=3), "divisible"),
        (dict(position="alibi"), "model.position"),
        (dict(architecture="rnn"), "model.architecture"),
        (dict(norm="middle"), "model.norm"),
    ],
)
def test_invalid_model_config_is_rejected(overrides, message):
    with pytest.raises(ConfigError, match=message):
        tiny_config(**overrides)


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_packed_step_matches_dense_step_at_real_positions(kind):
    """A step whose rows bring few real tokens runs packed; its logits at real positions
    and its cache must match a step where every position is real."""
    from seqweave.models.state import plan_step

    model = tiny_model(**MODEL_KINDS[kind])
    src, lengths, tgt = ragged_batch(5)
    n_new = torch.tensor([6, 1, 2])
    with torch.no_grad():
        memory = model.encode(src, lengths)
        packed_state, dense_state = model.start(memory), model.start(memory)
        assert plan_step(model.start(memory), 6, n_new).packed is not None
        packed = model.step(packed_state, tgt[:, :6], n_new)
        dense = model.step(dense_state, tgt[:, :6])
        model.rollback(dense_state, n_new)
        for row, real in enumerate(n_new.tolist()):
            torch.testing.assert_close(packed[row, :real], dense[row, :real], atol=ATOL, rtol=0)
        after_packed = model.step(packed_state, tgt[:, 6:7])
        after_dense = model.step(dense_state, tgt[:, 6:7])
    torch.testing.assert_close(after_packed, after_dense, atol=ATOL, rtol=0)


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_extend_joins_rows_as_if_decoded_together(kind):
    """Continuous batching: a row that joins a running batch mid-way decodes exactly as
    it would alone, and the running rows are not disturbed."""
    model = tiny_model(**MODEL_KINDS[kind])
    src, lengths, tgt = ragged_batch(6)
    with torch.no_grad():
        running = model.start(model.encode(src[:2], lengths[:2]), capacity=4)
        model.step(running, tgt[:2, :5])  # two rows five tokens in; cache grows to 8
        newcomer = model.start(model.encode(src[2:, : lengths[2]], lengths[2:]), capacity=2)
        running.extend(newcomer)  # different capacity and memory length
        got = model.step(running, torch.cat([tgt[:2, 5:6], tgt[2:, :1]]))
        expected_old = model.step(_alone(model, src[:2], lengths[:2], tgt[:2, :5]), tgt[:2, 5:6])
        alone = model.start(model.encode(src[2:, : lengths[2]], lengths[2:]))
        expected_new = model.step(alone, tgt[2:, :1])
    torch.testing.assert_close(got[:2], expected_old, atol=ATOL, rtol=0)
    torch.testing.assert_close(got[2:], expected_new, atol=ATOL, rtol=0)
    assert running.lengths.tolist() == [6, 6, 1]


def _alone(model, src, lengths, prefix):
    state = model.start(model.encode(src, lengths))
    model.step(state, prefix)
    return state


def test_hidden_states_project_to_forward_logits():
    """The representation seam (encoder memory + final decoder states) is exactly what
    ``forward`` projects, so objectives on hidden states train the model that decodes."""
    model = tiny_model(architecture="transformer")
    src, lengths, tgt = ragged_batch()
    with torch.no_grad():
        memory, hidden = model.hidden_states(src, lengths, tgt)
        reference = model(src, lengths, tgt)
    assert hidden.shape == (3, 7, 16)
    torch.testing.assert_close(memory.states, model.encode(src, lengths).states)
    torch.testing.assert_close(model.logits(hidden), reference, atol=0, rtol=0)
