"""Read, Highlight and Summarize (hierarchical NSE) on SciTLDR: abstract -> one-sentence TLDR.

    .venv/bin/python recipes/hier_nse/run.py [--minutes 9] [--valid 200] [--only lead,mle]

Our validation rows (``--valid``, ``random.Random(0)``) are held out of
../shared/data/scitldr/train.jsonl and choose the checkpoints; the upstream dev file
(valid.jsonl, 1-4 references per paper) is scored too, as the SciTLDR paper scores its test
split: ROUGE-1/2/L with the maximum over references. The test split is not used.

Methods: the lead sentence (extractive, no model); our Transformer; the hierarchical NSE
trained by MLE; the same NSE fine-tuned with self-critical ROUGE-L (train.init_from the MLE
model); a half-width NSE by MLE (more updates in the same minutes). All read the same
marked words (``seqweave.data.copy_words``: <sent> marks, rare words as per-example copy
slots, put back after decoding) and train under the same wall-clock budget
(train.max_minutes). Writes recipes/hier_nse/results.json. Run from the repository root.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch

from seqweave.data.copy_words import Marked, copy_tokenizer, mark_with, split_sentences
from seqweave.harness import write_results
from seqweave.metrics import rouge

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "recipes/hier_nse"
DATA = Path("../shared/data/scitldr")
RUNS = Path("runs/hier_nse")
VOCAB, COPY_SLOTS, MAX_SOURCE = 6000, 32, 320  # words; copy slots; source tokens kept
METHODS = ("lead", "transformer", "mle", "self_critical", "mle_small")


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def split_train(valid: int) -> tuple[list[dict], list[dict]]:
    rows = read(DATA / "train.jsonl")
    order = list(range(len(rows)))
    random.Random(0).shuffle(order)
    held = set(order[:valid])
    return [r for i, r in enumerate(rows) if i not in held], [rows[i] for i in sorted(held)]


def truncate(source: str) -> str:
    """Whole sentences while they fit MAX_SOURCE words (marks included); at least one."""
    kept, size = [], 0
    for sentence in split_sentences(source):
        size += len(sentence.split()) + 1
        if kept and size > MAX_SOURCE:
            break
        kept.append(sentence)
    return " ".join(kept)


def prepare(fit: list[dict], valid: list[dict], dev: list[dict]) -> dict[str, list[Marked]]:
    """The tokenizer (on the fitting rows only) and the marked files."""
    tokenizer = copy_tokenizer([t for r in fit for t in (r["source"], r["target"])], VOCAB, 32)
    tokenizer.save(RUNS / "tokenizer")
    mark = mark_with(tokenizer, COPY_SLOTS)
    marked = {}
    for name, rows in (("fit", fit), ("valid", valid), ("dev", dev)):
        marked[name] = [mark(truncate(r["source"]), r["target"]) for r in rows]
        with (RUNS / f"{name}.jsonl").open("w") as handle:
            for m in marked[name]:
                handle.write(json.dumps({"source": m.source, "target": m.target}) + "\n")
    return marked


def train(method: str, minutes: float) -> Path:
    from seqweave.config import load_config
    from seqweave.harness import train_or_load

    config = "transformer.toml" if method == "transformer" else "hier_nse.toml"
    overrides = [
        f"tokenizer.path={RUNS / 'tokenizer'}",
        f"data.train={RUNS / 'fit.jsonl'}",
        f"data.valid={RUNS / 'valid.jsonl'}",
        f"train.max_minutes={minutes}",
        "train.device=cpu",
        f"train.out_dir={RUNS / method}",
    ]
    if method == "mle_small":  # half the width: more updates in the same minutes
        overrides.append("model.d_model=64")
    if method == "self_critical":
        overrides += [
            f"train.init_from={RUNS / 'mle' / 'best'}",
            "objectives.self_critical.weight=1.0",
            "train.lr=5e-4",
            "objectives.self_critical.max_len=32",
            "train.warmup_steps=0",
            "train.validate_every=50",
        ]
    return train_or_load(load_config(HERE / config, overrides))


def summarize(model_dir: Path, marked: list[Marked]) -> list[str]:
    import seqweave
    from seqweave.data.copy_words import restore

    model = seqweave.load(model_dir)
    outputs = model.generate([m.source for m in marked], max_new_tokens=48, batch_size=32)
    return [restore(text, m.unknown) for text, m in zip(outputs, marked, strict=True)]


def iad_check(model_dir: Path, marked: list[Marked]) -> dict:
    """IAD (drafts from the source, rolled back where rejected) vs greedy on the trained NSE:
    how many outputs are identical, and the sequential model calls each needs."""
    import seqweave

    model = seqweave.load(model_dir)
    sources = [m.source for m in marked]
    greedy = model.generate_tokens(sources, max_new_tokens=48, batch_size=32)
    iad = model.generate_tokens(sources, max_new_tokens=48, batch_size=32, decoder="iad")
    same = sum(g.tokens == i.tokens for g, i in zip(greedy, iad, strict=True))
    return {
        "identical": same,
        "rows": len(sources),
        "greedy_passes": sum(g.stats.passes for g in greedy),
        "iad_passes": sum(i.stats.passes for i in iad),
    }


def lead(rows: list[dict]) -> list[str]:
    return [split_sentences(r["source"])[0] for r in rows]


def score(outputs: list[str], rows: list[dict]) -> dict[str, float]:
    references = [r.get("references") or [r["target"]] for r in rows]
    figures = rouge(outputs, references)
    return {k: round(v, 2) for k, v in figures.items() if k != "rouge"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=9.0)
    parser.add_argument("--valid", type=int, default=200)
    parser.add_argument("--only", default=",".join(METHODS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    RUNS.mkdir(parents=True, exist_ok=True)
    fit, valid = split_train(args.valid)
    dev = read(DATA / "valid.jsonl")
    marked = prepare(fit, valid, dev)
    results_path = HERE / "results.json"
    figures = json.loads(results_path.read_text())["figures"] if results_path.exists() else {}
    for method in args.only.split(","):
        if method == "lead":
            outputs = {"valid": lead(valid), "dev": lead(dev)}
        else:
            model_dir = train(method, args.minutes)
            outputs = {name: summarize(model_dir, marked[name]) for name in ("valid", "dev")}
        rows = {"valid": valid, "dev": dev}
        figures[method] = {name: score(outputs[name], rows[name]) for name in outputs}
        examples = [{"reference": dev[i]["target"], "output": outputs["dev"][i]} for i in (0, 1)]
        figures[method]["examples"] = examples
        print(method, json.dumps(figures[method]), flush=True)
    if "self_critical" in args.only.split(","):
        figures["iad_vs_greedy"] = iad_check(RUNS / "self_critical" / "best", marked["valid"])
        print("iad", json.dumps(figures["iad_vs_greedy"]), flush=True)
    write_results(
        results_path,
        seeds=[1],
        device="cpu",
        jobs=1,
        started=started,
        figures=figures,
        rows={"fit": len(fit), "valid": len(valid), "dev": len(dev)},
        settings=vars(args),
    )


if __name__ == "__main__":
    main()
