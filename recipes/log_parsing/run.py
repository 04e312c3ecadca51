"""Log parsing as seq2seq on systems never seen in training, beside Drain.

    .venv/bin/python recipes/log_parsing/run.py [--heldout HDFS,OpenSSH,Zookeeper]
        [--per-template 16] [--speed-system HDFS] [--skip-speed]

One model (templates.toml) is trained on the Loghub-2k messages of every system but the
held-out ones (at most ``--per-template`` distinct messages per template), then each
held-out system's 2,000 messages are parsed, in log order, by: the model behind the
template cache (IAD, 32 messages decoded at once); Drain with the Loghub benchmark's
masks and settings for that system; Drain with the default masks only (what a user of a
new system has); the template-copy baseline. Scored against the corrected templates
(Khan et al. 2022): GA, PA, FGA, FTA. Speed on ``--speed-system``: the model alone on
every message (greedy and IAD at batch 32, IAD at batch 1; the outputs must be
identical), the model behind the cache at batch 1 and 32, and Drain. ``--whole-words``
makes every slot the model writes cover whole words (``templates.whole_words``), in the
cached parsers only (the model-alone outputs stay raw). One torch thread
throughout. Writes recipes/log_parsing/results.json. Run from the repository root.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from training import ROOT, VARIANTS, train_template_model

from data import loghub
from seqweave.baselines.drain import DrainParser
from seqweave.harness import scored_checkpoint, write_results
from seqweave.logparse import TemplateCache
from seqweave.logparse.parsers import CopyParser, Seq2SeqParser
from seqweave.metrics_logs import parsing_scores

MAX_NEW_TOKENS = 200
WHOLE = {False: "", True: ", whole words"}


def timed(parser, messages: list[str]) -> tuple[list[str], float]:
    started = time.perf_counter()
    templates = parser.parse(messages)
    return templates, len(messages) / (time.perf_counter() - started)


def score_system(models: dict, system: str, whole: bool) -> dict:
    """Every parser on one held-out system's 2,000 messages."""
    rows = loghub(system)
    messages, truth = [r["source"] for r in rows], [r["target"] for r in rows]
    parsers = {
        f"{variant} + cache (IAD, batch 32){WHOLE[whole]}": Seq2SeqParser(
            model, TemplateCache(), "iad", 32, MAX_NEW_TOKENS, whole
        )
        for variant, model in models.items()
    }
    parsers |= {
        "Drain (benchmark masks, settings)": DrainParser(system),
        "Drain (default masks)": DrainParser(None),
        "template copy": CopyParser(),
    }
    result = {}
    for name, parser in parsers.items():
        templates, rate = timed(parser, messages)
        result[name] = parsing_scores(templates, truth) | {"messages_per_second": rate}
        if isinstance(parser, Seq2SeqParser):
            result[name]["share_decoded"] = parser.decoded / len(messages)
            result[name]["templates_cached"] = len(parser.cache)
        figures = "  ".join(f"{k} {v:.3f}" for k, v in result[name].items() if k.isupper())
        print(f"{system:10} {name:36} {figures}  {rate:8.1f} msg/s", flush=True)
    return result


def speed(model, system: str, whole: bool) -> dict:
    """Messages per second on a whole log: the model alone, with the cache, and Drain."""
    messages = [r["source"] for r in loghub(system)]
    result, outputs = {}, {}
    for name, decoder, batch in (
        ("model alone, greedy, batch 32", "greedy", 32),
        ("model alone, IAD, batch 32", "iad", 32),
        ("model alone, IAD, batch 1", "iad", 1),
    ):
        started = time.perf_counter()
        outputs[name] = model.generate(
            messages, decoder=decoder, batch_size=batch, max_new_tokens=MAX_NEW_TOKENS
        )
        result[name] = {"messages_per_second": len(messages) / (time.perf_counter() - started)}
        print(f"{system:10} {name:36} {result[name]['messages_per_second']:8.1f} msg/s", flush=True)
    reference = outputs["model alone, greedy, batch 32"]
    result["identical_outputs"] = all(o == reference for o in outputs.values())
    for batch in (1, 32):
        parser = Seq2SeqParser(model, TemplateCache(), "iad", batch, MAX_NEW_TOKENS, whole)
        templates, rate = timed(parser, messages)
        result[f"model + cache, IAD, batch {batch}{WHOLE[whole]}"] = {
            "messages_per_second": rate,
            "share_decoded": parser.decoded / len(messages),
            "same_as_model_alone": sum(t == r for t, r in zip(templates, reference, strict=True))
            / len(messages),
        }
        print(f"{system:10} model + cache, batch {batch:2}  {rate:8.1f} msg/s", flush=True)
    _, rate = timed(DrainParser(system), messages)
    result["Drain (benchmark masks, settings)"] = {"messages_per_second": rate}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--heldout", default="HDFS,OpenSSH,Zookeeper")
    parser.add_argument("--per-template", type=int, default=16)
    parser.add_argument(
        "--variants",
        default="seq2action,plain",
        help="models (training.VARIANTS); speed: the first",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--speed-system", default="HDFS")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument(
        "--whole-words", action="store_true", help="the model's slots cover whole words"
    )
    parser.add_argument("--out", default=str(ROOT / "recipes/log_parsing/results.json"))
    args = parser.parse_args()
    os.chdir(ROOT)
    torch.set_num_threads(1)
    started = time.perf_counter()
    heldout = args.heldout.split(",")
    import seqweave

    variants = args.variants.split(",")
    directories = {
        v: train_template_model(heldout, args.per_template, args.seed, v) for v in variants
    }
    models = {v: seqweave.load(d) for v, d in directories.items()}
    results: dict = {
        "checkpoints": {v: scored_checkpoint(d.parent, d) for v, d in directories.items()}
    }
    results["unseen_systems"] = {}

    def write(complete: bool) -> None:
        write_results(
            args.out,
            seeds=[args.seed],
            device="cpu",
            jobs=1,
            threads=1,
            started=started,
            complete=complete,
            protocol="one model trained on the Loghub-2k systems not held out; each held-out "
            "system's 2,000 messages parsed in log order, scored against the corrected "
            "templates (Khan et al. 2022)",
            training=f"templates.toml, at most {args.per_template} messages per template; "
            + "; ".join(f"{v}: {' '.join(VARIANTS[v]) or 'as is'}" for v in variants),
            heldout=heldout,
            **results,
        )

    for system in heldout:
        results["unseen_systems"][system] = score_system(models, system, args.whole_words)
        write(complete=False)
    if not args.skip_speed:
        results["speed"] = {
            args.speed_system: speed(models[variants[0]], args.speed_system, args.whole_words)
        }
    write(complete=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
