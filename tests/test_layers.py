"""The package's layers: a module never imports the code built on top of it.

The library (configs, tokenizers, checkpoints, data, models, objectives, decoders, metrics)
is what the trainer, the API, the commands and the server are made of; if it imported them
back, a change to the trainer could break a model import, and cycles would follow. The
tools beside the trainer (analysis, benchmark, streaming, audit) use the library only.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "seqweave"
LIBRARY = (
    "config",
    "config_parse",
    "errors",
    "device",
    "tokenizers",
    "checkpoint",
    "data",
    "models",
    "objectives",
    "decoding",
    "metrics",
    "metrics_events",
    "metrics_logs",
    "logparse",
    "metrics_recsys",
    "baselines",
    "genomics",
    "lossless",
    "rewards",
)
TOOLS = ("analysis", "bench", "streaming", "audit")
BUILT_ON_THE_LIBRARY = (
    "api",
    "train",
    "commands",
    "serve",
    "cli",
    "demo",
    "evaluation",
    "harness",
    "recommend",
    *TOOLS,
)


def imported_parts(path: Path) -> set[str]:
    """The top-level parts of seqweave a file imports, at module level or inside functions;
    a bare ``import seqweave`` counts as ``api`` (the package's __init__ imports it)."""
    parts = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "seqweave":
            # ``from seqweave import config_parse`` imports a module of the package; any
            # other name comes from the package's __init__, that is from the API
            names = [
                f"seqweave.{alias.name}" if is_module(alias.name) else "seqweave"
                for alias in node.names
            ]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            if name == "seqweave":
                parts.add("api")
            elif name.startswith("seqweave."):
                parts.add(name.split(".")[1])
    return parts


def is_module(name: str) -> bool:
    return (PACKAGE / f"{name}.py").is_file() or (PACKAGE / name).is_dir()


def files_of(part: str) -> list[Path]:
    folder = PACKAGE / part
    return sorted(folder.rglob("*.py")) if folder.is_dir() else [PACKAGE / f"{part}.py"]


@pytest.mark.parametrize(
    ("part", "forbidden"),
    [(part, BUILT_ON_THE_LIBRARY) for part in LIBRARY]
    + [(tool, tuple(p for p in BUILT_ON_THE_LIBRARY if p != tool)) for tool in TOOLS],
)
def test_no_module_imports_what_is_built_on_it(part: str, forbidden: tuple[str, ...]) -> None:
    files = files_of(part)
    assert files and all(f.is_file() for f in files), part
    upward = {
        f"{path.relative_to(PACKAGE)} imports seqweave.{name}"
        for path in files
        for name in imported_parts(path) & set(forbidden)
    }
    assert not upward, sorted(upward)
