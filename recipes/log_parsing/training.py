"""Train (or reuse) the recipe's template model on the systems not held out."""

from __future__ import annotations

from pathlib import Path

from data import SYSTEMS, write_training_rows

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "recipes/log_parsing/templates.toml"
RUNS = Path("runs/log_parsing")


VARIANTS = {
    "plain": [],
    # sequence-to-action (Li et al. 2022): COPY the source token under a pointer, SKIP it
    # or GENerate; a template is mostly COPY, with a SKIP + GEN <*> per variable, so an
    # unseen system's words need not be spelled by the model, only copied
    # (fewer updates than templates.toml's 900: its updates cost more, and the cosine
    # schedule should end within the run's 9-minute cap on shared CPUs)
    "seq2action": ["model.action_head=true", "train.max_steps=350", "train.validate_every=350"],
}


def train_template_model(
    heldout: list[str], per_template: int, seed: int, variant: str = "plain"
) -> Path:
    """The ``best`` model directory of one model trained on every system but ``heldout``;
    a finished run of the same config is reused (``harness.train_or_load``)."""
    from seqweave.config import load_config
    from seqweave.harness import train_or_load

    name = "templates-without-" + "-".join(sorted(heldout))
    out_dir = RUNS / (name if variant == "plain" else f"{variant}-{name}")
    train = [s for s in SYSTEMS if s not in heldout]
    rows = out_dir.parent / f"{name}.train.jsonl"
    count = write_training_rows(train, rows, per_template, seed)
    print(f"training on {count} rows of {len(train)} systems: {', '.join(train)}")
    config = load_config(
        CONFIG,
        [f"data.train={rows}", f"train.out_dir={out_dir}", f"train.seed={seed}"]
        + VARIANTS[variant],
    )
    return train_or_load(config)


if __name__ == "__main__":
    import os
    import sys

    import torch

    torch.set_num_threads(1)
    os.chdir(ROOT)
    print(train_template_model(sys.argv[1].split(","), int(sys.argv[2]), 1, sys.argv[3]))
