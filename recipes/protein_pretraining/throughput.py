"""What labelling one protein costs against its length: the seq2seq labeller written one
token per residue (greedy, and IAD, lossless) vs the tagging head (one encoder pass).

    .venv/bin/python recipes/protein_pretraining/throughput.py [--lengths 50,100,200,400,800]
        [--batch 4] [--repeats 3]

One model of the recipe's shape (model.toml, with its tag head), seeded and untrained: the
cost of greedy decoding under the ``per_residue`` constraint (exactly one H/E/C label per
residue, then the end) does not depend on the weights, only on the length. IAD drafts from
the source, which for secondary structure is the amino-acid letters, not the labels: its
acceptance here is that of an untrained model and says little about a trained one; the
decoder passes it took are recorded beside the time. Proteins are random sequences over the
20 amino acids, seeded. One CPU thread; the median of ``--repeats`` timings after one warm-up.
Writes throughput.json and throughput.png in recipes/protein_pretraining.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time
from pathlib import Path

import torch

from seqweave.api import Seq2Seq
from seqweave.config import DecodeConfig, load_config
from seqweave.harness import write_results
from seqweave.models import build_model
from seqweave.tokenizers import build_tokenizer

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "recipes" / "protein_pretraining"
AMINO = "ACDEFGHIKLMNPQRSTVWY"


def labeller(seed: int = 1) -> Seq2Seq:
    from seqweave.train import resolve_model_config

    cfg = load_config(HERE / "model.toml", ["model.tag_head=mlp"])
    tokenizer = build_tokenizer("protein", [], 0, (), None)
    model_cfg = dataclasses.replace(resolve_model_config(cfg.model, tokenizer), dropout=0.0)
    torch.manual_seed(seed)
    return Seq2Seq(build_model(model_cfg).eval(), tokenizer, DecodeConfig())


def proteins(length: int, count: int, seed: int) -> list[str]:
    generator = torch.Generator().manual_seed(seed * 10_000 + length)
    picks = torch.randint(len(AMINO), (count, length), generator=generator)
    return ["".join(AMINO[i] for i in row) for row in picks.tolist()]


def timed(run, repeats: int) -> tuple[float, object]:
    result = run()  # warm-up
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), result


def measure(model: Seq2Seq, length: int, batch: int, repeats: int) -> dict:
    sources = proteins(length, batch, seed=1)
    options = {"constraint": "per_residue", "max_new_tokens": length + 1, "batch_size": batch}
    row: dict = {"length": length, "proteins": batch}
    greedy_outputs = None
    for decoder in ("greedy", "iad"):
        seconds, outputs = timed(
            lambda d=decoder: model.generate_tokens(sources, decoder=d, **options), repeats
        )
        if decoder == "greedy":
            greedy_outputs = [o.tokens for o in outputs]
        else:
            row["iad_identical_to_greedy"] = [o.tokens for o in outputs] == greedy_outputs
        passes = statistics.fmean(o.stats.passes for o in outputs)
        row[decoder] = {"ms_per_protein": 1000 * seconds / batch, "decoder_passes": passes}
    seconds, labels = timed(lambda: model.tag(sources, labels="HEC", batch_size=batch), repeats)
    assert all(len(x) == length for x in labels)
    row["tag_head"] = {"ms_per_protein": 1000 * seconds / batch, "decoder_passes": 0}
    return row


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lengths = [r["length"] for r in rows]
    figure, axis = plt.subplots(figsize=(5.5, 4))
    for key, label in (
        ("greedy", "seq2seq greedy"),
        ("iad", "seq2seq IAD"),
        ("tag_head", "tagging head"),
    ):
        axis.plot(lengths, [r[key]["ms_per_protein"] for r in rows], marker="o", label=label)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xticks(lengths, [str(n) for n in lengths])
    axis.minorticks_off()
    axis.set_xlabel("protein length (residues)")
    axis.set_ylabel("ms per protein (1 CPU thread)")
    axis.set_title("Per-residue labelling cost against length")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", default="50,100,200,400,800")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.chdir(ROOT)
    started = time.perf_counter()
    model = labeller()
    rows = []
    for length in (int(x) for x in args.lengths.split(",")):
        rows.append(measure(model, length, args.batch, args.repeats))
        r = rows[-1]
        print(
            f"L={length}: greedy {r['greedy']['ms_per_protein']:.0f} ms, "
            f"iad {r['iad']['ms_per_protein']:.0f} ms ({r['iad']['decoder_passes']:.0f} passes), "
            f"tag head {r['tag_head']['ms_per_protein']:.1f} ms",
            flush=True,
        )
    plot(rows, HERE / "throughput.png")
    write_results(
        HERE / "throughput.json",
        seeds=[1],
        device="cpu",
        jobs=1,
        started=started,
        rows=rows,
        settings=vars(args),
    )


if __name__ == "__main__":
    main()
