"""Semantic log parsing as SemParser defines it: message -> conceptualized template.

    .venv/bin/python recipes/log_parsing/semparser.py [--systems HDFS,Zookeeper,Linux]
        [--steps 350] [--train-systems ...]

One sequence-to-action model (templates.toml's architecture with ``model.action_head``,
as run.py's seq2action variant) is trained on the 50 annotated messages of
each of the six SemParser systems (300 rows, the paper's few-shot data), then parses the
2,000 labelled messages of each system in ``--systems`` in log order behind the template
cache (IAD, 32 messages decoded at once). Scored: concept, instance and pair F1
(``seqweave.metrics_logs.semantic_f1``; both sides read off the conceptualized
templates), with PA (exact conceptualized template) and the share of messages decoded;
then again after a knowledge base of the pairs over the whole parsed log
(``seqweave.logparse.knowledge``) names the instances the model left unnamed.
One torch thread. Writes recipes/log_parsing/results-semparser.json. Run from the
repository root.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
from training import CONFIG, ROOT, RUNS

from data import DATA, read_jsonl
from seqweave.harness import scored_checkpoint, write_results
from seqweave.logparse import TemplateCache
from seqweave.logparse.knowledge import ConceptBase
from seqweave.logparse.parsers import Seq2SeqParser
from seqweave.logparse.templates import slot_names
from seqweave.metrics_logs import parsing_accuracy, read_semantics, semantic_f1

SYSTEMS = ("Andriod", "HDFS", "Hadoop", "Linux", "Spark", "Zookeeper")  # upstream spelling


def train_semantic_model(train_systems: list[str], steps: int, seed: int) -> Path:
    from seqweave.config import load_config
    from seqweave.harness import train_or_load

    name = "semparser-" + "-".join(sorted(train_systems))
    rows = [
        {"source": r["source"], "target": r["target"]}
        for system in train_systems
        for r in read_jsonl(DATA / "semparser" / f"{system}.train.jsonl")
    ]
    path = RUNS / f"{name}.train.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    print(f"training on {len(rows)} annotated messages of {', '.join(train_systems)}")
    overrides = [f"data.train={path}", f"train.out_dir={RUNS / name}", f"train.seed={seed}"]
    overrides += [f"train.max_steps={steps}", f"train.validate_every={steps}"]
    overrides += ["train.warmup_steps=40", "tokenizer.min_frequency=1", "model.action_head=true"]
    return train_or_load(load_config(CONFIG, overrides))


def with_knowledge(predicted: list[str], truth: list[str], messages: list[str]) -> dict:
    """Name the model's unnamed instances from the pairs of the whole parsed log, and
    count where the names land: on slots the gold names (scored: the pair F1 after) or
    on slots the gold leaves unnamed (implicit concepts: no gold to score them by)."""
    base = ConceptBase()
    for template, message in zip(predicted, messages, strict=True):
        base.add(template, message)
    filled = [base.fill(t, m) for t, m in zip(predicted, messages, strict=True)]
    named = {"gold_named": 0, "gold_named_right": 0, "gold_unnamed": 0}
    for before, after, gold, message in zip(predicted, filled, truth, messages, strict=True):
        if before == after:
            continue
        mine, theirs = read_semantics(before, message), read_semantics(after, message)
        gold_semantics = read_semantics(gold, message)
        gold_pairs = dict(zip(gold_semantics.instances, slot_names(gold), strict=False))
        for concept, instance in set(theirs.pairs) - set(mine.pairs):
            key = "gold_named" if gold_pairs.get(instance) else "gold_unnamed"
            named[key] += 1
            named["gold_named_right"] += gold_pairs.get(instance) == concept
    return named | semantic_f1(filled, truth, messages)


def score_system(model, system: str) -> dict:
    rows = read_jsonl(DATA / "semparser" / f"{system}.test.jsonl")
    messages, truth = [r["source"] for r in rows], [r["target"] for r in rows]
    parser = Seq2SeqParser(model, TemplateCache(), "iad", 32, 200)
    started = time.perf_counter()
    predicted = parser.parse(messages)
    seconds = time.perf_counter() - started
    result = semantic_f1(predicted, truth, messages)
    result |= {"PA": parsing_accuracy(predicted, truth)}
    result |= {"share_decoded": parser.decoded / len(messages)}
    result |= {"messages_per_second": len(messages) / seconds}
    result["knowledge_base"] = with_knowledge(predicted, truth, messages)
    figures = "  ".join(f"{k} {v:.3f}" for k, v in result.items() if isinstance(v, float))
    print(f"{system:10} {figures}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--systems", default="HDFS,Zookeeper,Linux")
    parser.add_argument("--train-systems", default=",".join(SYSTEMS))
    parser.add_argument("--steps", type=int, default=350)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "recipes/log_parsing/results-semparser.json"))
    args = parser.parse_args()
    os.chdir(ROOT)
    torch.set_num_threads(1)
    started = time.perf_counter()
    import seqweave

    train_systems = args.train_systems.split(",")
    model_dir = train_semantic_model(train_systems, args.steps, args.seed)
    model = seqweave.load(model_dir)
    checkpoint = scored_checkpoint(model_dir.parent, model_dir)
    results = {}
    for system in args.systems.split(","):
        results[system] = score_system(model, system)
        write_results(
            args.out,
            seeds=[args.seed],
            device="cpu",
            jobs=1,
            threads=1,
            started=started,
            complete=False,
            protocol="trained on the 50 annotated messages of each training system, tested "
            "on the 2,000 labelled messages of each test system, parsed in log order",
            training=f"at most {args.steps} updates (9-minute cap) on {', '.join(train_systems)}",
            checkpoint=checkpoint,
            results=results,
        )
    data = json.loads(Path(args.out).read_text())
    Path(args.out).write_text(json.dumps(data | {"complete": True}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
