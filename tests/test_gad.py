"""Generalized aggressive decoding: the NAR block drafter, GAD = greedy, GAD++ acceptance."""

from __future__ import annotations

import json
import random

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import seqweave
from seqweave.cli import main
from seqweave.config import (
    DecodeConfig,
    ModelConfig,
)
from seqweave.decoding import RelaxedAcceptance, decode_batch, decode_many
from seqweave.decoding.common import pad_batch
from seqweave.decoding.generalized import BlockDrafter
from seqweave.errors import ConfigError
from tests.conftest import VOCAB, edit_task_pair, random_sources, tiny_model
from tests.lossless import assert_lossless

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tokens(outputs):
    return [o.tokens for o in outputs]


@pytest.mark.parametrize("block", [1, 3, 5])
def test_block_parallel_training_pass_equals_drafting_each_block(block):
    """One teacher-forced pass trains every block; each block's logits must equal what
    ``draft`` computes from that block's prefix alone."""
    model = tiny_model(architecture="nar_drafter", draft_block=block, seed=block)
    gen = torch.Generator().manual_seed(block)
    sources = random_sources(gen, 3)
    src, lengths = pad_batch(sources, 0)
    T = 11
    tgt_in = torch.randint(4, VOCAB, (3, T), generator=gen)
    tgt_in[:, 0] = model.config.decoder_start_id
    with torch.no_grad():
        together = model(src, lengths, tgt_in)  # eval mode: blocks start at 0, k, 2k, ...
        memory = model.encode(src, lengths)
        cross = model.cross_memory(memory)
        for cut in range(0, T, block):
            prefix = tgt_in[:, : cut + 1]
            alone = model.draft(cross, memory.mask, prefix, torch.full((3,), cut + 1))
            width = min(block, T - cut)
            torch.testing.assert_close(
                together[:, cut : cut + width], alone[:, :width], atol=1e-5, rtol=1e-5
            )


def test_drafting_ignores_prefix_padding():
    """Rows of different prefix lengths drafted together equal each drafted alone."""
    model = tiny_model(architecture="nar_drafter", draft_block=4)
    gen = torch.Generator().manual_seed(5)
    sources = random_sources(gen, 3)
    src, lengths = pad_batch(sources, 0)
    prefixes = [[1, *torch.randint(4, VOCAB, (n,), generator=gen).tolist()] for n in (0, 6, 3)]
    prefix, prefix_lengths = pad_batch(prefixes, 0)
    with torch.no_grad():
        memory = model.encode(src, lengths)
        together = model.draft(model.cross_memory(memory), memory.mask, prefix, prefix_lengths)
        for i, (source, row) in enumerate(zip(sources, prefixes, strict=True)):
            one = model.encode(torch.tensor([source]), torch.tensor([len(source)]))
            alone = model.draft(
                model.cross_memory(one), one.mask, torch.tensor([row]), torch.tensor([len(row)])
            )
            torch.testing.assert_close(together[i], alone[0], atol=1e-5, rtol=1e-5)


def test_cached_drafting_equals_drafting_the_whole_prefix():
    """Ragged accepted tokens written pass by pass into the drafter's cache give the same
    block logits as re-reading each row's whole prefix."""
    model = tiny_model(architecture="nar_drafter", draft_block=4)
    gen = torch.Generator().manual_seed(9)
    sources = random_sources(gen, 3)
    src, lengths = pad_batch(sources, 0)
    prefixes = [[1], [1], [1]]
    with torch.no_grad():
        memory = model.encode(src, lengths)
        cross = model.cross_memory(memory)
        state = model.start(memory)
        pending = [[1], [1], [1]]
        for step in range(4):
            feed = torch.zeros(3, max(map(len, pending)), dtype=torch.long)
            for i, tokens in enumerate(pending):
                feed[i, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
            n_new = torch.tensor([len(p) for p in pending])
            slots = 4 - step % 3  # fewer slots give the first slots of the block
            cached = model.draft_cached(state, feed, n_new, slots)
            prefix, prefix_lengths = pad_batch(prefixes, 0)
            whole = model.draft(cross, memory.mask, prefix, prefix_lengths)
            torch.testing.assert_close(cached, whole[:, :slots], atol=1e-5, rtol=1e-5)
            pending = [torch.randint(4, VOCAB, (n,), generator=gen).tolist() for n in (0, 3, 1)]
            prefixes = [p + n for p, n in zip(prefixes, pending, strict=True)]


def test_rows_share_the_draft_budget_of_a_pass():
    nar = tiny_model(architecture="nar_drafter", draft_block=6)
    sources = random_sources(torch.Generator().manual_seed(2), 10)
    eos = nar.config.eos_id
    with torch.no_grad():
        many = BlockDrafter(nar, sources, tokens_per_pass=8)
        drafts = many.propose(list(range(10)), [[] for _ in sources], [50] * 10)
        assert all(len(d) <= 2 for d in drafts) and any(len(d) == 2 for d in drafts)
        (draft,) = BlockDrafter(nar, sources[:1], tokens_per_pass=8).propose([0], [[]], [50])
        assert len(draft) == 6 or draft[-1] == eos
        (short,) = BlockDrafter(nar, sources[:1]).propose([0], [[]], [3])  # the row's budget
        assert len(short) <= 3


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    batch=st.integers(1, 6),
    block=st.integers(1, 10),
    architecture=st.sampled_from(["transformer", "prefix_lm"]),
)
def test_gad_equals_greedy_on_random_models(seed, batch, block, architecture):
    model = tiny_model(seed=seed % 4, architecture=architecture)
    drafter = tiny_model(seed=seed % 3 + 7, architecture="nar_drafter", draft_block=block)
    sources = random_sources(torch.Generator().manual_seed(seed), batch, high=16)
    reference = tokens(decode_batch(model, sources, DecodeConfig(max_new_tokens=20)))
    cfg = DecodeConfig(decoder="gad", max_new_tokens=20)
    got = tokens(decode_batch(model, sources, cfg, drafter))
    for source, ref, out in zip(sources, reference, got, strict=True):
        assert_lossless(model, source, ref, out)


@pytest.mark.parametrize("architecture", ["transformer", "prefix_lm"])
@pytest.mark.parametrize("batch_size", [1, 7])
def test_gad_with_a_trained_drafter_equals_greedy_in_fewer_passes(
    trained, nar_dir, architecture, batch_size
):
    model = trained[architecture]
    model.attach_draft(seqweave.load(nar_dir))
    rng = random.Random(4)
    sources = model.encode_sources([edit_task_pair(rng)["source"] for _ in range(28)])
    greedy = DecodeConfig(max_new_tokens=40, batch_size=1)
    gad = DecodeConfig(decoder="gad", max_new_tokens=40, batch_size=batch_size)
    reference = decode_many(model.network, sources, greedy)
    fast = decode_many(model.network, sources, gad, model.draft.network)
    for source, ref, out in zip(sources, tokens(reference), tokens(fast), strict=True):
        assert_lossless(model.network, source, ref, out)
    greedy_passes = sum(o.stats.passes for o in reference)
    gad_passes = sum(o.stats.passes for o in fast)
    assert gad_passes < 0.5 * greedy_passes, (gad_passes, greedy_passes)
    assert all(o.stats.accepted <= o.stats.drafted for o in fast)


def test_relaxed_gad_accepts_at_least_as_much_per_pass_and_says_it_is_lossy(trained, nar_dir):
    model = trained["transformer"]
    model.attach_draft(seqweave.load(nar_dir))
    rng = random.Random(6)
    texts = [edit_task_pair(rng)["source"] for _ in range(20)]
    exact = model.generate_tokens(texts, decoder="gad", max_new_tokens=40)
    relaxed = model.generate_tokens(
        texts, decoder="gad", max_new_tokens=40, relaxed_top=3, relaxed_gap=100.0
    )
    rate = sum(o.stats.accepted for o in exact) / sum(o.stats.passes for o in exact)
    relaxed_rate = sum(o.stats.accepted for o in relaxed) / sum(o.stats.passes for o in relaxed)
    assert relaxed_rate >= rate


def test_relaxed_acceptance_rule():
    logits = torch.tensor([[[5.0, 4.0, 1.0, -3.0], [0.0, 9.0, 8.7, 8.5]]])  # (1, 2, 4)
    drafts = torch.tensor([[1, 3]])
    logp = logits.log_softmax(-1)
    gap_first = float(logp[0, 0, 0] - logp[0, 0, 1])  # 1.0
    # token 1 is 2nd best at position 0 (gap 1.0); token 3 3rd best at position 1 (gap 0.5)
    assert RelaxedAcceptance(1, 100.0)(logits, drafts).tolist() == [[False, False]]
    assert RelaxedAcceptance(2, 100.0)(logits, drafts).tolist() == [[True, False]]
    assert RelaxedAcceptance(3, 100.0)(logits, drafts).tolist() == [[True, True]]
    assert RelaxedAcceptance(4, gap_first - 1e-3)(logits, drafts).tolist() == [[False, True]]
    best = logits.argmax(-1)
    assert RelaxedAcceptance(1, 0.0)(logits, best).all()


def test_gad_needs_a_nar_drafter_and_spec_an_autoregressive_one():
    model = tiny_model()
    nar = tiny_model(architecture="nar_drafter")
    sources = random_sources(torch.Generator().manual_seed(0), 2)
    with pytest.raises(ConfigError, match="'gad' needs a nar_drafter"):
        decode_batch(model, sources, DecodeConfig(decoder="gad"))
    with pytest.raises(ConfigError, match="'gad' needs a nar_drafter"):
        decode_batch(model, sources, DecodeConfig(decoder="gad"), tiny_model(seed=1))
    with pytest.raises(ConfigError, match="'spec' needs an autoregressive draft"):
        decode_batch(model, sources, DecodeConfig(decoder="spec"), nar)
    with pytest.raises(ConfigError, match="relaxed acceptance needs a drafting decoder"):
        decode_batch(model, sources, DecodeConfig(relaxed_top=2))
    with pytest.raises(ConfigError, match="does not decode on its own"):
        decode_batch(nar, sources, DecodeConfig())
    with pytest.raises(ConfigError, match="does not decode on its own"):
        decode_batch(nar, sources, DecodeConfig(decoder="gad"), nar)
    with pytest.raises(ConfigError, match="draft_block must be >= 1"):
        ModelConfig(architecture="nar_drafter", draft_block=0)


def test_cli_generates_with_gad_and_rejects_a_malformed_relaxed_option(
    trained_dirs, nar_dir, tmp_path, capsys
):
    rng = random.Random(8)
    pairs = [edit_task_pair(rng) for _ in range(6)]
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps({"source": p["source"]}) + "\n" for p in pairs))
    common = ["generate", "--model", str(trained_dirs["transformer"]), "--input", str(data)]
    main([*common, "--output", str(tmp_path / "greedy.jsonl")])
    gad = [*common, "--decoder", "gad", "--draft-model", str(nar_dir), "--stats"]
    main([*gad, "--output", str(tmp_path / "gad.jsonl")])

    def outputs(name):
        return [json.loads(line)["output"] for line in (tmp_path / name).read_text().splitlines()]

    assert outputs("gad.jsonl") == outputs("greedy.jsonl")
    assert "draft tokens" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main([*gad, "--relaxed", "three,2"])
    assert exit_info.value.code == 2
    assert "expected BETA,TAU" in capsys.readouterr().err
