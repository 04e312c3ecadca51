"""Data and models under ``../shared`` (beside the repository), for the tests that need them.

Where they are absent (a fresh clone) those tests skip. Where ``SEQWEAVE_REQUIRE_SHARED=1``
is set, as CI sets it, a missing path fails the test instead: a test that needs the shared
files must not stop running unnoticed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
REQUIRE = "SEQWEAVE_REQUIRE_SHARED"


def require_shared(*parts: str, root: Path = SHARED) -> Path:
    """``root / parts`` if it exists; otherwise skip the test, or fail it when required."""
    path = root.joinpath(*parts)
    if path.exists():
        return path
    reason = f"{path} is absent (the shared directory sits beside the repository)"
    if os.environ.get(REQUIRE, "0") not in ("", "0"):
        pytest.fail(f"{reason}; {REQUIRE} is set, so this fails instead of skipping", False)
    pytest.skip(reason)
