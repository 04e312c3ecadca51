"""Decode a data set and score it: the library side of ``seqweave eval``, also used by the
demo and the recipes (a library module must not import a CLI command)."""

from __future__ import annotations

import time


def evaluate(model, examples, metrics: list[str], **overrides) -> dict:
    """Decode ``examples`` and compute each metric; also report speed and decoder counters."""
    from seqweave.metrics import compute_metric
    from seqweave.train.validate import references

    started = time.perf_counter()
    outputs = model.generate_tokens([e.source for e in examples], **overrides)
    seconds = time.perf_counter() - started
    hypotheses = model.tokenizer.decode_batch([o.tokens for o in outputs])
    refs = [references(e) for e in examples]
    sources = [e.source for e in examples]
    scores = {}
    for name in metrics:
        scores.update(compute_metric(name, hypotheses, refs, sources))
    return {
        "scores": scores,
        "examples": len(examples),
        "seconds": seconds,
        "sentences_per_second": len(examples) / seconds if seconds else 0.0,
        "decoder_passes_per_sentence": sum(o.stats.passes for o in outputs) / len(outputs),
        "hypotheses": hypotheses,
    }


def format_table(result: dict) -> str:
    rows = [
        (name, f"{value:.4f}" if abs(value) < 2 else f"{value:.2f}")
        for name, value in result["scores"].items()
    ]
    rows.append(("sentences", str(result["examples"])))
    rows.append(("sentences/s", f"{result['sentences_per_second']:.1f}"))
    rows.append(("passes/sentence", f"{result['decoder_passes_per_sentence']:.2f}"))
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{name:<{width}}  {value:>10}" for name, value in rows)
