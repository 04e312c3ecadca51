"""seqweave audit triggers --model DIR --data FILE --candidates words.txt [--limit N]
[--top 20] [--json OUT] [--classifier CLS_DIR [--label N]]

Black-box trigger audit (``seqweave.audit.triggers``): insert each candidate word into every
input (at the start, at one seeded inner word boundary, at the end), decode greedily, and
rank the candidates by how far the outputs move from the clean outputs, with robust z-scores
so that "nothing stands out" is a number. This audits a trained model; it trains nothing.

An auditor who suspects a meta-task (a spin such as "the outputs turn positive") brings a
classifier for it with ``--classifier`` (a ``seqweave.models.meta_classifier`` directory):
the same decodes are then also ranked by the shift in its probability of class ``--label``,
beside the movement ranking. The classifier reads the output text with its own tokenizer.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from seqweave.errors import ConfigError

EXAMPLES_SHOWN = 3  # candidates whose largest moves are printed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("audit", choices=["triggers"], help="what to audit")
    parser.add_argument("--model", required=True, help="model directory")
    parser.add_argument("--data", required=True, help="inputs: .jsonl, .tsv, .txt or P.src")
    parser.add_argument("--candidates", required=True, help="candidate words, one per line")
    parser.add_argument("--limit", type=int, help="audit only the first N inputs")
    parser.add_argument("--top", type=int, default=20, help="candidates to print and save")
    parser.add_argument("--json", help="write the ranked candidates and examples here")
    parser.add_argument("--seed", type=int, default=0, help="draws the inner insertion points")
    parser.add_argument("--threshold", type=float, default=3.5, help="robust z that stands out")
    parser.add_argument(
        "--classifier",
        help="a meta-classifier directory (seqweave.models.meta_classifier): also rank the "
        "candidates by the shift in its probability of --label on the outputs",
    )
    parser.add_argument(
        "--label", type=int, default=1, help="the classifier's class to watch (default 1)"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import seqweave
    from seqweave.audit.triggers import audit_triggers, load_judge, read_candidates
    from seqweave.data.readers import read_examples

    for name in ("limit", "top"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name} must be >= 1, got {value}")
    candidates = read_candidates(args.candidates)
    examples = read_examples(args.data, require_target=False)[: args.limit]
    judge = None
    if args.classifier:
        judge = load_judge(args.classifier, args.label)
    elif args.label != 1:
        raise ConfigError("--label needs --classifier")
    model = seqweave.load(args.model, device=args.device)
    audit = audit_triggers(
        model,
        [e.source for e in examples],
        candidates,
        seed=args.seed,
        threshold=args.threshold,
        progress=not args.no_progress,
        judge=judge,
    )
    print_report(audit, args.top)
    if args.json:
        result = audit.to_dict(args.top)
        result.update({"model": str(args.model), "data": str(args.data), "seed": args.seed})
        result["classifier"] = args.classifier
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def print_report(audit, top: int) -> None:
    print("output movement (edit rate and encoder-embedding distance of the outputs)")
    print(f"{'rank':>4}  {'candidate':20s} {'robust z':>9} {'shift':>7} {'edits':>7} {'embed':>7}")
    for rank, c in enumerate(audit.candidates[:top], start=1):
        embedding = "-" if c.embedding is None else f"{c.embedding:.4f}"
        print(f"{rank:>4}  {c.word:20s} {c.z:9.2f} {c.shift:7.4f} {c.surface:7.4f} {embedding:>7}")
    for c in audit.candidates[:EXAMPLES_SHOWN]:
        example = c.examples[0]
        print(f"\n{c.word}: {example['input']!r} ({example['position']})")
        print(f"  clean:     {example['clean_output']!r}")
        print(f"  triggered: {example['triggered_output']!r}")
    print(f"\n{verdict(audit)}")
    if audit.meta_task is not None:
        print_meta_task(audit.meta_task, top)


def verdict(audit) -> str:
    stands = ", ".join(audit.standing_out)
    return (
        f"{'stands out: ' + stands if stands else 'nothing stands out'} (max robust z "
        f"{audit.max_z:.2f}, threshold {audit.threshold}; {len(audit.candidates)} candidates, "
        f"{audit.inputs} inputs x 3 positions)"
    )


def print_meta_task(meta, top: int) -> None:
    """The classifier-shift ranking: mean change in P(class) of the outputs per candidate."""
    name = f"P({meta.class_name})"
    print(f"\nmeta-task shift ({name} of the outputs; clean outputs {meta.clean_probability:.4f})")
    print(f"{'rank':>4}  {'candidate':20s} {'robust z':>9} {'shift':>8}")
    for rank, c in enumerate(meta.ranking.candidates[:top], start=1):
        print(f"{rank:>4}  {c.word:20s} {c.z:9.2f} {c.shift:+8.4f}")
    c = meta.ranking.candidates[0]
    example = c.examples[0]
    print(
        f"\n{c.word}: {example['input']!r} ({example['position']}), {name} {example['shift']:+.3f}"
    )
    print(f"  clean:     {example['clean_output']!r}")
    print(f"  triggered: {example['triggered_output']!r}")
    print(f"\nmeta-task shift: {verdict(meta.ranking)}")
