"""One token per whitespace-separated word: labels, item ids, log event names.

Where every word of a sequence is a symbol in its own right (a label set, a
user's item history, a log's event templates), splitting it further would make a
model learn to spell symbols it should only choose between; a set objective
even needs each label to be exactly one token (``objectives/set_matching.py``).
The vocabulary is the words of the training texts seen at least
``min_frequency`` times, most frequent first; any other word is ``<unk>``.
Whether an unknown word is an error is for the caller to say (a command that
reads item ids refuses them by id): the tokenizer, like the others, never fails
on text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import tokenizers
from tokenizers import Regex, models, normalizers, pre_tokenizers

from seqweave.errors import ConfigError
from seqweave.tokenizers.tokenizer import SPECIAL_TOKENS, Tokenizer, with_specials

# The specials sit in the word model's vocabulary (that is how they get ids 0..3), so a
# text word spelled like one is rewritten to <unk> first: no text can produce </s>.
_SPECIAL_WORD = Regex(r"(?<!\S)(?:<pad>|<s>|</s>)(?!\S)")


def _backend(vocab: dict[str, int]) -> tokenizers.Tokenizer:
    backend = tokenizers.Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.normalizer = normalizers.Replace(_SPECIAL_WORD, "<unk>")
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return backend  # no decoder: decode joins the words with single spaces


def count_words(texts: Iterable[str]) -> Counter[str]:
    """How often each word occurs, split exactly as the tokenizer splits (Unicode
    whitespace), with words spelled like a special token already read as ``<unk>``."""
    splitter = _backend({"<unk>": 0})
    counts: Counter[str] = Counter()
    for text in texts:
        normalized = splitter.normalizer.normalize_str(text)
        counts.update(word for word, _ in splitter.pre_tokenizer.pre_tokenize_str(normalized))
    return counts


def words_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 0,
    min_frequency: int = 1,
    task_tokens: Sequence[str] = (),
    reserved: Sequence[str] = (),
) -> Tokenizer:
    """A word-level tokenizer over the words of ``texts``.

    Ids: the specials ``<pad>=0, <s>=1, </s>=2, <unk>=3``, then the words seen at least
    ``min_frequency`` times, most frequent first (ties in string order, so the same texts
    always give the same ids), at most ``vocab_size`` ids in all (0: no limit), then the
    task tokens. ``reserved`` words come right after the specials, in their order, whatever
    their counts (ordinary words that a model gives a role: ``data/copy_words.py``'s
    ``<sent>`` and ``<copyk>``). ``decode(encode(x)) == " ".join(x.split())`` when every
    word of ``x`` is in the vocabulary; an unknown word becomes ``<unk>`` and decodes as the text
    ``"<unk>"``. Words equal to a task token are left out of the vocabulary, so that
    the task token stays special.

    Raises:
        ConfigError: ``min_frequency`` < 1, or ``vocab_size`` set but too small for the
            specials and one word.
    """
    if min_frequency < 1:
        raise ConfigError(f"min_frequency must be >= 1, got {min_frequency}")
    if vocab_size and vocab_size <= len(SPECIAL_TOKENS):
        raise ConfigError(
            f"vocab_size={vocab_size} leaves no room for words after the "
            f"{len(SPECIAL_TOKENS)} special tokens (0: no limit)"
        )
    left_out = {*SPECIAL_TOKENS, *task_tokens, *reserved}
    counts = count_words(texts)
    kept = [w for w, n in counts.items() if n >= min_frequency and w not in left_out]
    kept.sort(key=lambda word: (-counts[word], word))
    kept = [*reserved, *kept]
    if vocab_size:
        kept = kept[: vocab_size - len(SPECIAL_TOKENS)]
    vocab = {token: i for i, token in enumerate((*SPECIAL_TOKENS, *kept))}
    return with_specials(_backend(vocab), task_tokens)
