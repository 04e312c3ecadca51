"""Sequence-to-sequence reward model vs Bradley-Terry on sorting with a planted length cue.

    .venv/bin/python recipes/reward_models/run.py [--pairs 4000] [--probes 300]
        [--rm-steps 1000] [--bt-steps 800] [--cue-rate 1.0] [--seeds 1,2,3] [--fresh] [--out FILE]

Per seed (sorting_data.py says what the data are): preference pairs in which every chosen
answer is correct and one token longer than the rejected one; the seq2seq reward model
trains through ``seqweave.train`` on (source => rejected) -> chosen and (source => chosen)
-> chosen rows; the Bradley-Terry model on the same pairs by its own loss. Both are scored
on held-out sources: where the most negative token reward lands on an answer with one
replaced token, which answer each prefers of a correct one and a wrong one of the same
length, and of a correct one and the same with 1..4 junk numbers appended. Writes
recipes/reward_models/results.json and reward_vs_junk.png (named after --out). Run from
the repository root.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "recipes/reward_models"))

from sorting_data import Probe, held_out_probes, training_pairs  # noqa: E402

from seqweave.config import ModelConfig, load_config  # noqa: E402
from seqweave.data.preferences import read_preferences, write_preferences  # noqa: E402
from seqweave.harness import (  # noqa: E402
    add_run_arguments,
    cell_log_path,
    grid,
    mean_std,
    run_grid,
    seed_list,
    summarise,
    write_results,
)
from seqweave.rewards.bradley_terry import (  # noqa: E402
    BradleyTerryReward,
    BradleyTerryTraining,
    train_bradley_terry,
)
from seqweave.rewards.seq2seq_rm import Seq2SeqRewardModel, rm_input, rm_training_rows  # noqa: E402
from seqweave.tokenizers.words import words_tokenizer  # noqa: E402

CONFIG = ROOT / "recipes/reward_models/seq2seq_rm.toml"
RUNS = Path("runs/reward_models")
VALID_PAIRS = 200  # the last pairs generated: the RM's validation, and the in-distribution test


def write_rows(rows: list[dict], path: Path) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def train_seq2seq_rm(out_dir: Path, pairs, valid, settings: dict, seed: int) -> Path:
    from seqweave.harness import train_or_load

    train_file = write_rows(rm_training_rows(pairs), out_dir / "rm_train.jsonl")
    valid_file = write_rows(rm_training_rows(valid), out_dir / "rm_valid.jsonl")
    steps = settings["rm_steps"]
    config = load_config(
        CONFIG,
        [
            f"data.train={train_file}",
            f"data.valid={valid_file}",
            f"train.max_steps={steps}",
            f"train.validate_every={max(1, steps // 5)}",
            f"train.log_every={max(1, steps // 10)}",
            f"train.seed={seed}",
            "train.device=cpu",
            f"train.out_dir={out_dir / 'seq2seq_rm'}",
        ],
    )
    return train_or_load(config)


def train_bt(out_dir: Path, pairs, settings: dict, seed: int) -> BradleyTerryReward:
    texts = [rm_input(p.source, r) for p in pairs for r in (p.chosen, p.rejected)]
    tokenizer = words_tokenizer(texts)
    config = ModelConfig(
        vocab_size=tokenizer.vocab_size, d_model=64, num_heads=4, encoder_layers=2,
        decoder_layers=0, ffn_dim=128, dropout=0.0, max_positions=64,
    )  # fmt: skip
    steps = settings["bt_steps"]
    training = BradleyTerryTraining(steps=steps, batch_size=64, lr=1e-3, seed=seed)
    reward, _ = train_bradley_terry(pairs, tokenizer, config, training)
    reward.save(out_dir / "bradley_terry")
    return reward


def localisation(rm: Seq2SeqRewardModel, probes: list[Probe]) -> dict:
    """Where the most negative token reward of a one-token-replaced answer lands."""
    scored = rm.score([p.source for p in probes], [p.substituted for p in probes])
    hits = only = corrected = 0
    for probe, result in zip(probes, scored, strict=True):
        lowest = min(result.rewards)
        hits += lowest < 0 and result.rewards.index(lowest) == probe.position
        only += [i for i, r in enumerate(result.rewards) if r < 0] == [probe.position]
        corrected += rm.tokenizer.decode(result.correction) == probe.correct
    n = len(probes)
    chance = sum(1 / len(p.correct.split()) for p in probes) / n
    return {
        "most_negative_on_replaced": hits / n,
        "only_negative_is_replaced": only / n,
        "correction_is_correct": corrected / n,
        "chance": chance,
    }


def preferences(score, probes: list[Probe], max_junk: int) -> dict:
    """How often ``score`` (a batch scorer) ranks the correct answer above each wrong one,
    and its mean score per number of appended junk tokens (0: the correct answer)."""
    sources = [p.source for p in probes]
    correct = score(sources, [p.correct for p in probes])
    substituted = score(sources, [p.substituted for p in probes])
    result = {
        "prefers_correct_over_substituted": _rate(correct, substituted),
        "mean_score_by_junk": {"0": sum(correct) / len(correct)},
    }
    for k in range(1, max_junk + 1):
        junk = score(sources, [p.junk[k - 1] for p in probes])
        result[f"prefers_correct_over_junk_{k}"] = _rate(correct, junk)
        result["mean_score_by_junk"][str(k)] = sum(junk) / len(junk)
    return result


def _rate(better: list[float], worse: list[float]) -> float:
    return sum(b > w for b, w in zip(better, worse, strict=True)) / len(better)


def in_distribution(score, valid) -> float:
    """Held-out pairs drawn as the training pairs (length cue included)."""
    sources = [p.source for p in valid]
    return _rate(
        score(sources, [p.chosen for p in valid]), score(sources, [p.rejected for p in valid])
    )


def train_and_score(cell: dict, settings: dict) -> dict:
    torch.set_num_threads(settings["threads"])
    seed = cell["seed"]
    out_dir = RUNS / f"cue{settings['cue_rate']}-seed{seed}"
    out_dir.mkdir(parents=True, exist_ok=True)
    generated = training_pairs(settings["pairs"] + VALID_PAIRS, seed, settings["cue_rate"])
    pairs_file = write_preferences(generated, out_dir / "pairs.jsonl")
    everything = read_preferences(pairs_file)
    pairs, valid = everything[:-VALID_PAIRS], everything[-VALID_PAIRS:]
    seen = {p.source for p in everything}
    probes = held_out_probes(settings["probes"], seed + 1000, seen, settings["max_junk"])
    started = time.perf_counter()
    rm = Seq2SeqRewardModel.load(train_seq2seq_rm(out_dir, pairs, valid, settings, seed))
    bt = train_bt(out_dir, pairs, settings, seed)
    trained = time.perf_counter() - started

    def rm_score(sources, responses):
        return [r.sequence for r in rm.score(sources, responses)]

    result = {
        "seq2seq_rm": {
            **localisation(rm, probes),
            **preferences(rm_score, probes, settings["max_junk"]),
            "prefers_chosen_in_distribution": in_distribution(rm_score, valid),
        },
        "bradley_terry": {
            **preferences(bt.score, probes, settings["max_junk"]),
            "prefers_chosen_in_distribution": in_distribution(bt.score, valid),
        },
        "train_seconds": trained,
    }
    print(f"seed {seed}: {json.dumps(result)}", flush=True)
    return result


def plot(summary: dict, path: Path, max_junk: int) -> None:
    """Each model's mean score against the number of junk numbers appended to a correct
    answer (mean and spread over seeds); the Bradley-Terry score has no fixed scale, so it
    is shown as the change from the correct answer's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = list(range(max_junk + 1))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, (model, title) in zip(
        axes,
        [
            ("seq2seq_rm", "seq2seq RM: sequence reward"),
            ("bradley_terry", "Bradley-Terry: r - r(correct)"),
        ],
        strict=True,
    ):
        per_seed = [summary["all"][f"{model}.mean_score_by_junk.{k}"]["values"] for k in ks]
        if model == "bradley_terry":  # per seed, relative to the correct answer's score
            per_seed = [[v - v0 for v, v0 in zip(vs, per_seed[0], strict=True)] for vs in per_seed]
        means = [mean_std(values)["mean"] for values in per_seed]
        stds = [mean_std(values)["std"] for values in per_seed]
        ax.errorbar(ks, means, yerr=stds, marker="o", capsize=3)
        ax.set_xticks(ks)
        ax.set_xlabel("junk numbers appended to the correct answer")
        ax.set_title(title, fontsize=10)
        ax.axhline(0 if model == "bradley_terry" else means[0], color="grey", lw=0.5)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=4000, help="training pairs per seed")
    parser.add_argument("--probes", type=int, default=300, help="held-out sources per seed")
    parser.add_argument("--cue-rate", type=float, default=1.0, help="pairs with rejected cut short")
    parser.add_argument("--max-junk", type=int, default=4)
    parser.add_argument("--rm-steps", type=int, default=1000)
    parser.add_argument("--bt-steps", type=int, default=800)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--threads", type=int, default=1)
    add_run_arguments(parser, ROOT / "recipes/reward_models/results.json", jobs=1)
    args = parser.parse_args()
    os.chdir(ROOT)
    started = time.perf_counter()
    seeds = seed_list(args.seeds)
    settings = {
        "pairs": args.pairs,
        "probes": args.probes,
        "cue_rate": args.cue_rate,
        "max_junk": args.max_junk,
        "rm_steps": args.rm_steps,
        "bt_steps": args.bt_steps,
        "threads": args.threads,
    }

    def write(rows: list[dict], complete: bool = False) -> None:
        write_results(
            args.out,
            seeds=seeds,
            device="cpu",
            jobs=args.jobs,
            threads=args.threads,
            started=started,
            complete=complete,
            protocol=f"{args.probes} held-out sources per seed (none among the training "
            f"sources); in-distribution: {VALID_PAIRS} held-out pairs drawn as the training ones",
            training=f"{args.pairs} pairs per seed, cue rate {args.cue_rate}; seq2seq RM "
            f"{args.rm_steps} updates ({CONFIG.name}); Bradley-Terry {args.bt_steps} updates "
            "of 64 pairs, lr 1e-3",
            summary=summarise([{**r, "all": "all"} for r in rows], by=["all"]),
            runs=rows,
        )

    cells = grid(seed=seeds)
    log = cell_log_path(args.out, RUNS, args.fresh)
    rows = run_grid(train_and_score, cells, settings, log, args.jobs, write)
    write(rows, complete=True)
    summary = summarise([{**r, "all": "all"} for r in rows], by=["all"])
    out = Path(args.out)  # results.json -> reward_vs_junk.png, results-X.json -> ...-X.png
    plot(
        summary,
        out.with_name(out.stem.replace("results", "reward_vs_junk") + ".png"),
        args.max_junk,
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
