"""seqweave analyze attention --model DIR --data FILE [--output DIR] [--limit N]
seqweave analyze subpopulations --data FILE [--analyst keywords|model:DIR|openai:URL]

Attention degeneration (Fu et al. 2023): per target step, how much the model
attends to its source and how sensitive the step is to the source embeddings,
teacher-forced on the reference targets. Writes ``attention.json`` and
``attention.png`` to the output directory; see ``seqweave.analysis``.

Subpopulations (SSD-LLM): the dimensions and attributes a text data set varies along, every
text assigned; writes ``structure.json``, ``assignments.jsonl`` and ``structure.png``; see
``seqweave.subpopulations`` and ``commands/analyze_subpopulations.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from seqweave.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from seqweave.commands.analyze_subpopulations import add_subpopulation_arguments

    parser.add_argument("analysis", choices=["attention", "subpopulations"], help="what to analyse")
    parser.add_argument("--model", help="model directory (attention)")
    parser.add_argument("--data", required=True, help="data file")
    parser.add_argument("--output", default="analysis", help="directory for the JSON and PNG")
    parser.add_argument("--limit", type=int, help="analyse only the first N examples")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-steps", type=int, help="gradients for the first N steps only")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    add_subpopulation_arguments(parser.add_argument_group("subpopulations"))


def run(args: argparse.Namespace) -> int:
    if args.analysis == "subpopulations":
        from seqweave.commands.analyze_subpopulations import run_subpopulations

        return run_subpopulations(args)
    if not args.model:
        raise ConfigError("analyze attention needs --model DIR")
    import seqweave
    from seqweave.analysis import analyze_attention, plot_curves
    from seqweave.data.readers import read_examples

    for name in ("limit", "max_steps"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    model = seqweave.load(args.model, device=args.device)
    examples = read_examples(args.data)
    if args.limit:
        examples = examples[: args.limit]
    result = analyze_attention(model, examples, args.batch_size, args.max_steps)
    result.update({"model": str(args.model), "data": str(args.data)})
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "attention.json").write_text(json.dumps(result, indent=2) + "\n")
    plot_curves({result["model_kind"]: result}, output / "attention.png")
    for third, values in result["thirds"].items():
        shown = "  ".join(
            f"{name} {value:.3f}" for name, value in values.items() if value is not None
        )
        print(f"{third:6s}  {shown}")
    print(f"wrote {output / 'attention.json'} and {output / 'attention.png'}", file=sys.stderr)
    return 0
