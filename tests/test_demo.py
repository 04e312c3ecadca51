"""What keeps the demo's promise: a fixed number of updates on a fixed number of threads,
and speed reported as a ratio with its spread over interleaved repeats."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seqweave.demo import THREADS, demo_config, describe_ratios, pin_threads, speed_ratios


def test_training_length_does_not_depend_on_the_machine_by_default():
    train = demo_config(Path("out")).train
    assert train.max_minutes == 0 and train.max_steps == 450
    assert demo_config(Path("out"), minutes=6).train.max_minutes == 6


def test_speed_is_a_per_repeat_ratio_with_its_median_and_range():
    greedy, iad = [2.0, 3.0, 2.2, 2.4, 2.0], [1.0, 1.0, 1.1, 1.5, 2.0]
    ratios = speed_ratios(greedy, iad)
    assert ratios == pytest.approx([2.0, 3.0, 2.0, 1.6, 1.0])
    assert describe_ratios(ratios) == "2.00x (median of 5 repeats, 1.00x-3.00x)"


def test_pin_threads_fixes_the_thread_count_and_names_the_kernels():
    before = torch.get_num_threads()
    try:
        setup = pin_threads()
        assert torch.get_num_threads() == THREADS
        assert (
            setup == f"{THREADS} torch threads, {torch.backends.cpu.get_cpu_capability()} kernels"
        )
    finally:
        torch.set_num_threads(before)


def test_the_eval_command_uses_the_library_evaluation():
    from seqweave.commands import evaluate as command
    from seqweave.evaluation import evaluate, format_table

    assert command.evaluate is evaluate and command.format_table is format_table
