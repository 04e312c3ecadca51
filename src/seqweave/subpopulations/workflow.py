"""The SSD-LLM workflow: sample, propose, refine, assign everything, count.

1. ``sample``: a seeded sample of the texts (proposing from every text would be slow for a
   language model and is not needed to see the main dimensions);
2. ``propose``: the analyst names dimensions and attributes from the sample;
3. ``refine``: duplicate attributes merged (``merge_duplicates``), the sample assigned, and
   attributes given to under ``min_share`` of the sample dropped (``drop_rare``);
4. ``assign``: every text gets one attribute per dimension, in batches with a progress bar;
5. ``count_structure``: the counts, by class when the data has labels.

Any object with ``propose(texts) -> dimensions``, ``assign(texts, dimensions) -> rows`` and
``describe() -> dict`` is an analyst (``Analyst``); ``ANALYSTS`` builds the built-in ones
from the ``--analyst`` spec.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol

from tqdm import tqdm

from seqweave.errors import ConfigError
from seqweave.subpopulations.structure import (
    Corpus,
    Dimension,
    count_structure,
    drop_rare,
    merge_duplicates,
)


class Analyst(Protocol):
    def propose(self, texts: Sequence[str]) -> list[Dimension]: ...

    def assign(self, texts: Sequence[str], dimensions: Sequence[Dimension]) -> list[dict]: ...

    def describe(self) -> dict: ...


def build_keywords(argument: str, dimensions: int):
    from seqweave.subpopulations.keywords import KeywordAnalyst

    return KeywordAnalyst(dimensions=dimensions)


def build_model(argument: str, dimensions: int):
    from seqweave.subpopulations.prompted import PromptedAnalyst, model_completer

    return PromptedAnalyst(model_completer(argument), f"model:{argument}", dimensions)


def build_openai(argument: str, dimensions: int):
    from seqweave.subpopulations.prompted import PromptedAnalyst, openai_completer

    return PromptedAnalyst(openai_completer(argument), f"openai:{argument}", dimensions)


ANALYSTS = {"keywords": build_keywords, "model": build_model, "openai": build_openai}


def build_analyst(spec: str, dimensions: int = 4) -> Analyst:
    """``keywords``, ``model:DIR`` or ``openai:URL``."""
    kind, _, argument = spec.partition(":")
    if kind not in ANALYSTS:
        raise ConfigError(f"unknown analyst {spec!r}: use keywords, model:DIR or openai:URL")
    if kind != "keywords" and not argument:
        raise ConfigError(
            f"analyst {kind} needs a value: {kind}:{'DIR' if kind == 'model' else 'URL'}"
        )
    return ANALYSTS[kind](argument, dimensions)


def discover(
    corpus: Corpus,
    analyst: Analyst,
    sample_size: int = 500,
    min_share: float = 0.01,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool = True,
) -> tuple[dict, list[dict], list[Dimension]]:
    """Run the workflow; returns the structure (see ``count_structure``), the per-text rows
    (dimension -> attribute) in the corpus's order, and the refined dimensions."""
    order = list(range(len(corpus.texts)))
    random.Random(seed).shuffle(order)
    sample = [corpus.texts[i] for i in sorted(order[:sample_size])]
    proposed = analyst.propose(sample)
    dimensions = merge_duplicates(proposed)
    dimensions = drop_rare(dimensions, analyst.assign(sample, dimensions), min_share)
    rows: list[dict] = []
    starts = range(0, len(corpus.texts), batch_size)
    for start in tqdm(starts, desc="assign", unit="batch", disable=not progress):
        rows.extend(analyst.assign(corpus.texts[start : start + batch_size], dimensions))
    structure = count_structure(dimensions, rows, corpus.labels)
    structure.update(
        {
            **analyst.describe(),
            "data": corpus.path,
            "sample": len(sample),
            "seed": seed,
            "min_share": min_share,
            "proposed": [d.name for d in proposed],
        }
    )
    return structure, rows, dimensions
