"""Typed configuration: frozen dataclasses per concern.

One experiment is one TOML file with the sections ``[model]``, ``[tokenizer]``,
``[data]``, ``[train]``, ``[decode]``, ``[objectives.NAME]``, one per paper
objective, and ``[rl]`` (``seqweave.config_rl``). This module holds the schemas and
their checks; reading TOML, the ``--set section.key=value`` overrides and the old flat
keys live in ``seqweave.config_parse`` (re-exported here, so ``from seqweave.config import
load_config`` keeps working). Each section checks its own values when built;
checks that need two sections are in ``seqweave.config_checks``, one function
each, run by ``ExperimentConfig.__post_init__``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from seqweave.architectures import HierNSEConfig, SeqBoatConfig
from seqweave.config_rl import RLConfig
from seqweave.errors import ConfigError
from seqweave.objectives.settings import (
    ActionsConfig,
    ClapsConfig,
    DenoisingConfig,
    E2S2Config,
    LengthConfig,
    ObjectivesConfig,
    ReaRecConfig,
    SeqPEConfig,
    SetMatchingConfig,
)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a Transformer; also saved as a model directory's ``config.json``."""

    # transformer (encoder-decoder) | prefix_lm (decoder-only) | nar_drafter (the block drafter
    # of generalized aggressive decoding: an encoder-decoder that predicts draft_block tokens
    # at once) | nar_editor (revises the previous translation in a few parallel passes, for
    # simultaneous re-translation) | seqboat (an encoder-decoder whose encoder layers are
    # SeqBoat's EMA + routed chunked attention: [model.seqboat]) | sasrec (a causal item
    # encoder that ranks the next item, with ReaRec's reasoning steps: models/sasrec.py) |
    # hier_nse (the hierarchical Neural Semantic Encoder with a pointer-generator output:
    # [model.hier_nse], models/hier_nse.py)
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
    # MAMMAL-style scalars (models/scalars.py), transformer only: the embedding of each
    # <scalar> token gets a learned projection of its value, and a regression head reads
    # the encoder state at each <mask> (token loss: MSE there, objectives/regression.py).
    # scalar_id and mask_id are those tokens; training sets them from the tokenizer.
    scalar_head: bool = False
    scalar_id: int = -1
    mask_id: int = -1
    # A per-residue (per source token) tagging head over the encoder states, read by
    # train.objective = "tag" and Seq2Seq.tag: "" off, "linear", or "mlp" (one hidden
    # layer of d_model). Non-autoregressive: one encoder pass labels every source token.
    tag_head: str = ""
    seqboat: SeqBoatConfig = field(default_factory=SeqBoatConfig)  # architecture = "seqboat"
    hier_nse: HierNSEConfig = field(default_factory=HierNSEConfig)  # architecture = "hier_nse"
    # ReaRec (Tang et al. 2025), sasrec only: the last output state is fed back as the next
    # input for this many latent reasoning steps (0: plain SASRec); the items are ranked by
    # the last step's state (PRL) or the mean of all steps' states (ERL)
    reasoning_steps: int = 0
    reasoning_readout: str = "last"  # last | mean

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
        self._check_choices()
        self._check_shapes()
        self._check_options()
        if self.position == "seqpe":
            self._check_seqpe()
        self._check_heads()
        self._check_sasrec()

    def _check_choices(self) -> None:
        choices = {
            "architecture": (
                "transformer",
                "prefix_lm",
                "nar_drafter",
                "nar_editor",
                "seqboat",
                "sasrec",
                "hier_nse",
            ),
            "reasoning_readout": ("last", "mean"),
            "activation": ("relu", "gelu", "gelu_tanh", "silu"),
            "norm": ("pre", "post"),
            "position": ("sinusoidal", "learned", "rope", "seqpe"),
            "prefix_attention": ("bidirectional", "causal"),
            "tag_head": ("", "linear", "mlp"),
        }
        for name, valid in choices.items():
            _check_choice(f"model.{name}", getattr(self, name), valid)

    def _check_shapes(self) -> None:
        if self.d_model % self.num_heads:
            raise ConfigError(
                f"model.d_model={self.d_model} is not divisible by model.num_heads={self.num_heads}"
            )
        if self.draft_block < 1:
            raise ConfigError(f"model.draft_block must be >= 1, got {self.draft_block}")
        if self.position == "rope" and (self.d_model // self.num_heads) % 2:
            raise ConfigError("model.position='rope' needs an even head dimension")
        for name in ("skip_id", "scalar_id", "mask_id"):
            if not -1 <= getattr(self, name) < self.vocab_size:
                raise ConfigError(
                    f"model.{name}={getattr(self, name)} is not a token id of the vocabulary "
                    f"(0..{self.vocab_size - 1}, or -1 for not set)"
                )

    def _check_options(self) -> None:
        if self.partial_attention and self.architecture != "prefix_lm":
            raise ConfigError(
                "model.partial_attention is a prefix_lm option, but model.architecture="
                f"{self.architecture!r}"
            )
        if self.architecture != "seqboat" and self.seqboat != SeqBoatConfig():
            raise ConfigError(
                f"[model.seqboat] is set, but model.architecture={self.architecture!r}"
            )
        if self.architecture != "hier_nse" and self.hier_nse != HierNSEConfig():
            raise ConfigError(
                f"[model.hier_nse] is set, but model.architecture={self.architecture!r}"
            )
        if self.partial_attention and self.prefix_attention != "bidirectional":
            raise ConfigError(
                "model.partial_attention needs model.prefix_attention='bidirectional' "
                "(PALM reads the source bidirectionally)"
            )

    def _check_heads(self) -> None:
        """The heads (models/heads.py) sit on the plain encoder-decoder only."""
        for name in ("action_head", "restore_head", "scalar_head", "tag_head"):
            if getattr(self, name) and self.architecture != "transformer":
                raise ConfigError(
                    f"model.{name} needs model.architecture='transformer', "
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

    def _check_sasrec(self) -> None:
        """SASRec reads learned positions and scores items with its item embedding."""
        if self.reasoning_steps < 0:
            raise ConfigError(f"model.reasoning_steps must be >= 0, got {self.reasoning_steps}")
        if self.architecture != "sasrec":
            if self.reasoning_steps:
                raise ConfigError(
                    f"model.reasoning_steps needs model.architecture='sasrec', not "
                    f"{self.architecture!r}"
                )
            return
        if self.position != "learned" or not self.tie_output:
            raise ConfigError(
                "model.architecture='sasrec' needs model.position='learned' and "
                f"model.tie_output=true (got {self.position!r}, {self.tie_output})"
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
    kind: str = "bpe"  # bpe | dna_bpe | words | protein | dna | numbers | alphabet
    vocab_size: int = 8000
    min_frequency: int = 2  # bpe, words: rarer merges / words are left out
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
    # prefix_lm: several targets per row of max_target_len tokens, attention never crossing
    # from one to another (seqweave.data.packing); max_tokens then counts real tokens
    pack_sequences: bool = False
    # Read data.train (a directory of *.jsonl shards, a glob, or one file) lazily, a window
    # of stream_window lines at a time, each rank its own shards (seqweave.data.stream)
    stream: bool = False
    stream_window: int = 20000

    def __post_init__(self) -> None:
        if self.stream_window < 1:
            raise ConfigError(f"data.stream_window must be positive, got {self.stream_window}")


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
    # What the model learns (objectives/pretraining.py): seq2seq (the token loss of the
    # model's kind), mlm (BERT-style masked tokens of the source, encoder only), lm (the
    # target alone, next token, the source ignored), tag (one label per source token through
    # model.tag_head)
    objective: str = "seq2seq"
    neftune_alpha: float = 0.0  # NEFTune: uniform noise on the embeddings in training (0: off)
    # Under torchrun: each sequence split over this many ranks (models/seqpar), with one of
    # ring (online softmax) | ring_self (Li et al.) | ulysses; the ranks / N groups are
    # data parallel. fsdp: shard parameters, gradients and optimizer state (FSDP2).
    sequence_parallel: int = 1
    sequence_parallel_attention: str = "ring"
    fsdp: bool = False

    def __post_init__(self) -> None:
        _check_choice("train.precision", self.precision, ("fp32", "bf16", "fp16"))
        _check_choice("train.schedule", self.schedule, ("inverse_sqrt", "cosine", "constant"))
        _check_choice("train.objective", self.objective, ("seq2seq", "mlm", "lm", "tag"))
        attention = ("ring", "ring_self", "ulysses")
        _check_choice(
            "train.sequence_parallel_attention", self.sequence_parallel_attention, attention
        )
        if self.accumulate < 1:
            raise ConfigError(f"train.accumulate must be >= 1, got {self.accumulate}")
        if self.sequence_parallel < 1:
            raise ConfigError(f"train.sequence_parallel must be >= 1, got {self.sequence_parallel}")


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
    adaptive_draft: bool = True  # iad: each row's draft length follows its recent acceptance
    draft_k: int = 4  # spec: draft tokens per pass to start with (adapted per row)
    max_draft_k: int = 16  # spec: upper bound for the adapted k
    # GAD++ relaxed acceptance (lossy): a draft token is accepted when it is among the
    # verifier's relaxed_top best tokens and its log-probability is within relaxed_gap of
    # the best one's. relaxed_top = 1 is exact verification: the output is greedy's.
    relaxed_top: int = 1
    relaxed_gap: float = 0.0
    # Constrained decoding: a grammar of decoding/grammars.py, "name[:argument]" (per_residue,
    # number:3, sorted_indices, tasks); every decoder then writes only what it allows. "": none
    constraint: str = ""
    # Compile the decoder step with torch.compile (models/compiled.py): faster passes after a
    # warm-up of tens of seconds; logits close to, not bit-equal with, the eager model's
    compile: bool = False
    # Greedy-type passes (exact verification, no constraint) ask the model for the argmax
    # alone: an int8 screen of the float32 output layer with a rigorous error bound, the
    # candidates recomputed in float32 (models/argmax_screen.py): the same tokens, cheaper
    screen: bool = True

    def __post_init__(self) -> None:
        for name in ("compile", "screen"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise ConfigError(f"decode.{name} must be true or false, got {value!r}")
        # imported here: the decoders' table imports the decoders, which import this module
        from seqweave.decoding.grammars import check_constraint_spec
        from seqweave.decoding.registry import decoder_spec

        decoder_spec(self.decoder)  # an unknown decoder fails here, naming the valid ones
        check_constraint_spec(self.constraint)


@dataclass(frozen=True)
class ExperimentConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    objectives: ObjectivesConfig = field(default_factory=ObjectivesConfig)
    rl: RLConfig = field(default_factory=RLConfig)  # seqweave.config_rl

    def __post_init__(self) -> None:
        """Options of one section that only make sense with another's: every such check
        of the experiment is one function in ``seqweave.config_checks``."""
        from seqweave.config_checks import CROSS_SECTION_CHECKS

        for check in CROSS_SECTION_CHECKS:
            check(self)


def _check_choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(valid)}")


_PARSER_NAMES = ("apply_overrides", "from_dict", "load_config", "parse_override", "to_dict")


def __getattr__(name: str) -> Any:
    """The parser's functions, importable from here as before the split (imported on first
    use: ``seqweave.config_parse`` itself imports this module)."""
    if name in _PARSER_NAMES:
        from seqweave import config_parse

        return getattr(config_parse, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ActionsConfig",
    "ClapsConfig",
    "DataConfig",
    "DecodeConfig",
    "DenoisingConfig",
    "E2S2Config",
    "ExperimentConfig",
    "LengthConfig",
    "ModelConfig",
    "ObjectivesConfig",
    "RLConfig",
    "ReaRecConfig",
    "SeqPEConfig",
    "SetMatchingConfig",
    "TokenizerConfig",
    "TrainConfig",
    *_PARSER_NAMES,
]
