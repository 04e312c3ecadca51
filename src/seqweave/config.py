"""Typed configuration: frozen dataclasses per concern, TOML in, JSON out.

One experiment is one TOML file with the sections ``[model]``, ``[tokenizer]``,
``[data]``, ``[train]`` and ``[decode]``. Every value can be overridden on the
command line as ``--set train.lr=1e-3``; the string is parsed by the field's
type. An unknown section or key is an error that lists the valid ones, so a
typo fails at start-up instead of being silently ignored.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from seqweave.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a Transformer; also saved as a model directory's ``config.json``."""

    # transformer (encoder-decoder) | prefix_lm (decoder-only) | nar_drafter (the block drafter
    # of generalized aggressive decoding: an encoder-decoder that predicts draft_block tokens
    # at once) | nar_editor (revises the previous translation in a few parallel passes, for
    # simultaneous re-translation)
    architecture: str = "transformer"
    vocab_size: int = 8000
    d_model: int = 256
    num_heads: int = 4
    encoder_layers: int = 3
    decoder_layers: int = 3
    ffn_dim: int = 1024
    dropout: float = 0.1  # on embeddings and sublayer outputs
    attention_dropout: float = 0.0
    activation_dropout: float = 0.0  # inside the feed-forward block
    activation: str = "gelu"  # relu | gelu | gelu_tanh | silu
    norm: str = "pre"  # pre (pre-LN, final layer norm) | post (post-LN, as BART and Marian)
    position: str = "sinusoidal"  # sinusoidal | learned | rope | seqpe
    # The context the model is built and trained for: data longer than this is dropped and
    # decoding stops here. Learned, sinusoidal and RoPE tables have this many rows; SeqPE
    # has no table and encodes any position below seqpe_base ** seqpe_digits, so a trained
    # SeqPE model extrapolates by loading it with a larger max_positions.
    max_positions: int = 1024
    position_offset: int = 0  # BART's learned positions start at index 2
    # Token embeddings start with std d_model**-0.5 (so tied output logits start near unit
    # scale). With sinusoidal positions they are multiplied by sqrt(d_model) on input so
    # that the unit-amplitude positions do not drown them (Vaswani et al. 2017); with RoPE
    # or learned positions nothing needs balancing. None picks by position.
    scale_embedding: bool | None = None
    embedding_layer_norm: bool = False  # layer norm right after the embeddings (BART)
    share_embeddings: bool = True  # encoder and decoder share one token embedding
    tie_output: bool = True  # output projection is the decoder's token embedding
    final_logits_bias: bool = False
    layer_norm_eps: float = 1e-5
    prefix_attention: str = "bidirectional"  # prefix_lm only: bidirectional | causal
    # prefix_lm only: the partial-attention LM (PALM, Fu et al. 2023). Every layer adds a
    # sublayer in which target tokens attend to the source alone; target positions restart
    # at 0 and a segment embedding tells source from target. Needs a bidirectional prefix.
    partial_attention: bool = False
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    decoder_start_id: int = 1
    source_bos: bool = False  # sources are framed as [bos] text [eos] (BART) or text [eos]
    target_bos: bool = False  # targets are [bos] text [eos] and decoding starts from eos (BART)
    draft_block: int = 8  # nar_drafter only: tokens predicted in one pass
    # Sequence-to-action (Li et al. 2022), transformer only: a head on the decoder states
    # predicts SKIP / COPY / GEN against a source pointer, fused with the token distribution
    # (seqweave.models.seq2action). skip_id is the <skip> token; training sets it from the
    # tokenizer (-1: not yet known).
    action_head: bool = False
    skip_id: int = -1
    # SeqPE (position = "seqpe"): a position is written as seqpe_digits digits in base
    # seqpe_base and read by a small Transformer encoder of its own width and depth
    seqpe_base: int = 10
    seqpe_digits: int = 5
    seqpe_dim: int = 32
    seqpe_layers: int = 2
    seqpe_heads: int = 4
    # CLAPS (Lee et al. 2021; objectives/claps.py), transformer only: > 0 adds a projection
    # head (affine + ReLU, to this size) that maps pooled encoder and decoder states into
    # the space of the contrastive loss. Training uses it; decoding never does.
    contrastive_dim: int = 0
    # E2S2 (Zhong et al. 2022), transformer only: a small head (dense, activation, layer norm)
    # between the encoder states and the tied output projection for the encoder-side
    # restore objective (objectives/e2s2.py). Without it the encoder states are projected
    # directly, which adds no parameters.
    restore_head: bool = False

    @property
    def shares_positions(self) -> bool:
        """Whether source and target share one position range (a plain prefix LM: the
        target continues after the source), so that their lengths add up against
        ``max_positions``."""
        return self.architecture == "prefix_lm" and not self.partial_attention

    @property
    def scales_embedding(self) -> bool:
        """``scale_embedding`` as set, or by position when left as None."""
        if self.scale_embedding is None:
            return self.position == "sinusoidal"
        return self.scale_embedding

    def __post_init__(self) -> None:
        choices = {
            "architecture": ("transformer", "prefix_lm", "nar_drafter", "nar_editor"),
            "activation": ("relu", "gelu", "gelu_tanh", "silu"),
            "norm": ("pre", "post"),
            "position": ("sinusoidal", "learned", "rope", "seqpe"),
            "prefix_attention": ("bidirectional", "causal"),
        }
        for name, valid in choices.items():
            _check_choice(f"model.{name}", getattr(self, name), valid)
        if self.d_model % self.num_heads:
            raise ConfigError(
                f"model.d_model={self.d_model} is not divisible by model.num_heads={self.num_heads}"
            )
        if self.partial_attention and self.architecture != "prefix_lm":
            raise ConfigError(
                "model.partial_attention is a prefix_lm option, but model.architecture="
                f"{self.architecture!r}"
            )
        if self.partial_attention and self.prefix_attention != "bidirectional":
            raise ConfigError(
                "model.partial_attention needs model.prefix_attention='bidirectional' "
                "(PALM reads the source bidirectionally)"
            )
        if self.draft_block < 1:
            raise ConfigError(f"model.draft_block must be >= 1, got {self.draft_block}")
        if self.position == "rope" and (self.d_model // self.num_heads) % 2:
            raise ConfigError("model.position='rope' needs an even head dimension")
        if self.action_head and self.architecture != "transformer":
            raise ConfigError(
                f"model.action_head needs model.architecture='transformer', "
                f"not {self.architecture!r}"
            )
        if not -1 <= self.skip_id < self.vocab_size:
            raise ConfigError(
                f"model.skip_id={self.skip_id} is not a token id of the vocabulary "
                f"(0..{self.vocab_size - 1}, or -1 for not set)"
            )
        if self.position == "seqpe":
            self._check_seqpe()
        if self.restore_head and self.architecture != "transformer":
            raise ConfigError(
                f"model.restore_head needs model.architecture='transformer', "
                f"not {self.architecture!r}"
            )
        self._check_contrastive()

    def _check_contrastive(self) -> None:
        if self.contrastive_dim < 0:
            raise ConfigError(f"model.contrastive_dim must be >= 0, got {self.contrastive_dim}")
        if self.contrastive_dim and (self.architecture != "transformer" or self.action_head):
            raise ConfigError(
                "model.contrastive_dim needs model.architecture='transformer' without "
                f"model.action_head (got {self.architecture!r}, action_head={self.action_head})"
            )

    def _check_seqpe(self) -> None:
        for name in ("seqpe_digits", "seqpe_dim", "seqpe_layers", "seqpe_heads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if self.seqpe_base < 2:
            raise ConfigError(f"model.seqpe_base must be >= 2, got {self.seqpe_base}")
        if self.seqpe_dim % self.seqpe_heads:
            raise ConfigError(
                f"model.seqpe_dim={self.seqpe_dim} is not divisible by "
                f"model.seqpe_heads={self.seqpe_heads}"
            )
        if self.max_positions > self.seqpe_base**self.seqpe_digits:
            raise ConfigError(
                f"model.max_positions={self.max_positions} needs more than "
                f"model.seqpe_digits={self.seqpe_digits} digits in base {self.seqpe_base}"
            )
        if self.position_offset:
            raise ConfigError("model.position_offset is for learned positions, not seqpe")

    @property
    def seqpe_limit(self) -> int:
        """SeqPE encodes positions 0 .. seqpe_limit - 1."""
        return self.seqpe_base**self.seqpe_digits


@dataclass(frozen=True)
class TokenizerConfig:
    path: str = ""  # an existing tokenizer.json (or a model directory holding one): reuse it
    kind: str = "bpe"  # bpe | protein | dna | numbers | alphabet
    vocab_size: int = 8000
    min_frequency: int = 2
    alphabet: str = ""  # for kind = "alphabet"
    task_tokens: tuple[str, ...] = ()


@dataclass(frozen=True)
class DataConfig:
    train: str = ""
    valid: str = ""
    source_field: str = "source"
    target_field: str = "target"
    max_source_len: int = 256
    max_target_len: int = 256
    max_tokens: int = 4096  # padded tokens per batch (source or target side, whichever is longer)
    max_sentences: int = 0  # 0: no limit


@dataclass(frozen=True)
class TrainConfig:
    out_dir: str = "runs/model"
    seed: int = 1
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "fp32"  # fp32 | bf16 | fp16 (fp16 only on CUDA)
    lr: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.98)
    weight_decay: float = 0.01
    schedule: str = "inverse_sqrt"  # inverse_sqrt | cosine | constant
    warmup_steps: int = 500
    min_lr_ratio: float = 0.0  # cosine: final lr as a fraction of lr
    max_steps: int = 2000
    max_epochs: int = 0  # 0: no limit
    max_minutes: float = 0.0  # 0: no limit; stops at the first step past the budget
    label_smoothing: float = 0.1
    clip_norm: float = 1.0  # 0: no clipping
    accumulate: int = 1
    log_every: int = 50
    validate_every: int = 500  # also the checkpoint interval
    metric: str = "bleu"  # bleu | chrf | rouge | gleu | exact | none
    valid_decode_limit: int = 300  # sentences decoded for the validation metric
    keep_checkpoints: int = 2
    progress: bool = True
    # A model directory whose weights start the model wherever parameter names and shapes
    # agree (fine-tuning; a drafter starting from the model it drafts for). Not on --resume.
    init_from: str = ""
    # nar_editor only: weight of the output-length loss (one cross-entropy per sentence),
    # added to the summed token loss
    length_weight: float = 1.0
    # Models with model.action_head: weight of the action classifier's cross-entropy against
    # the gold actions, added to the token loss of the fused distribution (Li et al. 2022).
    action_weight: float = 1.0
    # SeqPE's auxiliary objectives (model.position = "seqpe"; objectives/seqpe.py), weighted
    # per target token like the token loss: positions nearer an anchor embed more alike
    # (contrastive), and positions shifted past the training length keep the similarity
    # pattern of the in-distribution ones (distillation). Both sample positions up to
    # seqpe_max_position (0: the largest position SeqPE encodes).
    seqpe_contrastive_weight: float = 0.0
    seqpe_distill_weight: float = 0.0
    seqpe_max_position: int = 0
    # CLAPS (Lee et al. 2021; objectives/claps.py): claps_weight > 0 adds, per target token
    # like the token loss, the contrastive loss between pooled source and target states
    # (cosine over claps_temperature; negatives: the batch's other targets and imposters,
    # the target states pushed claps_imposter_eps up the NLL; positives: the target and its
    # distant target, pushed claps_distant_eta up the contrastive loss, then pulled back
    # until its output distribution is within claps_kl_bound nats per token of the
    # original's) plus that KL per token. Needs model.contrastive_dim > 0.
    claps_weight: float = 0.0
    claps_temperature: float = 0.1
    claps_imposter_eps: float = 1.0
    claps_distant_eta: float = 3.0
    claps_kl_bound: float = 0.1
    # Denoising pretraining and E2S2 (Zhong et al. 2022; objectives/e2s2.py). The source is
    # corrupted on the fly, position by position (so every encoder position keeps its
    # original token): noise_mask_rate of its text tokens become <mask>, noise_replace_rate
    # a random ordinary token. E2S2 adds, each with its weight, the encoder-side restore
    # loss (the original token at every corrupted position, from the encoder states) and an
    # InfoNCE loss between the mean-pooled encoder states of the clean and the corrupted
    # view of each sentence, the batch's other sentences being the negatives.
    noise_mask_rate: float = 0.0
    noise_replace_rate: float = 0.0
    e2s2_denoise_weight: float = 0.0
    e2s2_contrastive_weight: float = 0.0
    e2s2_temperature: float = 0.1

    def __post_init__(self) -> None:
        _check_choice("train.precision", self.precision, ("fp32", "bf16", "fp16"))
        _check_choice("train.schedule", self.schedule, ("inverse_sqrt", "cosine", "constant"))
        if self.accumulate < 1:
            raise ConfigError(f"train.accumulate must be >= 1, got {self.accumulate}")
        for name in (
            "length_weight",
            "action_weight",
            "seqpe_contrastive_weight",
            "seqpe_distill_weight",
        ):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        if self.seqpe_max_position < 0:
            raise ConfigError(
                f"train.seqpe_max_position must be >= 0, got {self.seqpe_max_position}"
            )
        self._check_claps()

    def _check_claps(self) -> None:
        for name in ("claps_weight", "claps_imposter_eps", "claps_distant_eta", "claps_kl_bound"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        if not self.claps_temperature > 0:
            raise ConfigError(f"train.claps_temperature must be > 0, got {self.claps_temperature}")
        self._check_e2s2()

    def _check_e2s2(self) -> None:
        for name in ("noise_mask_rate", "noise_replace_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"train.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.noise_mask_rate + self.noise_replace_rate > 1:
            raise ConfigError(
                "train.noise_mask_rate + train.noise_replace_rate must be <= 1, got "
                f"{self.noise_mask_rate} + {self.noise_replace_rate}"
            )
        for name in ("e2s2_denoise_weight", "e2s2_contrastive_weight"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        if not self.e2s2_temperature > 0:
            raise ConfigError(f"train.e2s2_temperature must be > 0, got {self.e2s2_temperature}")
        if self.e2s2_denoise_weight > 0 and not self.corrupts_source:
            raise ConfigError(
                "train.e2s2_denoise_weight needs a corrupted source to restore: set "
                "train.noise_mask_rate or train.noise_replace_rate"
            )

    @property
    def corrupts_source(self) -> bool:
        return self.noise_mask_rate > 0 or self.noise_replace_rate > 0

    @property
    def uses_e2s2(self) -> bool:
        return self.e2s2_denoise_weight > 0 or self.e2s2_contrastive_weight > 0

    @property
    def uses_seqpe_objectives(self) -> bool:
        return self.seqpe_contrastive_weight > 0 or self.seqpe_distill_weight > 0


@dataclass(frozen=True)
class DecodeConfig:
    decoder: str = "greedy"  # greedy | beam | sample (and the accelerated decoders)
    max_new_tokens: int = 128
    batch_size: int = 32
    beam_size: int = 4
    length_penalty: float = 1.0
    early_stopping: bool = False  # True: stop at beam_size finished hypotheses
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0
    draft_len: int = 64  # iad: most source tokens drafted per row and pass
    draft_tokens_per_pass: int = 64  # iad, gad: draft budget shared by the rows of a batch
    ngram: int = 1  # iad: generated tokens matched against the source to realign after an edit
    draft_k: int = 4  # spec: draft tokens per pass to start with (adapted per row)
    max_draft_k: int = 16  # spec: upper bound for the adapted k
    # GAD++ relaxed acceptance (lossy): a draft token is accepted when it is among the
    # verifier's relaxed_top best tokens and its log-probability is within relaxed_gap of
    # the best one's. relaxed_top = 1 is exact verification: the output is greedy's.
    relaxed_top: int = 1
    relaxed_gap: float = 0.0


@dataclass(frozen=True)
class ExperimentConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)

    def __post_init__(self) -> None:
        """Options of one section that only make sense with another's."""
        train, model = self.train, self.model
        if train.uses_seqpe_objectives and model.position != "seqpe":
            raise ConfigError(
                "train.seqpe_contrastive_weight and train.seqpe_distill_weight need "
                f"model.position='seqpe', got {model.position!r}"
            )
        if train.uses_e2s2 and (model.architecture != "transformer" or model.action_head):
            raise ConfigError(
                "train.e2s2_denoise_weight and train.e2s2_contrastive_weight need a plain "
                f"encoder-decoder (model.architecture='transformer', no model.action_head), "
                f"got {model.architecture!r}"
                + (" with an action head" if model.action_head else "")
            )
        if model.position == "seqpe" and train.seqpe_max_position >= model.seqpe_limit:
            raise ConfigError(
                f"train.seqpe_max_position={train.seqpe_max_position} is past what "
                f"model.seqpe_digits={model.seqpe_digits} encode ({model.seqpe_limit - 1})"
            )
        if train.claps_weight > 0 and not model.contrastive_dim:
            raise ConfigError(
                "train.claps_weight > 0 needs model.contrastive_dim > 0 (the projection head "
                "of the contrastive loss)"
            )
        if train.claps_weight > 0 and train.uses_e2s2:
            raise ConfigError(
                "train.claps_weight and train.e2s2_* weights cannot be combined: each replaces "
                "the token loss with its own pass over the model"
            )


def _check_choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(valid)}")


def from_dict(cls: type[T], values: dict[str, Any], where: str = "") -> T:
    """Build a config dataclass from plain values, checking keys and types."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    kwargs = {}
    for key, value in values.items():
        if key not in hints:
            valid = ", ".join(sorted(names))
            raise ConfigError(f"unknown key {where + key!r}; valid keys: {valid}")
        kwargs[key] = _coerce(value, hints[key], f"{where}{key}")
    return cls(**kwargs)


def _coerce(value: Any, kind: Any, name: str) -> Any:
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise ConfigError(f"[{name}] must be a table, got {type(value).__name__}")
        return from_dict(kind, value, f"{name}.")
    origin = typing.get_origin(kind)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{name} must be a list, got {value!r}")
        args = typing.get_args(kind)
        item = args[0]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, item, name) for v in value)
        if len(value) != len(args):
            raise ConfigError(f"{name} must have {len(args)} items, got {len(value)}")
        return tuple(_coerce(v, a, name) for v, a in zip(value, args, strict=True))
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(kind):
            return None
        return _coerce(value, _non_none(kind), name)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind in (int, float, str, bool) and not (
        isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    ):
        raise ConfigError(f"{name} must be {kind.__name__}, got {value!r}")
    return value


def _non_none(kind: Any) -> Any:
    """The one non-None member of an optional type, e.g. bool for ``bool | None``."""
    (member,) = [a for a in typing.get_args(kind) if a is not type(None)]
    return member


def parse_override(text: str) -> tuple[list[str], str]:
    """Split ``section.key=value`` into its key path and raw value."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form section.key=value")
    key, raw = text.split("=", 1)
    return key.strip().split("."), raw.strip()


def _parse_value(raw: str, kind: Any, name: str) -> Any:
    """Parse an override string by the type of the field it sets."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        if raw.lower() in ("none", "null"):
            return None
        return _parse_value(raw, _non_none(kind), name)
    if kind is bool:
        lowered = raw.lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no"):
            raise ConfigError(f"{name} must be true or false, got {raw!r}")
        return lowered in ("true", "1", "yes")
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if kind is float:
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if typing.get_origin(kind) is tuple:
        parts = [p.strip() for p in raw.strip("[]()").split(",") if p.strip()]
        args = typing.get_args(kind)
        item_kinds = [args[0]] * len(parts) if args[-1] is Ellipsis else list(args)
        if len(item_kinds) != len(parts):
            raise ConfigError(f"{name} must have {len(item_kinds)} comma-separated items")
        return tuple(_parse_value(p, k, name) for p, k in zip(parts, item_kinds, strict=True))
    return _unquote(raw)


def _unquote(raw: str) -> str:
    """``"text"`` or ``'text'`` -> text, as a shell user would expect from --set."""
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    return raw


def apply_overrides(config: T, overrides: list[str]) -> T:
    """Return a copy of ``config`` with ``section.key=value`` overrides applied."""
    for text in overrides:
        path, raw = parse_override(text)
        config = _replace_path(config, path, raw, ".".join(path))
    return config


def _replace_path(config: Any, path: list[str], raw: str, full: str) -> Any:
    hints = typing.get_type_hints(type(config))
    key = path[0]
    if key not in hints:
        valid = ", ".join(sorted(hints))
        raise ConfigError(f"unknown key {full!r}: {key!r} is not one of {valid}")
    if len(path) == 1:
        if dataclasses.is_dataclass(hints[key]):
            raise ConfigError(f"{full!r} is a section; set one of its keys, e.g. {full}.KEY=...")
        return dataclasses.replace(config, **{key: _parse_value(raw, hints[key], full)})
    child = getattr(config, key)
    if not dataclasses.is_dataclass(child):
        raise ConfigError(f"{key!r} in {full!r} is not a section")
    return dataclasses.replace(config, **{key: _replace_path(child, path[1:], raw, full)})


def load_config(path: str | Path, overrides: list[str] = ()) -> ExperimentConfig:
    """Read an experiment TOML file and apply command-line overrides."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            values = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not valid UTF-8 (byte {error.start})") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
    config = from_dict(ExperimentConfig, values)
    return apply_overrides(config, list(overrides))


def to_dict(config: Any) -> dict[str, Any]:
    """Plain JSON-ready values of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))
