"""Convert a local Hugging Face BART or Marian checkpoint into a seqweave model directory.

Reads ``config.json``, ``model.safetensors`` (never a pickle file) and
``tokenizer.json``; writes a seqweave model directory, so every seqweave
decoder runs on those weights. ``transformers`` is not needed.

Both architectures are post-LN encoder-decoders with biases everywhere and a
final logits bias. BART adds learned positions offset by 2, a layer norm on
the embeddings and ``<s> text </s>`` sources; Marian uses sinusoidal positions
(sines then cosines, as our table) and ``text </s>`` sources. Checkpoint keys
we do not know are an error, never silently dropped.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from seqweave.checkpoint import (
    GENERATION_FILE,
    TOKENIZER_FILE,
    load_tensors,
    load_tokenizer,
    read_json,
    require_weights,
    save_model_dir,
)
from seqweave.config import DecodeConfig, ModelConfig
from seqweave.errors import CheckpointError
from seqweave.models import build_model
from seqweave.models.positions import sinusoidal_table

ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_new": "gelu_tanh",
    "relu": "relu",
    "swish": "silu",
    "silu": "silu",
}
SUPPORTED = ("bart", "marian")


def model_config(hf: dict[str, Any]) -> ModelConfig:
    """Our ModelConfig for a Hugging Face BART or Marian config."""
    kind = hf.get("model_type")
    if kind not in SUPPORTED:
        raise CheckpointError(f"model_type {kind!r} is not supported; supported: {SUPPORTED}")
    for a, b in (
        ("encoder_attention_heads", "decoder_attention_heads"),
        ("encoder_ffn_dim", "decoder_ffn_dim"),
    ):
        if hf[a] != hf[b]:
            raise CheckpointError(f"{a}={hf[a]} differs from {b}={hf[b]}; not supported")
    if hf.get("normalize_before") or hf.get("add_final_layer_norm"):
        raise CheckpointError("pre-LN BART variants (normalize_before) are not supported")
    activation = hf.get("activation_function", "gelu")
    if activation not in ACTIVATIONS:
        raise CheckpointError(f"activation_function {activation!r} is not supported")
    bart = kind == "bart"
    eos = hf["eos_token_id"]
    bos = hf.get("bos_token_id")
    return ModelConfig(
        architecture="transformer",
        vocab_size=hf["vocab_size"],
        d_model=hf["d_model"],
        num_heads=hf["encoder_attention_heads"],
        encoder_layers=hf["encoder_layers"],
        decoder_layers=hf["decoder_layers"],
        ffn_dim=hf["encoder_ffn_dim"],
        dropout=hf.get("dropout", 0.1),
        attention_dropout=hf.get("attention_dropout", 0.0),
        activation_dropout=hf.get("activation_dropout", 0.0),
        activation=ACTIVATIONS[activation],
        norm="post",
        position="learned" if bart else "sinusoidal",
        max_positions=hf["max_position_embeddings"],
        position_offset=2 if bart else 0,
        scale_embedding=bool(hf.get("scale_embedding", False)),
        embedding_layer_norm=bart,
        share_embeddings=bool(hf.get("share_encoder_decoder_embeddings", True)),
        tie_output=bool(hf.get("tie_word_embeddings", True)),
        final_logits_bias=True,
        pad_id=hf["pad_token_id"],
        bos_id=bos if bos is not None else eos,
        eos_id=eos,
        decoder_start_id=hf["decoder_start_token_id"],
        source_bos=bart,
    )


def _attention(w: dict, hf: str, ours: str, out: dict, fused: str) -> None:
    """Fuse q/k/v (self) or k/v (cross) projections into our layout."""
    names = ("q", "k", "v") if fused == "qkv" else ("k", "v")
    for kind in ("weight", "bias"):
        out[f"{ours}.{fused}.{kind}"] = torch.cat([w.pop(f"{hf}.{n}_proj.{kind}") for n in names])
        out[f"{ours}.out.{kind}"] = w.pop(f"{hf}.out_proj.{kind}")
        if fused == "kv":
            out[f"{ours}.q.{kind}"] = w.pop(f"{hf}.q_proj.{kind}")


def _norm(w: dict, hf: str, ours: str, out: dict) -> None:
    for kind in ("weight", "bias"):
        out[f"{ours}.{kind}"] = w.pop(f"{hf}.{kind}")


def convert_weights(weights: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """Hugging Face tensor names -> ours. Raises on keys left over."""
    w = {k.removeprefix("model."): v for k, v in weights.items()}
    out: dict[str, torch.Tensor] = {}
    shared = w.pop("shared.weight", None)
    encoder_tokens = w.pop("encoder.embed_tokens.weight", shared)
    decoder_tokens = w.pop("decoder.embed_tokens.weight", shared)
    out["encoder_embed.tokens.weight"] = encoder_tokens
    out["decoder_embed.tokens.weight"] = encoder_tokens if cfg.share_embeddings else decoder_tokens
    lm_head = w.pop("lm_head.weight", None)
    if cfg.tie_output:
        out["output_tokens.weight"] = out["decoder_embed.tokens.weight"]
    else:
        out["output.weight"] = lm_head
    out["final_logits_bias"] = w.pop("final_logits_bias").reshape(-1)
    for side in ("encoder", "decoder"):
        positions = w.pop(f"{side}.embed_positions.weight", None)
        if cfg.position == "learned":
            out[f"{side}_embed.positions.weight"] = positions
        elif positions is not None:
            _check_sinusoidal(positions, cfg)
        if cfg.embedding_layer_norm:
            _norm(w, f"{side}.layernorm_embedding", f"{side}_embed.norm", out)
        layers = cfg.encoder_layers if side == "encoder" else cfg.decoder_layers
        for i in range(layers):
            hf, ours = f"{side}.layers.{i}", f"{side}_layers.{i}"
            _attention(w, f"{hf}.self_attn", f"{ours}.attn", out, "qkv")
            _norm(w, f"{hf}.self_attn_layer_norm", f"{ours}.attn_res.norm", out)
            if side == "decoder":
                _attention(w, f"{hf}.encoder_attn", f"{ours}.cross", out, "kv")
                _norm(w, f"{hf}.encoder_attn_layer_norm", f"{ours}.cross_res.norm", out)
            for fc in ("fc1", "fc2"):
                for kind in ("weight", "bias"):
                    out[f"{ours}.ffn.{fc}.{kind}"] = w.pop(f"{hf}.{fc}.{kind}")
            _norm(w, f"{hf}.final_layer_norm", f"{ours}.ffn_res.norm", out)
    if w:
        raise CheckpointError(f"unexpected tensors in the checkpoint: {sorted(w)[:8]}")
    return out


def _check_sinusoidal(table: torch.Tensor, cfg: ModelConfig) -> None:
    ours = sinusoidal_table(table.shape[0], cfg.d_model)
    if not torch.allclose(table.float(), ours, atol=1e-4):
        raise CheckpointError("the checkpoint's sinusoidal positions differ from seqweave's")


def decode_config(source: Path) -> DecodeConfig:
    """Defaults from ``generation_config.json``: length limit and beam size."""
    path = source / GENERATION_FILE
    hf = read_json(path) if path.exists() else {}
    max_length = hf.get("max_length") or 128
    beams = hf.get("num_beams") or 1
    return DecodeConfig(
        decoder="beam" if beams > 1 else "greedy",
        beam_size=max(beams, 1),
        max_new_tokens=max(1, max_length - 1),  # max_length counts the start token
    )


def import_hf(source: str | Path, out: str | Path) -> Path:
    """Convert ``source`` (a Hugging Face model directory) into a seqweave model at ``out``."""
    source, out = Path(source), Path(out)
    if not source.is_dir():
        raise CheckpointError(f"{source} is not a directory")
    weights_path = require_weights(source)
    hf = read_json(source / "config.json")
    try:
        cfg = model_config(hf)
    except KeyError as error:
        raise CheckpointError(f"{source / 'config.json'} lacks {error}") from None
    model = build_model(cfg)
    state = convert_weights(load_tensors(weights_path), cfg)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"conversion mismatch: missing {missing}, unexpected {unexpected}")
    if not (source / TOKENIZER_FILE).exists():
        raise CheckpointError(
            f"{source / TOKENIZER_FILE} is missing (seqweave needs the fast tokenizer file)"
        )
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / TOKENIZER_FILE, out / TOKENIZER_FILE)
    tokenizer = load_tokenizer(out, cfg)
    save_model_dir(out, model, tokenizer, decode_config(source))
    (out / "import_source.json").write_text(
        json.dumps({"model_type": hf["model_type"], "source": source.name}, indent=2) + "\n"
    )
    return out
