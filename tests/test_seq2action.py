"""Sequence-to-action (Li et al. 2022): alignment, the fused distribution, the pointer in the
decoder state, lossless decoding on it, and training."""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqweave.config import ActionsConfig, DecodeConfig, ModelConfig, TrainConfig
from seqweave.data.actions import (
    COPY,
    GEN,
    SKIP,
    SKIP_TOKEN,
    Action,
    action_tokens,
    actions_of_tokens,
    align,
    replay,
    skip_target,
    strip_skips,
)
from seqweave.decoding import decode_batch
from seqweave.decoding.common import pad_batch
from seqweave.errors import ConfigError
from seqweave.models import build_model
from seqweave.objectives.actions import action_guided_loss
from tests.conftest import VOCAB, random_sources, tiny_config, tiny_model
from tests.lossless import assert_lossless

SKIP_ID = 3  # the tiny world's <unk>: random_sources never emit it, like a real <skip>
ATOL = 1e-5


def action_model(seed: int = 0, copy_bias: float = 0.0):
    """A random tiny action model; ``copy_bias`` makes it prefer COPY, like a trained one."""
    model = tiny_model(seed=seed, action_head=True, skip_id=SKIP_ID)
    with torch.no_grad():
        model.action_head.out.bias[COPY] += copy_bias
    return model


def lcs(a: list[int], b: list[int]) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = (
                table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
            )
    return table[-1][-1]


edits = st.lists(
    st.tuples(
        st.sampled_from(["delete", "insert", "replace"]), st.integers(0, 30), st.integers(4, 9)
    ),
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(source=st.lists(st.integers(4, 9), max_size=20), changes=edits)
def test_alignment_replays_to_the_target_and_is_shortest(source, changes):
    target = list(source)
    for kind, where, token in changes:
        at = where % (len(target) + 1)
        if kind == "insert":
            target.insert(at, token)
        elif target and at < len(target):
            if kind == "delete":
                del target[at]
            else:
                target[at] = token
    actions = align(source, target)
    assert replay(source, actions) == target
    tokens = action_tokens(source, actions, SKIP_ID)
    assert strip_skips(tokens, SKIP_ID) == target
    assert actions_of_tokens(source, tokens, SKIP_ID) == actions  # the model's pointer rule
    edits_made = sum(a.kind != COPY for a in actions)
    assert edits_made == len(source) + len(target) - 2 * lcs(source, target)
    assert sum(a.kind != GEN for a in actions) == len(source)  # every source token consumed


def test_identical_pair_is_all_copy_and_a_substitution_skips_then_generates():
    assert align([5, 6, 7, 2], [5, 6, 7, 2]) == [Action(COPY)] * 4
    assert align([5, 6, 7], [5, 8, 7]) == [Action(COPY), Action(SKIP), Action(GEN, 8), Action(COPY)]
    assert skip_target([5, 6, 7, 2], [5, 7], eos_id=2, skip_id=SKIP_ID) == [5, SKIP_ID, 7]
    assert skip_target([5, 6, 2], [5, 6], eos_id=2, skip_id=SKIP_ID) == [5, 6]


def test_bad_action_scripts_and_unframed_sources_are_errors():
    with pytest.raises(ValueError, match="step 1: COPY with the pointer past the source's end"):
        replay([5], [Action(COPY), Action(COPY)])
    with pytest.raises(ValueError, match=r"step 0: GEN\(5\) is the token under the pointer"):
        replay([5], [Action(GEN, 5)])
    with pytest.raises(ValueError, match="must end with the end token 2"):
        skip_target([5, 6], [5], eos_id=2, skip_id=SKIP_ID)


def test_fused_distribution_is_the_mixture_and_sums_to_one():
    model = action_model()
    head = model.action_head
    generator = torch.Generator().manual_seed(0)
    B, T, S, D = 3, 5, 4, 16
    hidden = torch.randn(B, T, D, generator=generator)
    vocab_logits = torch.randn(B, T, VOCAB, generator=generator)
    source = torch.randint(4, VOCAB, (B, S), generator=generator)
    states = torch.randn(B, S, D, generator=generator)
    lengths = torch.tensor([4, 2, 3])
    pointers = torch.tensor([[0, 1, 2, 3, 4], [0, 1, 2, 2, 2], [0, 0, 1, 3, 3]])
    with torch.no_grad():
        out = head.fuse(hidden, vocab_logits, pointers, source, states, lengths)
    probs, actions = out.log_probs.exp(), out.action_log_probs.exp()
    torch.testing.assert_close(probs.sum(-1), torch.ones(B, T), atol=ATOL, rtol=0)
    for b in range(B):
        for t in range(T):
            expected = actions[b, t, GEN] * vocab_logits[b, t].softmax(-1)
            if pointers[b, t] < lengths[b]:
                expected[source[b, pointers[b, t]]] += actions[b, t, COPY]
                expected[SKIP_ID] += actions[b, t, SKIP]
                assert int(out.under[b, t]) == int(source[b, pointers[b, t]])
            else:  # past the source's end only GEN is possible
                assert float(actions[b, t, GEN]) == 1.0 and int(out.under[b, t]) == -1
            torch.testing.assert_close(probs[b, t], expected, atol=ATOL, rtol=0)


def teacher_batch(seed: int = 0):
    """Sources and decoder inputs that copy, skip and generate, so the pointers move."""
    generator = torch.Generator().manual_seed(seed)
    sources = random_sources(generator, 3, low=5)
    rows = []
    for source in sources:
        tokens = []
        for token in source[:-1]:
            roll = float(torch.rand((), generator=generator))
            tokens += [token] if roll < 0.6 else [SKIP_ID] if roll < 0.8 else [7, token]
        rows.append([1, *tokens][:9])
    width = max(len(r) for r in rows)
    tgt = torch.tensor([r + [4] * (width - len(r)) for r in rows])
    src, lengths = pad_batch(sources, 0)
    return sources, src, lengths, tgt


def pointers_by_rule(source: list[int], fed: list[int]) -> list[int]:
    """The pointer after each fed token (the start token first), by actions_of_tokens."""
    out = [0]
    for n in range(1, len(fed)):
        actions = actions_of_tokens(source, fed[1 : n + 1], SKIP_ID)
        out.append(sum(a.kind != GEN for a in actions))
    return out


def test_cached_steps_and_blocks_equal_uncached_forward_and_the_pointer_rule():
    model = action_model()
    sources, src, lengths, tgt = teacher_batch()
    T = tgt.shape[1]
    with torch.no_grad():
        reference = model(src, lengths, tgt)
        single = model.start(model.encode(src, lengths), capacity=2)  # forces cache growth
        stepped = torch.cat([model.step(single, tgt[:, i : i + 1]) for i in range(T)], dim=1)
        block = model.start(model.encode(src, lengths))
        blocks = torch.cat([model.step(block, tgt[:, :3]), model.step(block, tgt[:, 3:])], dim=1)
    torch.testing.assert_close(stepped, reference, atol=ATOL, rtol=0)
    torch.testing.assert_close(blocks, reference, atol=ATOL, rtol=0)
    for b, source in enumerate(sources):
        expected = pointers_by_rule(source, tgt[b].tolist())
        assert single.slot_values["pointer"][b, :T].tolist() == expected
    assert (single.slot_values["pointer"][:, :T] < torch.arange(T)).any()  # a GEN stayed put


def test_ragged_rollback_and_reorder_keep_the_pointer_right():
    model = action_model()
    _, src, lengths, tgt = teacher_batch(1)
    junk = torch.full((3, 5), SKIP_ID)  # skips move the pointer: rollback must undo that
    with torch.no_grad():
        memory = model.encode(src, lengths)
        clean = model.start(memory)
        model.step(clean, tgt[:, :3])
        expected = model.step(clean, tgt[:, 3:7])
        dirty = model.start(memory)
        model.step(dirty, tgt[:, :3])
        model.step(dirty, junk, n_new=torch.tensor([5, 1, 3]))
        model.rollback(dirty, torch.tensor([3, 3, 3]))
        got = model.step(dirty, tgt[:, 3:7])
        torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)

        gathered = model.start(memory)
        model.step(gathered, tgt[:, :3])
        index = torch.tensor([2, 0, 0])
        model.reorder(gathered, index)
        torch.testing.assert_close(
            model.step(gathered, tgt[index, 3:7]), expected[index], atol=ATOL, rtol=0
        )


def test_extend_joins_an_action_row_as_if_decoded_alone():
    model = action_model()
    _, src, lengths, tgt = teacher_batch(2)
    with torch.no_grad():
        running = model.start(model.encode(src[:2], lengths[:2]), capacity=4)
        model.step(running, tgt[:2, :5])
        newcomer = model.start(model.encode(src[2:, : lengths[2]], lengths[2:]), capacity=2)
        running.extend(newcomer)
        got = model.step(running, torch.cat([tgt[:2, 5:7], tgt[2:, :2]]))
        alone = model.start(model.encode(src[2:, : lengths[2]], lengths[2:]))
        expected_new = model.step(alone, tgt[2:, :2])
        together = model.start(model.encode(src[:2], lengths[:2]))
        model.step(together, tgt[:2, :5])
        expected_old = model.step(together, tgt[:2, 5:7])
    torch.testing.assert_close(got[2:], expected_new, atol=ATOL, rtol=0)
    torch.testing.assert_close(got[:2], expected_old, atol=ATOL, rtol=0)


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 10_000), batch=st.integers(1, 6), draft_len=st.integers(1, 12))
def test_every_decoder_gives_greedy_tokens_on_action_models(
    seed, batch, draft_len, one_torch_thread
):
    """Greedy batched == one by one == IAD == speculative (a random action drafter) ==
    beam of width one, on a random action model that prefers COPY like a trained one."""
    model = action_model(seed % 3, copy_bias=4.0)
    sources = random_sources(torch.Generator().manual_seed(seed), batch, high=14)
    greedy = [o.tokens for o in decode_batch(model, sources, DecodeConfig(max_new_tokens=20))]
    one_by_one = [
        decode_batch(model, [s], DecodeConfig(max_new_tokens=20))[0].tokens for s in sources
    ]
    iad_cfg = DecodeConfig(decoder="iad", max_new_tokens=20, draft_len=draft_len)
    iad = decode_batch(model, sources, iad_cfg)
    spec_cfg = DecodeConfig(decoder="spec", max_new_tokens=20, draft_k=3)
    spec = decode_batch(model, sources, spec_cfg, draft_model=action_model(seed % 3 + 1))
    beam = decode_batch(
        model, sources, DecodeConfig(decoder="beam", beam_size=1, max_new_tokens=20)
    )
    for others in (one_by_one, *([o.tokens for o in d] for d in (iad, spec, beam))):
        for source, ref, got in zip(sources, greedy, others, strict=True):
            assert_lossless(model, source, ref, got)
    assert sum(o.stats.passes for o in iad) < sum(len(t) + 1 for t in greedy)


def test_action_loss_counts_the_gold_actions_of_the_pointer_rule():
    model = action_model()
    model.train()
    _, src, lengths, tgt_in = teacher_batch(3)
    tgt_out = torch.cat([tgt_in[:, 1:], torch.full((3, 1), 2)], dim=1)
    tgt_out[0, -2:] = 0  # padding is not counted
    outputs = model(src, lengths, tgt_in, actions=True)
    token_loss, nll = action_guided_loss(outputs, tgt_out, 0, SKIP_ID, action_weight=0.0)
    loss, _ = action_guided_loss(outputs, tgt_out, 0, SKIP_ID, action_weight=2.0)
    gold = []
    for b in range(3):
        for t in range(tgt_out.shape[1]):
            token, under = int(tgt_out[b, t]), int(outputs.under[b, t])
            if token == 0:
                continue
            kind = SKIP if token == SKIP_ID and under >= 0 else COPY if token == under else GEN
            gold.append(-outputs.action_log_probs[b, t, kind])
    torch.testing.assert_close(loss, token_loss + 2.0 * torch.stack(gold).sum())
    assert torch.isfinite(loss) and float(token_loss.detach()) == float(nll)
    loss.backward()
    assert model.action_head.out.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: tiny_config(action_head=True, architecture="prefix_lm"), "model.action_head"),
        (lambda: tiny_config(action_head=True, skip_id=VOCAB), "model.skip_id=50"),
        (lambda: build_model(tiny_config(action_head=True)), "model.skip_id"),
        (lambda: ActionsConfig(weight=-1.0), "objectives.actions.weight"),
        (lambda: ModelConfig(architecture="nar_drafter", action_head=True), "model.action_head"),
    ],
)
def test_bad_action_settings_are_config_errors(build, message):
    with pytest.raises(ConfigError, match=message):
        build()


def test_trained_action_model_leaves_clean_input_alone(tmp_path, one_torch_thread):
    """Seconds of training on the edit task (i -> j, h dropped, g doubled): outputs equal
    clean inputs, the deletions come out as <skip>, and the text has none."""
    import seqweave
    from seqweave.config import DataConfig, ExperimentConfig, TokenizerConfig
    from seqweave.train import train
    from tests.conftest import write_edit_task

    train_file, valid_file = write_edit_task(tmp_path / "data", n_train=1500, n_valid=50)
    cfg = ExperimentConfig(
        model=ModelConfig(
            d_model=32,
            num_heads=2,
            encoder_layers=1,
            decoder_layers=1,
            ffn_dim=64,
            dropout=0.0,
            max_positions=64,
            action_head=True,
        ),
        tokenizer=TokenizerConfig(kind="alphabet", alphabet="abcdefghij"),
        data=DataConfig(train=str(train_file), valid=str(valid_file), max_tokens=1024),
        train=TrainConfig(
            out_dir=str(tmp_path / "run"),
            max_steps=150,
            validate_every=150,
            warmup_steps=20,
            lr=5e-3,
            label_smoothing=0.0,
            metric="exact",
            progress=False,
        ),
    )
    model = seqweave.load(train(cfg))
    skip_id = model.tokenizer.token_to_id(SKIP_TOKEN)
    assert model.config.skip_id == skip_id
    rng = random.Random(5)
    clean = ["".join(rng.choices("abcdef", k=rng.randint(3, 14))) for _ in range(40)]
    outputs = model.generate_tokens(clean)
    texts = model.tokenizer.decode_batch([o.tokens for o in outputs])
    assert texts == clean
    assert model.generate(clean, decoder="iad") == clean
    edited = model.generate_tokens(["abhcd"])[0].tokens
    assert skip_id in edited and model.tokenizer.decode(edited) == "abcd"


def test_server_engine_decodes_action_rows_joining_a_running_batch(one_torch_thread):
    """Continuous batching (extend, parked rows, compaction) keeps every row's pointer:
    rows submitted one after another give greedy's tokens, with IAD and greedy mixed."""
    import threading

    from seqweave.api import Seq2Seq
    from seqweave.serve.engine import Engine, Job, Options

    model = action_model(1, copy_bias=4.0)
    sources = random_sources(torch.Generator().manual_seed(9), 8, high=14)
    engine = Engine(Seq2Seq(model, None, DecodeConfig()), max_batch=4)
    results = {i: [] for i in range(len(sources))}
    finished = threading.Semaphore(0)

    def sink(i):
        def collect(tokens, finish):
            results[i].extend(tokens)
            if finish is not None:
                finished.release()

        return collect

    engine.start()
    try:
        for i, source in enumerate(sources):
            decoder = "iad" if i % 2 else "greedy"
            engine.submit([Job(source, Options(decoder=decoder, max_new_tokens=20), sink(i))])
        for _ in sources:
            assert finished.acquire(timeout=60)
    finally:
        engine.close(drain=False)
    for i, source in enumerate(sources):
        (greedy,) = decode_batch(model, [source], DecodeConfig(max_new_tokens=20))
        assert_lossless(model, source, greedy.tokens, results[i])
