"""Hugging Face weights: seqweave decoders on converted BART and Marian checkpoints give
the tokens Hugging Face ``generate`` gives on the originals."""

from __future__ import annotations

import json

import pytest
import torch

import seqweave
from seqweave.config import DecodeConfig
from seqweave.decoding import decode_batch, decode_many
from seqweave.errors import CheckpointError
from seqweave.models.hf_import import import_hf
from tests.lossless import assert_lossless

transformers = pytest.importorskip("transformers")


def hf_greedy(hf_model, batches: list[list[list[int]]], pad: int, max_new_tokens: int):
    """HF greedy tokens per source (ids already framed), without start and end tokens."""
    start, eos = hf_model.config.decoder_start_token_id, hf_model.config.eos_token_id
    outputs = []
    for batch in batches:
        width = max(len(s) for s in batch)
        ids = torch.tensor([s + [pad] * (width - len(s)) for s in batch])
        mask = (
            torch.arange(width)[None, :] < torch.tensor([len(s) for s in batch])[:, None]
        ).long()
        with torch.inference_mode():
            out = hf_model.generate(
                input_ids=ids,
                attention_mask=mask,
                do_sample=False,
                num_beams=1,
                max_new_tokens=max_new_tokens,
                forced_eos_token_id=None,
            )
        for row in out.tolist():
            row = row[1:] if row[0] == start else row
            outputs.append(row[: row.index(eos)] if eos in row else row)
    return outputs


def length_batches(sources: list[list[int]], size: int) -> tuple[list[int], list[list[list[int]]]]:
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    return order, [[sources[i] for i in order[s : s + size]] for s in range(0, len(order), size)]


def check_against_hf(model, hf_model, sources, max_new_tokens, decoders=("greedy", "iad")):
    order, batches = length_batches(sources, 16)
    flat = hf_greedy(hf_model, batches, model.config.pad_id, max_new_tokens)
    reference = [None] * len(sources)
    for i, tokens in zip(order, flat, strict=True):
        reference[i] = tokens
    for decoder in decoders:
        cfg = DecodeConfig(decoder=decoder, batch_size=16, max_new_tokens=max_new_tokens)
        ours = decode_many(model.network, sources, cfg)
        for source, ref, got in zip(sources, reference, ours, strict=True):
            assert_lossless(model.network, source, ref, got.tokens)
    return reference


@pytest.mark.slow
@pytest.mark.timeout(1200)  # ~4 min on 2 quiet cores; the suite's 300 s cut it on busy ones
def test_bart_on_every_jfleg_dev_sentence(shared, tmp_path):
    """gec-bart-general on all 754 JFLEG dev sources: greedy and IAD equal HF greedy."""
    directory = shared / "models" / "gec-bart-general"
    model = seqweave.load(import_hf(directory, tmp_path / "general"))
    hf_model = transformers.BartForConditionalGeneration.from_pretrained(directory).eval()
    lines = (shared / "data" / "jfleg" / "dev.jsonl").read_text().splitlines()
    texts = [json.loads(line)["source"] for line in lines]
    assert len(texts) == 754
    sources = model.encode_sources(texts)
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(directory)
    assert sources[:5] == [hf_tokenizer(t)["input_ids"] for t in texts[:5]]
    reference = check_against_hf(model, hf_model, sources, max_new_tokens=255)
    texts_out = model.tokenizer.decode_batch(reference[:20])
    assert texts_out == hf_tokenizer.batch_decode(
        [[2, 0, *r[1:], 2] for r in reference[:20]], skip_special_tokens=True
    )


@pytest.mark.slow
def test_bart_anchor_on_gec_training_sources(shared, tmp_path):
    directory = shared / "models" / "gec-bart-anchor"
    model = seqweave.load(import_hf(directory, tmp_path / "anchor"))
    hf_model = transformers.BartForConditionalGeneration.from_pretrained(directory).eval()
    with (shared / "data" / "gec-synth" / "train.jsonl").open() as handle:
        texts = [json.loads(next(handle))["source"] for _ in range(300)]
    check_against_hf(model, hf_model, model.encode_sources(texts), max_new_tokens=127)


def tiny_marian(tmp_path):
    """A random Marian checkpoint with a word-level tokenizer.json: swish, scaled embeddings,
    sinusoidal positions, no <s> token, pad as the decoder start."""
    from tokenizers import Tokenizer, models

    vocab = {"</s>": 0, "<unk>": 1, **{f"w{i}": i for i in range(2, 59)}, "<pad>": 59}
    config = transformers.MarianConfig(
        vocab_size=60,
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=64,
        pad_token_id=59,
        eos_token_id=0,
        decoder_start_token_id=59,
        activation_function="swish",
        scale_embedding=True,
        forced_eos_token_id=None,
        init_std=0.3,  # HF's 0.02 leaves logits so flat that the bias alone decides
    )
    torch.manual_seed(0)
    hf_model = transformers.MarianMTModel(config).eval()
    with torch.no_grad():  # exercise the final logits bias too
        hf_model.final_logits_bias.normal_(0, 0.5)
    directory = tmp_path / "marian"
    hf_model.save_pretrained(directory)
    Tokenizer(models.WordLevel(vocab, unk_token="<unk>")).save(str(directory / "tokenizer.json"))
    return directory, hf_model


def test_marian_greedy_and_iad_equal_hf(tmp_path):
    directory, hf_model = tiny_marian(tmp_path)
    model = seqweave.load(import_hf(directory, tmp_path / "ours"))
    assert model.config.position == "sinusoidal" and model.config.activation == "silu"
    generator = torch.Generator().manual_seed(1)
    sources = []
    for _ in range(24):
        length = int(torch.randint(2, 12, (1,), generator=generator))
        sources.append([*torch.randint(2, 59, (length,), generator=generator).tolist(), 0])
    reference = check_against_hf(model, hf_model, sources, max_new_tokens=20)
    assert len({tuple(r) for r in reference}) > 6  # outputs depend on the source


def test_converted_logits_match_hf(shared, tmp_path):
    directory = shared / "models" / "gec-bart-anchor"
    model = seqweave.load(import_hf(directory, tmp_path / "anchor"))
    hf_model = transformers.BartForConditionalGeneration.from_pretrained(directory).eval()
    src = torch.tensor([model.encode_sources(["A man ride a bikes on the street ."])[0]])
    tgt = torch.tensor([[2, 0, 37, 479, 1021]])
    with torch.inference_mode():
        ours = model.network(src, torch.tensor([src.shape[1]]), tgt)
        theirs = hf_model(input_ids=src, decoder_input_ids=tgt).logits
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_import_refuses_pickles_and_unknown_architectures(tmp_path):
    from safetensors.torch import save_file

    directory = tmp_path / "pickled"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({"model_type": "bart"}))
    (directory / "pytorch_model.bin").write_bytes(b"not opened")
    with pytest.raises(CheckpointError, match="never unpickles"):
        import_hf(directory, tmp_path / "out")
    save_file({"x": torch.zeros(1)}, str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps({"model_type": "t5"}))
    with pytest.raises(CheckpointError, match="not supported"):
        import_hf(directory, tmp_path / "out")


def test_import_rejects_unknown_tensors(tmp_path):
    from safetensors.torch import load_file, save_file

    directory, _ = tiny_marian(tmp_path)
    weights = load_file(str(directory / "model.safetensors"))
    weights["model.encoder.extra_adapter.weight"] = torch.zeros(2, 2)
    save_file(weights, str(directory / "model.safetensors"))
    with pytest.raises(CheckpointError, match="unexpected tensors"):
        import_hf(directory, tmp_path / "out")


def test_spec_decoding_on_converted_bart_with_itself_as_draft(shared, tmp_path):
    directory = shared / "models" / "gec-bart-anchor"
    model = seqweave.load(import_hf(directory, tmp_path / "anchor"))
    sources = model.encode_sources(["Two dog is runing in a snow .", "A woman sit on bench ."])
    greedy = decode_batch(model.network, sources, DecodeConfig(max_new_tokens=40))
    spec = decode_batch(
        model.network, sources, DecodeConfig(decoder="spec", max_new_tokens=40), model.network
    )
    assert [g.tokens for g in greedy] == [s.tokens for s in spec]
