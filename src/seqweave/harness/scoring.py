"""Decode a test set with a loaded model and score it: what the recipes measure most."""

from __future__ import annotations

import time
from typing import Any


def decode_and_score(model, examples: list, metrics: list[str], **decode: Any) -> dict:
    """Greedy (or ``decode``'s decoder) outputs for ``examples``' sources, scored with each
    of ``metrics`` against all references of each example; also the decoding seconds."""
    from seqweave.metrics import compute_metric
    from seqweave.train.validate import references

    sources = [e.source for e in examples]
    started = time.perf_counter()
    hypotheses = model.generate(sources, **decode)
    seconds = time.perf_counter() - started
    refs = [references(e) for e in examples]
    scores: dict[str, float] = {}
    for name in metrics:
        scores.update(compute_metric(name, hypotheses, refs, sources))
    return {"scores": scores, "seconds": seconds, "hypotheses": hypotheses}
