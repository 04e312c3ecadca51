"""The recipe's data: reads of a synthetic genome, and three instruction tasks.

Genome: 400 kb, an order-5 Markov background (``seqweave.data.synthetic_dna``) with
four motifs planted about every 400 bp. Reads (100 bp, both strands, 0.5%
substitutions, 0.2% indels, 0.05% N): training reads come from the first 320 kb,
validation reads from 320-360 kb and test reads from 360-400 kb, so held-out reads
are new sequence from the same source, not reads overlapping training reads.

Tasks (instruction -> label, one task token and one label token each):
- ``<splice>``: UCI splice junctions (real), EI / IE / N; the shared training file
  split here 80/20, stratified by label, seeded (the test split is kept back upstream).
- ``<motif>``: a 60 bp window with 2% substitutions on a random strand: which of the four
  planted motifs it holds whole (``<m0>``..``<m3>``), or none (``<none>``); classes balanced.
- ``<strand>``: a 60 bp window of the genome as it is (``<fwd>``) or reverse-complemented
  (``<rev>``): only the background's statistics tell them apart.
Synthetic training windows come from the first 320 kb, validation windows from the rest.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path

from seqweave.data.synthetic_dna import markov_genome, mutate, reverse_complement, sample_reads

MOTIFS = ("TATAAAAGGCGTAC", "GGGCGGGACCATTG", "CACGTGACTTAAGC", "TTGACAGCTAGCTA")
SPLIT = 320_000
TASKS = {
    "splice": ["<EI>", "<IE>", "<N>"],
    "motif": ["<m0>", "<m1>", "<m2>", "<m3>", "<none>"],
    "strand": ["<fwd>", "<rev>"],
}
TASK_TOKENS = [f"<{task}>" for task in TASKS]
LABEL_TOKENS = [label for labels in TASKS.values() for label in labels]
SPLICE = Path("../shared/data/dna-splice/train.jsonl")


def genome(seed: int = 0) -> str:
    return markov_genome(400_000, 5, seed=seed, motifs=MOTIFS, motif_spacing=400)


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def write_reads(directory: Path, sequence: str, train_reads: int = 16_000) -> dict[str, list[str]]:
    regions = {
        "train": (sequence[:SPLIT], train_reads, 1),
        "valid": (sequence[SPLIT:360_000], 1000, 2),
        "test": (sequence[360_000:], 2000, 3),
    }
    reads = {}
    for name, (region, count, seed) in regions.items():
        sampled = sample_reads(region, count, 100, 0.005, 0.002, seed=seed, n_rate=0.0005)
        reads[name] = [read.seq for read in sampled]
        _write(
            directory / f"reads_{name}.jsonl", [{"source": "", "target": r} for r in reads[name]]
        )
    return reads


def _splice(seed: int = 13) -> dict[str, list[dict]]:
    by_label = defaultdict(list)
    for line in SPLICE.read_text().splitlines():
        row = json.loads(line)
        by_label[row["target"]].append(row)
    split = {"train": [], "valid": []}
    for label in sorted(by_label):
        rows = by_label[label]
        random.Random(f"{seed}-{label}").shuffle(rows)
        cut = round(0.2 * len(rows))
        for part, chosen in (("valid", rows[:cut]), ("train", rows[cut:])):
            split[part] += [
                {"source": "<splice>" + r["source"], "target": f"<{label}>", "task": "splice"}
                for r in chosen
            ]
    return split


def _motif_rows(region: str, count: int, rng: random.Random) -> list[dict]:
    places = {m: [i for i in range(len(region)) if region.startswith(m, i)] for m in MOTIFS}
    rows = []
    while len(rows) < count:
        label = rng.randrange(len(MOTIFS) + 1)
        if label < len(MOTIFS):
            at = rng.choice(places[MOTIFS[label]])
            start = at - rng.randrange(0, 60 - len(MOTIFS[label]) + 1)
        else:
            start = rng.randrange(len(region) - 60)
        window = region[max(start, 0) : max(start, 0) + 60]
        held = [k for k, m in enumerate(MOTIFS) if m in window]
        if len(window) < 60 or (label < len(MOTIFS) and held != [label]) or (label == 4 and held):
            continue
        window = mutate(window, 0.02, 0.0, rng)
        window = reverse_complement(window) if rng.random() < 0.5 else window
        name = TASKS["motif"][label]
        rows.append({"source": "<motif>" + window, "target": name, "task": "motif"})
    return rows


def _strand_rows(region: str, count: int, rng: random.Random) -> list[dict]:
    rows = []
    for _ in range(count):
        start = rng.randrange(len(region) - 60)
        window = region[start : start + 60]
        reverse = rng.random() < 0.5
        source = "<strand>" + (reverse_complement(window) if reverse else window)
        rows.append({"source": source, "target": "<rev>" if reverse else "<fwd>", "task": "strand"})
    return rows


def write_tasks(directory: Path, sequence: str, count: int = 2000) -> dict[str, dict]:
    """Every task's train and valid rows, one file per task and split and a mixed one."""
    rng = random.Random(7)
    regions = {"train": sequence[:SPLIT], "valid": sequence[SPLIT:]}
    splice = _splice()
    tasks = {"splice": splice}
    tasks["motif"] = {
        p: _motif_rows(regions[p], count // (1 + 4 * (p == "valid")), rng) for p in regions
    }
    tasks["strand"] = {
        p: _strand_rows(regions[p], count // (1 + 4 * (p == "valid")), rng) for p in regions
    }
    for task, parts in tasks.items():
        for part, rows in parts.items():
            _write(directory / f"{task}_{part}.jsonl", rows)
    for part in ("train", "valid"):
        mixed = [row for parts in tasks.values() for row in parts[part]]
        random.Random(part).shuffle(mixed)
        _write(directory / f"multi_{part}.jsonl", mixed)
    return tasks
