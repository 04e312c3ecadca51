"""A grid of independent runs (variants x seeds, or any axes) in worker processes.

Each finished cell is appended at once to a JSON-lines log beside the run, so an
interrupted run keeps every cell it finished, and a rerun with the same settings
skips them and runs only the rest. A cell counts as finished only for the settings it
ran with: change the number of updates and every cell runs again.
"""

from __future__ import annotations

import functools
import itertools
import json
import multiprocessing
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

Cell = dict[str, Any]
Job = Callable[[Cell, dict], dict]


def grid(**axes: Iterable) -> list[Cell]:
    """Every combination of the axes' values, the first axis varying slowest:
    ``grid(variant=["a", "b"], seed=[1, 2])`` is a1, a2, b1, b2."""
    names = list(axes)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*axes.values())]


def _plain(value: Any) -> Any:
    """``value`` as JSON gives it back (tuples become lists, paths strings), for comparing."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def cell_key(cell: Cell) -> str:
    return json.dumps(cell, sort_keys=True, default=str)


class CellLog:
    """The finished cells of a grid: one JSON line per cell, ``{"cell", "settings",
    "result"}``, flushed and synced as soon as the cell finishes. A line cut off by an
    interruption is ignored (that cell runs again)."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None

    def finished(self, settings: dict) -> dict[str, dict]:
        """Results of the cells that finished with exactly these settings, by cell key."""
        if self.path is None or not self.path.exists():
            return {}
        wanted, done = _plain(settings), {}
        for line in self.path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # the torn last line of an interrupted write
            if record.get("settings") == wanted:
                done[cell_key(record["cell"])] = record["result"]
        return done

    def append(self, cell: Cell, settings: dict, result: dict) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"cell": cell, "settings": _plain(settings), "result": result})
        with self.path.open("a") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())


def _call(job: Job, settings: dict, cell: Cell) -> tuple[Cell, dict]:
    return cell, job(cell, settings)


def run_grid(
    job: Job,
    cells: list[Cell],
    settings: dict,
    log: str | Path | None = None,
    jobs: int = 1,
    on_result: Callable[[list[dict]], None] | None = None,
) -> list[dict]:
    """Run ``job(cell, settings)`` for every cell not already finished in ``log``.

    ``job`` must be a module-level function (worker processes are spawned and import it),
    and what it returns must be JSON-ready. With ``jobs`` > 1 the cells run that many at a
    time in spawned processes, else one after another in this process. ``on_result`` gets
    the rows finished so far after every cell, so a results file can be rewritten as the
    run goes. Returns one row per cell, ``{**cell, **result}``, in the order of ``cells``.
    """
    cell_log = CellLog(log)
    done = cell_log.finished(settings)
    results: dict[str, dict] = {k: done[k] for k in map(cell_key, cells) if k in done}
    todo = [cell for cell in cells if cell_key(cell) not in results]

    def rows() -> list[dict]:
        return [{**c, **results[cell_key(c)]} for c in cells if cell_key(c) in results]

    def finish(cell: Cell, result: dict) -> None:
        cell_log.append(cell, settings, result)
        results[cell_key(cell)] = _plain(result)  # as a resumed run reads it back
        if on_result is not None:
            on_result(rows())

    if results and on_result is not None:
        on_result(rows())
    call = functools.partial(_call, job, settings)
    if jobs > 1 and len(todo) > 1:
        with multiprocessing.get_context("spawn").Pool(min(jobs, len(todo))) as pool:
            for cell, result in pool.imap_unordered(call, todo, chunksize=1):
                finish(cell, result)
    else:
        for cell in todo:
            finish(*call(cell))
    return rows()
