"""Simultaneous translation by re-translation, and its latency and stability measures.

The source arrives a word at a time; after each word the translation of the
source read so far is produced again and may change (Arivazhagan et al. 2020,
"Re-translation versus streaming for simultaneous translation"). Two ways to
produce it:

- an autoregressive model re-decodes from scratch after every word, so the
  decoder passes per update grow with the output;
- a ``nar_editor`` (FReTNA, Han et al. 2020) revises the previous translation
  in a fixed number of parallel passes, whatever its length.

Measures, over the updates of one source:

- *erasure*: tokens of the previous output that an update removes (its length
  minus the common prefix); *normalized erasure* divides the total by the
  final output's length;
- *average lagging* (Ma et al. 2019) with each final token's delay taken as
  the number of source words read when it appeared for good (the output prefix
  up to it never changed again), as Arivazhagan et al. do for re-translation.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from seqweave.decoding.common import pad_batch
from seqweave.errors import ConfigError


@dataclass(frozen=True)
class Update:
    """The translation after ``source_words`` words of the source."""

    source_words: int
    tokens: list[int]
    passes: int  # decoder passes this update took
    erased: int  # tokens of the previous output this update removed
    seconds: float


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def retranslate(
    model, words: Sequence[str], editor=None, edit_passes: int = 2, **decode
) -> Iterator[Update]:
    """Yield one ``Update`` per source word. ``model`` and ``editor`` are ``seqweave.Seq2Seq``
    models; without an editor, ``model`` re-decodes every prefix from scratch with the
    decoding settings ``decode`` (its own defaults otherwise)."""
    if editor is not None:
        if editor.config.architecture != "nar_editor":
            raise ConfigError(
                f"--editor needs a nar_editor model, got a {editor.config.architecture!r} one"
            )
        editor.network.eval()
    previous: list[int] = []
    for n in range(1, len(words) + 1):
        text = " ".join(words[:n])
        started = time.perf_counter()
        if editor is None:
            (generation,) = model.generate_tokens([text], **decode)
            tokens, passes = generation.tokens, generation.stats.passes
        else:
            ids = editor.encode_sources([text])
            src, lengths = pad_batch(ids, editor.config.pad_id, editor.device)
            (tokens,) = editor.network.edit(src, lengths, [previous], edit_passes)
            passes = edit_passes
        seconds = time.perf_counter() - started
        yield Update(n, tokens, passes, len(previous) - common_prefix(previous, tokens), seconds)
        previous = tokens


def delays(updates: Sequence[Update]) -> list[int]:
    """For each token of the final output, the source words read when it appeared for good."""
    final = updates[-1].tokens
    result = [updates[-1].source_words] * len(final)
    stable = len(final)  # final[:stable] is a prefix of every later output
    for update in reversed(updates):
        stable = min(stable, common_prefix(update.tokens, final))
        for i in range(stable):
            result[i] = update.source_words
    return result


def average_lagging(token_delays: Sequence[int], source_words: int) -> float:
    """Average lagging (Ma et al. 2019) in source words: how far, on average, the output
    runs behind an ideal translator that keeps pace with the source."""
    if not token_delays:
        return 0.0
    rate = len(token_delays) / source_words  # target tokens per source word
    cut = next((i + 1 for i, d in enumerate(token_delays) if d >= source_words), len(token_delays))
    return sum(token_delays[i] - i / rate for i in range(cut)) / cut


def stream_metrics(streams: Sequence[Sequence[Update]]) -> dict[str, float]:
    """Corpus measures over several sources' updates: average lagging (mean over sources),
    normalized erasure (total erased / total final length), and the mean decoder passes
    and seconds per update."""
    if not streams or any(not s for s in streams):
        raise ValueError("every stream needs at least one update")
    lags = [average_lagging(delays(s), s[-1].source_words) for s in streams]
    erased = sum(u.erased for s in streams for u in s)
    final = sum(len(s[-1].tokens) for s in streams)
    updates = [u for s in streams for u in s]
    return {
        "average_lagging": sum(lags) / len(lags),
        "normalized_erasure": erased / max(final, 1),
        "passes_per_update": sum(u.passes for u in updates) / len(updates),
        "seconds_per_update": sum(u.seconds for u in updates) / len(updates),
        "updates": len(updates),
    }


def source_words(text: str) -> list[str]:
    """The streaming unit: whitespace-separated words (a word arrives whole)."""
    return text.split()


__all__ = [
    "Update",
    "average_lagging",
    "delays",
    "retranslate",
    "source_words",
    "stream_metrics",
]
