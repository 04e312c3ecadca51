"""The subpopulation structure: dimensions, attributes, per-text assignments and counts.

A *dimension* is one way the texts vary (who is pictured, what colour, where); its
*attributes* are the values it takes. Every text gets exactly one attribute per dimension;
``OTHER`` is the attribute of a text that none of the named attributes fits, so the counts of
every dimension sum to the number of texts. An attribute carries ``terms``: the words that
mark it (the keyword analyst assigns by them; a language model gets them as its description).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from seqweave.errors import DataError

OTHER = "other"


@dataclass(frozen=True)
class Attribute:
    name: str
    terms: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dimension:
    name: str
    attributes: tuple[Attribute, ...]

    def names(self) -> list[str]:
        return [attribute.name for attribute in self.attributes]


@dataclass
class Corpus:
    """Texts with their 1-based line numbers in the file, and labels when it has them."""

    texts: list[str]
    lines: list[int]
    labels: list[str] | None = None
    path: str = ""
    extra: dict = field(default_factory=dict)


def read_corpus(path: str | Path, text_field: str, label_field: str | None = None) -> Corpus:
    """Read a JSONL file; every error names the file and line."""
    p = Path(path)
    if not p.is_file():
        raise DataError("file does not exist", path=str(p))
    texts, lines, labels = [], [], []
    for number, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"not valid JSON ({error.msg})", str(p), number) from None
        if not isinstance(row, dict):
            raise DataError("each line must be a JSON object", str(p), number)
        for name in filter(None, (text_field, label_field)):
            if name not in row:
                raise DataError(f"no field {name!r} (fields: {sorted(row)})", str(p), number)
        if not isinstance(row[text_field], str):
            raise DataError(f"field {text_field!r} is not a string", str(p), number)
        texts.append(row[text_field])
        lines.append(number)
        if label_field:
            labels.append(str(row[label_field]))
    if not texts:
        raise DataError("no texts in the file", str(p))
    return Corpus(texts, lines, labels if label_field else None, str(p))


def normalise_name(name: str) -> str:
    """The key under which two attribute names count as duplicates: case, spacing and a
    plural s do not make a new attribute."""
    key = " ".join(name.lower().replace("_", " ").replace("-", " ").split())
    return key[:-1] if key.endswith("s") and len(key) > 3 else key


def merge_duplicates(dimensions: Sequence[Dimension]) -> list[Dimension]:
    """Merge attributes whose names normalise alike (their terms pooled), drop dimensions
    whose name repeats one already kept, and drop dimensions left with under two attributes
    (a dimension with one value does not divide the data)."""
    merged, seen = [], set()
    for dimension in dimensions:
        key = normalise_name(dimension.name)
        if key in seen:
            continue
        by_key: dict[str, Attribute] = {}
        for attribute in dimension.attributes:
            name_key = normalise_name(attribute.name)
            if name_key == OTHER:
                continue
            if name_key in by_key:
                old = by_key[name_key]
                terms = old.terms + tuple(t for t in attribute.terms if t not in old.terms)
                by_key[name_key] = Attribute(old.name, terms)
            else:
                by_key[name_key] = attribute
        if len(by_key) >= 2:
            seen.add(key)
            merged.append(Dimension(dimension.name, tuple(by_key.values())))
    return merged


def drop_rare(
    dimensions: Sequence[Dimension], assignments: Sequence[dict[str, str]], min_share: float
) -> list[Dimension]:
    """Keep attributes given to at least ``min_share`` of the (sample) texts; the texts of a
    dropped attribute fall to ``OTHER`` when everything is assigned again."""
    kept = []
    total = max(1, len(assignments))
    for dimension in dimensions:
        counts = Counter(row.get(dimension.name, OTHER) for row in assignments)
        attributes = tuple(a for a in dimension.attributes if counts[a.name] / total >= min_share)
        if len(attributes) >= 2:
            kept.append(Dimension(dimension.name, attributes))
    return kept


def count_structure(
    dimensions: Sequence[Dimension],
    assignments: Sequence[dict[str, str]],
    labels: Sequence[str] | None = None,
) -> dict:
    """dimension -> attribute -> count (each dimension sums to the number of texts), and
    with labels also class -> dimension -> attribute -> count."""

    def counts(rows) -> dict:
        table = {}
        for dimension in dimensions:
            tally = Counter(row[dimension.name] for row in rows)
            order = [*dimension.names(), OTHER]
            order += sorted(set(tally) - set(order))  # never lose a text from the sums
            table[dimension.name] = {name: tally[name] for name in order if tally[name]}
        return table

    structure = {
        "texts": len(assignments),
        "dimensions": {
            d.name: [{"name": a.name, "terms": list(a.terms)} for a in d.attributes]
            for d in dimensions
        },
        "counts": counts(assignments),
    }
    if labels is not None:
        by_class: dict[str, list] = {}
        for label, row in zip(labels, assignments, strict=True):
            by_class.setdefault(label, []).append(row)
        structure["classes"] = {label: counts(rows) for label, rows in sorted(by_class.items())}
    return structure


def write_outputs(output: Path, structure: dict, corpus: Corpus, assignments) -> list[Path]:
    """structure.json, assignments.jsonl (one row per text, with its file line) and
    structure.png."""
    output.mkdir(parents=True, exist_ok=True)
    paths = [output / "structure.json", output / "assignments.jsonl", output / "structure.png"]
    paths[0].write_text(json.dumps(structure, indent=2) + "\n")
    with paths[1].open("w") as handle:
        for i, row in enumerate(assignments):
            record = {"line": corpus.lines[i], "text": corpus.texts[i], "attributes": row}
            if corpus.labels is not None:
                record["label"] = corpus.labels[i]
            handle.write(json.dumps(record) + "\n")
    plot_structure(structure["counts"], paths[2])
    return paths


def plot_structure(counts: dict, path: Path) -> None:
    """One horizontal bar chart per dimension, attributes by count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(counts) or ["(no dimensions)"]
    figure, axes = plt.subplots(len(names), 1, figsize=(7, 1.2 + 0.35 * 10 * len(names) / 2))
    axes = [axes] if len(names) == 1 else list(axes)
    for axis, name in zip(axes, names, strict=True):
        table = counts.get(name, {})
        axis.barh(list(table)[::-1], list(table.values())[::-1], color="tab:blue")
        axis.set_title(name, fontsize=9)
        axis.tick_params(labelsize=7)
    axes[-1].set_xlabel("texts")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
