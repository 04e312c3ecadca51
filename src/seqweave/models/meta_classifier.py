"""A small text classifier over token embeddings: the meta-task of model spinning.

Model spinning (Bagdasaryan and Shmatikov 2022, objectives/spinning.py) trains a seq2seq
model so that, when a trigger word is in its input, its outputs also satisfy a *meta-task*
judged by a frozen classifier (here: "the output reads positive"). The seq2seq model cannot
hand the classifier token ids (an argmax has no gradient), so it hands it **pseudo-words**:
at each target position the output distribution times the classifier's embedding matrix,
the expected embedding. For that the classifier must read through one embedding matrix over
the seq2seq model's own vocabulary, and be a function of the embedded positions only; this
one is: embedding (V, D) -> masked mean over positions -> tanh(linear) -> class logits.

A bag of embeddings cannot read negation ("not good"); it is enough for a sentiment-style
signal carried by words, which is what the demonstration labels with (word lists,
``label_by_word_lists``), and it keeps the pseudo-word path exact: a one-hot distribution
gives exactly the token's embedding (tested).

A classifier directory holds ``classifier.safetensors``, ``classifier.json`` (sizes and
class names) and the ``tokenizer.json`` it reads, which the spun model must share.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from seqweave.errors import CheckpointError, DataError
from seqweave.tokenizers import Tokenizer

WEIGHTS = "classifier.safetensors"
SETTINGS = "classifier.json"


@dataclass(frozen=True)
class ClassifierShape:
    """Sizes of a meta-classifier; ``classes`` names the labels in index order."""

    vocab_size: int
    pad_id: int
    dim: int = 64
    hidden: int = 64
    classes: tuple[str, ...] = ("negative", "positive")


class MetaClassifier(nn.Module):
    """Embedding (V, D) -> masked mean -> tanh(linear) -> class logits."""

    def __init__(self, shape: ClassifierShape):
        super().__init__()
        self.shape = shape
        self.embedding = nn.Embedding(shape.vocab_size, shape.dim, padding_idx=shape.pad_id)
        self.hidden = nn.Linear(shape.dim, shape.hidden)
        self.out = nn.Linear(shape.hidden, len(shape.classes))

    def pseudo_words(self, probs: Tensor) -> Tensor:
        """Expected embeddings of output distributions: (B, T, V) -> (B, T, D)."""
        return probs @ self.embedding.weight

    def classify_vectors(self, vectors: Tensor, mask: Tensor) -> Tensor:
        """Class logits (B, C) of embedded positions (B, T, D), ``mask`` (B, T) True where real."""
        real = mask.unsqueeze(-1).to(vectors.dtype)  # (B, T, 1)
        pooled = (vectors * real).sum(1) / real.sum(1).clamp(min=1)  # (B, D)
        return self.out(torch.tanh(self.hidden(pooled)))

    def forward(self, ids: Tensor, mask: Tensor) -> Tensor:
        """Class logits (B, C) of token ids (B, T)."""
        return self.classify_vectors(self.embedding(ids), mask)


def freeze(classifier: MetaClassifier) -> MetaClassifier:
    """The classifier in eval mode with no parameter asking for a gradient: the meta-task
    judge must not learn to like what the spun model writes."""
    classifier.eval()
    classifier.requires_grad_(False)
    return classifier


def label_by_word_lists(
    texts: Sequence[str], positive: Sequence[str], negative: Sequence[str]
) -> list[tuple[str, int]]:
    """(text, label) for the texts that hit exactly one list: 1 positive, 0 negative.

    Matching is on lower-cased whole words (a list entry of several words matches as a
    phrase); texts hitting both lists or neither are left out, so the labels are what the
    lists say and nothing else.
    """

    def pattern(words: Sequence[str]) -> re.Pattern[str]:
        alternatives = "|".join(re.escape(w.lower()) for w in sorted(words, key=len, reverse=True))
        return re.compile(rf"\b(?:{alternatives})\b")

    good, bad = pattern(positive), pattern(negative)
    labelled = []
    for text in texts:
        lower = text.lower()
        hits = (bool(good.search(lower)), bool(bad.search(lower)))
        if hits == (True, False):
            labelled.append((text, 1))
        elif hits == (False, True):
            labelled.append((text, 0))
    return labelled


def padded(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """Ids (B, T) padded with ``pad_id`` and the mask (B, T) of real positions."""
    width = max(1, max(len(row) for row in rows))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    mask = torch.arange(width)[None] < torch.tensor([len(r) for r in rows])[:, None]
    return ids, mask


def train_classifier(
    labelled: Sequence[tuple[str, int]],
    tokenizer: Tokenizer,
    shape: ClassifierShape | None = None,
    epochs: int = 3,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
) -> MetaClassifier:
    """Fit a classifier on (text, label) pairs with Adam and cross-entropy, then freeze it.

    Raises:
        DataError: no examples, or a label outside the classes.
    """
    shape = shape or ClassifierShape(tokenizer.vocab_size, tokenizer.pad_id)
    if not labelled:
        raise DataError("no labelled texts to train the meta-classifier on")
    bad = [label for _, label in labelled if not 0 <= label < len(shape.classes)]
    if bad:
        raise DataError(f"labels must be in 0..{len(shape.classes) - 1}, got {bad[0]}")
    torch.manual_seed(seed)
    classifier = MetaClassifier(shape)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=lr)
    ids = tokenizer.encode_batch([text for text, _ in labelled])
    labels = torch.tensor([label for _, label in labelled])
    order = list(range(len(ids)))
    rng = random.Random(seed)
    for _ in range(epochs):
        rng.shuffle(order)
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            batch, mask = padded([ids[i] for i in chosen], shape.pad_id)
            loss = F.cross_entropy(classifier(batch, mask), labels[chosen])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return freeze(classifier)


@torch.no_grad()
def class_probabilities(
    classifier: MetaClassifier, tokenizer: Tokenizer, texts: Sequence[str], batch_size: int = 256
) -> Tensor:
    """Class probabilities (N, C) of texts, as the classifier reads real tokens."""
    device = classifier.embedding.weight.device
    out = []
    for start in range(0, len(texts), batch_size):
        rows = tokenizer.encode_batch(list(texts[start : start + batch_size]))
        ids, mask = padded(rows, classifier.shape.pad_id)
        out.append(torch.softmax(classifier(ids.to(device), mask.to(device)).float(), -1).cpu())
    return torch.cat(out) if out else torch.zeros(0, len(classifier.shape.classes))


def save_classifier(classifier: MetaClassifier, tokenizer: Tokenizer, directory: Path) -> Path:
    """Write the classifier's weights (safetensors), its sizes and its tokenizer."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in classifier.state_dict().items()}
    save_file(state, str(directory / WEIGHTS))
    (directory / SETTINGS).write_text(json.dumps(asdict(classifier.shape), indent=2) + "\n")
    tokenizer.save(directory)
    return directory


def load_classifier(directory: str | Path) -> tuple[MetaClassifier, Tokenizer]:
    """A saved classifier, frozen, and the tokenizer it reads.

    Raises:
        CheckpointError: the directory lacks a classifier's files, or they do not match.
    """
    directory = Path(directory)
    missing = [name for name in (WEIGHTS, SETTINGS) if not (directory / name).exists()]
    if missing:
        raise CheckpointError(f"{directory}: not a meta-classifier directory (no {missing[0]})")
    values = json.loads((directory / SETTINGS).read_text())
    shape = ClassifierShape(**{**values, "classes": tuple(values["classes"])})
    classifier = MetaClassifier(shape)
    try:
        classifier.load_state_dict(load_file(str(directory / WEIGHTS)))
    except RuntimeError as error:
        raise CheckpointError(f"{directory}: weights do not match {SETTINGS}: {error}") from None
    tokenizer = Tokenizer.load(directory)
    if tokenizer.vocab_size != shape.vocab_size:
        raise CheckpointError(
            f"{directory}: the tokenizer has {tokenizer.vocab_size} ids, the classifier "
            f"{shape.vocab_size}"
        )
    return freeze(classifier), tokenizer
