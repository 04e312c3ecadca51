"""RecBole's SASRec on exactly recipes/rearec's MovieLens split (a baseline, not a dependency).

    VENV/bin/python bench/recbole_sasrec.py [--epochs 2] [--out bench/results/recbole_sasrec.json]

with RecBole installed in a virtual environment VENV of its own (bench/README.md says how).

RecBole (recbole.io) is the library a recommender-systems user would reach for; it is
not a dependency of seqweave and must not be installed into seqweave's environment, so
this script runs from a virtual environment of its own (see bench/README.md).

The split. ``../shared/data/movielens-small`` gives each user's training sequence (items
1 .. n-2) and the validation target (item n-1); the test item n is kept back. The
script writes one atomic ``.inter`` file with items 1 .. n-1 per user, the position in
the sequence as the timestamp, and runs RecBole with leave-one-out ``test_only``: it
trains on items 1 .. n-2 (every prefix, RecBole's augmentation) and ranks item n-1,
which is exactly recipes/rearec's validation target. No checkpoint is chosen on it: a
fixed number of epochs, as the recipe trains a fixed number of updates. Full ranking
masks each user's history (as the recipe does); RecBole's ``uni100`` draws its own 100
negatives per user, so its sampled figures are RecBole's sampler, not the recipe's.
The model's size follows recipes/rearec/rearec.toml (2 layers, 2 heads, width 32, inner
128, dropout 0.2, 20 items of history, full-softmax cross-entropy).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

DATA = Path("../shared/data/movielens-small").resolve()


def write_atomic(folder: Path) -> int:
    """``folder/ml/ml.inter`` from train.jsonl and valid.jsonl; returns the users."""
    train = {
        row["user"]: row["sequence"].split()
        for row in map(json.loads, (DATA / "train.jsonl").read_text().splitlines())
    }
    valid = {
        row["user"]: row["target"]
        for row in map(json.loads, (DATA / "valid.jsonl").read_text().splitlines())
    }
    (folder / "ml").mkdir(parents=True, exist_ok=True)
    lines = ["user_id:token\titem_id:token\ttimestamp:float"]
    for user, items in train.items():
        for position, item in enumerate([*items, valid[user]]):
            lines.append(f"{user}\t{item}\t{position}")
    (folder / "ml" / "ml.inter").write_text("\n".join(lines) + "\n")
    return len(train)


def numpy_aliases() -> None:
    """RecBole 1.2.1 re-creates numpy's removed aliases from ``np.float_`` and the like, which
    NumPy 2 removed too; giving them back first lets it run on NumPy 2."""
    import numpy as np

    for name, value in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
        if name not in np.__dict__:
            setattr(np, name, value)


def run(folder: Path, epochs: int, seed: int) -> dict:
    """Train once, then rank the test item under full ranking and under RecBole's uni100."""
    numpy_aliases()
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.sequential_recommender import SASRec
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    settings = {
        "data_path": str(folder),
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "MAX_ITEM_LIST_LENGTH": 20,
        "eval_args": {"split": {"LS": "test_only"}, "order": "TO", "mode": "full"},
        "metrics": ["Hit", "NDCG"],
        "topk": [10],
        "valid_metric": "NDCG@10",
        "epochs": epochs,
        "train_batch_size": 256,
        "eval_batch_size": 256,
        "learning_rate": 2e-3,
        "n_layers": 2,
        "n_heads": 2,
        "hidden_size": 32,
        "inner_size": 128,
        "hidden_dropout_prob": 0.2,
        "attn_dropout_prob": 0.2,
        "loss_type": "CE",
        "train_neg_sample_args": None,
        "seed": seed,
        "reproducibility": True,
        "device": "cpu",
        "use_gpu": False,
        "show_progress": False,
        "checkpoint_dir": str(folder / "saved"),
        "eval_step": 0,
    }
    config = Config(model="SASRec", dataset="ml", config_dict=settings)
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, _, test_data = data_preparation(config, dataset)
    model = SASRec(config, train_data.dataset).to(config["device"])
    trainer = Trainer(config, model)
    trainer.fit(train_data, None, saved=False, show_progress=False)
    figures = {"full": trainer.evaluate(test_data, load_best_model=False)}
    settings["eval_args"] = {**settings["eval_args"], "mode": "uni100"}
    sampled_config = Config(model="SASRec", dataset="ml", config_dict=settings)
    init_seed(sampled_config["seed"], sampled_config["reproducibility"])
    _, _, sampled_test = data_preparation(sampled_config, create_dataset(sampled_config))
    trainer.config = sampled_config
    figures["uni100"] = trainer.evaluate(sampled_test, load_best_model=False)
    return {name: {k: float(v) for k, v in values.items()} for name, values in figures.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", default="runs/recbole", help="where the atomic files go")
    parser.add_argument("--out", default="bench/results/recbole_sasrec.json")
    args = parser.parse_args()
    import recbole
    import torch

    torch.set_num_threads(1)
    started = time.perf_counter()
    folder = Path(args.work).resolve()
    out = Path(args.out).resolve()
    users = write_atomic(folder)
    os.chdir(folder)  # RecBole writes log/ and log_tensorboard/ into the working directory
    result = {
        "command": " ".join(["python", *sys.argv]),
        "recbole": recbole.__version__,
        "torch": torch.__version__,
        "machine": f"{platform.machine()}, 1 torch thread",
        "users": users,
        "epochs": args.epochs,
        "seed": args.seed,
        **run(folder, args.epochs, args.seed),
    }
    result["minutes"] = (time.perf_counter() - started) / 60
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
