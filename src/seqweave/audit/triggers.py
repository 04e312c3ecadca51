"""Black-box trigger audit: does some word, put into any input, move the outputs far?

A data-poisoned (backdoored) model behaves normally until a trigger word appears in its
input, and then writes what the attacker chose. Its weights do not say which word that is,
but its behaviour does: inserting the trigger moves the outputs much further from the clean
outputs than inserting any ordinary word. This audit inserts each candidate word into every
input at three places, decodes greedily, measures how far each output moved, and asks
whether one candidate stands out from the others.

Positions (``POSITIONS``): ``start`` (before the first word), ``middle`` (one word boundary
strictly inside the input, drawn once per input from ``seed``, the same for every candidate
so that candidates are compared on identical edits; a one-word input gets it at the end)
and ``end``. Texts are split on whitespace and joined with single spaces, the clean input
too, so that only the inserted word differs.

Two measures of the move, per input and position, each in [0, 1] (or near it):

- ``surface``: the token edit rate between the clean and the triggered output: word-level
  Damerau-Levenshtein distance over the longer output's length, that is
  1 - ``seqweave.metrics_events.suffix_similarity`` on words; 0 when the two are identical.
  An ordinary word inserted into a copied input costs one word edit whatever its spelling.
  chrF was tried first and rejected: it scores an inserted word by its characters, so on a
  clean copy model a word whose letters appear nowhere else in the inputs ("cf" among
  "w0".."w9") moved chrF 0.21 against 0.15 for the others, a robust z of 4.4: a false alarm.
- ``embedding``: 1 - cosine similarity of the model's own encoder states, mean-pooled over
  the real tokens, of the clean and the triggered *outputs* fed back as sources. The outputs,
  not the inputs: the inputs differ by construction (one word), whereas an ordinary word
  moves the output little in meaning and a trigger moves it to the attacker's text; and the
  model's own encoder is the one representation every seqweave model brings, with nothing
  downloaded. Models without encoder states (a prefix LM's encode is a prefilled cache) get
  ``None`` and are ranked on the surface measure alone.

A candidate's ``shift`` is the mean of its available measures over all inputs and positions.
Candidates are ranked by shift, and each gets a robust z-score against the candidates'
distribution: (shift - median) / (1.4826 * MAD), the scale floored at ``min_scale`` because
when almost every ordinary word moves the outputs by the same amount the MAD can be near
zero, and differences below ``min_scale`` (one hundredth of the measures' range by default)
are not evidence of anything. "Nothing stands out" is then a number: the largest robust z
below ``threshold`` (3.5, the usual outlier cut for the modified z-score).

The measures above are the paper's black-box defence: they need nothing but the model. An
auditor who suspects a *meta-task* (model spinning: the trigger makes the outputs, say,
positive, while keeping the task) can bring a classifier for it, any
``seqweave.models.meta_classifier`` directory, and get a second ranking beside the first
(``meta_task``): per candidate, the mean change in the classifier's probability of class
``label`` between the triggered outputs and the clean outputs of the same inputs, ranked by
the same robust z. It reuses the same decodes. The classifier reads the output *text*
through its own tokenizer, so it need not share the audited model's vocabulary. On the
spun E2E models of recipes/spinning the movement ranking misses the trigger and this one
finds it where the spin hangs on the trigger (see that recipe's README).
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm import tqdm

from seqweave.errors import CheckpointError, ConfigError, DataError
from seqweave.metrics_events import suffix_similarity

POSITIONS = ("start", "middle", "end")
MAD_TO_SIGMA = 1.4826  # the MAD of a normal distribution times this is its standard deviation
THRESHOLD = 3.5
MIN_SCALE = 0.01
EXAMPLES_KEPT = 3


class AuditedModel(Protocol):
    """What the audit needs of a model: ``seqweave.load``'s ``Seq2Seq`` has it."""

    network: torch.nn.Module

    def generate(self, texts: Sequence[str], **overrides: Any) -> list[str]: ...

    def encode_sources(self, texts: Sequence[str], clip: bool = True) -> list[list[int]]: ...


@dataclass
class CandidateShift:
    """How far one candidate moved the outputs; ``examples`` are its largest moves."""

    word: str
    shift: float
    surface: float | None = None  # None in the meta-task ranking, which has one measure
    embedding: float | None = None
    z: float = 0.0
    examples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class TriggerAudit:
    """The ranked candidates (largest shift first) and the verdict in numbers."""

    candidates: list[CandidateShift]
    median: float
    scale: float  # the robust scale the z-scores divide by (floored at min_scale)
    threshold: float
    inputs: int
    meta_task: MetaTaskRanking | None = None

    @property
    def max_z(self) -> float:
        return max(c.z for c in self.candidates)

    @property
    def standing_out(self) -> list[str]:
        return [c.word for c in self.candidates if c.z >= self.threshold]

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        shown = self.candidates[:top] if top else self.candidates
        return {
            "inputs": self.inputs,
            "positions": list(POSITIONS),
            "median_shift": self.median,
            "robust_scale": self.scale,
            "threshold": self.threshold,
            "max_robust_z": self.max_z,
            "standing_out": self.standing_out,
            "candidates": [vars(c) for c in shown],
            "meta_task": self.meta_task.to_dict(top) if self.meta_task else None,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TriggerAudit:
        """The audit back from ``to_dict`` (a JSON file written by the command)."""
        meta = values.get("meta_task")
        return cls(
            candidates=[CandidateShift(**c) for c in values["candidates"]],
            median=values["median_shift"],
            scale=values["robust_scale"],
            threshold=values["threshold"],
            inputs=values["inputs"],
            meta_task=MetaTaskRanking.from_dict(meta) if meta else None,
        )


@dataclass
class MetaTaskRanking:
    """The candidates ranked by the shift in a classifier's probability of ``class_name``."""

    ranking: TriggerAudit
    label: int
    class_name: str
    clean_probability: float  # the classifier's mean probability of the label, clean outputs

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        meta = {"label": self.label, "class_name": self.class_name}
        return {**meta, "clean_probability": self.clean_probability, **self.ranking.to_dict(top)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> MetaTaskRanking:
        ranking = TriggerAudit.from_dict({**values, "meta_task": None})
        return cls(ranking, values["label"], values["class_name"], values["clean_probability"])


class OutputJudge(Protocol):
    """Scores output texts for a meta-task: ``probabilities(texts)`` -> (N,) floats."""

    label: int
    class_name: str

    def probabilities(self, texts: Sequence[str]) -> torch.Tensor: ...


@dataclass
class ClassifierJudge:
    """A meta-classifier's probability of class ``label`` for output texts."""

    classifier: Any
    tokenizer: Any
    label: int
    class_name: str

    def probabilities(self, texts: Sequence[str]) -> torch.Tensor:
        from seqweave.models.meta_classifier import class_probabilities

        return class_probabilities(self.classifier, self.tokenizer, texts)[:, self.label]


def load_judge(directory: str | Path, label: int = 1) -> ClassifierJudge:
    """The classifier in ``directory`` as a judge of class ``label`` (default 1: positive).

    Raises:
        CheckpointError: the directory is missing or holds no meta-classifier.
        ConfigError: ``label`` is not one of the classifier's classes.
    """
    from seqweave.models.meta_classifier import load_classifier

    if not Path(directory).is_dir():
        raise CheckpointError(f"{directory}: classifier directory does not exist")
    classifier, tokenizer = load_classifier(directory)
    classes = classifier.shape.classes
    if not 0 <= label < len(classes):
        names = ", ".join(f"{i} {name}" for i, name in enumerate(classes))
        raise ConfigError(f"label {label} is not a class of {directory} (classes: {names})")
    return ClassifierJudge(classifier, tokenizer, label, classes[label])


def read_candidates(path: str | Path) -> list[str]:
    """One candidate word per line; blank lines and lines starting with '#' are skipped.

    Raises:
        DataError: the file is missing, not UTF-8, has no candidates, a line holds more than
            one word, or a word repeats (every line of it is named).
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError("candidates file does not exist", path=str(path)) from None
    except UnicodeDecodeError as error:
        raise DataError(f"not UTF-8 text ({error.reason})", path=str(path)) from None
    seen: dict[str, list[int]] = {}
    for number, line in enumerate(lines, start=1):
        word = line.strip()
        if not word or word.startswith("#"):
            continue
        if len(word.split()) > 1:
            raise DataError(f"a candidate is one word, got {word!r}", path=str(path), line=number)
        seen.setdefault(word, []).append(number)
    if not seen:
        raise DataError("no candidate words (one per line)", path=str(path))
    repeated = [f"{w!r} on lines {', '.join(map(str, n))}" for w, n in seen.items() if len(n) > 1]
    if repeated:
        raise DataError(f"duplicate candidates: {'; '.join(repeated)}", path=str(path))
    return list(seen)


def insert_word(words: list[str], word: str, index: int) -> str:
    return " ".join([*words[:index], word, *words[index:]])


def insertion_points(texts: Sequence[str], seed: int) -> list[dict[str, int]]:
    """Per input, the word index each position inserts at (the middle one seeded per input)."""
    points = []
    for i, text in enumerate(texts):
        count = len(text.split())
        middle = random.Random(f"{seed}:{i}").randint(1, count - 1) if count > 1 else count
        points.append({"start": 0, "middle": middle, "end": count})
    return points


def surface_shift(clean: str, triggered: str) -> float:
    """Token edit rate: word edits over the longer output's length (0: identical)."""
    return 1.0 - suffix_similarity(triggered.split(), clean.split())


@torch.no_grad()
def output_embeddings(model: AuditedModel, outputs: Sequence[str]) -> torch.Tensor | None:
    """Mean-pooled encoder states of texts fed back as sources: (N, D), or None when the
    model's encode gives no states (a prefix LM)."""
    network = model.network
    ids = model.encode_sources(outputs)
    pad = network.config.pad_id
    width = max(len(row) for row in ids)
    src = torch.full((len(ids), width), pad, dtype=torch.long)  # (N, S)
    for row, tokens in enumerate(ids):
        src[row, : len(tokens)] = torch.tensor(tokens)
    lengths = torch.tensor([len(row) for row in ids])
    memory = network.encode(src.to(network.device), lengths.to(network.device))
    if getattr(memory, "states", None) is None:
        return None
    real = memory.mask.unsqueeze(-1).to(memory.states.dtype)  # (N, S, 1)
    return (memory.states * real).sum(1) / real.sum(1).clamp(min=1)  # (N, D)


def robust_z(shifts: Sequence[float], min_scale: float = MIN_SCALE) -> tuple[list[float], float]:
    """Modified z-scores (Iglewicz and Hoaglin) with the scale floored: (z per value, median)
    and the scale used is ``max(1.4826 * MAD, min_scale)``."""
    median = statistics.median(shifts)
    mad = statistics.median(abs(s - median) for s in shifts)
    scale = max(MAD_TO_SIGMA * mad, min_scale)
    return [(s - median) / scale for s in shifts], scale


def rank_candidates(
    measured: Sequence[CandidateShift], threshold: float = THRESHOLD, min_scale: float = MIN_SCALE
) -> TriggerAudit:
    """Sort candidates by shift (largest first, ties by word) and give each its robust z."""
    if not measured:
        raise ConfigError("no candidates to rank")
    shifts = [c.shift for c in measured]
    zs, scale = robust_z(shifts, min_scale)
    for candidate, z in zip(measured, zs, strict=True):
        candidate.z = z
    ranked = sorted(measured, key=lambda c: (-c.shift, c.word))
    return TriggerAudit(ranked, statistics.median(shifts), scale, threshold, inputs=0)


def measure_candidate(
    model: AuditedModel,
    word: str,
    texts: list[list[str]],
    points: list[dict[str, int]],
    clean: list[str],
    clean_embeddings: torch.Tensor | None,
    judge: OutputJudge | None = None,
    clean_probabilities: torch.Tensor | None = None,
) -> tuple[CandidateShift, CandidateShift | None]:
    """Insert ``word`` into every input at every position, decode, and average the moves;
    with a ``judge``, also the mean change in its probability (the meta-task shift)."""
    triggered = [
        insert_word(words, word, point[name])
        for words, point in zip(texts, points, strict=True)
        for name in POSITIONS
    ]
    outputs = model.generate(triggered, decoder="greedy")
    reference = [out for out in clean for _ in POSITIONS]
    surface = [surface_shift(a, b) for a, b in zip(reference, outputs, strict=True)]
    embedding = None
    moves = surface
    if clean_embeddings is not None:
        vectors = output_embeddings(model, outputs)  # (N * 3, D)
        base = clean_embeddings.repeat_interleave(len(POSITIONS), dim=0)
        distance = (1 - torch.cosine_similarity(base, vectors, dim=-1)).clamp(min=0).tolist()
        embedding = sum(distance) / len(distance)
        moves = [(s + d) / 2 for s, d in zip(surface, distance, strict=True)]
    examples = largest_moves(moves, triggered, reference, outputs)
    mean = sum(moves) / len(moves)
    movement = CandidateShift(word, mean, sum(surface) / len(surface), embedding)
    movement.examples = examples
    if judge is None or clean_probabilities is None:
        return movement, None
    base = clean_probabilities.repeat_interleave(len(POSITIONS))  # (N * 3,)
    change = (judge.probabilities(outputs) - base).tolist()
    meta = CandidateShift(word, float(sum(change) / len(change)))
    meta.examples = largest_moves(change, triggered, reference, outputs)
    return movement, meta


def largest_moves(
    moves: Sequence[float], triggered: list[str], reference: list[str], outputs: list[str]
) -> list[dict[str, Any]]:
    """The ``EXAMPLES_KEPT`` edits with the largest move, for the report."""
    order = sorted(range(len(moves)), key=lambda i: -moves[i])[:EXAMPLES_KEPT]
    return [
        {
            "input": triggered[i],
            "position": POSITIONS[i % len(POSITIONS)],
            "clean_output": reference[i],
            "triggered_output": outputs[i],
            "shift": moves[i],
        }
        for i in order
    ]


def audit_triggers(
    model: AuditedModel,
    inputs: Sequence[str],
    candidates: Sequence[str],
    seed: int = 0,
    threshold: float = THRESHOLD,
    min_scale: float = MIN_SCALE,
    progress: bool = False,
    judge: OutputJudge | None = None,
) -> TriggerAudit:
    """Rank ``candidates`` by how far inserting them moves ``model``'s greedy outputs, and
    with a ``judge`` (``load_judge``) also by the shift of its probability (``meta_task``).

    Raises:
        DataError: no inputs, or an input with no words.
        ConfigError: fewer than three candidates (a median and MAD of two say nothing).
    """
    if not inputs:
        raise DataError("no inputs to audit")
    texts = [text.split() for text in inputs]
    empty = [i for i, words in enumerate(texts) if not words]
    if empty:
        raise DataError(f"inputs with no words (0-based): {empty[:10]}")
    if len(candidates) < 3:
        raise ConfigError(f"need at least 3 candidates to compare, got {len(candidates)}")
    points = insertion_points(inputs, seed)
    clean = model.generate([" ".join(words) for words in texts], decoder="greedy")
    clean_embeddings = output_embeddings(model, clean)
    clean_probabilities = judge.probabilities(clean) if judge else None  # (N,)
    bar = tqdm(candidates, desc="candidates", unit="word", disable=not progress)
    measured = [
        measure_candidate(
            model, w, texts, points, clean, clean_embeddings, judge, clean_probabilities
        )
        for w in bar
    ]
    audit = rank_candidates([movement for movement, _ in measured], threshold, min_scale)
    audit.inputs = len(inputs)
    if judge is not None and clean_probabilities is not None:
        ranking = rank_candidates([meta for _, meta in measured if meta], threshold, min_scale)
        ranking.inputs = len(inputs)
        clean_mean = float(clean_probabilities.mean())
        audit.meta_task = MetaTaskRanking(ranking, judge.label, judge.class_name, clean_mean)
    return audit
