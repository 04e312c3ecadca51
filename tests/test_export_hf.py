"""seqweave export-hf: a BART-architecture model written back as Hugging Face BART computes
the logits and greedy outputs of the model it came from; other models are refused."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

import seqweave
from seqweave.checkpoint import write_json
from seqweave.cli import main
from seqweave.config import to_dict
from seqweave.errors import CheckpointError
from seqweave.models.hf_export import export_hf
from seqweave.models.hf_import import import_hf, model_config

transformers = pytest.importorskip("transformers")


def padded(sources: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in sources)
    ids = torch.tensor([s + [pad] * (width - len(s)) for s in sources])
    lengths = torch.tensor([len(s) for s in sources])
    return ids, lengths


def hf_logits(hf_model, ids, lengths, tgt) -> torch.Tensor:
    mask = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).long()
    with torch.inference_mode():
        return hf_model(input_ids=ids, attention_mask=mask, decoder_input_ids=tgt).logits


def hf_generate(hf_model, ids, lengths, max_new_tokens: int) -> list[list[int]]:
    mask = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).long()
    with torch.inference_mode():
        out = hf_model.generate(
            input_ids=ids,
            attention_mask=mask,
            do_sample=False,
            num_beams=1,
            max_new_tokens=max_new_tokens,
            forced_eos_token_id=None,
        )
    return out.tolist()


def test_anchor_round_trip_equals_the_original(shared, tmp_path):
    """import -> export of gec-bart-anchor: HF logits equal the original's (1e-5) and HF
    greedy writes the same tokens; its tokenizer encodes as seqweave does."""
    directory = shared / "models" / "gec-bart-anchor"
    model = seqweave.load(import_hf(directory, tmp_path / "ours"))
    exported = export_hf(tmp_path / "ours", tmp_path / "hf")
    original = transformers.BartForConditionalGeneration.from_pretrained(directory).eval()
    copy = transformers.BartForConditionalGeneration.from_pretrained(exported).eval()
    with (shared / "data" / "gec-synth" / "train.jsonl").open() as handle:
        texts = [json.loads(next(handle))["source"] for _ in range(24)]
    sources = model.encode_sources(texts)
    tokenizer = transformers.AutoTokenizer.from_pretrained(exported)
    assert [tokenizer(t)["input_ids"] for t in texts[:4]] == sources[:4]
    ids, lengths = padded(sources[:4], model.config.pad_id)
    tgt = torch.tensor([[2, 0, 37, 479, 1021, 9]] * 4)
    theirs = hf_logits(original, ids, lengths, tgt)
    torch.testing.assert_close(hf_logits(copy, ids, lengths, tgt), theirs, atol=1e-5, rtol=1e-5)
    ids, lengths = padded(sources, model.config.pad_id)
    assert hf_generate(copy, ids, lengths, 60) == hf_generate(original, ids, lengths, 60)


def tiny_bart(tmp_path, tie: bool):
    """A random Hugging Face BART (relu, untied output when ``tie`` is False) with a
    word-level tokenizer; returns its directory."""
    from tokenizers import Tokenizer, models, processors

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, **{f"w{i}": i for i in range(4, 40)}}
    config = transformers.BartConfig(
        vocab_size=40,
        d_model=16,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=32,
        activation_function="relu",
        tie_word_embeddings=tie,
        forced_eos_token_id=None,
        init_std=0.3,
    )
    torch.manual_seed(0)
    hf_model = transformers.BartForConditionalGeneration(config).eval()
    with torch.no_grad():
        hf_model.final_logits_bias.normal_(0, 0.5)
    directory = tmp_path / "tiny"
    hf_model.save_pretrained(directory)
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    tokenizer.save(str(directory / "tokenizer.json"))
    return directory


@pytest.mark.parametrize("tie", [True, False])
def test_tiny_bart_export_equals_seqweave(tmp_path, tie):
    """A tiny BART, tied and untied: the exported checkpoint's HF logits equal seqweave's
    (1e-5), and importing it again gives back every tensor exactly."""
    ours = import_hf(tiny_bart(tmp_path, tie), tmp_path / "ours")
    model = seqweave.load(ours)
    exported = export_hf(ours, tmp_path / "hf")
    hf_model = transformers.BartForConditionalGeneration.from_pretrained(exported).eval()
    generator = torch.Generator().manual_seed(1)
    sources = [[0, *torch.randint(4, 40, (n,), generator=generator).tolist(), 2] for n in (7, 3)]
    ids, lengths = padded(sources, 1)
    tgt = torch.tensor([[2, 0, 5, 9, 11], [2, 0, 17, 4, 30]])
    with torch.inference_mode():
        expected = model.network(ids, lengths, tgt)
    torch.testing.assert_close(hf_logits(hf_model, ids, lengths, tgt), expected, atol=1e-5, rtol=0)
    again = seqweave.load(import_hf(exported, tmp_path / "again"))
    for name, tensor in model.network.state_dict().items():
        assert torch.equal(again.network.state_dict()[name], tensor), name


BART = model_config(
    {
        "model_type": "bart",
        "vocab_size": 40,
        "d_model": 16,
        "encoder_layers": 2,
        "decoder_layers": 2,
        "encoder_attention_heads": 2,
        "decoder_attention_heads": 2,
        "encoder_ffn_dim": 32,
        "decoder_ffn_dim": 32,
        "max_position_embeddings": 32,
        "pad_token_id": 1,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "decoder_start_token_id": 2,
    }
)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"norm": "pre"}, "norm='pre'"),
        ({"position": "rope"}, "position='rope'"),
        ({"action_head": True, "skip_id": 3}, "action_head=True"),
        ({"final_logits_bias": False}, "final_logits_bias=False"),
        ({"architecture": "prefix_lm"}, "architecture='prefix_lm'"),
    ],
)
def test_export_refuses_models_without_a_bart_equivalent(tmp_path, changes, named):
    source = tmp_path / "model"
    source.mkdir()
    write_json(source / "config.json", to_dict(dataclasses.replace(BART, **changes)))
    with pytest.raises(CheckpointError, match=named.replace("(", r"\(")):
        export_hf(source, tmp_path / "hf")
    assert not (tmp_path / "hf").exists()  # refused before anything is written


def test_export_hf_command(tmp_path, capsys):
    ours = import_hf(tiny_bart(tmp_path, tie=True), tmp_path / "ours")
    assert main(["export-hf", str(ours), str(tmp_path / "hf")]) == 0
    assert (tmp_path / "hf" / "model.safetensors").exists()
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["model_type"] == "bart" and config["d_model"] == 16
    write_json(ours / "config.json", to_dict(dataclasses.replace(BART, norm="pre")))
    assert main(["export-hf", str(ours), str(tmp_path / "again")]) == 2
    assert "no Hugging Face BART equivalent" in capsys.readouterr().err
