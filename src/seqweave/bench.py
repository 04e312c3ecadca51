"""Decoding benchmark: Hugging Face, CTranslate2 and seqweave decoders on the same weights,
in one process.

Every system decodes the same texts at every batch size; the runs are
interleaved (repeat r runs every system once before repeat r + 1 starts) so a
noisy machine slows them alike, and the median over repeats is reported. Each
system's tokens are compared with Hugging Face greedy at batch 1, the
reference; where they differ, the top-2 logit gap at the first difference says
whether floating-point noise could explain it (a near-tie) or not. Systems that
change the arithmetic on purpose (int8 weights) are marked lossy; a lossy system
may also name the system it must equal token for token (IAD on int8 weights must
equal greedy on the same int8 weights), and the table reports that identity too.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from seqweave.lossless import TIE_TOLERANCE, first_difference, top2_gap

NEAR_TIE = TIE_TOLERANCE


@dataclass
class Run:
    """What one system produced on all texts at one batch size."""

    tokens: list[list[int]]
    passes: list[int]  # decoder passes each row took part in
    drafted: int = 0
    accepted: int = 0
    seconds: float = 0.0


@dataclass
class System:
    """A decoder under test: ``run(texts, batch_size)`` decodes every text in batches."""

    name: str
    run: Callable[[Sequence[str], int], Run]
    batch_sizes: tuple[int, ...] | None = None  # None: any
    lossy: bool = False  # differs from fp32 greedy by design (int8 weights)
    equals: str | None = None  # a system whose tokens this one must reproduce exactly


@dataclass
class Row:
    """One (system, batch size) cell of the table: the seconds of every repeat, and the last
    repeat's run for its tokens and counters."""

    system: str
    batch_size: int
    seconds: list[float] = field(default_factory=list)
    result: Run | None = None
    lossy: bool = False
    equals: str | None = None


def _batches(texts: Sequence[str], size: int) -> list[list[str]]:
    return [list(texts[i : i + size]) for i in range(0, len(texts), size)]


# -- Hugging Face ----------------------------------------------------------------------------


def hf_systems(hf_model, hf_tokenizer, max_new_tokens: int, lookup: int = 10) -> list[System]:
    """HF greedy (any batch size) and HF prompt lookup (batch 1 only)."""
    calls = {"n": 0}

    def count(*_):
        calls["n"] += 1

    hf_model.get_decoder().register_forward_hook(count)
    # The shipped generation configs set max_length; with max_new_tokens passed too,
    # Transformers warns on every call. Only max_new_tokens is meant, so drop the other.
    hf_model.generation_config.max_length = None
    start = hf_model.config.decoder_start_token_id
    eos = hf_model.config.eos_token_id

    def generate(extra: dict) -> Callable[[Sequence[str], int], Run]:
        def run(texts: Sequence[str], batch_size: int) -> Run:
            tokens, passes = [], []
            for batch in _batches(texts, batch_size):
                inputs = hf_tokenizer(batch, return_tensors="pt", padding=True)
                inputs = inputs.to(hf_model.device)
                calls["n"] = 0
                with torch.inference_mode():
                    out = hf_model.generate(
                        **inputs,
                        do_sample=False,
                        num_beams=1,
                        max_new_tokens=max_new_tokens,
                        **extra,
                    )
                for row in out.tolist():
                    tokens.append(_strip(row, start, eos))
                    passes.append(calls["n"])
            return Run(tokens, passes)

        return run

    return [
        System("hf_greedy", generate({})),
        System("hf_prompt_lookup", generate({"prompt_lookup_num_tokens": lookup}), (1,)),
    ]


def _strip(row: list[int], start: int, eos: int) -> list[int]:
    """HF output ids -> generated tokens before the end token."""
    if row and row[0] == start:
        row = row[1:]
    return row[: row.index(eos)] if eos in row else row


# -- CTranslate2 -----------------------------------------------------------------------------


def ct2_systems(hf_dir, hf_tokenizer, max_new_tokens: int, workdir, threads: int = 2):
    """CTranslate2 greedy on the same weights, converted with its Transformers converter into
    ``workdir``: fp32 (``ct2_greedy``) and int8 weights (``ct2_int8_greedy``, lossy).
    None, with a message on stderr, when ``ctranslate2`` is not installed (it is a bench-only
    extra, never a runtime dependency)."""
    try:
        import ctranslate2
    except ImportError:
        print("ctranslate2 is not installed: skipping the CTranslate2 systems", file=sys.stderr)
        return []
    converted = _ct2_convert(Path(hf_dir), Path(workdir))
    eos = hf_tokenizer.eos_token_id

    def make(quantization: str) -> Callable[[Sequence[str], int], Run]:
        translator = ctranslate2.Translator(
            str(converted[quantization]),
            device="cpu",
            compute_type=quantization,
            intra_threads=threads,
            inter_threads=1,
        )

        def run(texts: Sequence[str], batch_size: int) -> Run:
            tokens, passes = [], []
            for batch in _batches(texts, batch_size):
                ids = hf_tokenizer(batch)["input_ids"]
                sources = [hf_tokenizer.convert_ids_to_tokens(row) for row in ids]
                results = translator.translate_batch(
                    sources, beam_size=1, max_decoding_length=max_new_tokens
                )
                rows = [hf_tokenizer.convert_tokens_to_ids(r.hypotheses[0]) for r in results]
                rows = [row[: row.index(eos)] if eos in row else row for row in rows]
                tokens += rows
                # a batched greedy loop runs until its longest row has written its end token
                passes += [max(len(row) for row in rows) + 1] * len(rows)
            return Run(tokens, passes)

        return run

    return [
        System("ct2_greedy", make("float32")),
        System("ct2_int8_greedy", make("int8"), lossy=True),
    ]


def _ct2_convert(hf_dir: Path, workdir: Path) -> dict[str, Path]:
    """Convert ``hf_dir`` to CTranslate2 fp32 and int8 models under ``workdir``.

    The converter's BART loader reads ``config.normalize_before``, which Transformers 5
    no longer defines; BART is post-norm, so a copy of the checkpoint gets it set to false.
    """
    from ctranslate2.converters import TransformersConverter

    source = workdir / "hf"
    source.mkdir(parents=True)
    for file in hf_dir.iterdir():
        if file.is_file():
            shutil.copyfile(file, source / file.name)
    config_path = source / "config.json"
    config = json.loads(config_path.read_text())
    if config.get("model_type") in ("bart", "mbart"):
        config.setdefault("normalize_before", config["model_type"] == "mbart")
    config_path.write_text(json.dumps(config))
    out = {}
    for quantization in ("float32", "int8"):
        out[quantization] = workdir / f"ct2-{quantization}"
        TransformersConverter(str(source)).convert(
            str(out[quantization]), quantization=quantization
        )
    return out


# -- seqweave --------------------------------------------------------------------------------


def seqweave_systems(
    model,
    max_new_tokens: int,
    draft=None,
    fixed_iad: bool = False,
    prefix: str = "seqweave",
    lossy: bool = False,
    unscreened: bool = False,
    **decode,
) -> list[System]:
    """seqweave greedy, IAD and, with a draft model, speculative decoding (an autoregressive
    draft) or GAD (a nar_drafter). ``fixed_iad`` adds IAD without the adaptive draft length
    (``seqweave_iad_fixed``), to compare the two in one run. ``prefix`` names the systems;
    with ``lossy`` (int8 weights) every accelerated decoder must equal this model's own
    greedy, which the table then checks. ``unscreened`` adds greedy and IAD without the
    output layer's screen (``decode.screen = false``: ``*_greedy_noscreen``,
    ``*_iad_noscreen``), the before and after of the screen in one run."""
    from seqweave.decoding import decode_many

    def make(decoder: str, **extra) -> Callable[[Sequence[str], int], Run]:
        def run(texts: Sequence[str], batch_size: int) -> Run:
            cfg = model.decode_settings(
                decoder=decoder,
                batch_size=batch_size,
                max_new_tokens=max_new_tokens,
                **{**decode, **extra},
            )
            outputs = decode_many(model.network, model.encode_sources(texts), cfg, draft)
            return Run(
                [o.tokens for o in outputs],
                [o.stats.passes for o in outputs],
                sum(o.stats.drafted for o in outputs),
                sum(o.stats.accepted for o in outputs),
            )

        return run

    greedy = f"{prefix}_greedy"
    equals = greedy if lossy else None
    systems = [System(greedy, make("greedy"), lossy=lossy)]
    systems.append(System(f"{prefix}_iad", make("iad"), lossy=lossy, equals=equals))
    if fixed_iad:
        fixed = make("iad", adaptive_draft=False)
        systems.append(System(f"{prefix}_iad_fixed", fixed, lossy=lossy, equals=equals))
    if unscreened:
        for decoder in ("greedy", "iad"):
            run = make(decoder, screen=False)
            systems.append(System(f"{prefix}_{decoder}_noscreen", run, lossy=lossy, equals=equals))
    if draft is not None:
        name = "gad" if draft.config.architecture == "nar_drafter" else "spec"
        systems.append(System(f"{prefix}_{name}", make(name), lossy=lossy, equals=equals))
    return systems


# -- running and reporting -------------------------------------------------------------------


def run_benchmark(
    systems: Sequence[System], texts: Sequence[str], batch_sizes: Sequence[int], repeats: int
) -> list[Row]:
    """Run every (system, batch size) ``repeats`` times, interleaved; one warm-up run first."""
    rows = [
        Row(s.name, b, lossy=s.lossy, equals=s.equals)
        for b in batch_sizes
        for s in systems
        if not s.batch_sizes or b in s.batch_sizes
    ]
    by_name = {s.name: s for s in systems}
    warm = texts[: max(batch_sizes)]
    for row in rows:
        by_name[row.system].run(warm, row.batch_size)
    for _ in range(repeats):
        for row in rows:
            started = time.perf_counter()
            result = by_name[row.system].run(texts, row.batch_size)
            result.seconds = time.perf_counter() - started
            row.seconds.append(result.seconds)
            row.result = result
    return rows


def summarize(rows: Sequence[Row], reference: list[list[int]], gap: Callable | None) -> list[dict]:
    """One record per row: speed, passes, acceptance and identity with the reference."""
    base = {r.batch_size: statistics.median(r.seconds) for r in rows if r.system == "hf_greedy"}
    greedy = {
        r.batch_size: statistics.median(r.seconds) for r in rows if r.system == "seqweave_greedy"
    }
    ct2_int8 = {
        r.batch_size: statistics.median(r.seconds) for r in rows if r.system == "ct2_int8_greedy"
    }
    by_key = {(r.system, r.batch_size): r.result.tokens for r in rows}
    records = []
    for row in rows:
        run = row.result
        seconds = statistics.median(row.seconds)
        n = len(run.tokens)
        differ = [i for i in range(n) if run.tokens[i] != reference[i]]
        equals = (row.equals, row.batch_size)
        near_ties = sum(1 for i in differ if gap is not None and gap(i, run.tokens[i]) < NEAR_TIE)
        records.append(
            {
                "system": row.system,
                "batch_size": row.batch_size,
                "sentences_per_second": n / seconds,
                "tokens_per_second": sum(len(t) for t in run.tokens) / seconds,
                "seconds_median": seconds,
                "seconds": row.seconds,
                "passes_per_sentence": sum(run.passes) / n,
                "accepted_per_pass": (sum(len(t) + 1 for t in run.tokens))
                / max(sum(run.passes), 1),
                "drafted": run.drafted,
                "accepted": run.accepted,
                "draft_acceptance": run.accepted / run.drafted if run.drafted else None,
                "identity": 1 - len(differ) / n,
                "differences": len(differ),
                "near_ties": near_ties,
                "speedup_vs_hf_greedy": base[row.batch_size] / seconds
                if row.batch_size in base
                else None,
                "speedup_vs_seqweave_greedy": greedy[row.batch_size] / seconds
                if row.batch_size in greedy
                else None,
                "speedup_vs_ct2_int8": ct2_int8[row.batch_size] / seconds
                if row.batch_size in ct2_int8
                else None,
                "lossy": row.lossy,
                "equals": row.equals,
                "identity_vs_equals": _identity(run.tokens, by_key.get(equals)),
            }
        )
    return records


def _identity(tokens: list[list[int]], other: list[list[int]] | None) -> float | None:
    """The share of rows where ``tokens`` equals ``other`` (None: nothing to compare)."""
    if other is None:  # no system to equal, or it did not run at this batch size
        return None
    return sum(a == b for a, b in zip(tokens, other, strict=True)) / len(tokens)


def first_difference_gap(model, sources: list[list[int]], reference: list[list[int]]):
    """gap(i, tokens): the top-2 logit gap of the reference prefix at the first position
    where ``tokens`` leaves ``reference[i]``, from an uncached forward pass."""

    def gap(i: int, tokens: list[int]) -> float:
        return top2_gap(model, sources[i], reference[i][: first_difference(reference[i], tokens)])

    return gap


def format_table(records: Sequence[dict]) -> str:
    """The records as a text table; drafted/accepted are draft tokens over all sentences.
    A lossy system is starred; its ``same`` column is its identity with the system it must
    equal (IAD on int8 weights against greedy on the same int8 weights)."""
    names = (
        "system", "batch", "sent/s", "tok/s", "passes", "tok/pass", "drafted", "accepted",
        "identity", "same", "vs HF", "vs greedy", "vs CT2 i8",
    )  # fmt: skip
    widths = (20, 5, 8, 8, 7, 8, 8, 8, 8, 6, 6, 9, 9)
    header = " ".join(
        f"{n:<{w}}" if i == 0 else f"{n:>{w}}"
        for i, (n, w) in enumerate(zip(names, widths, strict=True))
    )
    lines = [header, "-" * len(header)]
    for r in records:
        name = r["system"] + ("*" if r.get("lossy") else "")
        same = r.get("identity_vs_equals")
        lines.append(
            f"{name:<20} {r['batch_size']:>5} {r['sentences_per_second']:>8.1f} "
            f"{r['tokens_per_second']:>8.0f} {r['passes_per_sentence']:>7.2f} "
            f"{r['accepted_per_pass']:>8.2f} {r['drafted']:>8} {r['accepted']:>8} "
            f"{r['identity']:>8.1%} {'-' if same is None else f'{same:.0%}':>6} "
            f"{_ratio(r['speedup_vs_hf_greedy']):>6} "
            f"{_ratio(r['speedup_vs_seqweave_greedy']):>9} "
            f"{_ratio(r.get('speedup_vs_ct2_int8')):>9}"
        )
    if any(r.get("lossy") for r in records):
        lines.append("* lossy: int8 weights; identity is against fp32 greedy")
    return "\n".join(lines)


def _ratio(value: float | None) -> str:
    return f"{value:.2f}x" if value else "-"


def plot(records: Sequence[dict], path) -> None:
    """Speed-up over HF greedy against batch size, and tokens per decoder pass."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name in dict.fromkeys(r["system"] for r in records):
        mine = [r for r in records if r["system"] == name]
        sizes = [r["batch_size"] for r in mine]
        left.plot(sizes, [r["speedup_vs_hf_greedy"] or 0 for r in mine], "o-", label=name)
        right.plot(sizes, [r["accepted_per_pass"] for r in mine], "o-", label=name)
    for axes, title in (
        (left, "speed-up over HF greedy (same batch size)"),
        (right, "tokens per decoder pass"),
    ):
        axes.set_xscale("log", base=2)
        axes.set_xlabel("batch size")
        axes.set_title(title)
        axes.grid(alpha=0.3)
    left.axhline(1.0, color="gray", linewidth=0.8)
    right.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
