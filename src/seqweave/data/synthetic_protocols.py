"""Seeded lab protocols from a small grammar, as (instruction -> Sketch-and-Fill answer) pairs.

Stands in for SciRecipe (Thoth, Sun et al. 2025) where no such data may be downloaded: a
protocol is 3 to 8 steps drawn from add / mix / incubate / centrifuge / transfer / wash /
resuspend, each with its objects (reagents, vessels, fractions) and parameters (volumes or
masses, durations, temperatures, speeds, repetitions). Two tasks:

- ``write``: the instruction is the protocol in lab-notebook shorthand
  ("add PBS 250 uL tube; incubate tube 37 °C 30 min"), the answer the full protocol.
- ``scale``: the instruction is the protocol in prose and "scale this protocol to 2.5x
  volume"; in the answer volumes and masses are multiplied by the factor while durations,
  temperatures, speeds and repetitions stay, which a model can only get right by reading
  which parameter is which.

Answers are in ``seqweave.data.protocol_format``'s form: ``<think>`` (the step plan and, for
scaling, what scales), ``<key>`` (JSON steps), ``<orc>`` (numbered prose, one line per step,
naming each step's action and objects, so every answer passes the SCORE consistency gate).
Everything is a pure function of the seed.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from seqweave.data.protocol_format import Step, render_answer

REAGENTS = ("PBS", "lysis buffer", "ethanol", "Tris-HCl", "trypsin", "DMSO", "water")
SOLIDS = ("NaCl", "glucose", "agarose", "sucrose")
VESSELS = ("tube", "plate", "flask", "vial", "column")
FRACTIONS = ("supernatant", "lysate", "eluate")
VOLUMES = ((10, "uL"), (50, "uL"), (100, "uL"), (200, "uL"), (250, "uL"), (1, "mL"), (5, "mL"))
MASSES = ((0.5, "g"), (1, "g"), (2, "g"), (10, "mg"), (50, "mg"))
DURATIONS = ("30 s", "1 min", "5 min", "10 min", "30 min", "1 h", "2 h")
TEMPERATURES = ("4 °C", "25 °C", "37 °C", "56 °C", "95 °C")
SPEEDS = ("500 x g", "3000 x g", "12000 x g", "16000 x g")
FACTORS = (0.5, 1.5, 2, 2.5, 3, 4)
SCALED = ("volume", "mass")  # the parameters a scaling task multiplies


@dataclass(frozen=True)
class Quantity:
    """An amount that scales with the protocol's volume."""

    value: float
    unit: str

    def times(self, factor: float) -> str:
        return f"{format(round(self.value * factor, 4), 'g')} {self.unit}"


Draft = tuple[str, tuple[str, ...], dict[str, "Quantity | str"]]


def _draft(rng: random.Random, action: str, vessel: str) -> Draft:
    """One step before scaling: action, objects, parameters (Quantity where it scales)."""
    if action == "add":
        if rng.random() < 0.25:
            return action, (rng.choice(SOLIDS), vessel), {"mass": Quantity(*rng.choice(MASSES))}
        return action, (rng.choice(REAGENTS), vessel), {"volume": Quantity(*rng.choice(VOLUMES))}
    if action == "mix":
        return action, (vessel,), {"method": rng.choice(("pipetting", "vortexing", "inversion"))}
    if action == "incubate":
        return (
            action,
            (vessel,),
            {"temperature": rng.choice(TEMPERATURES), "duration": rng.choice(DURATIONS)},
        )
    if action == "centrifuge":
        return action, (vessel,), {"speed": rng.choice(SPEEDS), "duration": rng.choice(DURATIONS)}
    if action == "transfer":
        fraction, target = rng.choice(FRACTIONS), rng.choice([v for v in VESSELS if v != vessel])
        return action, (fraction, target), {"volume": Quantity(*rng.choice(VOLUMES))}
    if action == "wash":
        return (
            action,
            (rng.choice(("pellet", "cells")), rng.choice(REAGENTS)),
            {"volume": Quantity(*rng.choice(VOLUMES)), "repetitions": str(rng.randint(2, 3))},
        )
    return "resuspend", ("pellet", rng.choice(REAGENTS)), {"volume": Quantity(*rng.choice(VOLUMES))}


def draw_protocol(rng: random.Random, min_steps: int = 3, max_steps: int = 8) -> list[Draft]:
    """A protocol's step drafts: it starts by adding to a vessel; a transfer moves on to the
    vessel it transfers into."""
    if not 1 <= min_steps <= max_steps:
        raise ValueError(f"need 1 <= min_steps <= max_steps, got {min_steps}, {max_steps}")
    vessel = rng.choice(VESSELS)
    drafts = [_draft(rng, "add", vessel)]
    actions = ("add", "mix", "incubate", "centrifuge", "transfer", "wash", "resuspend")
    for _ in range(rng.randint(min_steps, max_steps) - 1):
        drafts.append(_draft(rng, rng.choice(actions), vessel))
        if drafts[-1][0] == "transfer":
            vessel = drafts[-1][1][1]
    return drafts


def finish(drafts: list[Draft], factor: float = 1.0) -> list[Step]:
    """The drafts as steps, scaled quantities multiplied by ``factor``."""
    steps = []
    for action, objects, parameters in drafts:
        values = {
            name: value.times(factor) if isinstance(value, Quantity) else value
            for name, value in parameters.items()
        }
        steps.append(Step(action, objects, values))
    return steps


def prose(step: Step) -> str:
    """One step in words; it names the step's action and every object."""
    p, objects = step.parameters, step.objects
    if step.action == "add":
        amount = p.get("volume") or p.get("mass")
        return f"Add {amount} of {objects[0]} to the {objects[1]}."
    if step.action == "mix":
        return f"Mix the {objects[0]} by {p['method']}."
    if step.action == "incubate":
        return f"Incubate the {objects[0]} at {p['temperature']} for {p['duration']}."
    if step.action == "centrifuge":
        return f"Centrifuge the {objects[0]} at {p['speed']} for {p['duration']}."
    if step.action == "transfer":
        return f"Transfer {p['volume']} of the {objects[0]} to a new {objects[1]}."
    if step.action == "wash":
        return (
            f"Wash the {objects[0]} with {p['volume']} of {objects[1]}, {p['repetitions']} times."
        )
    return f"Resuspend the {objects[0]} in {p['volume']} of {objects[1]}."


def shorthand(step: Step) -> str:
    """One step in notebook shorthand: action, objects, parameter values."""
    return " ".join([step.action, *step.objects, *step.parameters.values()])


def answer(steps: list[Step], factor: float | None = None) -> str:
    """The Sketch-and-Fill answer for ``steps``; ``factor`` says they were scaled by it."""
    plan = f"{len(steps)} steps: " + ", ".join(step.action for step in steps) + "."
    if factor is not None:
        plan = (
            f"Scale by {format(factor, 'g')}x: volumes and masses are multiplied by "
            f"{format(factor, 'g')}; durations, temperatures, speeds and repetitions stay. " + plan
        )
    return render_answer(plan, steps, [prose(step) for step in steps])


def protocol_pairs(
    count: int, seed: int, scale_share: float = 0.5, min_steps: int = 3, max_steps: int = 8
) -> list[dict]:
    """``count`` records ``{"source", "target", "task", "factor"}``; about ``scale_share``
    of them scaling tasks, the rest writing tasks."""
    rng = random.Random(f"protocols-{seed}")
    records = []
    for _ in range(count):
        drafts = draw_protocol(rng, min_steps, max_steps)
        if rng.random() < scale_share:
            factor = rng.choice(FACTORS)
            original = " ".join(f"{n}. {prose(s)}" for n, s in enumerate(finish(drafts), 1))
            source = f"Scale this protocol to {format(factor, 'g')}x volume: {original}"
            target = answer(finish(drafts, factor), factor)
            records.append({"source": source, "target": target, "task": "scale", "factor": factor})
        else:
            steps = finish(drafts)
            source = "Write this protocol out: " + "; ".join(shorthand(s) for s in steps)
            records.append(
                {"source": source, "target": answer(steps), "task": "write", "factor": 1}
            )
    return records


def write_jsonl(path: str | Path, records: Iterable[dict]) -> None:
    """One JSON object per line, UTF-8, as ``seqweave train`` reads them."""
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
