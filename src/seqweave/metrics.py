"""Corpus-level metrics for generated text, shared by `seqweave eval` and validation in training.

Every metric takes the same three arguments and returns a flat dict of floats whose first key
is the headline score, named like the metric, so callers can log or compare any of them the
same way:

    compute_metric("bleu", ["the cat sat"], [["the cat sat", "a cat sat"]])
    # {"bleu": 100.0, "bleu_bp": 1.0, ...}

`references[i]` holds one or more references for `hypotheses[i]`; rows may hold different
numbers of references. BLEU, chrF and ROUGE come from sacrebleu and rouge-score so that numbers
match what other papers report; GLEU is implemented here (see `gleu`).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable

import numpy as np
import sacrebleu

from seqweave.errors import ConfigError

GLEU_ORDER = 4
GLEU_ITERATIONS = 500


def bleu(
    hypotheses: list[str], references: list[list[str]], sources: list[str] | None = None
) -> dict[str, float]:
    """sacrebleu corpus BLEU (13a tokenisation, exp smoothing): the figure papers report."""
    score = sacrebleu.corpus_bleu(hypotheses, _reference_streams(references))
    result = {"bleu": float(score.score), "bleu_bp": float(score.bp)}
    for order, precision in enumerate(score.precisions, start=1):
        result[f"bleu_p{order}"] = float(precision)
    result["bleu_sys_len"] = float(score.sys_len)
    result["bleu_ref_len"] = float(score.ref_len)
    return result


def chrf(
    hypotheses: list[str], references: list[list[str]], sources: list[str] | None = None
) -> dict[str, float]:
    """sacrebleu corpus chrF (character 6-grams, beta 2): robust where words are rare."""
    score = sacrebleu.corpus_chrf(hypotheses, _reference_streams(references))
    return {"chrf": float(score.score)}


def _reference_streams(references: list[list[str]]) -> list[list[str | None]]:
    """Turn per-hypothesis reference rows into sacrebleu's per-reference streams.

    sacrebleu wants as many streams as the largest row has references, each as long as the
    corpus; it drops `None` entries segment by segment, which is its documented way to allow a
    variable number of references. An empty string would instead count as a real, empty
    reference and pull the brevity penalty's closest length down, so rows are padded with None.
    """
    width = max(len(row) for row in references)
    return [[row[k] if k < len(row) else None for row in references] for k in range(width)]


def rouge(
    hypotheses: list[str], references: list[list[str]], sources: list[str] | None = None
) -> dict[str, float]:
    """ROUGE-1/2/L F-measure from rouge-score, averaged over sentences, ×100.

    Each sentence keeps its best reference per ROUGE type (rouge-score's `score_multi`).
    Porter stemming is on, as in the usual summarisation setups. rouge-score's tokenizer keeps
    only ASCII letters and digits, so text in other scripts scores 0: use chrF there.
    Imported here, not with the module: rouge-score (and the NLTK it pulls in) is missing
    from some machines that train and score BLEU, and training imports this module.
    """
    from rouge_score import rouge_scorer

    types = ("rouge1", "rouge2", "rougeL")
    scorer = rouge_scorer.RougeScorer(list(types), use_stemmer=True)
    totals = dict.fromkeys(types, 0.0)
    for hypothesis, refs in zip(hypotheses, references, strict=True):
        best = scorer.score_multi(refs, hypothesis)
        for name in types:
            totals[name] += best[name].fmeasure
    means = {name: 100.0 * total / len(hypotheses) for name, total in totals.items()}
    return {"rouge": means["rougeL"], **means}


def exact(
    hypotheses: list[str], references: list[list[str]], sources: list[str] | None = None
) -> dict[str, float]:
    """Fraction (0..1) of hypotheses equal to a reference, ignoring surrounding whitespace.

    "exact" accepts any reference; "exact_first" only the first, which is the one a
    single-reference data set would have kept.
    """
    any_hits = first_hits = 0
    for hypothesis, refs in zip(hypotheses, references, strict=True):
        stripped = hypothesis.strip()
        any_hits += any(stripped == ref.strip() for ref in refs)
        first_hits += stripped == refs[0].strip()
    count = len(hypotheses)
    return {"exact": any_hits / count, "exact_first": first_hits / count}


def gleu(
    hypotheses: list[str],
    references: list[list[str]],
    sources: list[str] | None = None,
    iterations: int = GLEU_ITERATIONS,
) -> dict[str, float]:
    """GLEU for grammatical error correction (Napoles et al. 2015; 2016 "GLEU Without Tuning").

    A BLEU-like corpus score that also reads the source: hypothesis n-grams (n = 1..4) found in
    the reference count for it, and n-grams the hypothesis kept from the source although the
    reference changed them count against it, so copying the input is not rewarded. With several
    references, each of `iterations` rounds draws one reference per sentence, scores the corpus
    against that draw, and the result is the mean (and spread) over rounds. This is the
    procedure of the JFLEG benchmark's official scorer, including its seeds (round j draws with
    seed 101·j, one uniform draw per sentence, as Python 2's `randint` did), so figures are
    comparable with its leader board. Text is split on whitespace only: pass it tokenised the
    way the references are.

    Rows with fewer references draw among the ones they have.

    Raises:
        ValueError: sources are missing, or iterations < 1.
    """
    if sources is None:
        raise ValueError("gleu needs the source sentences: pass sources=[...]")
    if iterations < 1:
        raise ValueError(f"gleu needs at least one iteration, got {iterations}")
    width = max(len(row) for row in references)
    stats = np.zeros((len(hypotheses), width, 2 + 2 * GLEU_ORDER), dtype=np.int64)
    for i, (hypothesis, refs, source) in enumerate(
        zip(hypotheses, references, sources, strict=True)
    ):
        for k, reference in enumerate(refs):
            stats[i, k] = _gleu_sentence_stats(
                hypothesis.split(), reference.split(), source.split()
            )
    draws = _draw_references([len(row) for row in references], iterations)  # (I, N)
    rows = np.arange(len(hypotheses))
    scores = [_gleu_from_stats(stats[rows, draw].sum(axis=0)) for draw in draws]
    return {"gleu": 100.0 * float(np.mean(scores)), "gleu_std": 100.0 * float(np.std(scores))}


def _ngram_counts(tokens: list[str], order: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + order]) for i in range(len(tokens) + 1 - order))


def _gleu_sentence_stats(
    hypothesis: list[str], reference: list[str], source: list[str]
) -> list[int]:
    """[hyp_len, ref_len, matched_1, possible_1, ..., matched_4, possible_4] for one sentence.

    matched_n is the clipped overlap with the reference minus the clipped overlap with the
    source n-grams that the reference does not contain; it is floored at zero per sentence, as
    in the official scorer, so one bad sentence cannot cancel matches in others.
    """
    stats = [len(hypothesis), len(reference)]
    for order in range(1, GLEU_ORDER + 1):
        hyp_ngrams = _ngram_counts(hypothesis, order)
        ref_ngrams = _ngram_counts(reference, order)
        source_only = Counter(
            {
                ngram: count
                for ngram, count in _ngram_counts(source, order).items()
                if ngram not in ref_ngrams
            }
        )
        rewarded = sum((hyp_ngrams & ref_ngrams).values())
        penalised = sum((hyp_ngrams & source_only).values())
        stats.append(max(rewarded - penalised, 0))
        stats.append(max(len(hypothesis) + 1 - order, 0))
    return stats


def _gleu_from_stats(stats: np.ndarray) -> float:
    """Corpus GLEU (0..1) from summed sentence stats; any zero count makes it 0, as in BLEU."""
    if np.any(stats == 0):
        return 0.0
    hyp_len, ref_len = float(stats[0]), float(stats[1])
    log_precision = sum(
        math.log(float(matched) / float(possible))
        for matched, possible in zip(stats[2::2], stats[3::2], strict=True)
    )
    brevity = min(0.0, 1.0 - ref_len / hyp_len)
    return math.exp(brevity + log_precision / GLEU_ORDER)


def _draw_references(counts: list[int], iterations: int) -> np.ndarray:
    """Reference index per (iteration, sentence), drawn as the official JFLEG scorer draws them.

    Round j seeds Python's Mersenne Twister with 101·j and takes int(random() × count) per
    sentence: the value Python 2's `randint(0, count - 1)` returned, which produced the
    published figures (Python 3's `randint` draws differently from the same seed).
    """
    draws = np.empty((iterations, len(counts)), dtype=np.int64)
    for j in range(iterations):
        rng = random.Random(j * 101)
        draws[j] = [int(rng.random() * count) for count in counts]
    return draws


METRICS: dict[str, Callable[..., dict[str, float]]] = {
    "bleu": bleu,
    "chrf": chrf,
    "rouge": rouge,
    "gleu": gleu,
    "exact": exact,
}


def compute_metric(
    name: str,
    hypotheses: list[str],
    references: list[list[str]],
    sources: list[str] | None = None,
) -> dict[str, float]:
    """Score a corpus with the metric `name`; the first key of the result is the headline score.

    Inputs are checked here, once, so each metric can assume aligned, non-empty data.

    Raises:
        ConfigError: `name` is not a known metric (the message lists the valid ones).
        ValueError: the corpus is empty, lengths differ, a hypothesis has no reference, or
            "gleu" is asked for without sources.
    """
    metric = METRICS.get(name)
    if metric is None:
        raise ConfigError(f"unknown metric {name!r}; valid metrics: {', '.join(sorted(METRICS))}")
    _check_inputs(hypotheses, references, sources)
    return metric(hypotheses, references, sources)


def _check_inputs(
    hypotheses: list[str], references: list[list[str]], sources: list[str] | None
) -> None:
    if len(hypotheses) != len(references):
        raise ValueError(
            f"{len(hypotheses)} hypotheses but {len(references)} reference rows; "
            "they must align one to one"
        )
    if sources is not None and len(sources) != len(hypotheses):
        raise ValueError(
            f"{len(hypotheses)} hypotheses but {len(sources)} sources; they must align one to one"
        )
    if not hypotheses:
        raise ValueError("no hypotheses to score: the corpus is empty")
    for i, row in enumerate(references):
        if isinstance(row, str):
            raise ValueError(f"references[{i}] is a string; each row must be a list of strings")
        if not row:
            raise ValueError(f"hypothesis {i} has no reference; each needs at least one")
