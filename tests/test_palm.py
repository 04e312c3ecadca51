"""PALM (the partial-attention LM, Fu et al. 2023) and the attention-degeneration analysis.

The decoder-state equivalences (cached == uncached, K-token steps, ragged rows,
reorder, extend, padding) run on PALM in tests/test_models.py, and greedy ==
IAD / beam-1 / batched in tests/test_accelerated.py and tests/test_decoding.py,
through ``MODEL_KINDS``. Here: what is PALM's own, and the analysis.
"""

from __future__ import annotations

import json
import random
import threading

import pytest
import torch

import seqweave
from seqweave.analysis import analyze_attention
from seqweave.api import Seq2Seq
from seqweave.checkpoint import save_model_dir
from seqweave.cli import main
from seqweave.config import DecodeConfig
from seqweave.data.readers import Example
from seqweave.decoding import decode_batch
from seqweave.decoding.common import length_budget, pad_batch
from seqweave.errors import ConfigError
from seqweave.serve.engine import Engine, Job, Options
from seqweave.tokenizers import alphabet_tokenizer
from tests.conftest import MODEL_KINDS, VOCAB, random_sources, tiny_config, tiny_model
from tests.lossless import assert_lossless

PALM = MODEL_KINDS["palm"]
LETTERS = "abcdefghij"


def recorded_positions(model) -> list[torch.Tensor]:
    """Spy on the position ids the model's embedder looks up."""
    seen = []
    table = model.embed.positions
    lookup = table.forward

    def spy(position_ids):
        seen.append(position_ids.clone())
        return lookup(position_ids)

    table.forward = spy
    return seen


def test_target_positions_restart_at_zero_whatever_the_source_length():
    model = tiny_model(**PALM, position="learned")
    seen = recorded_positions(model)
    sources = random_sources(torch.Generator().manual_seed(0), 3, low=3, high=15)
    src, lengths = pad_batch(sources, 0)
    assert len(set(lengths.tolist())) == 3
    tgt = torch.randint(4, VOCAB, (3, 4))
    with torch.no_grad():
        state = model.start(model.encode(src, lengths))
        model.step(state, tgt[:, :3])
        model.step(state, tgt[:, 3:], n_new=torch.tensor([1, 0, 1]))
        model(src, lengths, tgt)
    source_ids, first, second, joint = seen
    assert source_ids.tolist() == [list(range(src.shape[1]))] * 3
    assert first.tolist() == [[0, 1, 2]] * 3
    assert second.tolist() == [[3]] * 3
    assert joint[:, src.shape[1] :].tolist() == [[0, 1, 2, 3]] * 3


def test_long_source_leaves_the_whole_position_range_to_the_target():
    """A plain prefix LM's target continues after the source and runs out of positions;
    PALM's starts from 0, so its length budget ignores the source."""
    palm = tiny_model(**PALM, position="learned", max_positions=16)
    plain = tiny_model(architecture="prefix_lm", position="learned", max_positions=16)
    src = torch.randint(4, VOCAB, (1, 12))
    lengths = torch.tensor([12])
    tgt = torch.randint(4, VOCAB, (1, 10))
    assert length_budget(palm, lengths, 10) == [10]
    assert length_budget(plain, lengths, 10) == [4]
    with torch.no_grad():
        assert palm(src, lengths, tgt).shape == (1, 10, VOCAB)
        with pytest.raises(ValueError, match="max_positions"):
            plain(src, lengths, tgt)


def test_segment_embedding_marks_source_and_target():
    model = tiny_model(**PALM)
    src, lengths = pad_batch(random_sources(torch.Generator().manual_seed(1), 2), 0)
    tgt = torch.randint(4, VOCAB, (2, 5))
    with torch.no_grad():
        before = model(src, lengths, tgt)
        model.embed.segments[0] += 0.5  # the source's segment only
        after_source = model(src, lengths, tgt)
        model.embed.segments[0] -= 0.5
        model.embed.segments[1] += 0.5
        after_target = model(src, lengths, tgt)
    assert not torch.allclose(before, after_source)
    assert not torch.allclose(before, after_target)


def test_partial_attention_reaches_the_source_when_self_attention_cannot():
    """With the target's self-attention to the source masked out, the target still
    depends on the source, through the partial-attention sublayer alone."""
    model = tiny_model(**PALM)
    src = torch.randint(4, VOCAB, (1, 6))
    other = src.clone()
    other[0, 2] = 4 if int(src[0, 2]) != 4 else 5
    lengths = torch.tensor([6])
    tgt = torch.randint(4, VOCAB, (1, 4))
    full_mask = model._full_mask

    def no_source_in_self_attention(src_lengths, S, T):
        mask = full_mask(src_lengths, S, T)
        mask[:, :, S:, :S] = False
        return mask

    model._full_mask = no_source_in_self_attention
    with torch.no_grad():
        changed = (model(src, lengths, tgt) - model(other, lengths, tgt)).abs().max()
        for layer in model.layers:
            layer.cross.out.weight.zero_()
            layer.cross.out.bias.zero_()
        cut = (model(src, lengths, tgt) - model(other, lengths, tgt)).abs().max()
    assert changed > 1e-3
    assert cut == 0


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(architecture="transformer", partial_attention=True), "model.partial_attention"),
        (dict(architecture="nar_drafter", partial_attention=True), "model.partial_attention"),
        (dict(**PALM, prefix_attention="causal"), "model.prefix_attention"),
    ],
)
def test_invalid_palm_config_is_rejected(overrides, message):
    with pytest.raises(ConfigError, match=message):
        tiny_config(**overrides)


def test_speculative_decoding_with_palm_as_target_and_as_draft():
    palm = tiny_model(seed=1, **PALM)
    plain = tiny_model(seed=2, architecture="prefix_lm", d_model=8, num_heads=1)
    sources = random_sources(torch.Generator().manual_seed(2), 5)
    for target, draft in ((palm, plain), (plain, palm)):
        greedy = decode_batch(target, sources, DecodeConfig(max_new_tokens=15))
        spec = decode_batch(
            target, sources, DecodeConfig(decoder="spec", max_new_tokens=15), draft_model=draft
        )
        for source, ref, got in zip(sources, greedy, spec, strict=True):
            assert_lossless(target, source, ref.tokens, got.tokens)


def palm_dir(tmp_path, **overrides):
    config = dict(**PALM, vocab_size=4 + len(LETTERS))
    config.update(overrides)
    network = tiny_model(seed=3, **config)
    return save_model_dir(tmp_path / "palm", network, alphabet_tokenizer(LETTERS))


def test_save_and_load_round_trip(tmp_path):
    directory = palm_dir(tmp_path)
    saved = json.loads((directory / "config.json").read_text())
    assert saved["partial_attention"] is True
    loaded = seqweave.load(directory)
    original = tiny_model(seed=3, **PALM, vocab_size=4 + len(LETTERS))
    src, lengths = pad_batch([[5, 6, 7, 2], [8, 2]], 0)
    tgt = torch.tensor([[1, 5, 6], [1, 7, 8]])
    with torch.no_grad():
        torch.testing.assert_close(loaded.network(src, lengths, tgt), original(src, lengths, tgt))


def test_server_engine_decodes_palm_rows_like_offline_greedy(tmp_path):
    model = seqweave.load(palm_dir(tmp_path))
    rng = random.Random(0)
    texts = ["".join(rng.choices(LETTERS, k=rng.randint(2, 12))) for _ in range(6)]
    sources = model.encode_sources(texts)
    offline = decode_batch(model.network, sources, DecodeConfig(max_new_tokens=12))
    engine = Engine(model, max_batch=4)
    engine.start()
    results: dict[int, list[int]] = {i: [] for i in range(len(texts))}
    finishes: dict[int, str] = {}
    all_done = threading.Event()

    def sink_for(i):
        def sink(tokens, finish):  # called on the engine's thread: must not block
            results[i].extend(tokens)
            if finish is not None:
                finishes[i] = finish
                if len(finishes) == len(texts):
                    all_done.set()

        return sink

    for i, source in enumerate(sources):  # more rows than the batch: rows join and leave
        engine.submit([Job(source, Options(decoder="iad", max_new_tokens=12), sink_for(i))])
    assert all_done.wait(timeout=60)
    engine.close()
    assert set(finishes.values()) <= {"stop", "length"}
    for i, source in enumerate(sources):
        assert_lossless(model.network, source, offline[i].tokens, results[i])


# -- the attention analysis ------------------------------------------------------------------


def examples(count: int = 6, seed: int = 0) -> list[Example]:
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        source = "".join(rng.choices(LETTERS, k=rng.randint(3, 10)))
        pairs.append(Example(source, source[::-1] + "a", {}, "test", 1))
    return pairs


def loaded(kind: str) -> Seq2Seq:
    network = tiny_model(**MODEL_KINDS[kind], vocab_size=4 + len(LETTERS))
    return Seq2Seq(network, alphabet_tokenizer(LETTERS), DecodeConfig())


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_analysis_shapes_counts_and_ranges(kind):
    data = examples()
    result = analyze_attention(loaded(kind), data, batch_size=4)
    lengths = [len(e.target) + 1 for e in data]  # the end token is a step too
    assert [row["count"] for row in result["steps"]] == [
        sum(n > t for n in lengths) for t in range(max(lengths))
    ]
    assert result["steps"][0]["relative_sensitivity"] == pytest.approx(1.0)
    for row in result["steps"]:
        for name in ("source_share", "sensitivity_share", "accuracy"):
            assert 0.0 <= row[name] <= 1.0
        assert row["sensitivity"] > 0
        if kind == "transformer":
            assert row["source_attention"] is None
        else:
            assert 0.0 <= row["source_attention"] <= 1.0
    assert set(result["thirds"]) == {"early", "middle", "late"}


def test_source_attention_mass_is_exact_under_uniform_attention():
    """With zero key projections every query attends uniformly to what it may see: at
    target step t (from 0) the mass on a source of length S is S / (S + t + 1)."""
    model = loaded("prefix_lm")
    D = model.config.d_model
    for layer in model.network.layers:
        with torch.no_grad():
            layer.attn.qkv.weight[D : 2 * D] = 0
            layer.attn.qkv.bias[D : 2 * D] = 0
    (example,) = examples(1, seed=4)
    S = len(example.source) + 1  # with its end token
    result = analyze_attention(model, [example])
    got = [row["source_attention"] for row in result["steps"]]
    expected = [S / (S + t + 1) for t in range(len(got))]
    assert got == pytest.approx(expected, abs=1e-6)


def test_encoder_decoder_without_cross_attention_output_ignores_the_source():
    model = loaded("transformer")
    with torch.no_grad():
        for layer in model.network.decoder_layers:
            layer.cross.out.weight.zero_()
    result = analyze_attention(model, examples(3))
    assert all(row["source_share"] == 0 for row in result["steps"])
    assert all(row["sensitivity"] == 0 for row in result["steps"])


def test_analysis_leaves_no_probe_behind():
    model = loaded("palm")
    analyze_attention(model, examples(2))
    probed = [m for m in model.network.modules() if getattr(m, "probe", None) is not None]
    assert probed == []


def test_analysis_rejects_a_drafter_and_unusable_data():
    drafter = Seq2Seq(
        tiny_model(architecture="nar_drafter", vocab_size=14), alphabet_tokenizer(LETTERS), None
    )
    with pytest.raises(ConfigError, match="nar_drafter"):
        analyze_attention(drafter, examples(1))
    with pytest.raises(ConfigError, match="batch size"):
        analyze_attention(loaded("palm"), examples(1), batch_size=0)


def test_cli_writes_json_and_png(tmp_path, capsys):
    directory = palm_dir(tmp_path)
    data = tmp_path / "data.jsonl"
    data.write_text(
        "".join(json.dumps({"source": e.source, "target": e.target}) + "\n" for e in examples(5))
    )
    out = tmp_path / "out"
    argv = ["analyze", "attention", "--model", str(directory), "--data", str(data)]
    assert main([*argv, "--output", str(out), "--limit", "4"]) == 0
    result = json.loads((out / "attention.json").read_text())
    assert result["model_kind"] == "palm" and result["examples"] == 4
    assert (out / "attention.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "late" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--limit", "0"], "--limit must be >= 1"),
        (["--max-steps", "-1"], "--max-steps must be >= 1"),
    ],
)
def test_cli_bad_numbers_are_clear_errors(tmp_path, capsys, extra, message):
    directory = palm_dir(tmp_path)
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({"source": "abc", "target": "cba"}) + "\n")
    argv = ["analyze", "attention", "--model", str(directory), "--data", str(data)]
    assert main([*argv, "--output", str(tmp_path / "o"), *extra]) == 2
    assert message in capsys.readouterr().err


def test_cli_data_without_targets_is_a_clear_error(tmp_path, capsys):
    directory = palm_dir(tmp_path)
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({"source": "abc"}) + "\n")
    argv = ["analyze", "attention", "--model", str(directory), "--data", str(data)]
    assert main([*argv, "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "data.jsonl" in err
