"""Dataset analyst (SSD-LLM workflow) with the built-in keyword analyst.

    .venv/bin/python recipes/dataset_analyst/run.py [--seeds 0,1,2,3,4]

1. Synthetic texts with planted dimensions (``seqweave.subpopulations.planted``: subject,
   colour, place, action; four values each; 1,000 texts per seed): attribute-set F1 and
   assignment accuracy against the plan, per dimension, over seeds; once with each value
   always written the same way, once with 20 % of values written as a synonym.
2. Multi30k English captions (../shared/data/multi30k-en-de/train.jsonl, the ``source``
   field; 3,000 sampled to propose, all 29,000 assigned): the discovered dimensions, their
   attributes and how much of the data each covers (share of texts not ``other``); there is no
   reference structure, so this part is descriptive. Writes the structure, assignments and
   plot to runs/dataset_analyst/multi30k/ (the same as ``seqweave analyze subpopulations``).

Writes recipes/dataset_analyst/results.json. Run from the repository root. The reweighting
experiment is recipes/dataset_analyst/reweight.py.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from seqweave.harness import mean_std, write_results
from seqweave.subpopulations import Corpus, discover, read_corpus
from seqweave.subpopulations.keywords import KeywordAnalyst
from seqweave.subpopulations.planted import PLAN, planted_texts, score_recovery
from seqweave.subpopulations.structure import OTHER, write_outputs

RESULTS = Path("recipes/dataset_analyst/results.json")
MULTI30K = Path("../shared/data/multi30k-en-de/train.jsonl")


def planted(seeds: list[int], synonym_rate: float, count: int = 1000) -> dict:
    reports = []
    for seed in seeds:
        texts, truth = planted_texts(count, seed=seed, synonym_rate=synonym_rate)
        corpus = Corpus(texts, list(range(1, count + 1)))
        _, rows, dimensions = discover(corpus, KeywordAnalyst(), seed=seed, progress=False)
        reports.append(
            {**score_recovery(dimensions, rows, truth), "dimensions_found": len(dimensions)}
        )
    summary = {
        name: {
            "f1": mean_std(r[name]["f1"] for r in reports),
            "accuracy": mean_std(r[name]["accuracy"] for r in reports),
        }
        for name in PLAN
    }
    summary["mean_f1"] = mean_std(r["mean_f1"] for r in reports)
    summary["mean_accuracy"] = mean_std(r["mean_accuracy"] for r in reports)
    summary["texts_per_seed"] = count
    summary["synonym_rate"] = synonym_rate
    summary["dimensions_found"] = mean_std(r["dimensions_found"] for r in reports)
    return summary


def multi30k(output: Path) -> dict:
    corpus = read_corpus(MULTI30K, "source")
    analyst = KeywordAnalyst(dimensions=6)
    structure, rows, _ = discover(corpus, analyst, sample_size=3000, progress=True)
    write_outputs(output, structure, corpus, rows)
    texts = structure["texts"]
    return {
        "texts": texts,
        "dimensions": {
            name: {
                "attributes": [a for a in counts if a != OTHER],
                "coverage": round(1 - counts.get(OTHER, 0) / texts, 4),
            }
            for name, counts in structure["counts"].items()
        },
        "outputs": str(output),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    started = time.perf_counter()
    results = {
        "planted": planted(seeds, 0.0),
        "planted_synonyms": planted(seeds, 0.2),
        "multi30k": multi30k(Path("runs/dataset_analyst/multi30k")),
    }
    write_results(RESULTS, seeds=seeds, device="cpu", jobs=1, started=started, **results)
    print(
        f"planted: mean F1 {results['planted']['mean_f1']['mean']:.3f}, "
        f"accuracy {results['planted']['mean_accuracy']['mean']:.3f}"
    )
    for name, info in results["multi30k"]["dimensions"].items():
        print(f"multi30k {name}: coverage {info['coverage']:.3f}: {', '.join(info['attributes'])}")


if __name__ == "__main__":
    main()
