"""seqweave bench --hf-model DIR --data FILE [...]: HF, CTranslate2 and seqweave decoders,
same weights.

Converts the Hugging Face checkpoint with ``import-hf`` (and, when ``ctranslate2`` is
installed, with CTranslate2's converter to fp32 and int8) in a temporary directory, then
runs, interleaved in one process: HF greedy, HF prompt lookup (batch 1), CTranslate2 greedy
(fp32 and int8), seqweave greedy, IAD and (with ``--draft-model``) speculative or GAD
decoding, at each batch size; with ``--quantize int8`` also seqweave on int8 weights.
Prints a table, writes JSON and a PNG plot.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--hf-model", help="Hugging Face BART/Marian directory (needs transformers)"
    )
    source.add_argument("--model", help="a seqweave model directory (seqweave decoders only)")
    parser.add_argument(
        "--data", required=True, help="JSONL/TSV/text file; its sources are decoded"
    )
    parser.add_argument("--limit", type=int, default=200, help="sentences to decode")
    parser.add_argument("--batch-sizes", default="1,8,32")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--draft-model", help="a seqweave draft model (spec) or nar_drafter (gad)")
    parser.add_argument("--draft-len", type=int, help="IAD: most source tokens drafted per pass")
    parser.add_argument("--ngram", type=int, help="IAD: tokens matched to realign after an edit")
    parser.add_argument(
        "--draft-tokens-per-pass", type=int, help="IAD, GAD: draft budget shared by a batch's rows"
    )
    parser.add_argument(
        "--iad-fixed",
        action="store_true",
        help="also run IAD with a fixed draft length (seqweave_iad_fixed), beside the adaptive one",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument(
        "--quantize",
        choices=("int8",),
        help="also run seqweave's decoders on int8 weights (seqweave_int8_*, lossy)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also run seqweave's decoders with a compiled step (decode.compile; "
        "seqweave_compiled_*, and seqweave_int8_compiled_* with --quantize)",
    )
    parser.add_argument(
        "--noscreen",
        action="store_true",
        help="also run seqweave greedy and IAD without the output layer's screen "
        "(decode.screen = false: seqweave_greedy_noscreen, seqweave_iad_noscreen)",
    )
    parser.add_argument(
        "--no-ct2", action="store_true", help="leave out CTranslate2 (--hf-model only)"
    )
    parser.add_argument("--ct2-threads", type=int, default=2, help="CTranslate2 intra threads")
    parser.add_argument("--output", default="bench.json", help="JSON result file")
    parser.add_argument("--plot", help="PNG plot file (default: next to --output)")


def run(args: argparse.Namespace) -> int:
    import seqweave
    from seqweave import bench
    from seqweave.data.readers import read_examples
    from seqweave.device import resolve_device

    texts = [e.source for e in read_examples(args.data, require_target=False)][: args.limit]
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        systems = []
        if args.hf_model:
            from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

            from seqweave.models.hf_import import import_hf

            model_dir = import_hf(args.hf_model, Path(tmp) / "model")
            hf_model = AutoModelForSeq2SeqLM.from_pretrained(args.hf_model).eval().to(device)
            hf_tokenizer = AutoTokenizer.from_pretrained(args.hf_model)
            systems += bench.hf_systems(hf_model, hf_tokenizer, args.max_new_tokens)
            if not args.no_ct2 and device.type == "cpu":
                systems += bench.ct2_systems(
                    args.hf_model, hf_tokenizer, args.max_new_tokens, tmp, args.ct2_threads
                )
        else:
            model_dir = args.model
        model = seqweave.load(model_dir, str(device))
        draft = seqweave.load(args.draft_model, str(device)).network if args.draft_model else None
        options = {
            k: getattr(args, k)
            for k in ("draft_len", "ngram", "draft_tokens_per_pass")
            if getattr(args, k)
        }
        systems += bench.seqweave_systems(
            model, args.max_new_tokens, draft, args.iad_fixed, unscreened=args.noscreen, **options
        )
        variants = [(None, False, "seqweave_compiled", False)] if args.compile else []
        if args.quantize:
            variants.insert(0, (args.quantize, False, "seqweave_int8", True))
            if args.compile:
                variants.append((args.quantize, True, "seqweave_int8_compiled", True))
        for scheme, compiled, name, lossy in variants:
            from seqweave.models.compiled import compile_decoder
            from seqweave.models.quantize import quantize_model

            other = quantize_model(seqweave.load(model_dir, str(device)), scheme)
            if compiled or not scheme:
                compile_decoder(other.network)
            systems += bench.seqweave_systems(
                other, args.max_new_tokens, draft, args.iad_fixed, name, lossy, **options
            )
        rows = bench.run_benchmark(systems, texts, sizes, args.repeats)
    reference_row = next(r for r in rows if r.batch_size == sizes[0])
    reference = reference_row.result.tokens
    gap = bench.first_difference_gap(model.network, model.encode_sources(texts), reference)
    records = bench.summarize(rows, reference, gap)
    print(bench.format_table(records))
    result = {
        "model": args.hf_model or args.model,
        "data": args.data,
        "sentences": len(texts),
        "reference": f"{reference_row.system} at batch {reference_row.batch_size}",
        "repeats": args.repeats,
        "machine": _machine(device),
        "records": records,
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    plot_path = Path(args.plot) if args.plot else output.with_suffix(".png")
    bench.plot(records, plot_path)
    print(f"wrote {output} and {plot_path}", file=sys.stderr)
    return 0


def _machine(device) -> str:
    """The device the figures were measured on, for the JSON record."""
    import torch

    if device.type == "cuda":
        where = torch.cuda.get_device_name(device)
    else:
        where = f"{platform.machine()}, {torch.get_num_threads()} threads"
    return f"{where}, torch {torch.__version__}"
