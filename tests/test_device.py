"""Device selection and the machine line that recipes write beside their figures."""

from __future__ import annotations

import platform

import pytest
import torch

from seqweave.device import describe_machine, resolve_device
from seqweave.errors import ConfigError


def test_auto_and_cpu_resolve_to_usable_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


@pytest.mark.parametrize(
    ("name", "message"),
    [("tpu9", "unknown device 'tpu9'"), ("cuda:0", "CUDA is not available")],
)
def test_bad_or_missing_devices_are_named(name, message):
    if name.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("CUDA is present")
    with pytest.raises(ConfigError, match=message):
        resolve_device(name)


def test_machine_line_names_the_cpu_the_sharing_and_torch():
    expected = f"{platform.machine()} CPU, 1 thread per run, 3 run(s) at a time"
    assert describe_machine("cpu", 3) == f"{expected}, torch {torch.__version__}"
