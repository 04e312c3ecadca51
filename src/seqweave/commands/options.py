"""Decoding options shared by generate, eval and bench."""

from __future__ import annotations

import argparse
from typing import Any

from seqweave.decoding import DECODERS


def add_decode_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model directory")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    add_quantize_argument(parser)
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        help="compile the decoder step (torch.compile): faster passes after a warm-up",
    )
    parser.add_argument(
        "--screen",
        action=argparse.BooleanOptionalAction,
        help="argmax-only passes through the output layer's int8 screen (decode.screen, "
        "default on; the same tokens as without)",
    )
    parser.add_argument("--decoder", choices=DECODERS, help="default: the model's own setting")
    parser.add_argument("--batch-size", type=int, help="sentences per batch")
    parser.add_argument("--max-new-tokens", type=int, help="most tokens generated per input")
    parser.add_argument("--beam-size", type=int)
    parser.add_argument("--length-penalty", type=float)
    parser.add_argument(
        "--early-stopping",
        action=argparse.BooleanOptionalAction,
        help="beam: stop an input once it has beam-size finished hypotheses",
    )
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--top-k", type=int)
    parser.add_argument("--top-p", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument(
        "--draft-model",
        help="spec: a smaller model with the same tokenizer; gad: a nar_drafter model",
    )
    parser.add_argument("--draft-k", type=int, help="spec: draft tokens per pass to start with")
    parser.add_argument("--draft-len", type=int, help="iad: most source tokens drafted per pass")
    parser.add_argument("--ngram", type=int, help="iad: tokens matched to realign after an edit")
    parser.add_argument(
        "--constraint",
        metavar="GRAMMAR",
        help="write only what a grammar allows: per_residue[:LABELS], number[:DECIMALS], "
        "sorted_indices or tasks (decoding/grammars.py)",
    )
    parser.add_argument(
        "--relaxed",
        type=relaxed_option,
        metavar="BETA,TAU",
        help="GAD++ acceptance (lossy): accept a draft token among the verifier's BETA best "
        "whose log-probability is within TAU of the best",
    )


def add_quantize_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quantize",
        choices=("int8",),
        help="int8 weights for the linear layers (CPU only; lossy with respect to float32, "
        "but every lossless decoder still equals greedy on the int8 model)",
    )


def relaxed_option(text: str) -> tuple[int, float]:
    """``beta,tau`` -> (beta, tau), for argparse."""
    try:
        beta, tau = text.split(",")
        result = int(beta), float(tau)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected BETA,TAU such as 3,2.0 (an integer and a number), got {text!r}"
        ) from None
    if result[0] < 1 or result[1] < 0:
        raise argparse.ArgumentTypeError(f"need BETA >= 1 and TAU >= 0, got {text!r}")
    return result


def load_model(args: argparse.Namespace):
    """The model of ``--model``, with the draft model of ``--draft-model`` attached."""
    import seqweave
    from seqweave.models.quantize import quantize_model

    model = quantize_model(seqweave.load(args.model, device=args.device), args.quantize)
    if args.draft_model:
        model.attach_draft(seqweave.load(args.draft_model, device=args.device))
    return model


def decode_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The DecodeConfig fields given on the command line."""
    names = (
        "decoder",
        "batch_size",
        "max_new_tokens",
        "beam_size",
        "length_penalty",
        "early_stopping",
        "temperature",
        "top_k",
        "top_p",
        "seed",
        "draft_k",
        "draft_len",
        "ngram",
        "constraint",
        "compile",
        "screen",
    )
    overrides = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    if getattr(args, "relaxed", None) is not None:
        overrides["relaxed_top"], overrides["relaxed_gap"] = args.relaxed
    return overrides
