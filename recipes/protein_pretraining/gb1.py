"""GB1 fitness from fixed features: mean-pooled encoder states or one-hot sequences, each with
a linear or MLP head (``seqweave.baselines.proteins.train_head``), Spearman's rho on the 43
training rows flagged ``validation`` (the test split, triple and quadruple mutants, is kept
back).

The encoder is the mlm-pretrained one, or the same architecture left at its seeded random
initialisation: the "from scratch" control here is an untrained encoder's pooled states, not
an encoder trained end to end on 381 rows. Pooled features are standardised with the fitting
rows' mean and deviation.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch
from scipy.stats import spearmanr

import data
import seqweave
from seqweave.baselines.proteins import HeadSettings, sequence_features, train_head
from seqweave.harness import difference, mean_std, write_results
from seqweave.models import build_model

HEADS = {"linear": 0, "MLP": 64}


@torch.inference_mode()
def pooled_features(network, sources: list[list[int]], batch_size: int = 16) -> torch.Tensor:
    """(N, D) the mean of the encoder states over each framed source's residues (its final
    [eos] left out)."""
    network.eval()
    rows = []
    for first in range(0, len(sources), batch_size):
        chunk = sources[first : first + batch_size]
        longest = max(map(len, chunk))
        src = torch.full((len(chunk), longest), network.config.pad_id, dtype=torch.long)
        for row, tokens in enumerate(chunk):
            src[row, : len(tokens)] = torch.tensor(tokens)
        lengths = torch.tensor([len(t) for t in chunk])
        states = network.encode(src, lengths).states  # (B, S, D)
        residues = torch.arange(longest)[None, :] < (lengths - 1)[:, None]  # (B, S)
        rows.append((states * residues[..., None]).sum(1) / residues.sum(1, keepdim=True))
    return torch.cat(rows)


def standardised(fit: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean, std = fit.mean(0), fit.std(0).clamp_min(1e-6)
    return (fit - mean) / std, (valid - mean) / std


def rho(truth: list[float], guess: torch.Tensor) -> float | None:
    """Spearman's rho, None where it is undefined (a head that predicts one value for all)."""
    if len(set(guess.tolist())) < 2:
        return None
    return float(spearmanr(truth, guess.tolist()).statistic)


def feature_sets(pretrained_dir: Path, seed: int, fit: list[str], valid: list[str]) -> dict:
    model = seqweave.load(pretrained_dir)
    torch.manual_seed(seed)
    untrained = build_model(dataclasses.replace(model.config, dropout=0.0))
    sets = {"one-hot": (sequence_features(fit), sequence_features(valid))}
    for name, network in (("pretrained encoder", model.network), ("untrained encoder", untrained)):
        pooled = [pooled_features(network, model.encode_sources(s)) for s in (fit, valid)]
        sets[name] = standardised(*pooled)
    return sets


def _figure(values: list[float | None]) -> dict:
    """mean_std over the seeds where rho is defined, and how many were not."""
    defined = [v for v in values if v is not None]
    figure = mean_std(defined) if defined else {"mean": None, "std": None, "n": 0, "values": []}
    return {**figure, "undefined": values.count(None)}


def run_gb1(seeds: list[int], pretrained_dir: Path, results: Path) -> None:
    started = time.perf_counter()
    fit_rows, valid_rows = data.gb1_split()
    fit = [r["source"] for r in fit_rows]
    valid = [r["source"] for r in valid_rows]
    target = torch.tensor([r["fitness"] for r in fit_rows], dtype=torch.float)
    truth = [r["fitness"] for r in valid_rows]
    runs: dict[str, list[float]] = {}
    for seed in seeds:
        for features, (train_x, valid_x) in feature_sets(pretrained_dir, seed, fit, valid).items():
            for head, hidden in HEADS.items():
                settings = HeadSettings(hidden=hidden, epochs=100, batch_size=64, seed=seed)
                predict = train_head(train_x, target, 0, settings)
                name = f"{features} + {head}"
                runs.setdefault(name, []).append(rho(truth, predict(valid_x)))
                print(f"gb1 {name} seed {seed}: rho {runs[name][-1]}", flush=True)
    figures = {name: _figure(values) for name, values in runs.items()}
    write_results(
        results,
        seeds=seeds,
        device="cpu",
        jobs=1,
        started=started,
        figures=figures,
        pretrained_minus_untrained={
            head: difference(
                figures[f"untrained encoder + {head}"], figures[f"pretrained encoder + {head}"]
            )
            for head in HEADS
        },
        rows={"fit": len(fit), "valid": len(valid)},
    )
