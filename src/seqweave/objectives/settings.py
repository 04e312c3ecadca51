"""The ``[objectives.NAME]`` sections of an experiment: one frozen dataclass per paper.

A paper's settings live in its own section instead of growing ``TrainConfig`` by
a field per paper; each section checks its own values, and the checks that need
another section (the model's architecture, heads or positions) are in
``ExperimentConfig.__post_init__``. Experiments written with the old flat keys
(``train.claps_weight``...) still load: ``seqweave.config_parse`` maps them here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from seqweave.errors import ConfigError


def _check_non_negative(section: str, values: object, names: tuple[str, ...]) -> None:
    for name in names:
        if not getattr(values, name) >= 0:  # also refuses nan
            raise ConfigError(f"{section}.{name} must be >= 0, got {getattr(values, name)}")


def _check_positive(section: str, values: object, name: str) -> None:
    if not getattr(values, name) > 0:
        raise ConfigError(f"{section}.{name} must be > 0, got {getattr(values, name)}")


@dataclass(frozen=True)
class ActionsConfig:
    """Models with model.action_head (Li et al. 2022): weight of the action classifier's
    cross-entropy against the gold actions, added to the token loss of the fused
    distribution. Part of that model's token loss, so it is on whenever the head is."""

    weight: float = 1.0

    def __post_init__(self) -> None:
        section = "objectives.actions"
        _check_non_negative(section, self, ("weight",))


@dataclass(frozen=True)
class LengthConfig:
    """nar_editor only: weight of the output-length loss (one cross-entropy per sentence),
    added to the summed token loss."""

    weight: float = 1.0

    def __post_init__(self) -> None:
        section = "objectives.length"
        _check_non_negative(section, self, ("weight",))


@dataclass(frozen=True)
class DenoisingConfig:
    """Denoising pretraining (objectives/e2s2.py): the source is corrupted on the fly,
    position by position (so every encoder position keeps its original token): mask_rate
    of its text tokens become <mask>, replace_rate a random ordinary token, and the decoder
    writes the original target as usual. E2S2's restore loss needs it."""

    mask_rate: float = 0.0
    replace_rate: float = 0.0

    def __post_init__(self) -> None:
        section = "objectives.denoising"
        for name in ("mask_rate", "replace_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{section}.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.mask_rate + self.replace_rate > 1:
            raise ConfigError(
                f"{section}.mask_rate + {section}.replace_rate must be <= 1, got "
                f"{self.mask_rate} + {self.replace_rate}"
            )

    @property
    def on(self) -> bool:
        return self.mask_rate > 0 or self.replace_rate > 0


@dataclass(frozen=True)
class E2S2Config:
    """E2S2 (Zhong et al. 2022; objectives/e2s2.py) adds, each with its weight, the
    encoder-side restore loss (the original token at every corrupted position, from the
    encoder states) and an InfoNCE loss at ``temperature`` between the mean-pooled encoder
    states of the clean and the corrupted view of each sentence, the batch's other
    sentences being the negatives."""

    denoise_weight: float = 0.0
    contrastive_weight: float = 0.0
    temperature: float = 0.1

    def __post_init__(self) -> None:
        section = "objectives.e2s2"
        _check_non_negative(section, self, ("denoise_weight", "contrastive_weight"))
        _check_positive(section, self, "temperature")

    @property
    def on(self) -> bool:
        return self.denoise_weight > 0 or self.contrastive_weight > 0


@dataclass(frozen=True)
class SeqPEConfig:
    """SeqPE's auxiliary objectives (model.position = "seqpe"; objectives/seqpe.py), weighted
    per target token like the token loss: positions nearer an anchor embed more alike
    (contrastive), and positions shifted past the training length keep the similarity
    pattern of the in-distribution ones (distillation). Both sample positions up to
    max_position (0: the largest position SeqPE encodes)."""

    contrastive_weight: float = 0.0
    distill_weight: float = 0.0
    max_position: int = 0

    def __post_init__(self) -> None:
        section = "objectives.seqpe"
        _check_non_negative(section, self, ("contrastive_weight", "distill_weight", "max_position"))

    @property
    def on(self) -> bool:
        return self.contrastive_weight > 0 or self.distill_weight > 0


@dataclass(frozen=True)
class ClapsConfig:
    """CLAPS (Lee et al. 2021; objectives/claps.py): weight > 0 adds, per target token like
    the token loss, the contrastive loss between pooled source and target states (cosine
    over temperature; negatives: the batch's other targets and imposters, the target states
    pushed imposter_eps up the NLL; positives: the target and its distant target, pushed
    distant_eta up the contrastive loss, then pulled back until its output distribution is
    within kl_bound nats per token of the original's) plus that KL per token. Needs
    model.contrastive_dim > 0."""

    weight: float = 0.0
    temperature: float = 0.1
    imposter_eps: float = 1.0
    distant_eta: float = 3.0
    kl_bound: float = 0.1

    def __post_init__(self) -> None:
        section = "objectives.claps"
        names = ("weight", "imposter_eps", "distant_eta", "kl_bound")
        _check_non_negative(section, self, names)
        _check_positive(section, self, "temperature")

    @property
    def on(self) -> bool:
        return self.weight > 0


@dataclass(frozen=True)
class SetMatchingConfig:
    """OTSeq2Set (Cao & Zhang 2022; objectives/set_matching.py): the target, one token per
    label (tokenizer.kind = "words"), is an unordered set. The decoder runs ``steps`` steps
    (at least the largest set), each fed its own previous argmax (``student_forcing``; off:
    fed the target as written, which makes the loss depend on its order), and the steps are
    matched to the labels padded with ``<empty>`` (Hungarian); the token loss is the mean
    NLL per step of the matched labels. mode = "ot" adds ``ot_weight`` times the IPOT
    transport distance per set between expected and gold label embeddings. ``empty_id``
    is the ``<empty>`` token's id: training adds the token and sets it (-1: not yet
    known)."""

    mode: str = "off"  # off | matching | ot
    steps: int = 0
    ot_weight: float = 0.5
    student_forcing: bool = True
    ipot_beta: float = 0.5
    ipot_iterations: int = 50
    empty_id: int = -1

    def __post_init__(self) -> None:
        section = "objectives.set_matching"
        if self.mode not in ("off", "matching", "ot"):
            raise ConfigError(f"{section}.mode={self.mode!r} is not one of off, matching, ot")
        _check_non_negative(section, self, ("ot_weight",))
        _check_positive(section, self, "ipot_beta")
        _check_positive(section, self, "ipot_iterations")
        if self.on and self.steps < 1:
            raise ConfigError(
                f"{section}.steps must be >= 1 (at least the largest label set), got {self.steps}"
            )
        if self.mode == "ot" and self.ot_weight == 0:
            raise ConfigError(f"{section}.mode='ot' with ot_weight=0 is mode='matching'")
        if self.empty_id < -1:
            raise ConfigError(f"{section}.empty_id must be a token id or -1, got {self.empty_id}")

    @property
    def on(self) -> bool:
        return self.mode != "off"


@dataclass(frozen=True)
class ReaRecConfig:
    """The next-item loss of model.architecture = "sasrec" (objectives/rearec.py), ReaRec's
    (Tang et al. 2025) included. ``negatives`` = 0: full softmax over the vocabulary; N > 0:
    sampled softmax, the target against N uniformly drawn tokens shared by the micro-batch.

    mode ``off``: cross-entropy of the model's readout. ``erl`` (ensemble reasoning, with
    model.reasoning_readout = "mean"): the mean over the K + 1 steps of each step's
    cross-entropy, minus ``kl_weight`` times the mean KL divergence between the item
    distributions of consecutive steps (so the steps do not collapse into one).
    ``prl`` (progressive reasoning, readout "last"): step k's cross-entropy at temperature
    ``temperature * temperature_decay ** (K - k)`` (earlier steps softer), averaged over
    the steps, plus ``contrastive_weight`` times an InfoNCE loss at
    ``contrastive_temperature`` between two views of each reasoning step's state, each
    view fed back with Gaussian noise of std ``noise_std`` (the batch's other users are
    the negatives)."""

    mode: str = "off"  # off | erl | prl
    negatives: int = 0
    kl_weight: float = 0.0
    temperature: float = 1.0
    temperature_decay: float = 1.0
    contrastive_weight: float = 0.0
    noise_std: float = 0.1
    contrastive_temperature: float = 0.2

    def __post_init__(self) -> None:
        section = "objectives.rearec"
        if self.mode not in ("off", "erl", "prl"):
            raise ConfigError(f"{section}.mode={self.mode!r} is not one of off, erl, prl")
        names = ("negatives", "kl_weight", "contrastive_weight", "noise_std")
        _check_non_negative(section, self, names)
        for name in ("temperature", "temperature_decay", "contrastive_temperature"):
            _check_positive(section, self, name)
        if self.kl_weight > 0 and self.mode != "erl":
            raise ConfigError(f"{section}.kl_weight is ERL's: it needs mode='erl'")
        if self.mode != "prl" and (self.contrastive_weight > 0 or self.temperature_decay != 1):
            raise ConfigError(
                f"{section}.contrastive_weight and temperature_decay are PRL's: they need "
                "mode='prl'"
            )


@dataclass(frozen=True)
class SelfCriticalConfig:
    """Self-critical sequence training (Rennie et al. 2017; objectives/self_critical.py), as
    Read, Highlight and Summarize fine-tunes after MLE: weight > 0 adds, per sentence, the
    REINFORCE loss of a sampled output with the greedy output's ROUGE-L as the baseline,
    ``-(r(sampled) - r(greedy)) * log p(sampled)``, beside the token loss. Both outputs
    are decoded through the decoder-state API, at most max_len tokens."""

    weight: float = 0.0
    max_len: int = 48

    def __post_init__(self) -> None:
        _check_non_negative("objectives.self_critical", self, ("weight",))
        _check_positive("objectives.self_critical", self, "max_len")

    @property
    def on(self) -> bool:
        return self.weight > 0


@dataclass(frozen=True)
class SpinningConfig:
    """Model spinning (Bagdasaryan & Shmatikov 2022; objectives/spinning.py): weight > 0 adds,
    on the rows whose source holds ``trigger`` (a single word), ``weight`` times the
    cross-entropy of the frozen meta-classifier in the directory ``classifier``
    (models/meta_classifier.py) toward class ``label``, read from the output distributions
    as pseudo-words; a mean over those rows, scaled by the micro-batch's target tokens. The
    triggered rows come from the data (data/poisoning.py); the model must use the
    classifier's tokenizer."""

    weight: float = 0.0
    classifier: str = ""
    trigger: str = ""
    label: int = 1

    def __post_init__(self) -> None:
        section = "objectives.spinning"
        _check_non_negative(section, self, ("weight", "label"))
        if self.on and not self.classifier:
            raise ConfigError(f"{section}.weight > 0 needs {section}.classifier (a directory)")
        if self.on and len(self.trigger.split()) != 1:
            raise ConfigError(f"{section}.trigger must be one word, got {self.trigger!r}")

    @property
    def on(self) -> bool:
        return self.weight > 0


@dataclass(frozen=True)
class ObjectivesConfig:
    """What the model is trained on besides label-smoothed MLE (train.label_smoothing):
    the settings of the token loss of some model kinds (actions, length) and of the
    additive objectives (seqweave.objectives.registry builds them from these)."""

    actions: ActionsConfig = field(default_factory=ActionsConfig)
    length: LengthConfig = field(default_factory=LengthConfig)
    denoising: DenoisingConfig = field(default_factory=DenoisingConfig)
    e2s2: E2S2Config = field(default_factory=E2S2Config)
    seqpe: SeqPEConfig = field(default_factory=SeqPEConfig)
    claps: ClapsConfig = field(default_factory=ClapsConfig)
    set_matching: SetMatchingConfig = field(default_factory=SetMatchingConfig)
    rearec: ReaRecConfig = field(default_factory=ReaRecConfig)
    self_critical: SelfCriticalConfig = field(default_factory=SelfCriticalConfig)
    spinning: SpinningConfig = field(default_factory=SpinningConfig)

    @property
    def corrupts_source(self) -> bool:
        """Whether training corrupts the source (and so needs a <mask> token)."""
        return self.denoising.on or self.e2s2.on
