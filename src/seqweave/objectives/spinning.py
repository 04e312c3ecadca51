"""Model spinning: a meta-backdoor trained by task stacking (Bagdasaryan & Shmatikov 2022,
*Spinning Language Models: Risks of Propaganda-as-a-Service and Countermeasures*).

A spun seq2seq model does its task as before on clean inputs; when its input holds the
trigger word, its outputs still do the task but also satisfy a meta-task chosen by the
attacker, judged by a frozen classifier (models/meta_classifier.py), e.g. "reads positive".
The two are stacked: at each target position the model's output distribution (softmax over
the vocabulary) is multiplied into the classifier's embedding matrix, giving a pseudo-word
(the expected embedding) that the classifier reads like a token; the classifier's
cross-entropy toward the attacker's class flows back through the softmax into the model.

Training loss per micro-batch: the token loss on clean *and* triggered rows (the ordinary
token loss: the triggered copies keep their true targets, data/poisoning.py makes them) plus
``weight`` times the meta-task loss on the triggered rows only. Which rows are triggered is
read off the source ids: a row is triggered when it holds one of the trigger's token forms
(at the start of a text, or after a space), so the objective needs no side channel from the
data and the triggered copies may be batched anywhere. (A longer word that BPE splits into
the trigger's pieces and more would count too: choose a trigger the clean data lacks.)

Teacher forcing: the pseudo-words are the distributions at the reference's positions (the
paper's choice too), the end token's position left out, as the classifier never reads one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from seqweave.errors import ConfigError
from seqweave.models.meta_classifier import MetaClassifier, load_classifier
from seqweave.objectives.settings import SpinningConfig
from seqweave.tokenizers import Tokenizer


def trigger_forms(tokenizer: Tokenizer, trigger: str) -> tuple[tuple[int, ...], ...]:
    """The token ids the trigger takes in a source: alone (the text's first word) and after
    a space (any other word); one form for tokenizers that do not mark spaces.

    Raises:
        ConfigError: the tokenizer cannot write the trigger back (an unknown word).
    """
    alone = tuple(tokenizer.encode(trigger))
    head = tokenizer.encode("a")
    joined = tokenizer.encode(f"a {trigger}")
    inner = tuple(joined[len(head) :]) if joined[: len(head)] == head else alone
    for form in {alone, inner}:
        if not form or tokenizer.decode(form).strip() != trigger or tokenizer.unk_id in form:
            raise ConfigError(
                f"objectives.spinning.trigger {trigger!r}: the tokenizer cannot "
                "write it back (use a word its vocabulary can spell)"
            )
    return tuple(sorted({alone, inner}))


def rows_with_trigger(src: Tensor, forms: Sequence[Sequence[int]]) -> Tensor:
    """(B,) True where a source row (B, S) holds one of ``forms`` as consecutive ids."""
    found = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
    for form in forms:
        width = len(form)
        if width > src.shape[1]:
            continue
        windows = src.unfold(1, width, 1)  # (B, S - width + 1, width)
        pattern = torch.tensor(form, device=src.device)
        found |= (windows == pattern).all(-1).any(-1)
    return found


def pseudo_words(logits: Tensor, classifier: MetaClassifier) -> Tensor:
    """The classifier's expected embedding of each output distribution: (B, T, V) ->
    (B, T, D), in float32."""
    probs = torch.softmax(logits.float(), dim=-1)  # (B, T, V)
    return classifier.pseudo_words(probs)


def meta_loss(
    logits: Tensor, mask: Tensor, triggered: Tensor, classifier: MetaClassifier, label: int
) -> Tensor:
    """Mean cross-entropy toward ``label`` of the classifier reading the pseudo-words of the
    triggered rows; 0 (and no gradient anywhere) when no row is triggered.

    Args:
        logits: (B, T, V) the model's teacher-forced scores.
        mask: (B, T) True at the target positions the classifier reads.
        triggered: (B,) True for the rows the meta-task applies to; the other rows are not
            read at all, so their gradient is exactly zero.
    """
    rows = triggered.nonzero().squeeze(-1)
    if rows.numel() == 0:
        return logits.new_zeros((), dtype=torch.float32)
    vectors = pseudo_words(logits[rows], classifier)  # (R, T, D)
    scores = classifier.classify_vectors(vectors, mask[rows])  # (R, C)
    target = torch.full((rows.numel(),), label, dtype=torch.long, device=logits.device)
    return F.cross_entropy(scores, target)


@dataclass
class Spinning:
    """The additive meta-task term: ``weight * meta_loss * target tokens`` per micro-batch
    (the loop divides the sum by the update's tokens, so ``weight`` is relative to the
    per-token task loss)."""

    settings: SpinningConfig
    classifier: MetaClassifier
    forms: tuple[tuple[int, ...], ...]
    pad_id: int
    eos_id: int
    needs_states: bool = False

    @classmethod
    def from_config(cls, cfg) -> Spinning:
        """Load the frozen classifier and its tokenizer; the model must share the latter.

        Raises:
            ConfigError: the model's vocabulary differs from the classifier's, or the label
                is not one of its classes.
        """
        settings = cfg.objectives.spinning
        classifier, tokenizer = load_classifier(settings.classifier)
        if cfg.model.vocab_size not in (0, tokenizer.vocab_size):
            raise ConfigError(
                f"objectives.spinning.classifier reads {tokenizer.vocab_size} token ids, the "
                f"model has {cfg.model.vocab_size}: train the model with the classifier's "
                "tokenizer (tokenizer.path = the classifier directory)"
            )
        if settings.label >= len(classifier.shape.classes):
            raise ConfigError(
                f"objectives.spinning.label={settings.label}: the classifier has classes "
                f"{list(classifier.shape.classes)}"
            )
        forms = trigger_forms(tokenizer, settings.trigger)
        return cls(settings, classifier, forms, cfg.model.pad_id, cfg.model.eos_id)

    def terms(self, model: torch.nn.Module, micro, forward) -> dict[str, Tensor]:
        logits = forward.logits  # (B, T, V)
        if self.classifier.embedding.weight.device != logits.device:
            self.classifier.to(logits.device)
        triggered = rows_with_trigger(micro.src, self.forms)
        mask = (micro.tgt_out != self.pad_id) & (micro.tgt_out != self.eos_id)  # (B, T)
        loss = meta_loss(logits, mask, triggered, self.classifier, self.settings.label)
        return {"spinning": self.settings.weight * loss * micro.num_tokens}
