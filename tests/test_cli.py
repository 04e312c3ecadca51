"""The command line end to end: train a copy task, evaluate it, generate with it, and fail cleanly.

Every command runs as ``python -m seqweave ...`` in a subprocess, as a user would run it.
Training happens once per module (about 500 steps of a 2+2-layer d=64 model, ~15 s on one
busy CPU core); the copy task is learned perfectly, so every generated output is known.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import seqweave

ALPHABET = "abcdefgh"
STEPS = 500


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def copy_pairs(rng: random.Random, count: int) -> list[dict[str, str]]:
    """Random strings of 2-8 letters whose target is the source itself."""
    pairs = []
    for _ in range(count):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(2, 8)))
        pairs.append({"source": text, "target": text})
    return pairs


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def read_jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def seqweave_cli(
    *args: str | Path, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m seqweave ARGS`` (one torch thread: the test machine is shared)."""
    return subprocess.run(
        [sys.executable, "-m", "seqweave", *map(str, args)],
        input=stdin,
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def toml_config(train: Path, valid: Path, out_dir: Path, max_steps: int) -> str:
    return textwrap.dedent(
        f"""
        [model]
        d_model = 64
        num_heads = 4
        encoder_layers = 2
        decoder_layers = 2
        ffn_dim = 128
        dropout = 0.0
        max_positions = 32

        [tokenizer]
        kind = "alphabet"
        alphabet = "{ALPHABET}"

        [data]
        train = {json.dumps(str(train))}
        valid = {json.dumps(str(valid))}
        max_tokens = 512

        [train]
        out_dir = {json.dumps(str(out_dir))}
        max_steps = {max_steps}
        validate_every = 100
        warmup_steps = 50
        schedule = "cosine"
        lr = 5e-3
        label_smoothing = 0.0
        metric = "exact"
        progress = false
        log_every = 100
        """
    )


@pytest.fixture(scope="module")
def copy_task(tmp_path_factory) -> dict:
    """Train once with ``seqweave train``; the file asks for 10 steps, ``--set`` for 500."""
    root = tmp_path_factory.mktemp("cli")
    rng = random.Random(0)
    train = write_jsonl(root / "train.jsonl", copy_pairs(rng, 2000))
    valid_pairs = copy_pairs(rng, 50)
    valid = write_jsonl(root / "valid.jsonl", valid_pairs)
    config = root / "copy.toml"
    config.write_text(toml_config(train, valid, root / "run", max_steps=10))
    result = ok(seqweave_cli("train", config, "--set", f"train.max_steps={STEPS}", cwd=root))
    return {
        "root": root,
        "result": result,
        "run": root / "run",
        "model": root / "run" / "best",
        "valid": valid,
        "sources": [p["source"] for p in valid_pairs],
    }


# -- train and eval ----------------------------------------------------------------------------


def test_train_writes_the_best_model_and_honours_set(copy_task):
    run = copy_task["run"]
    assert copy_task["result"].stdout.strip().splitlines()[-1] == str(copy_task["model"])
    for name in ("config.json", "model.safetensors", "tokenizer.json", "generation_config.json"):
        assert (copy_task["model"] / name).is_file(), name
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if r["kind"] == "train"]
    assert steps[-1] == STEPS  # the --set override beat the file's max_steps = 10
    assert json.loads((run / "config.json").read_text())["train"]["max_steps"] == STEPS
    assert "valid: kept all 50 examples" in copy_task["result"].stderr


def test_eval_scores_exact_match_one(copy_task, tmp_path):
    output, hypotheses = tmp_path / "eval.json", tmp_path / "hyp.txt"
    result = ok(
        seqweave_cli(
            "eval",
            "--model",
            copy_task["model"],
            "--data",
            copy_task["valid"],
            "--metric",
            "exact",
            "--output",
            output,
            "--hypotheses",
            hypotheses,
        )
    )
    report = json.loads(output.read_text())
    assert report["scores"]["exact"] == 1.0
    assert report["examples"] == 50
    assert report["data"] == str(copy_task["valid"])
    assert hypotheses.read_text().splitlines() == copy_task["sources"]
    assert "exact" in result.stdout and "1.0000" in result.stdout
    assert f"wrote {output}" in result.stderr


# -- generate ----------------------------------------------------------------------------------


def test_generate_text_file_gives_one_line_per_input_in_order(copy_task, tmp_path):
    sources = copy_task["sources"][:12]
    lines = [*sources[:5], "", *sources[5:], "   "]
    source_file = tmp_path / "input.txt"
    source_file.write_text("".join(line + "\n" for line in lines))
    output = tmp_path / "out.txt"
    result = ok(
        seqweave_cli(
            "generate", "--model", copy_task["model"], "--input", source_file, "--output", output
        )
    )
    assert result.stdout == ""  # everything went to the file
    expected = [*sources[:5], "", *sources[5:], ""]
    assert output.read_text() == "".join(line + "\n" for line in expected)


def test_generate_reads_stdin_and_writes_stdout(copy_task):
    sources = copy_task["sources"][12:20]
    stdin = "\n".join([sources[0], "", *sources[1:]]) + "\n"
    result = ok(seqweave_cli("generate", "--model", copy_task["model"], stdin=stdin))
    assert result.stdout.splitlines() == [sources[0], "", *sources[1:]]


@pytest.mark.parametrize("content", ["", "\n", " \n\n"])
def test_generate_empty_or_blank_input_exits_zero(copy_task, tmp_path, content):
    """Empty input gives no output (exit 0), like other line-oriented tools; each blank line
    still gives one blank output line, whether the input comes from a file or stdin."""
    expected = "\n" * content.count("\n")
    from_stdin = ok(seqweave_cli("generate", "--model", copy_task["model"], stdin=content))
    assert from_stdin.stdout == expected
    source_file = tmp_path / "input.txt"
    source_file.write_text(content)
    from_file = ok(seqweave_cli("generate", "--model", copy_task["model"], "--input", source_file))
    assert from_file.stdout == expected


def test_generate_jsonl_keeps_fields_and_reports_stats(copy_task, tmp_path):
    sources = copy_task["sources"][20:26]
    records = [
        {"source": sources[0], "id": 0},
        {"id": 1, "source": sources[1], "meta": {"tags": ["x", "y"], "n": 2.5}},
        {"source": sources[2], "target": "ignored target", "id": 2},
        {"source": sources[3], "target": None, "id": 3},
        {"source": sources[4], "id": 4, "note": "ünïcödé"},
        {"source": sources[5], "id": 5},
    ]
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    source_file = tmp_path / "input.jsonl"
    source_file.write_text("\n".join([*lines[:2], "", *lines[2:]]) + "\n")
    result = ok(
        seqweave_cli(
            "generate",
            "--model",
            copy_task["model"],
            "--input",
            source_file,
            "--decoder",
            "greedy",
            "--stats",
        )
    )
    rows = read_jsonl(result.stdout)
    assert len(rows) == len(records)  # the blank line is skipped, not answered
    for row, record, source in zip(rows, records, sources, strict=True):
        assert row["source"] == source
        assert row["output"] == source
        assert row["id"] == record["id"]
        for key in ("meta", "note"):
            assert row.get(key) == record.get(key)
        assert row.get("target") == record.get("target")
        # Greedy takes one decoder pass per output token plus one for the end token.
        assert row["stats"] == {"passes": len(source) + 1, "drafted": 0, "accepted": 0}
    assert result.stderr.strip().splitlines()[-1].startswith(f"{len(records)} inputs, ")


def test_generate_beam_search(copy_task, tmp_path):
    sources = copy_task["sources"][26:50]
    source_file = write_jsonl(tmp_path / "input.jsonl", [{"source": s} for s in sources])
    output = tmp_path / "out.jsonl"
    args = ["--model", copy_task["model"], "--input", source_file, "--output", output]
    ok(seqweave_cli("generate", *args, "--decoder", "beam", "--beam-size", "3"))
    rows = read_jsonl(output.read_text())
    assert [r["source"] for r in rows] == sources
    assert all(set(r) == {"source", "output"} for r in rows)  # no stats without --stats
    # The command line decodes exactly as the Python API does with the same options.
    model = seqweave.load(copy_task["model"])
    assert [r["output"] for r in rows] == model.generate(sources, decoder="beam", beam_size=3)
    # A full beam search (no early stopping) on a perfect copy model copies.
    exhaustive = model.generate(sources, decoder="beam", beam_size=3, early_stopping=False)
    assert exhaustive == sources


def test_beam_search_with_default_settings_copies_like_greedy(copy_task):
    model = seqweave.load(copy_task["model"])
    sources = copy_task["sources"]
    assert model.generate(sources) == sources  # greedy is perfect
    for beam_size in (2, 3):
        assert model.generate(sources, decoder="beam", beam_size=beam_size) == sources


# -- errors ------------------------------------------------------------------------------------


def test_generate_with_a_missing_model_directory(tmp_path):
    missing = tmp_path / "no-such-model"
    result = seqweave_cli("generate", "--model", missing, stdin="abc\n")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip() == (
        f"seqweave generate: error: model directory {missing} does not exist"
    )


def test_train_on_a_malformed_data_file_names_file_and_line(tmp_path):
    rng = random.Random(1)
    lines = [json.dumps(p) for p in copy_pairs(rng, 4)]
    lines.insert(2, '{"source": "abc", "target": "abc"')  # line 3: unterminated object
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(lines) + "\n")
    config = tmp_path / "bad.toml"
    config.write_text(toml_config(train, train, tmp_path / "run", max_steps=1))
    result = seqweave_cli("train", config, cwd=tmp_path)
    assert result.returncode == 2
    assert f"seqweave train: error: {train}:3: invalid JSON" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "best").exists()


def test_eval_rejects_an_unknown_metric(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", [{"source": "ab", "target": "ab"}])
    result = seqweave_cli(
        "eval", "--model", tmp_path, "--data", data, "--metric", "meteor", cwd=tmp_path
    )
    assert result.returncode == 2
    assert "usage: seqweave eval" in result.stderr
    assert "argument --metric: invalid choice: 'meteor'" in result.stderr
    assert not (tmp_path / "eval.json").exists()


@pytest.mark.parametrize("decoder", ["spec", "gad"])
def test_serve_with_a_drafting_decoder_needs_a_draft_model(tmp_path, decoder):
    result = seqweave_cli("serve", "--model", tmp_path, "--decoder", decoder, cwd=tmp_path)
    assert result.returncode == 2
    assert f"error: --decoder {decoder} needs --draft-model DIR" in result.stderr
    assert "Traceback" not in result.stderr
