"""One harness for the recipes: a grid of runs over variants and seeds in worker
processes with incremental, resumable results (``grid``); mean and spread over seeds,
the scored checkpoint and the results file with its machine line and command
(``results``); training through ``seqweave.train`` unless a finished run exists
(``training``)."""

from seqweave.harness.cli import add_run_arguments, cell_log_path, seed_list
from seqweave.harness.grid import CellLog, grid, run_grid
from seqweave.harness.results import (
    difference,
    figures_table,
    mean_std,
    scored_checkpoint,
    summarise,
    write_results,
)
from seqweave.harness.scoring import decode_and_score
from seqweave.harness.training import finished_run, train_or_load

__all__ = [
    "CellLog",
    "add_run_arguments",
    "cell_log_path",
    "decode_and_score",
    "difference",
    "figures_table",
    "finished_run",
    "grid",
    "mean_std",
    "run_grid",
    "scored_checkpoint",
    "seed_list",
    "summarise",
    "train_or_load",
    "write_results",
]
