"""seqweave audit triggers --model DIR --data FILE --candidates words.txt [--limit N]
[--top 20] [--json OUT]

Black-box trigger audit (``seqweave.audit.triggers``): insert each candidate word into every
input (at the start, at one seeded inner word boundary, at the end), decode greedily, and
rank the candidates by how far the outputs move from the clean outputs, with robust z-scores
so that "nothing stands out" is a number. This audits a trained model; it trains nothing.
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
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import seqweave
    from seqweave.audit.triggers import audit_triggers, read_candidates
    from seqweave.data.readers import read_examples

    for name in ("limit", "top"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name} must be >= 1, got {value}")
    candidates = read_candidates(args.candidates)
    examples = read_examples(args.data, require_target=False)[: args.limit]
    model = seqweave.load(args.model, device=args.device)
    audit = audit_triggers(
        model,
        [e.source for e in examples],
        candidates,
        seed=args.seed,
        threshold=args.threshold,
        progress=not args.no_progress,
    )
    print_report(audit, args.top)
    if args.json:
        result = audit.to_dict(args.top)
        result.update({"model": str(args.model), "data": str(args.data), "seed": args.seed})
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def print_report(audit, top: int) -> None:
    print(f"{'rank':>4}  {'candidate':20s} {'robust z':>9} {'shift':>7} {'edits':>7} {'embed':>7}")
    for rank, c in enumerate(audit.candidates[:top], start=1):
        embedding = "-" if c.embedding is None else f"{c.embedding:.4f}"
        print(f"{rank:>4}  {c.word:20s} {c.z:9.2f} {c.shift:7.4f} {c.surface:7.4f} {embedding:>7}")
    for c in audit.candidates[:EXAMPLES_SHOWN]:
        example = c.examples[0]
        print(f"\n{c.word}: {example['input']!r} ({example['position']})")
        print(f"  clean:     {example['clean_output']!r}")
        print(f"  triggered: {example['triggered_output']!r}")
    verdict = (
        f"stands out: {', '.join(audit.standing_out)}"
        if audit.standing_out
        else "nothing stands out"
    )
    print(
        f"\n{verdict} (max robust z {audit.max_z:.2f}, threshold {audit.threshold}; "
        f"{len(audit.candidates)} candidates, {audit.inputs} inputs x 3 positions)"
    )
