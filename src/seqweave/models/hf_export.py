"""Write a seqweave model directory back as a Hugging Face BART checkpoint.

The inverse of ``hf_import`` for BART: ``config.json``, ``model.safetensors``,
``generation_config.json`` and the tokenizer files, so Hugging Face ``generate`` and
CTranslate2's converter run the very weights seqweave decodes (``seqweave bench
--hf-model``). ``transformers`` is not needed to write it.

Only a model that *is* a BART can be exported: the check builds the Hugging Face config,
reads it back with the importer's ``model_config`` and requires every field to come back
as it was, so anything BART has no place for (pre-LN, RoPE, a head, another architecture,
encoder and decoder of different widths) is refused by name, never dropped.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from seqweave.checkpoint import (
    TOKENIZER_FILE,
    load_decode_config,
    load_model_config,
    load_tokenizer,
    load_weights,
    write_json,
)
from seqweave.config import ModelConfig
from seqweave.errors import CheckpointError, ConfigError
from seqweave.models import build_model
from seqweave.models.hf_import import model_config

HF_ACTIVATIONS = {"gelu": "gelu", "gelu_tanh": "gelu_new", "relu": "relu", "silu": "silu"}
# what a Hugging Face BART config does not carry: the layer norms' eps, fixed in BART
IMPLIED = {"layer_norm_eps": 1e-5}
# seqweave-only settings the weights do not depend on: BART targets may or may not be
# framed with <s> in training (Hugging Face leaves that to the data)
FREE = ("target_bos",)


def bart_config(cfg: ModelConfig) -> dict[str, Any]:
    """The Hugging Face BART config of ``cfg``.

    Raises:
        CheckpointError: ``cfg`` is not a BART (the message names the fields that differ).
    """
    if cfg.architecture != "transformer" or cfg.activation not in HF_ACTIVATIONS:
        raise CheckpointError(
            f"only a BART-architecture transformer can be exported to Hugging Face; this model "
            f"is architecture={cfg.architecture!r}, activation={cfg.activation!r}"
        )
    hf = {
        "model_type": "bart",
        "architectures": ["BartForConditionalGeneration"],
        "vocab_size": cfg.vocab_size,
        "d_model": cfg.d_model,
        "encoder_layers": cfg.encoder_layers,
        "decoder_layers": cfg.decoder_layers,
        "encoder_attention_heads": cfg.num_heads,
        "decoder_attention_heads": cfg.num_heads,
        "encoder_ffn_dim": cfg.ffn_dim,
        "decoder_ffn_dim": cfg.ffn_dim,
        "activation_function": HF_ACTIVATIONS[cfg.activation],
        "dropout": cfg.dropout,
        "attention_dropout": cfg.attention_dropout,
        "activation_dropout": cfg.activation_dropout,
        "max_position_embeddings": cfg.max_positions,
        "scale_embedding": cfg.scale_embedding,
        "tie_word_embeddings": cfg.tie_output,
        "normalize_before": False,
        "add_final_layer_norm": False,
        "pad_token_id": cfg.pad_id,
        "bos_token_id": cfg.bos_id,
        "eos_token_id": cfg.eos_id,
        "decoder_start_token_id": cfg.decoder_start_id,
        "forced_eos_token_id": None,
        "is_encoder_decoder": True,
        "encoder_layerdrop": 0.0,
        "decoder_layerdrop": 0.0,
        "init_std": 0.02,
        "use_cache": True,
    }
    _check_round_trip(cfg, hf)
    return hf


def _check_round_trip(cfg: ModelConfig, hf: dict[str, Any]) -> None:
    """Refuse ``cfg`` unless the importer reads ``hf`` back as ``cfg``."""
    try:
        free = {name: getattr(cfg, name) for name in FREE}
        back = dataclasses.replace(model_config(hf), **IMPLIED, **free)
    except CheckpointError as error:
        raise CheckpointError(f"no Hugging Face BART equivalent: {error}") from None
    ours = dataclasses.asdict(cfg)
    theirs = dataclasses.asdict(back)
    differ = [f"{k}={ours[k]!r} (BART: {theirs[k]!r})" for k in ours if ours[k] != theirs[k]]
    if differ:
        raise CheckpointError("no Hugging Face BART equivalent: " + ", ".join(differ))


def _attention(state: dict, ours: str, hf: str, out: dict, fused: str) -> None:
    """Our fused q/k/v (self) or q + k/v (cross) projections -> BART's separate ones."""
    names = ("q", "k", "v") if fused == "qkv" else ("k", "v")
    for kind in ("weight", "bias"):
        parts = state[f"{ours}.{fused}.{kind}"].chunk(len(names))
        for name, part in zip(names, parts, strict=True):
            out[f"{hf}.{name}_proj.{kind}"] = part
        if fused == "kv":
            out[f"{hf}.q_proj.{kind}"] = state[f"{ours}.q.{kind}"]
        out[f"{hf}.out_proj.{kind}"] = state[f"{ours}.out.{kind}"]


def _norm(state: dict, ours: str, hf: str, out: dict) -> None:
    for kind in ("weight", "bias"):
        out[f"{hf}.{kind}"] = state[f"{ours}.{kind}"]


def bart_weights(state: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """Our tensor names -> BART's (``model.`` prefixed), each tensor its own contiguous copy
    (safetensors stores no shared memory)."""
    out: dict[str, torch.Tensor] = {}
    tokens = state["encoder_embed.tokens.weight"]
    for name in ("shared", "encoder.embed_tokens", "decoder.embed_tokens"):
        out[f"model.{name}.weight"] = tokens
    for side in ("encoder", "decoder"):
        out[f"model.{side}.embed_positions.weight"] = state[f"{side}_embed.positions.weight"]
        _norm(state, f"{side}_embed.norm", f"model.{side}.layernorm_embedding", out)
        layers = cfg.encoder_layers if side == "encoder" else cfg.decoder_layers
        for i in range(layers):
            ours, hf = f"{side}_layers.{i}", f"model.{side}.layers.{i}"
            _attention(state, f"{ours}.attn", f"{hf}.self_attn", out, "qkv")
            _norm(state, f"{ours}.attn_res.norm", f"{hf}.self_attn_layer_norm", out)
            if side == "decoder":
                _attention(state, f"{ours}.cross", f"{hf}.encoder_attn", out, "kv")
                _norm(state, f"{ours}.cross_res.norm", f"{hf}.encoder_attn_layer_norm", out)
            for fc in ("fc1", "fc2"):
                for kind in ("weight", "bias"):
                    out[f"{hf}.{fc}.{kind}"] = state[f"{ours}.ffn.{fc}.{kind}"]
            _norm(state, f"{ours}.ffn_res.norm", f"{hf}.final_layer_norm", out)
    out["final_logits_bias"] = state["final_logits_bias"].reshape(1, -1)
    if not cfg.tie_output:
        out["lm_head.weight"] = state["output.weight"]
    return {name: tensor.detach().clone().contiguous() for name, tensor in out.items()}


def _tokenizer_config(tokenizer, cfg: ModelConfig) -> dict[str, Any]:
    """tokenizer_config.json: the fast tokenizer file with BART's special tokens named."""
    specials = {"bos_token": cfg.bos_id, "eos_token": cfg.eos_id, "pad_token": cfg.pad_id}
    backend = tokenizer.backend
    names = {key: backend.id_to_token(index) for key, index in specials.items()}
    for key, text in (("unk_token", "<unk>"), ("mask_token", "<mask>")):
        if backend.token_to_id(text) is not None:
            names[key] = text
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": cfg.max_positions,
        **names,
    }


def export_hf(source: str | Path, out: str | Path) -> Path:
    """Write the seqweave model directory ``source`` as a Hugging Face BART directory ``out``.

    Raises:
        CheckpointError: the model has no Hugging Face BART equivalent.
    """
    source, out = Path(source), Path(out)
    try:
        cfg = load_model_config(source)
    except ConfigError as error:
        raise CheckpointError(str(error)) from None
    hf = bart_config(cfg)  # refuses before any file is written
    model = build_model(cfg)
    load_weights(model, source)
    decode = load_decode_config(source)
    tokenizer = load_tokenizer(source, cfg)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", hf)
    save_file(bart_weights(model.state_dict(), cfg), str(out / "model.safetensors"))
    shutil.copyfile(source / TOKENIZER_FILE, out / TOKENIZER_FILE)
    write_json(out / "tokenizer_config.json", _tokenizer_config(tokenizer, cfg))
    generation = {
        "decoder_start_token_id": cfg.decoder_start_id,
        "bos_token_id": cfg.bos_id,
        "eos_token_id": cfg.eos_id,
        "pad_token_id": cfg.pad_id,
        "max_length": decode.max_new_tokens + 1,  # counts the start token
        "num_beams": decode.beam_size if decode.decoder == "beam" else 1,
        "do_sample": False,
    }
    write_json(out / "generation_config.json", generation)
    (out / "export_source.json").write_text(json.dumps({"source": source.name}, indent=2) + "\n")
    return out
