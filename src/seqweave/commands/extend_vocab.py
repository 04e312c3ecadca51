"""seqweave extend-vocab --model DIR --tokens T [T ...] --output DIR

Adds task and label tokens to a trained model's vocabulary (Omni-DNA's
multi-task fine-tuning starts from such a model): the tokenizer learns them as
ordinary tokens that text can spell, the embeddings (and output layer) grow, and
the old tokens' logits stay exactly as they were (``seqweave.models.vocab``).
Fine-tune the result with ``tokenizer.path`` and ``train.init_from`` set to DIR.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model directory to extend")
    parser.add_argument("--tokens", required=True, nargs="+", help="tokens to add, e.g. <EI>")
    parser.add_argument("--output", required=True, help="model directory to write")


def run(args: argparse.Namespace) -> int:
    import seqweave
    from seqweave.api import Seq2Seq
    from seqweave.models.vocab import extend_vocabulary

    model = seqweave.load(args.model)
    old_size = model.config.vocab_size
    network, ids = extend_vocabulary(model.network, model.tokenizer, args.tokens)
    path = Seq2Seq(network, model.tokenizer, model.decode_config).save(args.output)
    shown = ", ".join(f"{t}={i}" for t, i in zip(args.tokens, ids, strict=True))
    size = network.config.vocab_size
    print(f"vocabulary {old_size} -> {size} ({shown}) -> {path}", file=sys.stderr)
    return 0
