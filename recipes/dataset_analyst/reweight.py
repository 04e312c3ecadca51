"""The SSD-LLM paper's use: reweighting by discovered subpopulations against a spurious
correlation (a small, synthetic, Waterbirds-like version).

    .venv/bin/python recipes/dataset_analyst/reweight.py [--seeds 0,1,2,3,4]

Texts come from the planted-dimension templates with subject in {man, dog}, place in
{beach, street}, and colour and action as noise. The label y is drawn first; the subject
agrees with it (dog for y=1) with probability 0.85 (the core, noisy feature); the place
agrees with it (beach for y=1) with probability 0.95 in training and 0.5 in test (the
spurious feature). 2,000 training and 2,000 test texts per seed.

The classifier is a logistic regression on binary bag-of-words features (torch, Adam, 300
full-batch steps, weight decay 1e-3). Three trainings per seed:

- ``erm``: unweighted;
- ``discovered``: the keyword analyst runs on the training texts (no labels, no plan); the
  discovered dimension with the largest Cramer's V against the training label is taken as
  the suspect, and every (label, attribute) group gets the same total weight
  (``seqweave.subpopulations.reweight``);
- ``oracle``: the same weights from the planted place.

Reported: test accuracy and worst-group accuracy over the four (y, planted place) groups.
The best any classifier can do on each group is 0.85 (the subject's agreement). Writes
recipes/dataset_analyst/results-reweight.json. Run from the repository root.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import torch

from seqweave.harness import difference, mean_std, write_results
from seqweave.subpopulations import Corpus, discover
from seqweave.subpopulations.keywords import KeywordAnalyst, words
from seqweave.subpopulations.planted import TEMPLATES
from seqweave.subpopulations.reweight import group_weights, label_association

RESULTS = Path("recipes/dataset_analyst/results-reweight.json")
COLOURS = ["red", "blue", "green", "yellow"]
ACTIONS = ["running", "sitting", "eating", "waiting"]


def make_split(count: int, place_agreement: float, rng: random.Random):
    texts, labels, places = [], [], []
    for _ in range(count):
        y = rng.random() < 0.5
        dog = y if rng.random() < 0.85 else not y
        beach = y if rng.random() < place_agreement else not y
        values = {
            "subject": "dog" if dog else "man",
            "place": "beach" if beach else "street",
            "colour": rng.choice(COLOURS),
            "action": rng.choice(ACTIONS),
        }
        texts.append(rng.choice(TEMPLATES).format(**values))
        labels.append(str(int(y)))
        places.append(values["place"])
    return texts, labels, places


def features(texts, vocabulary) -> torch.Tensor:
    index = {w: i for i, w in enumerate(vocabulary)}
    matrix = torch.zeros(len(texts), len(vocabulary))  # (N, W)
    for row, text in enumerate(texts):
        for w in set(words(text)):
            if w in index:
                matrix[row, index[w]] = 1.0
    return matrix


def train(x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor, seed: int) -> torch.nn.Linear:
    torch.manual_seed(seed)
    model = torch.nn.Linear(x.shape[1], 1)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.1, weight_decay=1e-3)
    for _ in range(300):
        optimiser.zero_grad()
        losses = torch.nn.functional.binary_cross_entropy_with_logits(
            model(x).squeeze(1), y, reduction="none"
        )
        (losses * weights).mean().backward()
        optimiser.step()
    return model


def evaluate(model, x, labels, places) -> dict:
    with torch.no_grad():
        predicted = (model(x).squeeze(1) > 0).long().tolist()
    correct = [str(p) == label for p, label in zip(predicted, labels, strict=True)]
    groups: dict = {}
    for ok, label, place in zip(correct, labels, places, strict=True):
        groups.setdefault(f"y={label},{place}", []).append(ok)
    by_group = {name: sum(v) / len(v) for name, v in sorted(groups.items())}
    return {
        "accuracy": sum(correct) / len(correct),
        "worst_group": min(by_group.values()),
        "groups": by_group,
    }


def suspect_dimension(texts, labels, seed) -> tuple[str, list[str], dict]:
    corpus = Corpus(texts, list(range(1, len(texts) + 1)))
    _, rows, dimensions = discover(corpus, KeywordAnalyst(), seed=seed, progress=False)
    association = {
        d.name: label_association(labels, [row[d.name] for row in rows]) for d in dimensions
    }
    chosen = max(association, key=association.get)
    return chosen, [row[chosen] for row in rows], association


def run_seed(seed: int) -> dict:
    rng = random.Random(seed)
    train_texts, train_labels, train_places = make_split(2000, 0.95, rng)
    test_texts, test_labels, test_places = make_split(2000, 0.5, rng)
    vocabulary = sorted({w for text in train_texts for w in words(text)})
    x_train, x_test = features(train_texts, vocabulary), features(test_texts, vocabulary)
    y_train = torch.tensor([float(label) for label in train_labels])
    chosen, attributes, association = suspect_dimension(train_texts, train_labels, seed)
    weightings = {
        "erm": [1.0] * len(train_texts),
        "discovered": group_weights(train_labels, attributes),
        "oracle": group_weights(train_labels, train_places),
    }
    result = {"suspect": chosen, "association": association}
    for name, weights in weightings.items():
        model = train(x_train, y_train, torch.tensor(weights), seed)
        result[name] = evaluate(model, x_test, test_labels, test_places)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    started = time.perf_counter()
    runs = {seed: run_seed(seed) for seed in seeds}
    summary = {
        method: {
            metric: mean_std(runs[s][method][metric] for s in seeds)
            for metric in ("accuracy", "worst_group")
        }
        for method in ("erm", "discovered", "oracle")
    }
    summary["discovered_minus_erm_worst_group"] = difference(
        summary["erm"]["worst_group"], summary["discovered"]["worst_group"]
    )
    write_results(
        RESULTS,
        seeds=seeds,
        device="cpu",
        jobs=1,
        started=started,
        summary=summary,
        runs={str(s): r for s, r in runs.items()},
    )
    for method in ("erm", "discovered", "oracle"):
        figures = summary[method]
        print(
            f"{method:10s} accuracy {figures['accuracy']['mean']:.3f} "
            f"worst group {figures['worst_group']['mean']:.3f} "
            f"(+- {figures['worst_group']['std']:.3f})"
        )
    print("suspects:", [runs[s]["suspect"] for s in seeds])


if __name__ == "__main__":
    main()
