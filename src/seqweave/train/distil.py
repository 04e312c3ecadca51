"""Sequence-level distillation data (Kim and Rush 2016): a model's own outputs as targets.

Drafters (the small model of speculative decoding, the NAR drafter of GAD)
are worth most when they agree with the model they draft for, so they learn
what that model says rather than the references.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path


def write_distilled(
    model, sources: Sequence[str], path: str | Path, batch_size: int = 64, **decode
) -> float:
    """Decode ``sources`` with ``model`` (greedy unless ``decode`` says otherwise) and write
    ``{"source", "target"}`` JSON lines to ``path``. Returns the seconds it took."""
    started = time.perf_counter()
    outputs = model.generate(list(sources), batch_size=batch_size, **decode)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for source, output in zip(sources, outputs, strict=True):
            handle.write(json.dumps({"source": source, "target": output}) + "\n")
    return time.perf_counter() - started
